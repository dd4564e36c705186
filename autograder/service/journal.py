"""The grading service's journal: one row per submission seen in the exchange.

The rows live in the gradebook's own database (table ``rnn_course_inbound``,
:data:`autograder.pipeline.coordinator.gradebook.INBOUND`), so they move with ``db_url``
(SQLite or PostgreSQL) and are backed up with the grades.  A row is keyed by
``(student, assignment, timestamp)``: the same submission is never queued
twice, however often the inbound folder is read.

A row's ``state``:

``queued``      seen in the inbound folder, not collected yet;
``collected``   in ``submitted/``, waiting for (or in) a grading round;
``held``        graded; feedback waits for the due date (``after_due``);
``released``    graded and its feedback handed back (final);
``graded``      graded, with no feedback to hand back (final; ``note`` says why);
``superseded``  a later submission of the same student replaced it (final);
``rejected``    not collected (impersonation, an unreadable name...; final);
``failed``      its grading failed ``max_attempts`` times (final until
                ``serve --retry-failed``).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from sqlalchemy import create_engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from autograder.pipeline.coordinator.gradebook import INBOUND, ensure_tables

QUEUED, COLLECTED, HELD, RELEASED, GRADED = "queued", "collected", "held", "released", "graded"
SUPERSEDED, REJECTED, FAILED = "superseded", "rejected", "failed"
PENDING = (QUEUED, COLLECTED)
DONE = (HELD, RELEASED, GRADED)
FINAL = (RELEASED, GRADED, SUPERSEDED, REJECTED, FAILED)


def utcnow() -> datetime:
    """Now, in UTC, naive (as nbgrader stores times)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Journal:
    """The journal's rows in the database at ``db_url`` (one engine per process)."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self._engine = None
        self._pid = None

    @property
    def engine(self):
        if self._engine is None or self._pid != os.getpid():  # never share one across a fork
            args = {"timeout": 30} if self.db_url.startswith("sqlite") else {}
            self._engine = create_engine(self.db_url, connect_args=args)
            self._pid = os.getpid()
            ensure_tables(self._engine)
        return self._engine

    def close(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None

    # ------------------------------------------------------------------ writes
    def add(self, student: str, assignment: str, timestamp: str, entry: str,
            submitted_at: datetime | None, state: str = QUEUED, note: str = "") -> int | None:
        """Queue a submission; its row id, or None when it is already in the journal."""
        try:
            with self.engine.begin() as conn:
                result = conn.execute(insert(INBOUND).values(
                    student_id=student, assignment=assignment, timestamp=timestamp,
                    entry=entry, state=state, attempts=0, flags="", note=note,
                    submitted_at=submitted_at, seen_at=utcnow()))
                return int(result.inserted_primary_key[0])
        except IntegrityError:
            return None

    def update(self, row_id: int, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(INBOUND).where(INBOUND.c.id == row_id).values(**values))

    def fail_attempt(self, row_id: int, max_attempts: int, note: str) -> str:
        """One more failed attempt at a pending row; its new state (``failed`` at the last)."""
        row = self.get(row_id)
        if row is None or row.state not in PENDING:
            return row.state if row is not None else ""
        attempts = row.attempts + 1
        state = FAILED if attempts >= max_attempts else row.state
        self.update(row_id, attempts=attempts, state=state, note=note)
        return state

    def retry_failed(self) -> int:
        """Put every ``failed`` row back in the queue; how many."""
        with self.engine.begin() as conn:
            return conn.execute(update(INBOUND).where(INBOUND.c.state == FAILED)
                                .values(state=QUEUED, attempts=0, note="")).rowcount

    # ------------------------------------------------------------------- reads
    def get(self, row_id: int):
        with self.engine.connect() as conn:
            return conn.execute(select(INBOUND).where(INBOUND.c.id == row_id)).first()

    def rows(self, ids=None, states=None, assignment=None, student=None) -> list:
        query = select(INBOUND).order_by(INBOUND.c.id)
        if ids is not None:
            query = query.where(INBOUND.c.id.in_(list(ids)))
        if states is not None:
            query = query.where(INBOUND.c.state.in_(list(states)))
        if assignment is not None:
            query = query.where(INBOUND.c.assignment == assignment)
        if student is not None:
            query = query.where(INBOUND.c.student_id == student)
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def entries(self) -> set[str]:
        """The inbound folder names already in the journal."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(INBOUND.c.entry)).scalars())

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(INBOUND.c.state, func.count())
                                     .group_by(INBOUND.c.state)).all())
