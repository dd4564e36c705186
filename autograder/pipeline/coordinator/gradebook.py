"""The course's gradebook as the coordinator reads it, and the tables of our own in it.

The course's gradebook is nbgrader's database (``db_url``: SQLite, PostgreSQL...).
Workers never open it; the coordinator

* reads the assignment's structure (:meth:`CourseGradebook.structure`) and
  snapshots it into a small private SQLite gradebook for the workers' sanitize
  steps (:meth:`CourseGradebook.snapshot`);
* reads what is already recorded, to skip it (:meth:`CourseGradebook.recorded`);
* records each result through :mod:`autograder.pipeline.coordinator.record`, its only writer.

nbgrader's tables have no room for the grader's flags (only a ``flagged``
boolean per submitted notebook, which recording sets), so two small tables of
our own live in the same database, created with SQLAlchemy on the
gradebook's engine (:func:`ensure_tables`):

``rnn_course_grading``  one row per submission (nbgrader's ``submitted_assignment.id``):
                        the submission digest, the status of the grading
                        (``graded`` or ``error``), whether its files were
                        written, when it was graded and by which worker;
``rnn_course_flag``     the submission's flags: name and one-line reason, in order;
``rnn_course_inbound``  the grading service's journal (:mod:`autograder.service.journal`):
                        one row per submission seen in the exchange's inbound
                        folder, keyed by student, assignment and the submission's
                        timestamp, with where it stands (queued, graded, released...).

No foreign key ties them to nbgrader's tables, so that nbgrader's own commands
can still delete a student or a submission; rows are always read through
nbgrader's current submission id, so stale ones are never seen.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import (
    Assignment,
    Base,
    Gradebook,
    MissingEntry,
    SubmittedAssignment,
)
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    select,
    text,
    update,
)
from traitlets.config import Config

from autograder.errors import UsageError
from autograder.pipeline.scoring import AssignmentStructure, GradedCell, total
from autograder.pipeline.worker.folders import memory_dir

METADATA = MetaData()
GRADING = Table(
    "rnn_course_grading", METADATA,
    Column("submission_id", String(32), primary_key=True),
    Column("assignment", String(128), nullable=False),
    Column("student_id", String(128), nullable=False),
    Column("digest", String(64), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("files_written", Boolean, nullable=False, default=False),
    Column("graded_at", DateTime, nullable=False),
    Column("worker", String(256), nullable=False, default=""),
    Index("ix_rnn_course_grading_assignment_student", "assignment", "student_id"),
)
FLAG = Table(
    "rnn_course_flag", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("submission_id", String(32), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

INBOUND = Table(
    "rnn_course_inbound", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("student_id", String(128), nullable=False),
    Column("assignment", String(128), nullable=False),
    Column("timestamp", String(64), nullable=False),
    Column("entry", String(512), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("score", Float, nullable=True),
    Column("max_score", Float, nullable=True),
    Column("flags", Text, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("submitted_at", DateTime, nullable=True),
    Column("seen_at", DateTime, nullable=False),
    Column("graded_at", DateTime, nullable=True),
    Column("released_at", DateTime, nullable=True),
    UniqueConstraint("student_id", "assignment", "timestamp",
                     name="uq_rnn_course_inbound_submission"),
)


def ensure_tables(engine) -> None:
    """Create our tables in the gradebook's database if they are not there yet."""
    METADATA.create_all(bind=engine, checkfirst=True)


@dataclass
class RecordedState:
    """What the gradebook says about one student's submission of an assignment."""

    score: float
    """After the late penalty."""
    max_score: float
    digest: str = ""
    status: str = ""
    """"graded" or "error" as the grading left it; "" when not graded by this grader."""
    files_written: bool = False
    flags: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Graded, with its files written: nothing left to do for this digest."""
        return self.status == "graded" and self.files_written


def flags_by_submission(session, submission_ids) -> dict[str, list[tuple[str, str]]]:
    """submission id -> its recorded flags ``(name, reason)``, in order."""
    ids = list(submission_ids)
    out: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = session.execute(select(FLAG.c.submission_id, FLAG.c.name, FLAG.c.reason)
                           .where(FLAG.c.submission_id.in_(ids))
                           .order_by(FLAG.c.submission_id, FLAG.c.position)).all()
    for sid, name, reason in rows:
        out[sid].append((name, reason))
    return out


def recorded_flags(gb: Gradebook, assignments=None) -> dict[tuple[str, str], list[str]]:
    """(assignment, student) -> sorted flag names of every recorded submission.

    Read through nbgrader's current submissions (never by row order); ``assignments``
    limits the assignments read (None: all).
    """
    ensure_tables(gb.engine)
    query = (select(SubmittedAssignment.id, Assignment.name, SubmittedAssignment.student_id)
             .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id))
    if assignments:
        query = query.where(Assignment.name.in_(list(assignments)))
    subs = gb.db.execute(query).all()
    flags = flags_by_submission(gb.db, [sid for sid, _, _ in subs])
    return {(name, student): sorted({f for f, _ in flags[sid]}) for sid, name, student in subs}


class CourseGradebook:
    """The course's gradebook (``db_url``), as the coordinator uses it."""

    def __init__(self, db_url: str, course_id: str, config: Config | None = None):
        self.db_url = db_url
        self.course_id = course_id
        self.config = config if config is not None else Config()
        self._tables = False
        self._writer: Gradebook | None = None
        self._written: list[str] = []  # files written, not yet marked: see files_written()

    def open(self) -> Gradebook:
        """A new connection (close it: ``with book.open() as gb``)."""
        return Gradebook(self.db_url, self.course_id)

    @contextlib.contextmanager
    def writer(self):
        """The run's one writing connection, opened on first use and kept until :meth:`close`.

        Kept, because SQLAlchemy caches each statement's compiled form per
        engine: a connection per result compiled every statement again (most
        of the 60 ms a result cost the coordinator).  Whatever fails inside
        is rolled back, so the next use starts clean.
        """
        if self._writer is None:
            self._writer = Gradebook(self.db_url, self.course_id)
        try:
            yield self._writer
        except BaseException:
            self._writer.db.rollback()
            raise

    @property
    def writing(self) -> bool:
        """Whether :meth:`writer`'s connection is open."""
        return self._writer is not None

    def files_written(self, submission_ids) -> None:
        """These submissions' files are written: their rows become complete with the next
        transaction of :meth:`writer` that calls :meth:`mark_written`, or at :meth:`close`.

        Deferred, to save a commit per result: until then a row says "files not
        written", so a run that dies in between grades those submissions again.
        """
        self._written.extend(submission_ids)

    def mark_written(self, session) -> list[str]:
        """Mark the pending rows complete in ``session``'s transaction; returns their ids
        (pass them to :meth:`marked` once that transaction is committed)."""
        ids = list(self._written)
        if ids:
            session.execute(update(GRADING).where(GRADING.c.submission_id.in_(ids))
                            .values(files_written=True))
        return ids

    def marked(self, ids) -> None:
        """The rows of ``ids`` are committed complete."""
        done = set(ids)
        self._written = [i for i in self._written if i not in done]

    def close(self) -> None:
        """Mark what is pending complete, then close :meth:`writer`'s connection."""
        if self._written:
            with self.writer() as gb:
                ids = self.mark_written(gb.db)
                gb.db.commit()
            self.marked(ids)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def ensure_tables(self, gb: Gradebook) -> None:
        """:func:`ensure_tables` on ``gb``'s engine, once per instance."""
        if not self._tables:
            ensure_tables(gb.engine)
            self._tables = True

    def structure(self, assignment: str) -> AssignmentStructure:
        """The assignment's notebooks, graded cells and due date; UsageError if unknown."""
        path = _sqlite_path(self.db_url)
        if path is not None and not path.is_file():
            raise UsageError(f"no gradebook at {path}: release the assignment first "
                             f"(python -m autograder release {assignment})")
        try:
            gb = self.open()
        except Exception as exc:
            raise UsageError(f"cannot open the gradebook {self.db_url}: "
                             f"{str(exc).splitlines()[0]}") from None
        with gb:
            try:
                a = gb.find_assignment(assignment)
            except MissingEntry:
                raise UsageError(
                    f"assignment {assignment!r} is not in the gradebook: release it first "
                    f"(python -m autograder release {assignment})") from None
            notebooks, cell_ids = {}, {}
            for nb in a.notebooks:
                answers = {c.name for c in nb.solution_cells}
                cells = {c.name: GradedCell(max_score=float(c.max_score),
                                            cell_type=c.cell_type, solution=c.name in answers)
                         for c in nb.grade_cells}
                for c in nb.task_cells:
                    cells[c.name] = GradedCell(max_score=float(c.max_score),
                                               cell_type=c.cell_type, task=True)
                notebooks[nb.name] = cells
                cell_ids[nb.name] = frozenset(c.name for c in nb.source_cells)
            result = AssignmentStructure(name=assignment, notebooks=notebooks,
                                         cell_ids=cell_ids, duedate=a.duedate)
        if not notebooks:
            raise UsageError(f"assignment {assignment!r} has no notebooks in the gradebook: "
                             f"release it first (python -m autograder release {assignment})")
        return result

    def recorded(self, assignment: str, students=None) -> dict[str, RecordedState]:
        """student -> what the gradebook holds for their submission of ``assignment``
        (only ``students``' when given)."""
        with self.open() as gb:
            self.ensure_tables(gb)
            if students is None:
                subs = gb.assignment_submissions(assignment)
            else:
                subs = (gb.db.query(SubmittedAssignment).join(Assignment)
                        .filter(Assignment.name == assignment,
                                SubmittedAssignment.student_id.in_(list(students))).all())
            ids = [sub.id for sub in subs]
            rows = {r.submission_id: r for r in gb.db.execute(
                select(GRADING).where(GRADING.c.submission_id.in_(ids))).all()} if ids else {}
            flags = flags_by_submission(gb.db, ids)
            out = {}
            for sub in subs:
                row = rows.get(sub.id)
                out[sub.student.id] = RecordedState(
                    score=total(sub.score, sub.late_submission_penalty),
                    max_score=float(sub.max_score),
                    digest=row.digest if row else "", status=row.status if row else "",
                    files_written=bool(row.files_written) if row else False,
                    flags=flags[sub.id])
            return out

    def extensions(self, assignment: str) -> dict[str, float]:
        """student -> extension seconds granted for ``assignment``."""
        with self.open() as gb:
            return {sub.student.id: sub.extension.total_seconds()
                    for sub in gb.assignment_submissions(assignment) if sub.extension}

    def snapshot(self, assignment: str) -> bytes:
        """A private SQLite gradebook holding only ``assignment``'s structure, as bytes.

        Notebooks (with kernelspecs), source cells (source, checksum, locked),
        grade, solution and task cells: what nbgrader's ``OverwriteKernelspec``
        and ``OverwriteCells`` (:class:`RestoreCells`) read in the worker.
        No student, no score.
        """
        with tempfile.TemporaryDirectory(prefix="rnn-snapshot-", dir=memory_dir()) as tmp:
            path = Path(tmp) / "structure.db"
            url = f"sqlite:///{path}"
            with self.open() as src:
                _create_tables(url, src)
            with self.open() as src, Gradebook(url, self.course_id) as dst:
                a = src.find_assignment(assignment)
                dst.add_assignment(assignment, duedate=a.duedate)
                for nb in a.notebooks:
                    dst.add_notebook(nb.name, assignment, kernelspec=nb.kernelspec)
                    for c in nb.source_cells:
                        dst.add_source_cell(c.name, nb.name, assignment, cell_type=c.cell_type,
                                            locked=c.locked, source=c.source,
                                            checksum=c.checksum)
                    for c in nb.grade_cells:
                        dst.add_grade_cell(c.name, nb.name, assignment, max_score=c.max_score,
                                           cell_type=c.cell_type)
                    for c in nb.solution_cells:
                        dst.add_solution_cell(c.name, nb.name, assignment)
                    for c in nb.task_cells:
                        dst.add_task_cell(c.name, nb.name, assignment, max_score=c.max_score,
                                          cell_type=c.cell_type)
            return path.read_bytes()


def _create_tables(url: str, src: Gradebook) -> None:
    """nbgrader's tables and the source's alembic version in a new database at ``url``.

    ``Gradebook`` on an empty database asks the ``alembic`` command for the
    schema version (a subprocess, and ``alembic`` must be on PATH); with the
    tables already there it does not.
    """
    version = src.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine = create_engine(url)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                         {"v": version})
    finally:
        engine.dispose()


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases or in-memory SQLite)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        return None
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)
