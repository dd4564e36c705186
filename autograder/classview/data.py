"""An assignment's class, read from the gradebook: what the class view shows, as plain data.

:func:`collect` reads, through nbgrader's models and our own tables
(:mod:`autograder.pipeline.coordinator.gradebook`, :mod:`autograder.classview.verdicts`),
each current submission's score and late penalty, each graded cell's points and
verdict message, the flags, and the times (the submission's ``timestamp``,
when it was graded, and when the grading service released its feedback, from the
service's journal where it ran).

Failures are grouped into **named bugs** (:class:`Bug`): the checks' messages
name the likely bug, but carry numbers of the student's own inputs ("max abs
error 0.745"), so they are grouped by their *template* (:func:`template`:
numbers and array snippets replaced), per contract function.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nbgrader.api import (
    Grade,
    Gradebook,
    GradeCell,
    MissingEntry,
    Notebook,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from sqlalchemy import select

from autograder.classview.verdicts import VERDICT
from autograder.errors import UsageError
from autograder.pipeline.coordinator.gradebook import (
    GRADING,
    INBOUND,
    _sqlite_path,
    ensure_tables,
    flags_by_submission,
)
from rnn_course.contract import checked_function

TEMPLATE_CHARS = 300
"""A template is cut to this many characters (the example message keeps more)."""
OTHER = "(other cells)"
"""The 'function' of graded cells that no contract function owns."""

_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")
_ALSO = re.compile(r"\(also wrong: [^()]*\)")


def template(message: str) -> str:
    """``message`` with what differs between students taken out: array snippets
    (``[1.76 0.3]`` -> ``[…]``), numbers (``0.745``, ``7.9e-01`` -> ``#``) and the
    list of other wrong outputs (``(also wrong: …)``); whitespace collapsed."""
    text = " ".join(str(message).split())
    text = _ALSO.sub("(also wrong: …)", text)
    # innermost brackets first, so that nested arrays collapse; brackets without a
    # digit in them are words (``a[:, :H]``, ``['Wx']``) and stay
    while True:
        new = _BRACKETS.sub(lambda m: "\x02" if re.search(r"\d|\x02", m.group()) else
                            m.group().replace("[", "\x00").replace("]", "\x01"), text)
        if new == text:
            break
        text = new
    text = text.replace("\x00", "[").replace("\x01", "]").replace("\x02", "[…]")
    text = _NUMBER.sub("#", text)
    return text[:TEMPLATE_CHARS]


@dataclass
class StudentRow:
    """One student's current submission."""

    student: str
    submission_id: str
    score: float | None
    """After the late penalty; None when no cell has a score (e.g. a grader error)."""
    max_score: float
    timestamp: datetime | None
    late_penalty: float = 0.0
    seconds_late: float = 0.0
    flags: list[tuple[str, str]] = field(default_factory=list)
    status: str = ""
    graded_at: datetime | None = None
    feedback_at: datetime | None = None
    """When the grading service released the feedback (None: no journal row says so)."""
    bugs: list[str] = field(default_factory=list)
    """Templates of the named bugs this student has."""


@dataclass
class CheckStats:
    """One graded cell across the class."""

    grade_id: str
    function: str
    notebook: str
    max_score: float
    full: int = 0
    partial: int = 0
    none: int = 0

    @property
    def graded(self) -> int:
        return self.full + self.partial + self.none

    @property
    def pass_rate(self) -> float | None:
        return self.full / self.graded if self.graded else None


@dataclass
class Bug:
    """A named bug: the failures of one contract function with one message template."""

    function: str
    template: str
    example: str
    checks: list[str]
    students: list[str]


@dataclass
class ClassView:
    """Everything the class view shows about one assignment."""

    course_id: str
    assignment: str
    duedate: datetime | None
    max_score: float
    enrolled: int
    students: list[StudentRow]
    checks: list[CheckStats]
    functions: dict[str, tuple[int, int, int]]
    """Contract function -> students with full, partial and no points on its checks."""
    bugs: list[Bug]
    flags: dict[str, int]
    """Flag name -> students with it."""
    feedback_source: str
    """Where the feedback times come from ("service journal", "grading time" or "")."""
    notes: list[str] = field(default_factory=list)

    @property
    def scores(self) -> list[float]:
        return [s.score for s in self.students if s.score is not None]

    @property
    def median(self) -> float | None:
        return statistics.median(self.scores) if self.scores else None

    @property
    def late(self) -> list[StudentRow]:
        return [s for s in self.students if s.seconds_late > 0]

    def feedback_seconds(self) -> list[float]:
        """Seconds from submission to feedback, one per student where both are known."""
        out = []
        for s in self.students:
            end = s.feedback_at if self.feedback_source == "service journal" else s.graded_at
            if end is not None and s.timestamp is not None:
                out.append(max(0.0, (end - s.timestamp).total_seconds()))
        return out


def percentile(values, q: float) -> float | None:
    """The ``q`` quantile of ``values`` (nearest rank), None when empty."""
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def _full(score, max_score) -> str:
    """"full", "partial" or "none" for ``score`` out of ``max_score``."""
    if score is None or score <= 0:
        return "none" if max_score > 0 or score is None else "full"
    return "full" if score >= max_score - 1e-9 else "partial"


def collect(db_url: str, course_id: str, assignment: str) -> ClassView:
    """The class view of ``assignment`` from the gradebook at ``db_url``; UsageError when
    the gradebook cannot be opened or does not hold the assignment."""
    path = _sqlite_path(db_url)
    if path is not None and not path.is_file():  # nbgrader would make an empty one there
        raise UsageError(f"no gradebook at {path}: release the assignment first "
                         f"(python -m autograder release {assignment})")
    try:
        gb = Gradebook(db_url, course_id)
    except Exception as exc:
        raise UsageError(f"cannot open the gradebook {db_url}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None
    with gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            raise UsageError(f"assignment {assignment!r} is not in the gradebook: release it "
                             f"first (python -m autograder release {assignment})") from None
        ensure_tables(gb.engine)
        return _collect(gb.db, course_id, a)


def _collect(session, course_id: str, a) -> ClassView:
    cells = {cid: (name, float(mx or 0.0), nb) for cid, name, mx, nb in session.execute(
        select(GradeCell.id, GradeCell.name, GradeCell.max_score, Notebook.name)
        .join(Notebook, GradeCell.notebook_id == Notebook.id)
        .where(Notebook.assignment_id == a.id)).all()}
    checks = {name: CheckStats(name, checked_function(name) or OTHER, nb, mx)
              for name, mx, nb in cells.values()}
    max_score = sum(c.max_score for c in checks.values())
    subs = session.execute(
        select(SubmittedAssignment.id, SubmittedAssignment.student_id,
               SubmittedAssignment.timestamp, SubmittedAssignment.late_submission_penalty,
               SubmittedAssignment.extension)
        .where(SubmittedAssignment.assignment_id == a.id)
        .order_by(SubmittedAssignment.student_id)).all()
    ids = [s.id for s in subs]
    # each graded cell's points: (submission, cell name) -> score (a person's first)
    points: dict[str, dict[str, float | None]] = defaultdict(dict)
    if ids:
        for sid, cid, auto, manual in session.execute(
                select(SubmittedNotebook.assignment_id, Grade.cell_id, Grade.auto_score,
                       Grade.manual_score)
                .join(SubmittedNotebook, Grade.notebook_id == SubmittedNotebook.id)
                .where(SubmittedNotebook.assignment_id.in_(ids))).all():
            if cid in cells:
                points[sid][cells[cid][0]] = manual if manual is not None else auto
    flags = flags_by_submission(session, ids)
    grading = {r.submission_id: r for r in session.execute(
        select(GRADING.c.submission_id, GRADING.c.status, GRADING.c.graded_at)
        .where(GRADING.c.assignment == a.name)).all()}
    released: dict[str, datetime] = {}
    for student, rel in session.execute(
            select(INBOUND.c.student_id, INBOUND.c.released_at)
            .where(INBOUND.c.assignment == a.name, INBOUND.c.released_at.is_not(None))
            .order_by(INBOUND.c.id)).all():
        released[student] = rel  # the latest released grading of each student
    current = set(ids)
    messages: dict[str, dict[str, str]] = defaultdict(dict)
    for sid, grade_id, passed, message in session.execute(
            select(VERDICT.c.submission_id, VERDICT.c.grade_id, VERDICT.c.passed,
                   VERDICT.c.message).where(VERDICT.c.assignment == a.name)).all():
        if sid in current and passed is False and message:
            messages[sid][grade_id] = message

    students: list[StudentRow] = []
    groups: dict[tuple[str, str], dict] = {}
    per_function: dict[str, Counter] = defaultdict(Counter)
    for sub in subs:
        got = points.get(sub.id, {})
        scored = [v for v in got.values() if v is not None]
        penalty = float(sub.late_submission_penalty or 0.0)
        score = float(sum(scored)) - penalty if scored else None
        row = grading.get(sub.id)
        seconds_late = 0.0
        if sub.timestamp is not None and a.duedate is not None:
            due = a.duedate + (sub.extension or timedelta(0))
            seconds_late = max(0.0, (sub.timestamp - due).total_seconds())
        s = StudentRow(sub.student_id, sub.id, score, max_score, sub.timestamp, penalty,
                       seconds_late, flags.get(sub.id, []),
                       row.status if row else "", row.graded_at if row else None,
                       released.get(sub.student_id))
        students.append(s)
        if scored:  # a submission with no score at all (only flags) counts in no check
            fn_points: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
            for name, check in checks.items():
                value = got.get(name)
                setattr(check, _full(value, check.max_score),
                        getattr(check, _full(value, check.max_score)) + 1)
                fn_points[check.function][0] += value or 0.0
                fn_points[check.function][1] += check.max_score
            for fn, (got_fn, max_fn) in fn_points.items():
                per_function[fn][_full(got_fn, max_fn)] += 1
        for grade_id, message in messages.get(sub.id, {}).items():
            function = checked_function(grade_id) or OTHER
            key = (function, template(message))
            group = groups.setdefault(key, {"example": message, "checks": set(),
                                            "students": set()})
            group["checks"].add(grade_id)
            group["students"].add(sub.student_id)
            if key[1] not in s.bugs:
                s.bugs.append(key[1])

    order = {name: i for i, name in enumerate(checks)}
    bugs = sorted((Bug(fn, tpl, g["example"], sorted(g["checks"], key=lambda c: order.get(c, 0)),
                       sorted(g["students"])) for (fn, tpl), g in groups.items()),
                  key=lambda b: (-len(b.students), b.function, b.template))
    flag_count: Counter = Counter()
    for s in students:
        for name in {n for n, _ in s.flags}:
            flag_count[name] += 1
    source = ("service journal" if released else
              "grading time" if any(s.graded_at for s in students) else "")
    enrolled = session.execute(select(Student.id)).all()
    return ClassView(
        course_id=course_id, assignment=a.name, duedate=a.duedate, max_score=max_score,
        enrolled=len(enrolled), students=students, checks=list(checks.values()),
        functions={fn: (c["full"], c["partial"], c["none"])
                   for fn, c in sorted(per_function.items())},
        bugs=bugs, flags=dict(flag_count.most_common()), feedback_source=source)

