"""One round of the grading service: collect, grade, hand feedback back (in a child process).

:func:`run_round` takes the journal rows of one assignment and

1. **collects** the rows' students from the exchange (nbgrader's collect, with
   :class:`~autograder.service.exchange.SafeExchangeCollect` and ``update``:
   each student's latest submission, a complete copy or none), then reads
   each row against ``submitted/<student>/<assignment>/timestamp.txt``: the
   same timestamp is ``collected``, a later one ``superseded`` it, an earlier
   one (or none) means collect refused it: ``rejected``;
2. **grades** the collected rows with
   :func:`~autograder.pipeline.coordinator.assignment.grade_assignment` (which skips a
   submission already recorded for the same digest: a round killed after
   recording never grades it twice);
3. **hands feedback back** as each result is recorded, by the assignment's
   policy (:func:`autograder.course.feedback_policies`): nbgrader's
   release_feedback for that one student, or ``held`` until the due date
   (plus the student's extension) has passed.

Every step writes its outcome into the journal before the next starts, and
every step may run again after a crash with the same outcome.
"""

from __future__ import annotations

import glob
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from autograder.course import AFTER_DUE, Course
from autograder.pipeline.coordinator.runner import default_workers
from autograder.pipeline.scoring import parse_timestamp
from autograder.service import journal as J

log = logging.getLogger("autograder.serve")
# a round stays open this long for more submissions of its assignment
LINGER_SECONDS = 3.0


@dataclass
class Options:
    """What every round needs to know (from the command line)."""

    course_dir: str
    workers: int | None = None
    scheduler: str | None = None
    unsafe_no_sandbox: bool = False
    max_attempts: int = 3


def event(name: str, text: str) -> None:
    """One line in the service's log: ``<event> <text>``."""
    log.info("%-10s %s", name, text)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def coursedir_for(course: Course, assignment: str, student: str = "*"):
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=course.config)
    coursedir.root = str(course.root)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    return coursedir


class _OneLine(logging.Filter):
    """nbgrader's multi-line warnings as one line of the service's log, marked ``exchange``."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = " ".join(record.getMessage().split())
        record.msg, record.args = f"{'exchange':<10} {text}", None
        return True


def _exchange_log() -> logging.Logger:
    logger = logging.getLogger("autograder.serve.exchange")
    logger.setLevel(logging.WARNING)  # nbgrader's info lines are not events of ours
    if not logger.filters:
        logger.addFilter(_OneLine())
    return logger


def collect(course: Course, assignment: str, student: str) -> None:
    """nbgrader's collect of ``student``'s ``assignment`` (``--update``), in this process."""
    from nbgrader.auth import Authenticator
    from nbgrader.exchange import ExchangeFactory

    factory = ExchangeFactory(config=course.config)
    collector = factory.Collect(coursedir=coursedir_for(course, assignment, glob.escape(student)),
                                authenticator=Authenticator(config=course.config),
                                config=course.config, log=_exchange_log())
    collector.update = True
    collector.start()


def release_feedback(course: Course, assignment: str, student: str) -> bool:
    """nbgrader's release_feedback for one student; False when there is no feedback to release."""
    from nbgrader.auth import Authenticator
    from nbgrader.exchange import ExchangeFactory

    coursedir = coursedir_for(course, assignment, glob.escape(student))
    folder = Path(coursedir.format_path(coursedir.feedback_directory, student, assignment))
    if not list(folder.glob("*.html")):
        return False
    factory = ExchangeFactory(config=course.config)
    releaser = factory.ReleaseFeedback(coursedir=coursedir,
                                       authenticator=Authenticator(config=course.config),
                                       config=course.config, log=_exchange_log())
    releaser.start()
    return True


def submitted_timestamp(course: Course, assignment: str, student: str) -> datetime | None:
    path = course.submitted_dir(student, assignment) / "timestamp.txt"
    try:
        return parse_timestamp(path.read_text(encoding="utf-8", errors="replace").strip())
    except OSError:
        return None


def due_dates(course: Course, pairs) -> dict[tuple[str, str], datetime | None]:
    """(assignment, student) -> when that feedback may go back (due date + extension).

    None where the assignment has no due date (or is not in the gradebook).
    """
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[tuple[str, str], datetime | None] = {}
    with Gradebook(course.db_url, course.course_id) as gb:
        for assignment, student in set(pairs):
            try:
                duedate = gb.find_assignment(assignment).duedate
            except MissingEntry:
                duedate = None
            if duedate is None:
                out[(assignment, student)] = None
                continue
            try:
                extension = gb.find_submission(assignment, student).extension
            except MissingEntry:
                extension = None
            out[(assignment, student)] = duedate + (extension or timedelta(0))
    return out


def due_for(course: Course, assignment: str, student: str) -> datetime | None:
    """When ``student``'s feedback on ``assignment`` may go back (due date + extension)."""
    return due_dates(course, [(assignment, student)])[(assignment, student)]


def hand_back(course: Course, journal: J.Journal, row) -> str:
    """Release ``row``'s feedback, or hold it, by the policy; the row's new state."""
    student, assignment = row.student_id, row.assignment
    if course.feedback_policy(assignment) == AFTER_DUE:
        due = due_for(course, assignment, student)
        if due is not None and J.utcnow() < due:
            if row.state != J.HELD:
                journal.update(row.id, state=J.HELD,
                               note=f"feedback after {due:%Y-%m-%d %H:%M} UTC")
                event("held", f"{student} {assignment}: feedback after {due:%Y-%m-%d %H:%M:%S} UTC")
            return J.HELD
    try:
        released = release_feedback(course, assignment, student)
    except Exception as exc:  # e.g. no submission_secret.txt: graded, but nothing to fetch
        journal.update(row.id, state=J.GRADED, note=f"feedback not released: {first_line(exc)}")
        event("unreleased", f"{student} {assignment}: feedback not released ({first_line(exc)})")
        return J.GRADED
    if not released:
        journal.update(row.id, state=J.GRADED, note="no feedback to release")
        event("unreleased", f"{student} {assignment}: no feedback to release")
        return J.GRADED
    journal.update(row.id, state=J.RELEASED, released_at=J.utcnow(), note="")
    event("released", f"{student} {assignment}: feedback released")
    return J.RELEASED


def reconcile(course: Course, journal: J.Journal, rows) -> list:
    """After a collect: each row collected, superseded or rejected; the collected rows."""
    collected = []
    for row in rows:
        have = submitted_timestamp(course, row.assignment, row.student_id)
        mine = row.submitted_at
        who = f"{row.student_id} {row.assignment}"
        if have is not None and mine is not None and have == mine:
            if row.state != J.COLLECTED:
                journal.update(row.id, state=J.COLLECTED)
                event("collected", f"{who} ({row.timestamp})")
            collected.append(row)
        elif have is not None and mine is not None and have > mine:
            journal.update(row.id, state=J.SUPERSEDED, note="a later submission replaced it")
            event("superseded", f"{who} ({row.timestamp}): a later submission replaced it")
        else:
            note = ("not collected: its name has no readable timestamp" if mine is None else
                    "not collected (not owned by the student it names, a link, too big, "
                    "or gone from the exchange): see the log")
            journal.update(row.id, state=J.REJECTED, note=note)
            event("rejected", f"{who} ({row.timestamp}): {note}")
    # what the new submissions replace: held feedback of an earlier one is gone
    for row in collected:
        for old in journal.rows(states=(J.HELD,), assignment=row.assignment,
                                student=row.student_id):
            if old.id != row.id:
                journal.update(old.id, state=J.SUPERSEDED, note="a later submission replaced it")
                event("superseded", f"{old.student_id} {old.assignment} ({old.timestamp}): "
                                    "a later submission replaced it")
    return collected


def take(course: Course, journal: J.Journal, assignment: str, rows) -> list:
    """Collect the students of ``rows`` and reconcile them; the rows ready to grade."""
    for student in sorted({row.student_id for row in rows}):
        try:
            collect(course, assignment, student)
        except Exception as exc:  # one student's (too big...): theirs is not collected
            event("exchange", f"{student} {assignment}: collect failed: {first_line(exc)}")
    return reconcile(course, journal, rows)


def run_round(opts: Options, assignment: str, grade_ids=(), release_ids=(), *,
              follow: bool = True, linger: float = LINGER_SECONDS) -> None:
    """Collect and grade the rows ``grade_ids``, release the held rows ``release_ids``.

    With ``follow``, the round stays open for new submissions of the same
    assignment (journaled by the main process meanwhile) until none has come
    for ``linger`` seconds: a worker that frees up takes the next submission
    at once, without a new round's start-up.
    """
    from autograder.pipeline.coordinator.assignment import grade_assignment

    course = Course(opts.course_dir)
    journal = J.Journal(course.db_url)
    try:
        for row in journal.rows(ids=release_ids, states=(J.HELD,)):
            hand_back(course, journal, row)
        rows = journal.rows(ids=grade_ids, states=J.PENDING)
        if not rows:
            return
        rows = take(course, journal, assignment, rows)
        if not rows:
            return
        active = {row.student_id: row for row in rows}  # handed out, no result yet
        take_at_once = max(2, opts.workers or default_workers())
        count = len(rows)
        started = last_new = time.monotonic()
        event("grading", f"{assignment}: {len(rows)} submission(s): "
                         f"{', '.join(sorted(active))}")

        def more():
            nonlocal count, last_new
            fresh = [r for r in journal.rows(states=J.PENDING, assignment=assignment)
                     if r.attempts == 0 and r.student_id not in active]
            # a few at a time: the workers wait while this collects, and the rest stay
            # in the queue (where the status page shows them) until a worker has room
            students = sorted({r.student_id for r in fresh}, key=lambda s: min(
                r.id for r in fresh if r.student_id == s))[:take_at_once]
            fresh = [r for r in fresh if r.student_id in students]
            got = take(course, journal, assignment, fresh) if fresh else []
            if not got:
                return [] if time.monotonic() - last_new < linger else None
            last_new = time.monotonic()
            count += len(got)
            active.update({row.student_id: row for row in got})
            event("grading", f"{assignment}: {len(got)} more: "
                             f"{', '.join(sorted(r.student_id for r in got))}")
            return sorted(r.student_id for r in got)

        def on_result(result) -> None:
            row = active.pop(result.student, None)
            if row is None:
                return
            flags = ";".join(result.flags)
            who = f"{result.student} {assignment}"
            if result.status == "error":
                state = journal.fail_attempt(row.id, opts.max_attempts,
                                             f"grader error ({flags or 'grader_error'})")
                event("failed" if state == J.FAILED else "error",
                      f"{who}: grader error ({flags}); "
                      + ("no more attempts" if state == J.FAILED else "will retry"))
                return
            journal.update(row.id, state=J.COLLECTED, score=result.score,
                           max_score=result.max_score, flags=flags, graded_at=J.utcnow())
            seconds = ""
            if row.submitted_at is not None:
                seconds = f" {(J.utcnow() - row.submitted_at).total_seconds():.1f} s after submit"
            how = "already recorded" if result.status == "skipped" else "graded"
            event("graded", f"{who}: {result.score:g}/{result.max_score:g} "
                            f"flags={flags or '-'} ({how}{seconds})")
            hand_back(course, journal, journal.get(row.id))

        grade_assignment(course.root, assignment, workers=opts.workers,
                         scheduler=opts.scheduler, students=sorted(active),
                         unsafe_no_sandbox=opts.unsafe_no_sandbox, progress=False,
                         on_result=on_result, follow=more if follow else None)
        event("round", f"{assignment}: {count} submission(s) in "
                       f"{time.monotonic() - started:.1f} s")
    finally:
        journal.close()
