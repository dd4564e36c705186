"""The course directory: its nbgrader configuration and where things live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from autograder.errors import UsageError


def assignments_in(config, where: str = "nbgrader_config.py") -> list[str]:
    """The course's assignments, in course order, from its loaded nbgrader configuration.

    Written in ``nbgrader_config.py`` and nowhere else (the CLI, the registries,
    the demo, bench and tests read it through here); a missing, empty or
    malformed list is a one-line :class:`UsageError`.
    """
    assignments = config.get("RnnCourse", {}).get("assignments")
    if (not isinstance(assignments, (list, tuple)) or not assignments
            or not all(isinstance(a, str) and a for a in assignments)):
        raise UsageError(f"{where} must list the course's assignments, in order, as "
                         'c.RnnCourse.assignments = ["first", "second", ...]')
    return list(assignments)


# A student id becomes a folder name (submitted/<id>/), part of an exchange entry's
# name (<id>+<assignment>+<time>), a gradebook key and a cell of grades.csv and the
# Canvas CSV: a letter, digit or _ first (never = + - @, which a spreadsheet reads as a
# formula), then letters, digits and _ . - @ (an e-mail address); at most 64.
STUDENT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")


def student_id_problem(student: str) -> "str | None":
    """Why ``student`` cannot be a student id here (one line), or None when it can."""
    if isinstance(student, str) and STUDENT_ID.fullmatch(student):
        return None
    return (f"{student!r} is not a student id nbgrader and a CSV can carry safely: a letter, "
            "digit or _ first, then letters, digits, _ . - @ (at most 64)")


def check_student_id(student: str) -> str:
    """``student`` when it is a valid student id, else a one-line :class:`UsageError`."""
    problem = student_id_problem(student)
    if problem is not None:
        raise UsageError(problem)
    return student


# When the grading service (``python -m autograder serve``) hands feedback back:
# as soon as a submission is graded, or once the assignment's due date (plus the
# student's extension) has passed.  ``c.RnnCourse.feedback_release`` in nbgrader_config.py.
ON_GRADE = "on_grade"
AFTER_DUE = "after_due"
FEEDBACK_POLICIES = (ON_GRADE, AFTER_DUE)


def feedback_policies(config, assignments, where: str = "nbgrader_config.py") -> dict[str, str]:
    """assignment -> its feedback policy, from ``c.RnnCourse.feedback_release``.

    One policy for the course (``"on_grade"``), or a dict of assignment names
    (``"default"`` for the others); unset means ``"on_grade"``.  A wrong value
    or an unknown assignment is a one-line :class:`UsageError`.
    """
    value = config.get("RnnCourse", {}).get("feedback_release", ON_GRADE)
    hint = (f'{where}: c.RnnCourse.feedback_release must be "on_grade", "after_due" or a dict '
            'of them by assignment ({"default": ..., "<assignment>": ...})')
    if isinstance(value, str):
        value = {"default": value}
    if not isinstance(value, dict):
        raise UsageError(hint)
    unknown = sorted(set(value) - set(assignments) - {"default"})
    if unknown:
        raise UsageError(f"{where}: c.RnnCourse.feedback_release names unknown "
                         f"assignment(s) {', '.join(map(str, unknown))}")
    policies = {a: value.get(a, value.get("default", ON_GRADE)) for a in assignments}
    if not all(p in FEEDBACK_POLICIES for p in policies.values()):
        raise UsageError(hint)
    return policies


@dataclass(frozen=True)
class Window:
    """When an assignment opens (is handed out) and is due, naive UTC as nbgrader keeps times."""

    opens: datetime
    due: datetime

    def is_open(self, now: datetime) -> bool:
        return self.opens <= now


SCHEDULE_FORMAT = "%Y-%m-%d %H:%M"


def utcnow() -> datetime:
    """Now, naive UTC (the schedule's and nbgrader's clock)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def schedule_of(config, assignments, where: str = "nbgrader_config.py") -> dict[str, Window]:
    """assignment -> its :class:`Window`, from ``c.RnnCourse.schedule``.

    Each assignment of the course has ``{"opens": "YYYY-MM-DD HH:MM", "due": ...}``
    (UTC), opens before it is due, and opens no earlier than the previous one's due
    date: a later notebook ships working versions of earlier graded functions (bptt's
    provided ``rnn_forward``...), so it is handed out only once every earlier
    assignment is past due.  Anything else is a one-line :class:`UsageError`.
    """
    value = config.get("RnnCourse", {}).get("schedule")
    hint = (f"{where}: c.RnnCourse.schedule must give every assignment "
            '{"opens": "YYYY-MM-DD HH:MM", "due": "YYYY-MM-DD HH:MM"} (UTC)')
    if not isinstance(value, dict):
        raise UsageError(hint)
    unknown = sorted(map(str, set(value) - set(assignments)))
    if unknown:
        raise UsageError(f"{where}: c.RnnCourse.schedule names unknown assignment(s) "
                         f"{', '.join(unknown)}")
    windows: dict[str, Window] = {}
    for name in assignments:
        entry = value.get(name)
        if not isinstance(entry, dict) or set(entry) != {"opens", "due"}:
            raise UsageError(f"{hint}; {name} has {entry!r}")
        try:
            opens, due = (datetime.strptime(str(entry[k]), SCHEDULE_FORMAT)
                          for k in ("opens", "due"))
        except ValueError:
            raise UsageError(f"{hint}; {name} has {entry!r}") from None
        if not opens < due:
            raise UsageError(f"{where}: {name} opens ({entry['opens']}) after it is due "
                             f"({entry['due']})")
        windows[name] = Window(opens, due)
    for earlier, later in zip(assignments, assignments[1:], strict=False):
        if windows[later].opens < windows[earlier].due:
            raise UsageError(
                f"{where}: {later} opens ({windows[later].opens:{SCHEDULE_FORMAT}}) before "
                f"{earlier} is due ({windows[earlier].due:{SCHEDULE_FORMAT}}): a notebook "
                "may ship earlier assignments' functions, so each opens once the previous "
                "one is past due")
    return windows


class Course:
    """An nbgrader course directory (the repository root by default)."""

    def __init__(self, root: str | Path = "."):
        self.root = Path(root).resolve()
        config_file = self.root / "nbgrader_config.py"
        if not config_file.is_file():
            raise UsageError(f"{self.root} is not a course directory (no nbgrader_config.py)")
        loader = PyFileConfigLoader("nbgrader_config.py", path=str(self.root))
        try:
            self.config = loader.load_config()
        except Exception as exc:  # a syntax error in the instructor's config
            raise UsageError(f"cannot read {config_file}: {exc}") from None
        self.assignments = assignments_in(self.config, str(config_file))
        coursedir = self.config.get("CourseDirectory", {})
        self.course_id = coursedir.get("course_id", "rnn-course")
        self.db_url = coursedir.get("db_url", f"sqlite:///{self.root / 'gradebook.db'}")
        self.config_file = config_file

    @property
    def schedule(self) -> dict[str, Window]:
        """assignment -> when it opens and is due (``c.RnnCourse.schedule``, validated)."""
        return schedule_of(self.config, self.assignments, str(self.config_file))

    def open_assignments(self, now: datetime | None = None) -> list[str]:
        """The assignments open at ``now`` (naive UTC; default: now), in course order."""
        now = utcnow() if now is None else now
        return [a for a, w in self.schedule.items() if w.is_open(now)]

    def feedback_policy(self, assignment: str) -> str:
        """``"on_grade"`` or ``"after_due"``: when the service releases the feedback."""
        return feedback_policies(self.config, self.assignments, str(self.config_file))[assignment]

    def source_notebook(self, assignment: str) -> Path:
        return self.root / "source" / assignment / f"{assignment}.ipynb"

    def release_notebook(self, assignment: str) -> Path:
        return self.root / "release" / assignment / f"{assignment}.ipynb"

    def submitted_dir(self, student: str, assignment: str) -> Path:
        return self.root / "submitted" / student / assignment

    def check_assignment(self, assignment: str) -> None:
        if assignment not in self.assignments:
            raise UsageError(f"unknown assignment {assignment!r}; this course has "
                             f"{', '.join(self.assignments)}")
