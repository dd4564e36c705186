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


# ----------------------------------------------- a listed assignment without its notebook
def test_the_demo_refuses_an_assignment_without_its_notebook(tmp_path):
    from argparse import Namespace

    from autograder.commands import demo

    _course(tmp_path, 'c.RnnCourse.assignments = ["ghost"]\n')
    args = Namespace(course_dir=str(tmp_path), out=str(tmp_path / "out"), workers=1,
                     unsafe_no_sandbox=True)
    with pytest.raises(UsageError, match=r"lists ghost but source/ghost/ghost.ipynb does not"):
        demo.run(args)
    assert not (tmp_path / "out").exists()  # refused before making anything


def test_the_notebook_benchmark_refuses_an_assignment_without_its_notebook():
    from bench import notebooks

    assert notebooks.ASSIGNMENTS == tuple(Course(notebooks.ROOT).assignments)
    with pytest.raises(RuntimeError, match="no source notebook for ghost"):
        notebooks.run(assignments=["ghost"])


VALID_IDS = ["student1", "alice@uni.edu", "s_2", "Bob.Smith-2"]
HOSTILE_IDS = ["=1+2", "+X()", "@SUM(1;2)", "-2+3", "\tx", "\rx", "a,b", "a\nb", "../x", "a/b",
               "a+b", ".hidden", "", "x" * 65, "a b", "a;b", "'x"]


@pytest.mark.parametrize("student", HOSTILE_IDS)
def test_ids_that_nbgrader_or_a_csv_cannot_carry_are_refused_in_one_line(student):
    from autograder.course import check_student_id, student_id_problem

    problem = student_id_problem(student)
    assert problem is not None and "\n" not in problem and "not a student id" in problem
    with pytest.raises(UsageError, match="not a student id"):
        check_student_id(student)


@pytest.mark.parametrize("student", VALID_IDS)
def test_plain_ids_and_email_addresses_are_student_ids(student):
    from autograder.course import check_student_id

    assert check_student_id(student) == student


def test_grade_skips_a_submitted_folder_whose_name_is_no_student_id(tmp_path, capsys):
    """submitted/<id>/ is where ids enter `grade`: a hostile name is skipped in one line."""
    from nbgrader.coursedir import CourseDirectory

    from autograder.pipeline.coordinator.assignment import _submitted_students

    for student in ("ann", "=1+2", "-2+3", "a,b"):
        (tmp_path / "submitted" / student / "rnn_cell").mkdir(parents=True)
    coursedir = CourseDirectory()
    coursedir.root = str(tmp_path)
    found = _submitted_students(coursedir, "rnn_cell")
    assert list(found) == ["ann"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all("not a student id" in line for line in lines)
