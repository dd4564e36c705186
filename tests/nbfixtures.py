"""Notebook and course builders shared by the grading-pipeline tests.

Small cell-builder helpers in the style of nbgrader's own test suite
(``nbgrader/tests/__init__.py``), plus:

* :func:`make_course`: a temporary course directory (this repository's
  ``nbgrader_config.py`` plus one source notebook), released with
  ``nbgrader generate_assignment`` so that its gradebook holds the assignment
  (the gradebook made first by :func:`new_gradebook`, which spares nbgrader's
  ``alembic`` subprocess);
* :func:`submit`: a student's submission folder (notebook, timestamp, files);
* :func:`student_notebook`: the release notebook with the stubs filled in;
* :func:`install_fixture_checks`: the test-only checks of the fixture's three
  graded cells (two visible, one hidden), added to the checks module of the
  fixture's assignment in this process (the registry reads
  ``rnn_course.checks.<assignment>`` for each assignment of the course), and
  :func:`dask_setup` doing the same on a dask worker (use this file as a
  worker ``preload``).

The fixture assignment is called ``rnn_cell`` (an assignment the course
config knows) but holds a tiny notebook that runs in well under a second.
Its kernel cannot import the test-only checks, so its graded cells use the
channel (``rnn_course.grading``) directly: they read the hidden inputs and
submit plain arrays, which the grader judges with the registered checks.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import numpy as np
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "rnn_cell"
SCHEMA_VERSION = 3
HIDDEN_ID = "fixture_add_hidden"
VISIBLE_ID = "fixture_add_visible"
PLAIN_ID = "add_plain"


# --------------------------------------------------------------------------- #
# cell builders
# --------------------------------------------------------------------------- #
def _meta(grade_id, *, grade=False, solution=False, locked=False, points=0.0, task=False):
    return {
        "grade": grade, "grade_id": grade_id, "locked": locked, "points": float(points),
        "schema_version": SCHEMA_VERSION, "solution": solution, "task": task,
    }


def markdown(source: str):
    """A plain markdown cell."""
    return new_markdown_cell(source)


def code(source: str):
    """A plain code cell."""
    return new_code_cell(source)


def locked_cell(source: str, grade_id: str):
    """A read-only provided code cell."""
    cell = new_code_cell(source)
    cell.metadata.nbgrader = _meta(grade_id, locked=True)
    return cell


def solution_cell(source: str, grade_id: str):
    """An autograded answer cell (code with ``### BEGIN/END SOLUTION``)."""
    cell = new_code_cell(source)
    cell.metadata.nbgrader = _meta(grade_id, solution=True)
    return cell


def grade_cell(source: str, grade_id: str, points: float):
    """An autograder test cell worth ``points``."""
    cell = new_code_cell(source)
    cell.metadata.nbgrader = _meta(grade_id, grade=True, locked=True, points=points)
    return cell


def notebook(cells) -> nbformat.NotebookNode:
    """A v4 notebook with the course's python3 kernelspec."""
    nb = new_notebook(cells=list(cells))
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# --------------------------------------------------------------------------- #
# the fixture assignment
# --------------------------------------------------------------------------- #
ADD_SOLUTION = "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"
HIDDEN_SOURCE = (
    '"""add is right on inputs the grader draws."""\n'
    "assert add(2, 2) == 4\n"
    "### BEGIN HIDDEN TESTS\n"
    f'_in = grading.inputs("{HIDDEN_ID}")\n'
    f'grading.submit("{HIDDEN_ID}", s=add(_in["a"], _in["b"]))\n'
    "### END HIDDEN TESTS"
)
VISIBLE_SOURCE = (
    '"""add works on arrays."""\n'
    f'grading.submit("{VISIBLE_ID}", s=add(np.arange(3.0), np.ones(3)))'
)
PLAIN_SOURCE = f'"""add adds."""\ngrading.submit("{PLAIN_ID}", s=add(1, 2))'


def fixture_source(extra_cells=()) -> nbformat.NotebookNode:
    """The instructor notebook of the fixture assignment (4 points).

    Every graded cell is a check judged by the grader (a graded cell without
    one fails): ``add_plain`` (1 point) and the visible check (1 point) on
    fixed numbers, the hidden check (2 points) on inputs drawn per submission.
    """
    return notebook([
        markdown("# Fixture assignment\nImplement `add`."),
        locked_cell("import numpy as np\nfrom rnn_course import grading", "setup"),
        solution_cell(ADD_SOLUTION, "add_impl"),
        grade_cell(PLAIN_SOURCE, PLAIN_ID, 1),
        grade_cell(VISIBLE_SOURCE, VISIBLE_ID, 1),
        grade_cell(HIDDEN_SOURCE, HIDDEN_ID, 2),
        *extra_cells,
    ])


def make_course(root: Path, source_nb=None, *, assignment: str = ASSIGNMENT,
                config_extra: str = "c.Execute.timeout = 10\n") -> Path:
    """A released course directory at ``root`` with one assignment.

    Copies this repository's ``nbgrader_config.py`` (plus ``config_extra``),
    writes ``source/<assignment>/<assignment>.ipynb`` and runs
    ``nbgrader generate_assignment`` so that the gradebook knows the
    assignment's cells.
    """
    from autograder.commands.release import nbgrader_env

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = (REPO / "nbgrader_config.py").read_text() + "\n" + config_extra
    (root / "nbgrader_config.py").write_text(config)
    src = root / "source" / assignment
    src.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_nb if source_nb is not None else fixture_source(),
                   src / f"{assignment}.ipynb")
    env = nbgrader_env()
    # a course directory of its own: environment overrides of the real course must not leak in
    for var in ("RNN_COURSE_ROOT", "RNN_COURSE_DB_URL"):
        env.pop(var, None)
    env["RNN_COURSE_SECRET"] = "test-secret"
    if not (root / "gradebook.db").exists():
        new_gradebook(f"sqlite:///{root / 'gradebook.db'}")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
         "--log-level=ERROR"],
        cwd=root, env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"generate_assignment failed:\n{proc.stdout}\n{proc.stderr}")
    return root


@contextlib.contextmanager
def without_course_env():
    """This process's RNN_COURSE_* settings out of the way (a test course of its own)."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
            mp.delenv(var)
        yield mp


def alembic_head() -> str:
    """The schema revision nbgrader stamps a new gradebook with (``alembic heads`` on its
    migrations), read in this process."""
    import nbgrader
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()


def new_gradebook(url: str) -> None:
    """What ``nbgrader.api.Gradebook`` makes of an empty database, made by it, with the
    alembic revision read in this process instead of by the ``alembic heads`` subprocess
    it runs for it (seconds of CPU; ``test_nbfixtures`` checks both give the same)."""
    from unittest import mock

    from nbgrader import api

    with mock.patch.object(api, "get_alembic_version", alembic_head):
        api.Gradebook(url).close()


def release_notebook(course: Path, assignment: str = ASSIGNMENT) -> nbformat.NotebookNode:
    return nbformat.read(Path(course) / "release" / assignment / f"{assignment}.ipynb",
                         as_version=4)


def student_notebook(course: Path, answers: dict[str, str] | None = None,
                     assignment: str = ASSIGNMENT) -> nbformat.NotebookNode:
    """The release notebook with solution cells replaced by ``answers`` (grade_id -> source).

    By default ``add_impl`` gets the correct solution.
    """
    answers = {"add_impl": "def add(a, b):\n    return a + b"} if answers is None else answers
    nb = release_notebook(course, assignment)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def submit(course: Path, student: str, nb=None, *, assignment: str = ASSIGNMENT,
           name: str | None = None, raw: bytes | None = None,
           timestamp: str | None = "2026-01-10 12:00:00.000000 UTC",
           files: dict[str, bytes] | None = None) -> Path:
    """Write ``submitted/<student>/<assignment>/``: a notebook (or ``raw`` bytes), files."""
    folder = Path(course) / "submitted" / student / assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    target = folder / (name or f"{assignment}.ipynb")
    if raw is not None:
        target.write_bytes(raw)
    elif nb is not None:
        nbformat.write(nb, target)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(timestamp)
    for rel, data in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def gradebook_scores(course: Path, assignment: str = ASSIGNMENT) -> dict:
    """student -> {"score", "penalty", "cells": {grade_id: auto_score}} from the gradebook."""
    from nbgrader.api import Gradebook

    from autograder.course import Course

    c = Course(course)
    out = {}
    with Gradebook(c.db_url, c.course_id) as gb:
        for sub in gb.assignment_submissions(assignment):
            cells = {}
            for nb in sub.notebooks:
                for grade in nb.grades:
                    cells[grade.cell.name] = grade.auto_score
            out[sub.student.id] = {"score": sub.score, "penalty": sub.late_submission_penalty,
                                   "cells": cells}
    return out


def query(course: Path, sql: str, **params) -> list[tuple]:
    """Rows of ``sql`` on the course's gradebook database (its ``db_url``: SQLite or PostgreSQL).

    A table that does not exist yet reads as no rows.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from autograder.course import Course

    url = Course(course).db_url
    engine = create_engine(url, connect_args={"timeout": 10} if url.startswith("sqlite") else {})
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params).all()]
    except (OperationalError, ProgrammingError) as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            return []
        raise
    finally:
        engine.dispose()


def flags_of(course: Path, student: str, assignment: str = ASSIGNMENT) -> list[str]:
    """The flags recorded for a submission (from the gradebook's database)."""
    from nbgrader.api import Gradebook

    from autograder.course import Course
    from autograder.pipeline.coordinator.gradebook import recorded_flags

    c = Course(course)
    with Gradebook(c.db_url, c.course_id) as gb:
        return recorded_flags(gb, [assignment])[(assignment, student)]


# --------------------------------------------------------------------------- #
# test-only checks
# --------------------------------------------------------------------------- #
_INSTALLED = "_nbfixtures_checks"  # the attribute that marks an installation


def _fixture_module():
    """The fixture's checks, as the attributes ``plain``, ``visible`` and ``hidden``."""
    from rnn_course.checks import Check

    def equals(expected, what):
        def verdict(inputs, outputs):
            s = np.asarray(outputs["s"])
            if s.shape != np.shape(expected) or not np.allclose(s, expected):
                return f"{what} is wrong"
            return None
        return verdict

    mod = types.ModuleType("rnn_course_fixture_checks")
    mod.plain = Check(id=PLAIN_ID, make_inputs=lambda rng: {}, run=lambda inputs, add: {},
                      verdict=equals(3.0, "add(1, 2)"), doc="add adds")
    mod.visible = Check(id=VISIBLE_ID, make_inputs=lambda rng: {},
                        run=lambda inputs, add: {},
                        verdict=equals(np.arange(3.0) + 1, "add(np.arange(3.0), np.ones(3))"))
    mod.hidden = Check(
        id=HIDDEN_ID,
        make_inputs=lambda rng: {"a": rng.normal(size=4), "b": rng.normal(size=4)},
        run=lambda inputs, add: {"s": add(inputs["a"], inputs["b"])},
        outputs=("s",), hidden=True,
        expected=lambda inputs: {"s": inputs["a"] + inputs["b"]},  # the reference has no add
        doc="add on hidden inputs",
    )
    return mod


def _assignment_module():
    from rnn_course import checks

    return importlib.import_module(checks.module_name(ASSIGNMENT))


def install_fixture_checks() -> None:
    """Add the fixture's checks to the checks module of its assignment, in this process.

    Worker processes forked after this call inherit them; dask workers get
    them through :func:`dask_setup` (``preload`` this file).
    """
    module = _assignment_module()
    if getattr(module, _INSTALLED, None):
        return
    fixture = _fixture_module()
    for name in ("plain", "visible", "hidden"):
        setattr(module, f"{_INSTALLED}_{name}", getattr(fixture, name))
    setattr(module, _INSTALLED, True)


def uninstall_fixture_checks() -> None:
    """Undo :func:`install_fixture_checks` (other tests see the course's checks only)."""
    module = _assignment_module()
    for name in [n for n in vars(module) if n.startswith(_INSTALLED)]:
        delattr(module, name)


def set_duedate(course: Path, duedate: str, assignment: str = ASSIGNMENT) -> None:
    """Give ``assignment`` a due date in the course's gradebook (as ``nbgrader db`` would)."""
    from nbgrader.api import Gradebook

    from autograder.course import Course

    c = Course(course)
    with Gradebook(c.db_url, c.course_id) as gb:
        gb.update_or_create_assignment(assignment, duedate=duedate)


def dask_setup(worker=None) -> None:
    """dask ``preload`` hook: register the fixture checks on a worker."""
    install_fixture_checks()


def job_for(course: Path, student: str, *, unsafe: bool = True, assignment: str = ASSIGNMENT):
    """``(job, submission)`` for ``submitted/<student>/<assignment>/``, as the coordinator builds
    them: the folder read (the worker prechecks it),
    then :class:`~autograder.pipeline.coordinator.jobs.JobMaker`
    (unsandboxed by default).
    """
    from nbgrader.coursedir import CourseDirectory

    from autograder.course import Course
    from autograder.pipeline.coordinator.gradebook import CourseGradebook
    from autograder.pipeline.coordinator.jobs import JobMaker
    from autograder.pipeline.worker.precheck import Precheck

    c = Course(course)
    coursedir = CourseDirectory(config=c.config)
    coursedir.root = str(c.root)
    book = CourseGradebook(c.db_url, c.course_id, c.config)
    structure = book.structure(assignment)
    sub = Precheck().gather(c.submitted_dir(student, assignment), student, assignment,
                            structure.cell_ids)
    return JobMaker(c, coursedir, book, assignment, unsafe, structure).job(sub), sub


def dead_pid() -> int:
    """The pid of a process that has just ended (for folders "left by a dead worker")."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)
