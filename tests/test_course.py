"""The course directory: the assignment list comes from nbgrader_config.py, and only from there."""

from __future__ import annotations

import pytest

from autograder.course import Course
from autograder.errors import UsageError


def _course(tmp_path, body: str) -> Course:
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n" + body)
    return Course(tmp_path)


def test_assignments_are_read_in_course_order(tmp_path):
    course = _course(tmp_path, 'c.RnnCourse.assignments = ["second", "first"]\n')
    assert course.assignments == ["second", "first"]
    with pytest.raises(UsageError, match="unknown assignment 'third'; this course has second"):
        course.check_assignment("third")


@pytest.mark.parametrize("body", [
    "",  # no list at all: there is no default list to fall back on
    "c.RnnCourse.assignments = []\n",
    'c.RnnCourse.assignments = "rnn_cell"\n',
    'c.RnnCourse.assignments = ["rnn_cell", ""]\n',
])
def test_a_config_without_a_list_of_assignments_is_a_one_line_usage_error(tmp_path, body):
    with pytest.raises(UsageError) as err:
        _course(tmp_path, body)
    message = str(err.value)
    assert "\n" not in message
    assert "must list the course's assignments" in message and "c.RnnCourse.assignments" in message


def test_not_a_course_directory(tmp_path):
    with pytest.raises(UsageError, match="is not a course directory"):
        Course(tmp_path)
