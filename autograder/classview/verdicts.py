"""Each graded cell's verdict message, kept in the gradebook for the class view.

nbgrader's gradebook keeps a grade cell's points but not the words of its
verdict (its ``comment`` rows belong to answer and task cells only), and the
class view groups failures by exactly those words.  So the coordinator records
them beside its flags (:mod:`autograder.pipeline.coordinator.gradebook`), in the same
transaction as the grades (:func:`save_verdicts`, called by
:mod:`autograder.pipeline.coordinator.record`): one row per graded cell of a submission,
replaced when it is graded again.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text, delete, insert

from autograder.pipeline import flags as F
from autograder.pipeline.coordinator.gradebook import METADATA

MESSAGE_CHARS = 2000
"""A verdict message is cut to this many characters (a student's output can end up in one)."""

VERDICT = Table(
    "rnn_course_verdict", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("submission_id", String(32), nullable=False, index=True),
    Column("assignment", String(128), nullable=False, index=True),
    Column("student_id", String(128), nullable=False),
    Column("notebook", String(128), nullable=False),
    Column("grade_id", String(128), nullable=False),
    Column("score", Float, nullable=True),
    Column("max_score", Float, nullable=False),
    Column("passed", Boolean, nullable=True),
    Column("kind", String(16), nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
)


def storable(text: str) -> str:
    """``text`` as any database's text column takes it: lone surrogates escaped
    (:func:`~autograder.pipeline.flags.clean_text`), NUL written ``\\x00`` (PostgreSQL
    refuses NUL in text, and a refused row would cost the student's whole grade)."""
    return F.clean_text(text).replace("\x00", "\\x00")


def verdict_rows(submission_id: str, result) -> list[dict]:
    """The rows of one worker result (``result.scores.cells``), messages cleaned and cut."""
    rows = []
    for notebook, cells in result.scores.cells.items():
        for grade_id, cell in cells.items():
            rows.append({
                "submission_id": submission_id, "assignment": result.assignment,
                "student_id": result.student, "notebook": notebook, "grade_id": grade_id,
                "score": cell.get("score"), "max_score": float(cell.get("max_score") or 0.0),
                "passed": cell.get("passed"), "kind": str(cell.get("kind") or "")[:16],
                "message": storable(str(cell.get("message") or ""))[:MESSAGE_CHARS],
            })
    return rows


def save_verdicts(session, submission_ids, result) -> None:
    """Replace the verdict rows of ``submission_ids`` (this student's, current and stale)
    by ``result``'s, in ``session``'s transaction."""
    ids = list(submission_ids)
    session.execute(delete(VERDICT).where(VERDICT.c.submission_id.in_(ids)))
    rows = verdict_rows(ids[0], result)
    if rows:
        session.execute(insert(VERDICT), rows)
