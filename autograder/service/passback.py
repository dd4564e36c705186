"""Grades back to the LMS (LTI Assignment and Grade Services), journalled, exactly once.

The gradebook is the source of truth.  :func:`scan` reads, for every submission the
gradebook holds, its **graded version**: a digest of the submission, the time of its
last grading (``rnn_course_grading.graded_at``, new at each regrade), its total after
the late penalty (:func:`autograder.pipeline.scoring.total`, the number of the feedback
and ``grades.csv``) and whether a cell still waits for a person.  A regrade changes it;
so does a grade given by hand in the formgrader (the total or the "needs manual grade"
changes).  Each new version of a student's assignment gets one row in the table
``rnn_course_passback`` (the gradebook's own database, beside the grading service's
journal); older rows not posted yet are ``superseded``.

:func:`post_due` posts the rows that are due, one at a time (the AGS ``scores`` call of
:class:`autograder.lti.client.LtiClient`, to the assignment's line item, found by its
``resourceId`` or created with the assignment's maximum).  A row's ``state``:

``pending``     to post at ``next_try``;
``sending``     the score is on its way: the outcome is unknown until the LMS answers
                (a process killed now leaves it so);
``posted``      the LMS accepted it (final);
``refused``     the LMS refused it (a 4xx): ``last_error`` holds its reason, and it is not
                tried again until a new version (or ``serve --retry-failed``);
``superseded``  a newer version of the same grade replaced it before it was posted.

Exactly once: a row is marked ``sending`` (and its attempt counted) in its own
transaction before the score leaves; after a failure that may have reached the LMS (a
timeout, a 5xx, a garbage answer, a process killed mid-call), the row is tried again
only after reading the LMS's result for that user (the AGS ``results`` call): if the LMS
already holds this score, the row is ``posted`` without posting again.  A failure that
may pass (:attr:`LtiError.retryable`) is tried again after ``retry * 2**(attempts-1)``
seconds (at most :data:`MAX_DELAY`); a refusal is flagged at once.  A line item
deleted in the LMS (404 on its scores) is looked up again, created anew, and the score
posted there.

The score's ``timestamp`` is when it is sent (later for each newer version: an LMS
keeps the latest, and Canvas refuses a timestamp older than its own last update of the
result), its ``submission.submittedAt`` (and Canvas's extension of it) the submission's
own time; ``activityProgress`` is ``Completed`` once the
assignment's due date has passed, else ``Submitted``; ``gradingProgress`` is
``FullyGraded``, or ``PendingManual`` while a cell waits for a person.  An assignment
whose feedback waits for the due date (``c.RnnCourse.feedback_release = "after_due"``)
has its grades posted at the due date (plus the student's extension), not before.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)

from autograder.course import AFTER_DUE
from autograder.pipeline.coordinator.gradebook import GRADING, METADATA, ensure_tables
from autograder.pipeline.scoring import points, total
from autograder.service.journal import utcnow
from autograder.service.rounds import event

PENDING, SENDING, POSTED, REFUSED, SUPERSEDED = (
    "pending", "sending", "posted", "refused", "superseded")
OPEN = (PENDING, SENDING)
"""States of a row still to post."""
MAX_DELAY = 3600.0  # seconds: the longest wait between two tries
ERROR_CHARS = 500
FULLY_GRADED, PENDING_MANUAL = "FullyGraded", "PendingManual"
SUBMITTED, COMPLETED = "Submitted", "Completed"
NOT_FOUND = 404

PASSBACK = Table(
    "rnn_course_passback", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("student_id", String(128), nullable=False),
    Column("assignment", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("max_score", Float, nullable=False),
    Column("grading", String(16), nullable=False),
    Column("submitted_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_try", DateTime, nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Column("posted_at", DateTime, nullable=True),
    UniqueConstraint("student_id", "assignment", "version",
                     name="uq_rnn_course_passback_version"),
)


@dataclass(frozen=True)
class Graded:
    """One submission's current graded version, as the gradebook holds it."""

    student: str
    assignment: str
    version: str
    score: float
    max_score: float
    grading: str
    submitted_at: datetime | None
    due: datetime | None
    """When the grade may go to the LMS (None: at once)."""


def delay(retry: float, attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones (doubling, capped)."""
    return min(MAX_DELAY, retry * 2 ** max(0, attempts - 1))


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:ERROR_CHARS]


# --------------------------------------------------------------------------- #
# what the gradebook holds
# --------------------------------------------------------------------------- #
def graded(course) -> list[Graded]:
    """Every submission of the gradebook that has a grade to pass back.

    A submission has one when our grader recorded it (``graded``), or when no cell of
    it waits for a person (graded otherwise: by hand, by ``nbgrader autograde``).
    Its raw score and late penalty are nbgrader's own sums (``Grade.score`` over its
    cells, ``late_submission_penalty`` over its notebooks), read with a few grouped
    queries rather than nbgrader's per-submission subqueries (seconds for a class).
    """
    from nbgrader.api import (
        Assignment,
        Grade,
        Gradebook,
        SubmittedAssignment,
        SubmittedNotebook,
    )
    from sqlalchemy import case, func

    from autograder.service.rounds import due_dates

    sn = SubmittedNotebook
    with Gradebook(course.db_url, course.course_id) as gb:
        ensure_tables(gb.engine)
        grades = (select(sn.assignment_id.label("sid"), func.sum(Grade.score).label("raw"),
                         # max of a boolean: PostgreSQL has none, so of 0 and 1
                         func.max(case((Grade.needs_manual_grade, 1), else_=0)).label("manual"))
                  .join(Grade, Grade.notebook_id == sn.id).group_by(sn.assignment_id)
                  .subquery())
        penalties = (select(sn.assignment_id.label("sid"),
                            func.sum(sn.late_submission_penalty).label("penalty"))
                     .group_by(sn.assignment_id).subquery())
        sa = SubmittedAssignment
        rows = gb.db.execute(
            select(sa.id, Assignment.name, sa.student_id, sa.timestamp, grades.c.raw,
                   grades.c.manual, penalties.c.penalty, GRADING.c.status,
                   GRADING.c.graded_at)
            .join(Assignment, Assignment.id == sa.assignment_id)
            .outerjoin(grades, grades.c.sid == sa.id)
            .outerjoin(penalties, penalties.c.sid == sa.id)
            .outerjoin(GRADING, GRADING.c.submission_id == sa.id)).all()
        maxima = {a.name: points(a.max_score) for a in gb.assignments}
    rows = [r for r in rows if r.name in course.assignments
            and (r.status == "graded" or not r.manual)]
    held = [(r.name, r.student_id) for r in rows if course.feedback_policy(r.name) == AFTER_DUE]
    dues = due_dates(course, held) if held else {}
    out = []
    for r in rows:
        score, max_score = total(r.raw or 0.0, r.penalty), maxima[r.name]
        grading = PENDING_MANUAL if r.manual else FULLY_GRADED
        key = "|".join(str(v) for v in (r.id, r.timestamp, r.graded_at, score, max_score,
                                        grading))
        out.append(Graded(r.student_id, r.name, hashlib.sha256(key.encode()).hexdigest()[:32],
                          score, max_score, grading, r.timestamp,
                          dues.get((r.name, r.student_id))))
    return out


# --------------------------------------------------------------------------- #
# the journal of posts
# --------------------------------------------------------------------------- #
def latest(engine) -> dict[tuple[str, str], object]:
    """(student, assignment) -> the newest row not superseded."""
    ensure_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(PASSBACK).where(PASSBACK.c.state != SUPERSEDED)
                            .order_by(PASSBACK.c.id)).all()
    return {(r.student_id, r.assignment): r for r in rows}


def scan(course, engine, students, unknown: set | None = None) -> int:
    """A row for each new graded version of a student the LMS knows (``students``: their
    ids); older open or refused rows of the same grade are superseded.  How many rows.
    The graded students it does not know are added to ``unknown``."""
    have = latest(engine)
    now = utcnow()
    added = 0
    with engine.begin() as conn:
        for g in graded(course):
            if g.student not in students:
                if unknown is not None:
                    unknown.add(g.student)
                continue
            old = have.get((g.student, g.assignment))
            due = g.due if g.due is not None and g.due > now else None
            if old is not None and old.version == g.version:
                if old.state == PENDING and old.attempts == 0 and old.next_try > now \
                        and old.next_try != due:  # the due date (or an extension) moved
                    conn.execute(update(PASSBACK).where(PASSBACK.c.id == old.id).values(
                        next_try=due or now, last_error=_waits(due)))
                continue
            conn.execute(update(PASSBACK).where(
                PASSBACK.c.student_id == g.student, PASSBACK.c.assignment == g.assignment,
                PASSBACK.c.state.in_((PENDING, SENDING, REFUSED))).values(state=SUPERSEDED))
            conn.execute(insert(PASSBACK).values(
                student_id=g.student, assignment=g.assignment, version=g.version,
                score=g.score, max_score=g.max_score, grading=g.grading,
                submitted_at=g.submitted_at, created_at=now, state=PENDING, attempts=0,
                next_try=due or now, last_error=_waits(due)))
            added += 1
    return added


def _waits(due: datetime | None) -> str:
    return f"after the due date ({due:%Y-%m-%d %H:%M} UTC)" if due is not None else ""


def retry_refused(engine) -> int:
    """Put every refused row back to post (``serve --retry-failed``); how many."""
    ensure_tables(engine)
    with engine.begin() as conn:
        return conn.execute(update(PASSBACK).where(PASSBACK.c.state == REFUSED).values(
            state=PENDING, attempts=0, next_try=utcnow())).rowcount


def due(engine, now=None) -> list:
    """The open rows whose time has come, oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(select(PASSBACK).where(
            PASSBACK.c.state.in_(OPEN), PASSBACK.c.next_try <= (now or utcnow()))
            .order_by(PASSBACK.c.id)))


def post_due(engine, posters: dict, users: dict, stop=lambda: False) -> int:
    """Post every due row: ``posters`` LMS context -> :class:`Poster`, ``users`` student id
    -> (LMS context, LMS user id) (:func:`autograder.service.roster.lms_users`); how many
    the LMS now holds."""
    done = 0
    for row in due(engine):
        if stop():
            break
        context, user_id = users.get(row.student_id, (None, None))
        poster = posters.get(context)
        if poster is None:
            _set(engine, row.id, next_try=utcnow() + timedelta(seconds=MAX_DELAY),
                 last_error="not in the LMS's roster")
            continue
        outcome = poster.post(row, user_id)
        if outcome is None:
            break  # the LMS is down or slow: the others wait for the next pass
        done += outcome
    return done


def _set(engine, row_id: int, **values) -> None:
    with engine.begin() as conn:
        conn.execute(update(PASSBACK).where(PASSBACK.c.id == row_id).values(**values))


# --------------------------------------------------------------------------- #
# posting
# --------------------------------------------------------------------------- #
class Poster:
    """Posts the due rows to one LMS: ``client`` (:class:`autograder.lti.client.LtiClient`),
    ``lineitems`` the AGS line items URL of the course's LMS context."""

    def __init__(self, course, engine, client, lineitems: str, *, tag: str | None = None,
                 retry: float = 30.0):
        self.course = course
        self.engine = engine
        self.client = client
        self.lineitems_url = lineitems
        self.tag = tag
        self.retry = retry
        self._items: dict[str, str] = {}  # assignment -> its line item's URL

    def line_item(self, assignment: str, maximum: float) -> str:
        """The URL of ``assignment``'s line item: found by its resourceId (and tag), or
        created with ``maximum`` (the assignment's)."""
        if assignment not in self._items:
            item = self.client.line_item(self.lineitems_url, assignment, assignment,
                                         maximum, self.tag)
            self._items[assignment] = item["id"]
        return self._items[assignment]

    def post(self, row, user_id: str) -> bool | None:
        """Try ``row`` once (after reading the LMS's result when an earlier try may have
        reached it): True when the LMS now holds it, False when not (refused, or to try
        again at once), None after a failure that may pass (tried again later)."""
        from autograder.lti.client import LtiError

        who = f"{row.student_id} {row.assignment} {row.score:g}/{row.max_score:g}"
        try:
            url = self.line_item(row.assignment, row.max_score)
            if row.attempts > 0 and self.holds(url, user_id, row):
                _set(self.engine, row.id, state=POSTED, posted_at=utcnow(), last_error="")
                event("lms", f"{who}: the LMS already holds it (an earlier try reached it): "
                             "not posted again")
                return True
            _set(self.engine, row.id, state=SENDING, attempts=row.attempts + 1)
            self.client.post_score(url, user_id, row.score, row.max_score,
                                   timestamp=utcnow(), submitted_at=row.submitted_at,
                                   activity_progress=self.activity(row),
                                   grading_progress=row.grading)
        except LtiError as exc:
            attempts = row.attempts + 1
            if exc.status == NOT_FOUND and row.assignment in self._items:
                self._items.pop(row.assignment)  # deleted in the LMS: found or created anew
                event("lms", f"{row.assignment}: its line item is gone from the LMS; "
                             "it is looked up again (created anew if missing)")
                _set(self.engine, row.id, state=PENDING, attempts=attempts, next_try=utcnow(),
                     last_error=one_line(exc))
                return False
            if not exc.retryable:
                _set(self.engine, row.id, state=REFUSED, attempts=attempts,
                     last_error=one_line(exc))
                event("lms", f"{who}: REFUSED by the LMS, not retried: {one_line(exc)}")
                return False
            wait = delay(self.retry, attempts)
            _set(self.engine, row.id, state=PENDING, attempts=attempts,
                 next_try=utcnow() + timedelta(seconds=wait), last_error=one_line(exc))
            event("lms", f"{who}: not posted ({one_line(exc)}); trying again in {wait:g} s")
            return None
        _set(self.engine, row.id, state=POSTED, posted_at=utcnow(), last_error="")
        event("lms", f"{who}: posted to the LMS")
        return True

    def holds(self, url: str, user_id: str, row) -> bool:
        """Whether the LMS's result for ``user_id`` is ``row``'s score (same share of the
        maximum: an LMS may scale a score to its line item's maximum)."""
        for result in self.client.results(url, user_id):
            if result.get("userId") != user_id:
                continue
            got, out_of = result.get("resultScore"), result.get("resultMaximum")
            if not isinstance(got, (int, float)):
                continue
            if not isinstance(out_of, (int, float)) or out_of <= 0:
                out_of = row.max_score
            mine = row.score / row.max_score if row.max_score else row.score
            theirs = got / out_of if out_of else got
            if math.isclose(mine, theirs, rel_tol=1e-6, abs_tol=1e-9):
                return True
        return False

    def activity(self, row) -> str:
        """``Completed`` once the assignment's due date has passed, else ``Submitted``."""
        from autograder.service.rounds import due_for

        due = due_for(self.course, row.assignment, row.student_id)
        return COMPLETED if due is not None and due <= utcnow() else SUBMITTED
