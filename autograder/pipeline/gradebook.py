"""The coordinator's side of grading: the only writer of the course's gradebook.

Workers never open the course gradebook.  The coordinator

* reads the assignment's structure and snapshots it into a small private
  SQLite gradebook for the workers (:meth:`CourseGradebook.snapshot`);
* records each result as it arrives (:meth:`CourseGradebook.record`) exactly
  as ``nbgrader autograde`` does: student and submission (with its
  timestamp), then nbgrader's own ``SaveAutoGrades`` and
  ``AssignLatePenalties`` run on the returned notebook against the course's
  ``db_url`` (SQLite, PostgreSQL... whatever nbgrader supports), missing
  notebooks get 0 for every cell, and ``autograded/<student>/<assignment>/``
  gets the notebooks and ``timestamp.txt``.  Each submission is committed on
  its own, so an interrupted run keeps everything recorded before it stopped.

Flags are stored in a JSON sidecar per submission,
``autograded/<student>/<assignment>/rnn_course_flags.json`` (nbgrader's
tables only have a ``flagged`` boolean).  It is written last, atomically, and
doubles as the "fully recorded" marker: a submission is skipped by a later
run only if its sidecar says ``"status": "graded"`` for the same submission
digest (names and bytes of every submitted file, ``timestamp.txt`` included)
and the gradebook has its submission.  Anything less is graded again; every
write is an update-or-create, so regrading never duplicates a row.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbgrader.api import Base, Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from nbgrader.utils import parse_utc
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from autograder.errors import UsageError
from autograder.pipeline.feedback import write_feedback

SIDECAR = "rnn_course_flags.json"
SIDECAR_VERSION = 1


@dataclass
class Recorded:
    """What the gradebook says about one submission after recording it."""

    score: float
    max_score: float
    flags: list[tuple[str, str]] = field(default_factory=list)


def memory_dir() -> str | None:
    """A RAM-backed folder for private gradebooks (None: the default temporary folder).

    nbgrader commits after every cell; on a disk each commit waits for an
    fsync, on a tmpfs it costs nothing.  ``tempfile`` makes the folders
    inside it private (0700); the sandbox never shows ``/dev/shm``.
    """
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return None


def read_sidecar(folder: Path) -> dict | None:
    """The sidecar of ``autograded/<student>/<assignment>/``, or None if absent or unreadable."""
    try:
        data = json.loads((Path(folder) / SIDECAR).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class CourseGradebook:
    """The course's gradebook (``db_url``), as the coordinator uses it."""

    def __init__(self, db_url: str, course_id: str, config: Config | None = None):
        self.db_url = db_url
        self.course_id = course_id
        self.config = config if config is not None else Config()

    def open(self) -> Gradebook:
        return Gradebook(self.db_url, self.course_id)

    # ------------------------------------------------------------------ #
    # reading
    # ------------------------------------------------------------------ #
    def structure(self, assignment: str) -> dict[str, set[str]]:
        """Notebook name -> ids of its instructor cells; UsageError if the assignment is unknown."""
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
            result = {nb.name: {c.name for c in nb.source_cells} for nb in a.notebooks}
        if not result:
            raise UsageError(f"assignment {assignment!r} has no notebooks in the gradebook: "
                             f"release it first (python -m autograder release {assignment})")
        return result

    def recorded_submissions(self, assignment: str) -> dict[str, datetime | None]:
        """student -> timestamp of every submission of ``assignment`` in the gradebook."""
        with self.open() as gb:
            return {sub.student.id: sub.timestamp for sub in gb.assignment_submissions(assignment)}

    def extensions(self, assignment: str) -> dict[str, float]:
        """student -> extension seconds granted for ``assignment``."""
        with self.open() as gb:
            return {sub.student.id: sub.extension.total_seconds()
                    for sub in gb.assignment_submissions(assignment) if sub.extension}

    def current_score(self, assignment: str, student: str) -> tuple[float, float]:
        """(score after late penalty, max score) of a recorded submission."""
        with self.open() as gb:
            sub = gb.find_submission(assignment, student)
            return (float(sub.score - (sub.late_submission_penalty or 0.0)),
                    float(sub.max_score))

    def snapshot(self, assignment: str) -> bytes:
        """A private SQLite gradebook holding only ``assignment``'s structure, as bytes.

        Notebooks (with kernelspecs), source cells (source, checksum, locked),
        grade, solution and task cells, and the due date: what nbgrader's
        ``OverwriteKernelspec``, ``OverwriteCells``, ``SaveAutoGrades`` and
        ``AssignLatePenalties`` read.  No student, no score.
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

    # ------------------------------------------------------------------ #
    # writing
    # ------------------------------------------------------------------ #
    def record(self, result, submission, autograded: Path, feedback: Path,
               source_files: dict[str, bytes] | None = None) -> Recorded:
        """Record one worker result (see the module docstring); returns the recorded score.

        ``result`` is a :class:`~autograder.pipeline.worker.GradeResult`, ``submission``
        the precheck's :class:`~autograder.pipeline.precheck.Submission`.
        """
        with warnings.catch_warnings():
            # nbgrader's gradebook API trips SQLAlchemy's autoflush warnings: noise
            warnings.simplefilter("ignore", SAWarning)
            return self._record(result, submission, autograded, feedback, source_files)

    def _record(self, result, submission, autograded, feedback, source_files) -> Recorded:
        autograded = Path(autograded)
        # 1. the marker goes first, then the old outputs (a crash from here on regrades)
        (autograded / SIDECAR).unlink(missing_ok=True)
        if autograded.exists():
            shutil.rmtree(autograded)
        autograded.mkdir(parents=True)
        flags = list(result.flags)

        # 2. files as nbgrader's autograde leaves them
        if result.status == "graded":
            for files in (submission.files, source_files or {}):
                for rel, data in files.items():
                    target = autograded.joinpath(*rel.split("/"))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
            for name, nb_json in result.notebooks.items():
                (autograded / f"{name}.ipynb").write_text(nb_json, encoding="utf-8")
        if submission.timestamp:
            (autograded / "timestamp.txt").write_text(submission.timestamp)

        # 3. the gradebook
        timestamp = _parse_timestamp(submission.timestamp)
        with self.open() as gb:
            gb.update_or_create_student(result.student)
            kwargs = {"timestamp": submission.timestamp} if timestamp is not None else {}
            gb.update_or_create_submission(result.assignment, result.student, **kwargs)
        if result.status == "graded":
            self._save_grades(result)
        else:
            self._mark_for_review(result)
        score, max_score = self.current_score(result.assignment, result.student)

        # 4. feedback, then 5. the sidecar (the "recorded" marker)
        if feedback.exists():
            shutil.rmtree(feedback)
        if result.feedback:
            write_feedback(feedback, result.feedback)
            # as nbgrader's generate_feedback: the autograded folder's other files
            # too; release_feedback reads timestamp.txt and submission_secret.txt
            for path in sorted(autograded.rglob("*")):
                if path.is_file() and path.suffix != ".ipynb" and path.name != SIDECAR:
                    target = feedback / path.relative_to(autograded)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
        sidecar = {
            "version": SIDECAR_VERSION,
            "student": result.student,
            "assignment": result.assignment,
            "status": result.status,
            "digest": submission.digest,
            "timestamp": submission.timestamp,
            "flags": sorted({f for f, _ in flags}),
            "reasons": [{"flag": f, "reason": r} for f, r in flags],
            "score": score,
            "max_score": max_score,
            "checks": result.checks,
            "timings": {k: round(v, 4) for k, v in result.timings.items()},
            "worker": result.worker,
            "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _write_atomic(autograded / SIDECAR, json.dumps(sidecar, indent=1, sort_keys=True))
        return Recorded(score=score, max_score=max_score, flags=flags)

    def _save_grades(self, result) -> None:
        """nbgrader's SaveAutoGrades and AssignLatePenalties on each returned notebook."""
        with self.open() as gb:
            expected = [nb.name for nb in gb.find_assignment(result.assignment).notebooks]
        for name in expected:
            nb_json = result.notebooks.get(name)
            if nb_json is None:
                continue
            nb = nbformat.reads(nb_json, as_version=4)
            resources = {"nbgrader": {"student": result.student,
                                      "assignment": result.assignment, "notebook": name,
                                      "db_url": self.db_url}}
            for pp in (SaveAutoGrades, AssignLatePenalties):
                nb, resources = pp(config=self.config).preprocess(nb, resources)
        missing = [name for name in expected if name not in result.notebooks]
        if missing:  # as nbgrader's autograde: a notebook not submitted scores 0
            with self.open() as gb:
                for name in missing:
                    snb = gb.find_submission_notebook(name, result.assignment, result.student)
                    for grade in snb.grades:
                        grade.auto_score = 0
                        grade.needs_manual_grade = False
                gb.db.commit()

    def _mark_for_review(self, result) -> None:
        """A grader error: the submission exists, its ungraded cells need a person."""
        with self.open() as gb:
            sub = gb.find_submission(result.assignment, result.student)
            for snb in sub.notebooks:
                for grade in snb.grades:
                    if grade.auto_score is None and grade.manual_score is None:
                        grade.needs_manual_grade = True
            gb.db.commit()


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


def _parse_timestamp(text: str | None):
    if not text:
        return None
    try:
        return parse_utc(text)
    except Exception:  # nbgrader's autograde would stop here; we grade without a time
        return None
