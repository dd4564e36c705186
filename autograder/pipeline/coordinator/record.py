"""Recording worker results: the coordinator's single path into the gradebook, then onto
disk (docs/architecture.md, "Recording").

1. **the gradebook**, in one transaction for the results that finished together
   (:func:`record_batch`): student, submission, every grade's ``auto_score`` exactly as
   the worker scored it, nbgrader's comments, late penalties and ``flagged``, and in our
   own tables (:mod:`.gradebook`) the digest, the status and the flags with their
   reasons; a regrade updates the same rows;
2. **then the files** (:func:`write_files`), as ``nbgrader autograde`` and
   ``generate_feedback`` leave them (text that is not UTF-8 is written escaped);
3. the row says ``files_written`` once they are all there (marked with the next batch's
   transaction, or when the run closes the gradebook).  A failure while writing them
   never loses the grade: ``files_not_written``, and the next run writes them.
"""

from __future__ import annotations

import shutil
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.api import (
    BaseCell,
    Comment,
    Grade,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SAWarning

from autograder.classview.verdicts import save_verdicts
from autograder.pipeline import flags as F
from autograder.pipeline.coordinator.gradebook import (
    FLAG,
    GRADING,
    CourseGradebook,
    RecordedState,
    flags_by_submission,
)
from autograder.pipeline.coordinator.report import StudentResult
from autograder.pipeline.scoring import parse_timestamp, total
from autograder.pipeline.types import COORDINATOR_STAGES
from autograder.pipeline.worker.feedback import write_feedback
from autograder.pipeline.worker.precheck import with_source_files

WORKER_CHARS = 256


def utf8(text: str) -> bytes:
    """``text`` as UTF-8; what UTF-8 cannot hold (lone surrogates) becomes ``\\udcxx``.

    For notebook JSON that escape *is* JSON's own: the string reads back unchanged.
    """
    return text.encode("utf-8", "backslashreplace")


def say(text: str) -> None:
    """Print to stderr on lines of its own, above the run's progress bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def is_recorded(state: RecordedState | None, digest: str) -> bool:
    """True when ``state`` is a complete grading of the submission with this ``digest``."""
    return state is not None and state.complete and state.digest == digest


# --------------------------------------------------------------------------- #
# the coordinator's entry point
# --------------------------------------------------------------------------- #
def record(result, sub, *, book: CourseGradebook, coursedir, assignment, stage,
           maker) -> StudentResult:
    """Record one result, gradebook first, then files; never lets one student stop the run.

    Outside a run (``book``'s writing connection not open yet), the connection
    is closed again afterwards.
    """
    opened_here = not book.writing
    try:
        return record_batch([(result, sub)], book=book, coursedir=coursedir,
                            assignment=assignment, stage=stage, maker=maker)[0]
    finally:
        if opened_here:
            book.close()


def record_batch(items, *, book: CourseGradebook, coursedir, assignment, stage,
                 maker) -> list[StudentResult]:
    """Record ``(result, submission)`` pairs: one gradebook transaction for all of them,
    then each one's files; the rows of those whose files are written are marked complete
    with the next transaction (:meth:`CourseGradebook.files_written`).

    Each result keeps the guarantees of :func:`record`: if the gradebook refuses
    the batch, each result is tried alone, so only the one it refuses fails.
    """
    t0 = time.monotonic()
    for result, _sub in items:
        for key, seconds in result.timings.items():
            if key in stage and key not in COORDINATOR_STAGES:
                stage[key] += seconds
        if result.status == "error" and result.error:
            say(f"grader error for {result.student} ({result.worker}):\n{result.error}")
    try:
        saved: list[Saved | None] = save_all(book, items)
    except Exception:  # the gradebook refused: each alone, so that only the culprit fails
        saved = []
        for result, sub in items:
            try:
                saved.append(save_all(book, [(result, sub)])[0])
            except Exception:  # a grader error, and the run says so
                say(f"could not record {result.student}:\n{traceback.format_exc()}")
                saved.append(None)
    out: list[StudentResult] = []
    written: list[str] = []
    for (result, sub), done in zip(items, saved, strict=True):
        names = F.flag_names(result.flags)
        if done is None:
            out.append(StudentResult(result.student, 0.0, result.scores.max_score,
                                     sorted(set(names) | {F.GRADER_ERROR}), "error"))
            continue
        dest = Path(coursedir.format_path(coursedir.autograded_directory, result.student,
                                          assignment))
        fb = Path(coursedir.format_path(coursedir.feedback_directory, result.student,
                                        assignment))
        try:
            write_files(result, sub, dest, fb, maker.source_files)
            written.append(done.submission_id)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            say(f"error: {result.student}: grade recorded, files not written "
                f"({F.clean_text(reason)}); run again to write them")
            try:
                flag_files_not_written(book, done.submission_id, reason)
            except Exception:  # the row still says "files not written": a rerun regrades
                pass
            names = sorted(set(names) | {F.FILES_NOT_WRITTEN})
        status = "error" if result.status == "error" or F.GRADER_ERROR in names else "graded"
        out.append(StudentResult(result.student, done.score, done.max_score, names, status,
                                 usage=dict(result.usage)))
    # complete with the next batch's transaction, or when the book is closed
    book.files_written(written)
    stage["gradebook"] += time.monotonic() - t0
    return out


@dataclass
class Saved:
    """What :func:`save_grades` recorded."""

    submission_id: str
    """nbgrader's ``submitted_assignment.id``."""
    score: float
    """After the late penalty, as the gradebook computes it (a person's scores included)."""
    max_score: float


# --------------------------------------------------------------------------- #
# 1. the gradebook
# --------------------------------------------------------------------------- #
def save_grades(book: CourseGradebook, result, sub) -> Saved:
    """Write one result into the gradebook in one transaction (module docstring, step 1)."""
    return save_all(book, [(result, sub)])[0]


def save_all(book: CourseGradebook, items) -> list[Saved]:
    """Write ``(result, submission)`` pairs into the gradebook in one transaction."""
    with warnings.catch_warnings(), book.writer() as gb:
        # nbgrader's models trip SQLAlchemy's autoflush warnings: noise
        warnings.simplefilter("ignore", SAWarning)
        book.ensure_tables(gb)
        session = gb.db
        marked = book.mark_written(session)  # the previous batch's files are written
        submissions = []
        # cell id -> name, once: reading grade.cell.name loaded each cell row on its own
        names = dict(session.execute(select(BaseCell.id, BaseCell.name)).all())
        assignments: dict[str, object] = {}  # name -> row, looked up once per batch
        for result, sub in items:
            if result.assignment not in assignments:
                assignments[result.assignment] = gb.find_assignment(result.assignment)
            submission = _submission(gb, assignments[result.assignment], result.student)
            timestamp = parse_timestamp(sub.timestamp)
            if timestamp is not None:
                submission.timestamp = timestamp
            session.flush()
            prior = flags_by_submission(session, [submission.id])[submission.id]
            for snb in submission.notebooks:
                _save_notebook(snb, result, names, flagged=bool(result.flags),
                               unflag=bool(prior))
            _save_grading(session, submission.id, result, sub)
            submissions.append(submission.id)
        session.commit()
        book.marked(marked)
        # the scores as the gradebook computes them (a person's included), in one query
        # rather than three deferred loads per submission
        totals = {row.id: row for row in session.execute(select(
            SubmittedAssignment.id, SubmittedAssignment.score,
            SubmittedAssignment.late_submission_penalty, SubmittedAssignment.max_score,
        ).where(SubmittedAssignment.id.in_(submissions)))}
        return [Saved(sid, total(totals[sid].score, totals[sid].late_submission_penalty),
                      float(totals[sid].max_score)) for sid in submissions]


def _submission(gb, a, student: str) -> SubmittedAssignment:
    """The student's submission to assignment row ``a``, created as nbgrader's
    ``add_submission`` does (no commit)."""
    session = gb.db
    person = session.get(Student, student)
    if person is None:
        person = Student(id=student)
        session.add(person)
    submission = session.execute(select(SubmittedAssignment).where(
        SubmittedAssignment.assignment_id == a.id,
        SubmittedAssignment.student_id == student)).scalar_one_or_none()
    if submission is not None:
        return submission
    submission = SubmittedAssignment(assignment=a, student=person)
    for notebook in a.notebooks:
        snb = SubmittedNotebook(notebook=notebook, assignment=submission)
        for cell in notebook.grade_cells:
            Grade(cell_id=cell.id, notebook=snb)
        for cell in notebook.solution_cells:
            Comment(cell_id=cell.id, notebook=snb)
        for cell in notebook.task_cells:
            Comment(cell_id=cell.id, notebook=snb)
            Grade(cell_id=cell.id, notebook=snb)
    session.add(submission)
    return submission


def _save_notebook(snb, result, names: dict[str, str], *, flagged: bool, unflag: bool) -> None:
    """One notebook's grades and comments; ``names``: cell id -> cell name."""
    name = snb.notebook.name
    if flagged:
        snb.flagged = True
    elif unflag:  # flagged by an earlier grading of ours, nothing to see any more
        snb.flagged = False
    if result.status != "graded":  # a grader error: what has no score needs a person
        for grade in snb.grades:
            if grade.auto_score is None and grade.manual_score is None:
                grade.needs_manual_grade = True
        return
    cells = result.scores.cells.get(name, {})
    for grade in snb.grades:
        cell = cells.get(names.get(grade.cell_id))
        if cell is None:
            continue
        grade.auto_score = cell["score"]
        # as nbgrader's SaveAutoGrades: a person looks again where one already did
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
    comments = result.comments.get(name)
    if comments is not None:
        for comment in snb.comments:
            comment.auto_comment = comments.get(names.get(comment.cell_id))
    snb.late_submission_penalty = result.scores.late_penalties.get(name)


def _save_grading(session, submission_id: str, result, sub) -> None:
    """Our row and flags for this submission (stale rows of the same student go)."""
    stale = select(GRADING.c.submission_id).where(
        GRADING.c.assignment == result.assignment, GRADING.c.student_id == result.student)
    old = [submission_id, *session.execute(stale).scalars()]
    session.execute(delete(FLAG).where(FLAG.c.submission_id.in_(old)))
    session.execute(delete(GRADING).where(GRADING.c.submission_id.in_(old)))
    save_verdicts(session, old, result)  # the class view's messages (autograder.classview)
    session.execute(insert(GRADING).values(
        submission_id=submission_id, assignment=result.assignment, student_id=result.student,
        digest=sub.digest or "", status=result.status, files_written=False,
        graded_at=datetime.now(timezone.utc).replace(tzinfo=None),
        worker=F.clean_text(result.worker)[:WORKER_CHARS]))
    if result.flags:
        session.execute(insert(FLAG), [
            {"submission_id": submission_id, "position": i, "name": name, "reason": reason}
            for i, (name, reason) in enumerate(result.flags)])


def flag_files_not_written(book: CourseGradebook, submission_id: str, reason: str) -> None:
    """Add the ``files_not_written`` flag to a recorded submission."""
    flags: list[tuple[str, str]] = []
    F.add_flag(flags, F.FILES_NOT_WRITTEN, reason)
    with book.writer() as gb:
        session = gb.db
        position = len(flags_by_submission(session, [submission_id])[submission_id])
        session.execute(insert(FLAG).values(submission_id=submission_id, position=position,
                                            name=flags[0][0], reason=flags[0][1]))
        for snb in session.execute(select(SubmittedNotebook).where(
                SubmittedNotebook.assignment_id == submission_id)).scalars():
            snb.flagged = True
        session.commit()


# --------------------------------------------------------------------------- #
# 2. the files
# --------------------------------------------------------------------------- #
def kept_files(result, sub) -> dict[str, bytes]:
    """The submission's files that the precheck kept (in the worker: ``result.files``)."""
    return {rel: sub.raw[rel] for rel in result.files if rel in sub.raw}


def write_files(result, sub, autograded: Path, feedback: Path,
                source_files: dict[str, bytes] | None = None) -> None:
    """The autograded and feedback folders of one submission, replaced (step 2)."""
    autograded, feedback = Path(autograded), Path(feedback)
    if autograded.exists():
        shutil.rmtree(autograded)
    autograded.mkdir(parents=True)
    if result.status == "graded":
        for rel, data in with_source_files(kept_files(result, sub), source_files or {}).items():
            target = autograded.joinpath(*rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for name, nb_json in result.notebooks.items():
            (autograded / f"{name}.ipynb").write_bytes(utf8(nb_json))
    if sub.timestamp:
        (autograded / "timestamp.txt").write_bytes(utf8(sub.timestamp))

    if feedback.exists():
        shutil.rmtree(feedback)
    if result.feedback:
        write_feedback(feedback, result.feedback)
        # as nbgrader's generate_feedback: the autograded folder's other files
        # too; release_feedback reads timestamp.txt and submission_secret.txt
        for path in sorted(autograded.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb":
                target = feedback / path.relative_to(autograded)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
