"""Grade one submission, in isolation: the worker side of the grading pipeline.

:func:`grade_submission` takes a self-contained :class:`GradeJob` and returns
a plain, picklable :class:`GradeResult`; it runs in a process of a local
``ProcessPoolExecutor`` or on any ``dask.distributed`` worker, and never
touches the course's gradebook.  What the coordinator trusts is in the job:

* ``structure``: the assignment's notebooks, graded cells, points and due
  date (:class:`~autograder.pipeline.scoring.AssignmentStructure`);
* ``structure_db``: a small private SQLite gradebook with the instructor's
  cells, for nbgrader's sanitize steps (``OverwriteKernelspec``,
  ``OverwriteCells``); nothing is scored into it;
* ``seed_secret``: per-submission seed material derived from the course's
  secret and the submission's digest (the secret itself never leaves the
  coordinator).

Steps for each notebook (timed per stage in ``GradeResult.timings``, names
from :data:`autograder.pipeline.types.WORKER_STAGES`):

1. ``sanitize``: nbgrader's ``ClearOutput``, ``DeduplicateIds``,
   ``OverwriteKernelspec``, ``OverwriteCells`` as :class:`RestoreCells` with
   ``add_missing_cells``, ``CheckCellMetadata``;
2. ``grading_plan`` (the inputs drawn for every graded cell's check), then
   execute in the sandbox (``sandbox_start`` and ``execute``) with
   :class:`~autograder.pipeline.worker.preprocessors.GradedCells`: each check's
   inputs exist only while its cell runs, its result is collected out of the
   kernel's reach right after, hidden test code stays out of the history;
3. ``verify``: ``VerifyChecks`` in this process, then nbgrader's
   ``IgnorePattern``, ``ClearMetadataPreprocessor``, ``LimitOutput`` and
   ``CheckCellMetadata``, then :class:`SanitizeOutputs` (every output and
   markdown cell made inert in a browser);

then, once for the submission:

4. ``score``: :func:`autograder.pipeline.scoring.score_submission` turns the
   verdicts into points (the only place that does);
5. ``feedback``: HTML of each notebook showing exactly those points.

The result is plain data: per notebook and grade cell the verdict and points,
totals, late penalty, flags, timings, and the rendered artifacts; the
coordinator records it (:mod:`autograder.pipeline.coordinator.record`).  Nothing a
submission does makes this function raise: problems become flags, and a
failure of the grader itself comes back as ``status="error"`` with the
``grader_error`` flag.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.v4 import new_output
from nbgrader.preprocessors import (
    ClearOutput,
    DeduplicateIds,
    IgnorePattern,
    OverwriteKernelspec,
)
from nbgrader.utils import is_grade
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from autograder.pipeline import flags as F
from autograder.pipeline.flags import KERNEL_DIED, TIMEOUT
from autograder.pipeline.scoring import (
    NO_RESPONSE,
    NotebookRun,
    Scores,
    auto_comments,
    parse_timestamp,
    score_submission,
)
from autograder.pipeline.types import GradeJob, GradeResult
from autograder.pipeline.worker import feedback as feedback_mod
from autograder.pipeline.worker import warm
from autograder.pipeline.worker.budget import StageOverrun, Usage, WorkerLimits, time_limit
from autograder.pipeline.worker.folders import memory_dir
from autograder.pipeline.worker.precheck import Precheck
from autograder.pipeline.worker.preprocessors import (
    CheckCellMetadata,
    RestoreCells,
    SanitizeOutputs,
    TimedExecute,
    TrackedLimitOutput,
    graded_cells_class,
)
from autograder.pipeline.worker.preprocessors.timed_execute import (
    TimingMixin,
    last_kernel_start_seconds,
)
from autograder.pipeline.worker.verify import (
    VerifyChecks,
    grading_plan,
    hidden_delimiter,
    prepare_grading_dir,
)
from autograder.sandbox import STOPPED_ENAME
from autograder.sandbox.client import ReadyKernelManager
from rnn_course.grading import GRADING_DIR_ENV
from rnn_course.widgets import STATIC_ENV as STATIC_WIDGETS_ENV

GRADING_SUBDIR = ".grading"
UNVERIFIED_ENAME = "NotVerified"
"""ename of the error shown in a graded cell that no check judged (it scores 0)."""


@dataclass
class _Graded:
    """One notebook between grading and rendering."""

    nb: nbformat.NotebookNode
    run: NotebookRun


# --------------------------------------------------------------------------- #
def grade_submission(job: GradeJob) -> GradeResult:
    """Grade one submission (see the module docstring). Never raises."""
    result = GradeResult(student=job.student, assignment=job.assignment,
                         flags=list(job.flags), worker=f"{socket.gethostname()}:{os.getpid()}")
    started = time.monotonic()
    usage = Usage().start()
    try:
        since = time.monotonic()
        job = finish_precheck(job)
        result.flags, result.files = list(job.flags), sorted(job.files)
        result.add_time("precheck", time.monotonic() - since)
        if F.GRADER_ERROR in F.flag_names(result.flags):  # the precheck itself failed
            result.status = "error"
            return _finished(result, started, usage)
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(
                prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", ignore_cleanup_errors=True) as tmp, \
                tempfile.TemporaryDirectory(prefix=f"{GRADEBOOK_PREFIX}{os.getpid()}-",
                                            dir=memory_dir(), ignore_cleanup_errors=True) as db_dir:
            # nbgrader's gradebook API trips SQLAlchemy's autoflush warnings: noise
            warnings.simplefilter("ignore", SAWarning)
            _grade(job, result, Path(tmp), Path(db_dir))
    except Exception as exc:
        result.status = "error"
        result.error = traceback.format_exc()
        result.notebooks, result.feedback, result.comments = {}, {}, {}
        result.scores = Scores()
        result.flag(F.GRADER_ERROR, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    if str(exc) else type(exc).__name__)
    return _finished(result, started, usage)


def _finished(result: GradeResult, started: float, usage: Usage) -> GradeResult:
    result.timings["worker_total"] = time.monotonic() - started
    result.usage = usage.stop()
    return result


def finish_precheck(job: GradeJob) -> GradeJob:
    """``job`` with its precheck finished (:meth:`Precheck.finish`), if it carries a gathered
    submission: the precheck's CPU part runs here rather than in the coordinator."""
    if job.submission is None:
        return job
    sub = dataclasses.replace(job.submission, notebooks={}, files={},
                              flags=list(job.submission.flags))
    Precheck(config=job.config if job.config is not None else Config()).finish(sub, job.expected)
    return copy_job(job, notebooks=sub.notebooks, files=sub.files, flags=list(sub.flags),
                    submission=None)


SCRATCH_PREFIX = "rnn-grade-"
"""A job's folders: ``<tmp>/rnn-grade-<worker pid>-*`` (the submission's copy, its kernel's
scratch) and ``<memory_dir>/rnn-gradebook-<worker pid>-*`` (its private gradebook)."""
GRADEBOOK_PREFIX = "rnn-gradebook-"
_STALE = re.compile(rf"(?:{SCRATCH_PREFIX}|{GRADEBOOK_PREFIX})(\d+)-")


def sweep_stale() -> list[str]:
    """Remove the folders of jobs whose worker died (killed outright, it could not),
    and those of the kernels it started ahead (:func:`warm.sweep_stale`).

    They hold a copy of a student's submission (mode 0700, but nothing else
    removes them); a folder whose worker is alive, or that another user owns,
    is left alone.  Returns the paths removed.
    """
    from autograder.sandbox.kernel import remove_stale_folders

    return warm.sweep_stale() + [
        path for base in dict.fromkeys((tempfile.gettempdir(), memory_dir()))
        if base for path in remove_stale_folders(base, _STALE)]


def warm_up(config: Config | None = None) -> None:
    """Import and build what every job needs, once (call before forking workers).

    Also removes what the workers of an earlier run left behind (:func:`sweep_stale`).
    """
    from autograder.course import assignments_in
    from autograder.pipeline.worker import verify
    from autograder.sandbox import compile_student_packages, prebuild_font_list

    sweep_stale()

    # the font list is built by a sandboxed interpreter: meanwhile, the rest warms up here
    fonts = threading.Thread(target=prebuild_font_list, args=(config,), daemon=True)
    fonts.start()
    verify.warm_up(assignments_in(config if config is not None else Config()))
    feedback_mod.warm_up(config)
    compile_student_packages(config)
    fonts.join()


def _grade(job: GradeJob, result: GradeResult, tmp: Path, db_dir: Path) -> None:
    db_path = db_dir / "gradebook.db"
    db_path.write_bytes(job.structure_db)
    db_url = f"sqlite:///{db_path}"
    cfg = job.config if job.config is not None else Config()
    limits = WorkerLimits(config=cfg)  # the worker's own stages (budget.py)
    started = None  # a kernel started for this job while the last one was graded
    if job.sandbox:
        key = _kernel_key(job, cfg)
        started = warm.take(key)
        if job.warm_next and warm.enabled(cfg):
            warm.prestart(key, lambda folder: _start_kernel(job, cfg, folder))
    graded: dict[str, _Graded] = {}
    try:
        scratch = started.scratch if started is not None else tmp / "scratch"
        _populate_scratch(scratch, job)
        kernel = started.km if started is not None else None  # for the first notebook run
        for name in job.structure.notebooks:
            nb_json = job.notebooks.get(name)
            if nb_json is None:
                continue
            done = _grade_notebook(job, result, name, nb_json, db_url, scratch, cfg, limits,
                                   kernel)
            if done is not None:
                graded[name] = done
                kernel = None  # it ran that notebook and is shut down
    finally:
        if started is not None:  # its folder goes; the kernel too, if no notebook ran
            started.discard()

    # 4. the points, once, from the verdicts
    since = time.monotonic()
    scores = score_submission(job.structure, {name: g.run for name, g in graded.items()},
                              student=job.student, timestamp=parse_timestamp(job.timestamp),
                              extension_seconds=job.extension_seconds, config=cfg)
    result.scores = scores
    if scores.seconds_late > 0:
        result.flag(F.LATE, f"submitted {_duration(scores.seconds_late)} after the due date")
    for name, g in graded.items():
        show_scores(g.nb, scores.cells[name], g.run.not_run)
        result.notebooks[name] = nbformat.writes(g.nb)
    result.add_time("score", time.monotonic() - since)

    # 5. feedback: these very numbers, and every flag of the submission
    since = time.monotonic()
    for name, g in graded.items():
        resources = feedback_mod.feedback_resources(
            job.student, job.assignment, name, scores, result.comments.get(name, {}))
        try:
            with time_limit("feedback", limits.feedback_seconds):
                result.feedback[name] = feedback_mod.render_feedback(
                    g.nb, resources, result.flags, cfg)
        except StageOverrun as over:
            result.flag(F.GRADER_LIMIT, f"{name}.ipynb: {over}")
            result.feedback[name] = feedback_mod.short_feedback(resources, result.flags)
    result.add_time("feedback", time.monotonic() - since)


def _populate_scratch(scratch: Path, job: GradeJob) -> None:
    """The student's files, then the instructor's (which win), under ``scratch``."""
    scratch.mkdir(exist_ok=True)  # a kernel started ahead waits on it, empty
    for files in (job.files, job.source_files):
        for rel, data in files.items():
            target = scratch.joinpath(*rel.split("/"))
            if scratch not in target.resolve().parents:
                continue  # "..": the precheck never lets one through, but be sure
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.write_bytes(data)


def _grade_notebook(job, result, name, nb_json, db_url, scratch: Path, cfg,
                    limits: WorkerLimits, kernel=None) -> _Graded | None:
    """Steps 1 to 3 for one notebook; None when nbgrader cannot sanitize it (graded as missing).

    ``kernel``: one started ahead on ``scratch`` (:mod:`~autograder.pipeline.worker.warm`), used
    to run the notebook (and so shut down) unless this returns None.
    """
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
        with time_limit("sanitize", limits.sanitize_seconds):
            for pp in (ClearOutput, DeduplicateIds, OverwriteKernelspec):
                nb, resources = pp(config=cfg).preprocess(nb, resources)
            nb, resources = RestoreCells(config=cfg).preprocess(nb, resources)
            nb, resources = CheckCellMetadata(config=cfg).preprocess(nb, resources)
    except StageOverrun as over:  # graded as unusable, like a notebook nbgrader rejects
        result.flag(F.GRADER_LIMIT, f"{name}.ipynb: {over}")
        result.add_time("sanitize", time.monotonic() - since)
        return None
    except Exception as exc:  # metadata nbgrader cannot work with: graded as unusable
        result.flag(F.INVALID_NOTEBOOK, f"{name}.ipynb: nbgrader could not sanitize it "
                                        f"({type(exc).__name__}: {str(exc)[:100]})")
        result.add_time("sanitize", time.monotonic() - since)
        return None
    restored = resources.get("rnn_course", {}).get("restored_cells", [])
    if restored:
        shown = ", ".join(restored[:5]) + (f" and {len(restored) - 5} more"
                                           if len(restored) > 5 else "")
        result.flag(F.TAMPERED_CELLS_RESTORED, f"{name}.ipynb: {shown}")
    result.add_time("sanitize", time.monotonic() - since)

    # 2. the student's code in the sandbox; each graded cell gets its inputs as it runs
    grading_dir = scratch / GRADING_SUBDIR
    if grading_dir.is_symlink() or grading_dir.is_file():
        grading_dir.unlink()
    elif grading_dir.exists():
        shutil.rmtree(grading_dir)
    prepare_grading_dir(grading_dir)
    collected = Path(tempfile.mkdtemp(prefix="results-", dir=scratch.parent))
    verifier = VerifyChecks(config=cfg, grading_dir=str(collected))
    verifier.secret = job.seed_secret
    graded_cells = dict(
        plan=grading_plan(nb, job.seed_secret, job.assignment, job.student, cfg),
        shared_dir=grading_dir, collect_dir=collected, hidden_marker=hidden_delimiter(cfg),
        max_result_bytes=verifier.max_result_bytes)
    since = time.monotonic()
    nb, flags = run_notebook(nb, scratch, job, cfg, graded_cells, kernel)
    start_seconds = min(last_kernel_start_seconds(), time.monotonic() - since)
    result.add_time("sandbox_start", start_seconds)
    result.add_time("execute", time.monotonic() - since - start_seconds)
    for flag in flags:
        result.flag(flag, f"{name}.ipynb")
    stopping = [f for f in flags if f in F.STOPPING]
    not_run = never_ran(nb, ", ".join(stopping)) if stopping else {}

    # 3. verdicts, judged here, then nbgrader's steps after Execute
    since = time.monotonic()
    try:
        with time_limit("verify", limits.verify_seconds):
            nb, resources, verdicts = _verify(nb, resources, verifier, cfg)
    except StageOverrun as over:
        # nothing judged: every graded cell scores 0; no output of the student's is kept,
        # since the sanitizer may not have run
        result.flag(F.GRADER_LIMIT, f"{name}.ipynb: {over}")
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        nb, resources = SanitizeOutputs(config=cfg).preprocess(nb, resources)  # markdown
        verdicts = {}
        not_run = {gid: F.GRADER_LIMIT for gid in job.structure.notebooks.get(name, {})}
    if resources.get("rnn_course", {}).get("output_truncated"):
        result.flag(F.OUTPUT_TRUNCATED, f"{name}.ipynb: output over nbgrader's LimitOutput")
    comments = auto_comments(nb)
    result.comments[name] = comments
    result.add_time("verify", time.monotonic() - since)
    return _Graded(nb=nb, run=NotebookRun(
        verdicts=verdicts, not_run=not_run,
        unanswered=frozenset(gid for gid, c in comments.items() if c == NO_RESPONSE)))


def _verify(nb, resources, verifier, cfg):
    """Step 3: the verdicts, judged here; nbgrader's steps after Execute; the sanitizer."""
    nb, resources = verifier.preprocess(nb, resources)
    verdicts = dict(resources.get("rnn_course", {}).get("checks", {}))
    for pp in (IgnorePattern, ClearMetadataPreprocessor, TrackedLimitOutput):
        instance = pp(config=cfg)
        if getattr(instance, "enabled", True):
            nb, resources = instance.preprocess(nb, resources)
    nb, resources = CheckCellMetadata(config=cfg).preprocess(nb, resources)
    # nothing the student's code output stays active in a browser (stored and feedback alike)
    nb, resources = SanitizeOutputs(config=cfg).preprocess(nb, resources)
    return nb, resources, verdicts


def never_ran(nb, reason: str) -> dict[str, str]:
    """grade id -> ``reason`` for each graded code cell the stopped notebook never finished.

    A cell never ran when it has no execution count, or when the sandbox
    marked it stopped (:data:`~autograder.sandbox.STOPPED_ENAME`).
    """
    out = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_grade(cell) or not cell.source.strip():
            continue
        stopped = any(o.get("output_type") == "error" and o.get("ename") == STOPPED_ENAME
                      for o in cell.get("outputs", []))
        if stopped or cell.get("execution_count") is None:
            out[cell.metadata.nbgrader["grade_id"]] = reason
    return out


def show_scores(nb, cells: dict[str, dict], not_run: dict[str, str]) -> None:
    """Make a failed test cell that shows no error show why (nbgrader reads errors as failed).

    A cell that never ran shows only that; a cell no check judged keeps what
    it printed and gets the reason after it.  Cells whose verdict already
    shows an error are left as they are.
    """
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        gid = cell.metadata.nbgrader["grade_id"]
        scored = cells.get(gid)
        if scored is None or scored["passed"] is not False:
            continue
        message = scored["message"]
        if gid in not_run:  # whatever its verdict said, it shows that it never ran
            cell.outputs = [new_output("error", ename=STOPPED_ENAME, evalue=message,
                                       traceback=[f"{STOPPED_ENAME}: {message}"])]
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            continue
        if scored["kind"] == "unverified":
            cell.outputs.append(new_output("error", ename=UNVERIFIED_ENAME, evalue=message,
                                           traceback=[f"{UNVERIFIED_ENAME}: {message}"]))


# --------------------------------------------------------------------------- #
def run_notebook(nb, scratch: Path, job: GradeJob, cfg: Config, graded_cells: dict,
                 kernel=None):
    """Execute ``nb`` with ``scratch`` as its working folder: ``(nb, flags)``.

    The one place where student code runs.  In the sandbox by default
    (:func:`autograder.sandbox.execute_notebook`; ``kernel``: one
    :func:`_start_kernel` started on ``scratch``), else
    (``--unsafe-no-sandbox``) in a plain local kernel.  ``graded_cells`` are
    the arguments of :func:`~autograder.pipeline.worker.preprocessors.graded_cells_class`
    but the base.  Never raises for the notebook's behaviour.
    """
    if job.sandbox:
        from autograder.sandbox import execute_notebook

        cls = graded_cells_class(_timed_sandbox_execute(), **graded_cells)
        return execute_notebook(nb, str(scratch), job.limits, timeout=_timeout(job, cfg),
                                extra_env=_kernel_env(), preprocessor_class=cls, config=cfg,
                                kernel=kernel)
    return _run_unsandboxed(nb, scratch, job, cfg, graded_cells)


KERNEL_SECTIONS = ("SandboxedKernelManager", "Execute", "ExecutePreprocessor", "NotebookClient")
"""The config sections that decide how a sandboxed kernel is started (:func:`_kernel_key`)."""


def _kernel_env() -> dict[str, str]:
    from autograder.sandbox import SANDBOX_HOME

    return {GRADING_DIR_ENV: f"{SANDBOX_HOME}/{GRADING_SUBDIR}", STATIC_WIDGETS_ENV: "1"}


@functools.cache
def _timed_sandbox_execute() -> type:
    from autograder.sandbox import SandboxExecute

    return type("TimedSandboxExecute", (TimingMixin, SandboxExecute), {})


def _kernel_key(job: GradeJob, cfg: Config) -> str:
    """What :func:`run_notebook` starts ``job``'s kernel with: a waiting kernel must match."""
    return warm.kernel_key(job.limits, _kernel_env(),
                           {name: cfg.get(name) for name in KERNEL_SECTIONS})


def _start_kernel(job: GradeJob, cfg: Config, scratch: Path):
    """Start, on the empty folder ``scratch``, the kernel :func:`run_notebook` would start.

    Raises :class:`SandboxError` when it cannot, or when it would run as the shared
    fallback uid (no pool account free).
    """
    from autograder.sandbox import SandboxError
    from autograder.sandbox.execute import discard_kernel, start_kernel

    # the plan and folders of GradedCells only matter once cells run; its kernel
    # arguments (no history database) are the same for every job
    cls = graded_cells_class(_timed_sandbox_execute(), plan={}, shared_dir="",
                             collect_dir="", hidden_marker="")
    km = start_kernel(str(scratch), job.limits, extra_env=_kernel_env(),
                      preprocessor_class=cls, config=cfg)
    if km.shares_uid:
        # every pool account is taken: a kernel that only waits must not crowd the shared
        # uid (and its process limit) of the kernels that run
        discard_kernel(km)
        raise SandboxError("no free kernel account for a kernel started ahead")
    return km


def _timeout(job: GradeJob, cfg: Config) -> int | None:
    """Seconds per cell: the job's, else its limits' (None: the Execute config's)."""
    if job.timeout is not None:
        return job.timeout
    return getattr(job.limits, "cell_timeout", None)


def _run_unsandboxed(nb, scratch: Path, job: GradeJob, cfg: Config, graded_cells: dict):
    env = {GRADING_DIR_ENV: str(scratch / GRADING_SUBDIR), STATIC_WIDGETS_ENV: "1"}
    # nothing in a scratch kernel is worth a graceful shutdown
    pp = graded_cells_class(TimedExecute, **graded_cells)(
        config=cfg, extra_env=env, shutdown_kernel="immediate",
        kernel_manager_class=ReadyKernelManager)
    timeout = _timeout(job, cfg)
    if timeout is not None:
        pp.timeout = timeout
    flags = []
    try:
        pp.preprocess(nb, {"metadata": {"path": str(scratch)}})
    except Exception:  # DeadKernelError and friends: what ran keeps its outputs
        flags.append(KERNEL_DIED)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError":
                if TIMEOUT not in flags:
                    flags.append(TIMEOUT)
    return nb, flags


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
