"""Grade one submission, in isolation: the worker side of the grading pipeline.

:func:`grade_submission` takes a self-contained :class:`GradeJob` and returns
a plain, picklable :class:`GradeResult`; it runs in a process of a local
``ProcessPoolExecutor`` or on any ``dask.distributed`` worker, and never
touches the course's gradebook.  What the coordinator trusts is in the job:

* ``structure_db``: a small private SQLite gradebook holding only this
  assignment's structure (notebooks, cells, checksums, points, due date),
  made by the coordinator from the real gradebook.  The worker adds the
  student and the submission to its private copy and runs nbgrader's own
  preprocessors against it;
* ``seed_secret``: per-submission seed material derived from the course's
  secret (the secret itself never leaves the coordinator).

Steps for each notebook (timed per stage in ``GradeResult.timings``):

1. sanitize (nbgrader's ``ClearOutput``, ``DeduplicateIds``,
   ``OverwriteKernelspec``, ``OverwriteCells`` as :class:`RestoreCells`
   with ``add_missing_cells``, ``CheckCellMetadata``);
2. ``prepare_grading_dir``, then execute in the sandbox (``sandbox_start``
   and ``execute``);
3. ``VerifyChecks`` (``verify``), in this process;
4. nbgrader's ``IgnorePattern``, ``ClearMetadataPreprocessor``,
   ``LimitOutput``, ``SaveAutoGrades``, ``AssignLatePenalties`` and
   ``CheckCellMetadata`` on the private gradebook (``score``): the scores
   are nbgrader's (``determine_grade``);
5. feedback HTML (``feedback``).

Nothing a submission does makes this function raise: problems become flags,
and a failure of the grader itself comes back as ``status="error"`` with the
``grader_error`` flag.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import stat
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.v4 import new_output
from nbgrader.api import Gradebook
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    IgnorePattern,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from nbgrader.utils import is_grade
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from autograder.pipeline import feedback as feedback_mod
from autograder.pipeline.gradebook import memory_dir
from autograder.pipeline.preprocessors import RestoreCells, TimedExecute, TrackedLimitOutput
from autograder.pipeline.preprocessors.timed_execute import TimingMixin, last_kernel_start_seconds
from autograder.pipeline.verify import VerifyChecks, prepare_grading_dir
from rnn_course.grading import GRADING_DIR_ENV, RESULTS_DIR
from rnn_course.widgets import STATIC_ENV as STATIC_WIDGETS_ENV

GRADING_SUBDIR = ".grading"
# Flags after which cells may not have run: a graded cell left without output must fail.
STOPPING_FLAGS = {"timeout", "memory_limit", "process_limit", "cpu_limit", "kernel_died"}
STOPPED_ENAME = "GraderStoppedExecution"
STAGES = ("sanitize", "sandbox_start", "execute", "verify", "score", "feedback")


@dataclass
class GradeJob:
    """Everything needed to grade one submission, with no access to the course."""

    student: str
    assignment: str
    course_id: str
    notebooks: dict[str, str | None]
    """Expected notebook name -> prechecked notebook JSON (None: missing or unusable)."""
    files: dict[str, bytes]
    """The submission's other files (relative path -> bytes) for the scratch folder."""
    source_files: dict[str, bytes]
    """The instructor's non-notebook files of the assignment; they overwrite the student's."""
    structure_db: bytes
    """SQLite gradebook with this assignment's structure only."""
    seed_secret: bytes
    """Per-submission secret that seeds the hidden checks' inputs."""
    config: Config
    """The course's nbgrader configuration (preprocessor settings, timeouts, sandbox)."""
    flags: list[tuple[str, str]] = field(default_factory=list)
    """Flags from the precheck, carried into the result (and the feedback notes)."""
    timestamp: str | None = None
    extension_seconds: float | None = None
    sandbox: bool = True
    limits: object | None = None
    """``autograder.sandbox.Limits`` (None: its defaults)."""
    timeout: int | None = None
    """Seconds per cell (None: the limits' or the config's)."""


@dataclass
class GradeResult:
    """What a worker hands back: plain data only (it crosses process and host boundaries)."""

    student: str
    assignment: str
    status: str = "graded"
    """"graded", or "error" when the grader itself failed."""
    notebooks: dict[str, str] = field(default_factory=dict)
    """Notebook name -> autograded notebook JSON (what nbgrader writes to autograded/)."""
    feedback: dict[str, str] = field(default_factory=dict)
    """Notebook name -> feedback HTML."""
    scores: dict[str, dict[str, list]] = field(default_factory=dict)
    """Notebook name -> grade id -> [auto_score, max_score] (nbgrader's determine_grade)."""
    score: float = 0.0
    max_score: float = 0.0
    checks: dict[str, dict] = field(default_factory=dict)
    """grade id -> VerifyChecks verdict ({"kind", "passed", "message"})."""
    flags: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    """Traceback of a grader error (for the log, never for the student)."""
    worker: str = ""

    def flag(self, name: str, reason: str = "") -> None:
        reason = " ".join(str(reason).split())[:300]
        if (name, reason) not in self.flags:
            self.flags.append((name, reason))

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    @property
    def flag_names(self) -> list[str]:
        return sorted({name for name, _ in self.flags})


# --------------------------------------------------------------------------- #
def grade_submission(job: GradeJob) -> GradeResult:
    """Grade one submission (see the module docstring). Never raises."""
    result = GradeResult(student=job.student, assignment=job.assignment,
                         flags=list(job.flags), worker=f"{socket.gethostname()}:{os.getpid()}")
    started = time.monotonic()
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(
                prefix="rnn-grade-", ignore_cleanup_errors=True) as tmp, \
                tempfile.TemporaryDirectory(prefix="rnn-gradebook-", dir=memory_dir(),
                                            ignore_cleanup_errors=True) as db_dir:
            # nbgrader's gradebook API trips SQLAlchemy's autoflush warnings: noise
            warnings.simplefilter("ignore", SAWarning)
            _grade(job, result, Path(tmp), Path(db_dir))
    except Exception as exc:
        result.status = "error"
        result.error = traceback.format_exc()
        result.flag("grader_error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    if str(exc) else type(exc).__name__)
    result.timings["worker_total"] = time.monotonic() - started
    return result


def warm_up(config: Config | None = None) -> None:
    """Import and build what every job needs, once (call before forking workers)."""
    from autograder.course import assignments_in
    from autograder.pipeline import verify

    verify.warm_up(assignments_in(config if config is not None else Config()))
    feedback_mod.warm_up(config)


def _grade(job: GradeJob, result: GradeResult, tmp: Path, db_dir: Path) -> None:
    db_path = db_dir / "gradebook.db"
    db_path.write_bytes(job.structure_db)
    db_url = f"sqlite:///{db_path}"
    scratch = tmp / "scratch"
    _populate_scratch(scratch, job)

    with Gradebook(db_url, job.course_id) as gb:
        gb.update_or_create_student(job.student)
        kwargs = {"timestamp": job.timestamp} if job.timestamp else {}
        try:
            submission = gb.update_or_create_submission(job.assignment, job.student, **kwargs)
        except Exception:  # an unparsable timestamp: grade as if none was given
            submission = gb.update_or_create_submission(job.assignment, job.student)
        if job.extension_seconds:
            submission.extension = timedelta(seconds=job.extension_seconds)
            gb.db.commit()
        late = submission.total_seconds_late
        if late > 0:
            result.flag("late", f"submitted {_duration(late)} after the due date")
        expected = [nb.name for nb in gb.find_assignment(job.assignment).notebooks]

    cfg = job.config if job.config is not None else Config()
    for name in expected:
        nb_json = job.notebooks.get(name)
        if nb_json is None:
            continue
        _grade_notebook(job, result, name, nb_json, db_url, scratch, cfg)

    _collect_scores(job, result, db_url, expected)


def _populate_scratch(scratch: Path, job: GradeJob) -> None:
    """The student's files, then the instructor's (which win), under ``scratch``."""
    scratch.mkdir()
    for files in (job.files, job.source_files):
        for rel, data in files.items():
            target = scratch.joinpath(*rel.split("/"))
            if scratch not in target.resolve().parents:
                continue  # "..": the precheck never lets one through, but be sure
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.write_bytes(data)


def _grade_notebook(job, result, name, nb_json, db_url, scratch: Path, cfg) -> None:
    resources = {
        "nbgrader": {"student": job.student, "assignment": job.assignment, "notebook": name,
                     "db_url": db_url},
        "unique_key": name,
        "output_files_dir": f"{name}_files",
        "metadata": {"path": str(scratch)},
    }
    nb = nbformat.reads(nb_json, as_version=4)

    # 1. sanitize: nbgrader's own preprocessors against the private gradebook
    since = time.monotonic()
    try:
        for pp in (ClearOutput, DeduplicateIds, OverwriteKernelspec):
            nb, resources = pp(config=cfg).preprocess(nb, resources)
        nb, resources = RestoreCells(config=cfg).preprocess(nb, resources)
        nb, resources = CheckCellMetadata(config=cfg).preprocess(nb, resources)
    except Exception as exc:  # metadata nbgrader cannot work with: graded as unusable
        result.flag("invalid_notebook", f"{name}.ipynb: nbgrader could not sanitize it "
                                        f"({type(exc).__name__}: {str(exc)[:100]})")
        result.add_time("sanitize", time.monotonic() - since)
        return
    restored = resources.get("rnn_course", {}).get("restored_cells", [])
    if restored:
        shown = ", ".join(restored[:5]) + (f" and {len(restored) - 5} more"
                                           if len(restored) > 5 else "")
        result.flag("tampered_cells_restored", f"{name}.ipynb: {shown}")
    result.add_time("sanitize", time.monotonic() - since)

    # 2. hidden inputs, then the student's code in the sandbox
    grading_dir = scratch / GRADING_SUBDIR
    if grading_dir.exists():
        shutil.rmtree(grading_dir)
    prepare_grading_dir(nb, grading_dir, job.seed_secret, job.assignment, job.student)
    since = time.monotonic()
    nb, flags = run_notebook(nb, scratch, job, cfg)
    kernel = min(last_kernel_start_seconds(), time.monotonic() - since)
    result.add_time("sandbox_start", kernel)
    result.add_time("execute", time.monotonic() - since - kernel)
    for flag in flags:
        result.flag(flag, f"{name}.ipynb")
    if STOPPING_FLAGS & set(flags):
        _fail_unexecuted_grade_cells(nb, ", ".join(f for f in flags if f in STOPPING_FLAGS))

    # 3. verdicts, judged here
    since = time.monotonic()
    _secure_grading_dir(grading_dir)
    verifier = VerifyChecks(config=cfg, grading_dir=str(grading_dir))
    verifier.secret = job.seed_secret
    nb, resources = verifier.preprocess(nb, resources)
    result.checks.update(resources.get("rnn_course", {}).get("checks", {}))
    result.add_time("verify", time.monotonic() - since)

    # 4. nbgrader's autograde steps after Execute, scoring into the private gradebook
    since = time.monotonic()
    for pp in (IgnorePattern, ClearMetadataPreprocessor, TrackedLimitOutput):
        instance = pp(config=cfg)
        if getattr(instance, "enabled", True):
            nb, resources = instance.preprocess(nb, resources)
    if resources.get("rnn_course", {}).get("output_truncated"):
        result.flag("output_truncated", f"{name}.ipynb: output over nbgrader's LimitOutput")
    for pp in (SaveAutoGrades, AssignLatePenalties, CheckCellMetadata):
        nb, resources = pp(config=cfg).preprocess(nb, resources)
    result.notebooks[name] = nbformat.writes(nb)
    result.add_time("score", time.monotonic() - since)

    # 5. feedback (its notes list the flags known so far: precheck and this run)
    since = time.monotonic()
    result.feedback[name] = feedback_mod.render_feedback(nb, resources, result.flags, cfg)
    result.add_time("feedback", time.monotonic() - since)


# --------------------------------------------------------------------------- #
def run_notebook(nb, scratch: Path, job: GradeJob, cfg: Config):
    """Execute ``nb`` with ``scratch`` as its working folder: ``(nb, flags)``.

    The one place where student code runs.  In the sandbox by default
    (:func:`autograder.sandbox.execute_notebook`), else (``--unsafe-no-sandbox``)
    in a plain local kernel.  Never raises for the notebook's behaviour.
    """
    if job.sandbox:
        from autograder.sandbox import SANDBOX_HOME, SandboxExecute, execute_notebook

        env = {GRADING_DIR_ENV: f"{SANDBOX_HOME}/{GRADING_SUBDIR}", STATIC_WIDGETS_ENV: "1"}
        cls = type("TimedSandboxExecute", (TimingMixin, SandboxExecute), {})
        return execute_notebook(nb, str(scratch), job.limits, timeout=_timeout(job, cfg),
                                extra_env=env, preprocessor_class=cls, config=cfg)
    return _run_unsandboxed(nb, scratch, job, cfg)


def _timeout(job: GradeJob, cfg: Config) -> int | None:
    """Seconds per cell: the job's, else its limits' (None: the Execute config's)."""
    if job.timeout is not None:
        return job.timeout
    return getattr(job.limits, "cell_timeout", None)


def _run_unsandboxed(nb, scratch: Path, job: GradeJob, cfg: Config):
    env = {GRADING_DIR_ENV: str(scratch / GRADING_SUBDIR), STATIC_WIDGETS_ENV: "1"}
    # nothing in a scratch kernel is worth a graceful shutdown
    pp = TimedExecute(config=cfg, extra_env=env, shutdown_kernel="immediate")
    timeout = _timeout(job, cfg)
    if timeout is not None:
        pp.timeout = timeout
    flags = []
    try:
        pp.preprocess(nb, {"metadata": {"path": str(scratch)}})
    except Exception:  # DeadKernelError and friends: what ran keeps its outputs
        flags.append("kernel_died")
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError":
                if "timeout" not in flags:
                    flags.append("timeout")
    return nb, flags


def _fail_unexecuted_grade_cells(nb, reason: str) -> None:
    """A graded code cell that never ran must not count as passed (no error = full marks)."""
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_grade(cell) or not cell.source.strip():
            continue
        if cell.get("execution_count") is None and not any(
                out.get("output_type") == "error" for out in cell.get("outputs", [])):
            cell.outputs.append(new_output(
                "error", ename=STOPPED_ENAME, evalue=f"not run: the grader stopped the "
                f"notebook ({reason})", traceback=[f"{STOPPED_ENAME}: not run ({reason})"]))


def _secure_grading_dir(grading_dir: Path) -> None:
    """Leave only regular files in ``results/`` before the grader reads it.

    The kernel could replace ``.grading`` or ``results`` by a symlink (the
    grader would follow it on the host), or put a symlink or a fifo (which
    would block the reader forever) in ``results``.
    """
    for folder in (grading_dir, grading_dir / RESULTS_DIR):
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            folder.mkdir()
            continue
        if not stat.S_ISDIR(st.st_mode):  # a link would be followed on the grader's side
            folder.unlink()
            folder.mkdir()
    results = grading_dir / RESULTS_DIR
    try:
        st = os.lstat(results)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        results.unlink()
        results.mkdir()
        return
    for entry in os.listdir(results):
        path = results / entry
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        except OSError:
            pass


def _collect_scores(job: GradeJob, result: GradeResult, db_url: str, expected) -> None:
    """Per-cell scores from the private gradebook; missing notebooks score 0 (as nbgrader)."""
    with Gradebook(db_url, job.course_id) as gb:
        for name in expected:
            if name in result.notebooks:
                continue
            snb = gb.find_submission_notebook(name, job.assignment, job.student)
            for grade in snb.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()
        sub = gb.find_submission(job.assignment, job.student)
        for snb in sub.notebooks:
            result.scores[snb.name] = {
                grade.cell.name: [grade.auto_score, grade.max_score] for grade in snb.grades}
        penalty = sub.late_submission_penalty or 0.0
        result.score = float(sub.score - penalty)
        result.max_score = float(sub.max_score)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def copy_job(job: GradeJob, **changes) -> GradeJob:
    """A shallow copy of ``job`` with ``changes`` (e.g. for a retry)."""
    new = copy.copy(job)
    for key, value in changes.items():
        setattr(new, key, value)
    return new
