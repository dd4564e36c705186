"""Grade one submission, in isolation: the worker's side of the grading pipeline.

:func:`grade_submission` takes a self-contained :class:`~autograder.pipeline.types.GradeJob`
and returns a plain, picklable :class:`~autograder.pipeline.types.GradeResult`; it runs in a
process of a local ``ProcessPoolExecutor`` or on any ``dask.distributed`` worker, and never
touches the course's gradebook or folders.  What the coordinator trusts is in the job: the
assignment's structure, a small private gradebook with the instructor's cells (for
nbgrader's sanitize steps; nothing is scored into it) and per-submission seed material
(never the course's secret).

The stages, in order (each timed into ``GradeResult.timings`` and bounded by its
``c.WorkerLimits`` limit through one wrapper, :class:`.budget.StageClock`):

``precheck``   the submission's bytes -> notebooks, files, flags (:mod:`.precheck`);
then, for each notebook, :data:`NOTEBOOK_STAGES`:
``sanitize``   ``c.SubmissionPipeline.sanitize_preprocessors`` (nbgrader's, against the
               private gradebook: the instructor's cells restored);
``execute``    the inputs of every graded cell's check drawn (:func:`.verify.grading_plan`),
               the notebook run in the sandbox (:mod:`.execution`; ``sandbox_start`` is
               the kernel's start-up), each check's inputs present only while its cell runs;
``verify``     :class:`~.verify.VerifyChecks` judges every graded cell here, then
               ``c.SubmissionPipeline.verify_preprocessors`` (nbgrader's steps after
               Execute), then :class:`SanitizeOutputs` (always: every output inert);
then, once: ``score`` (:func:`~autograder.pipeline.scoring.score_submission`, the only place
verdicts become points) and ``feedback`` (HTML of each notebook showing those points).

Nothing a submission does makes :func:`grade_submission` raise: problems become flags, and
a failure of the grader itself comes back as ``status="error"`` with ``grader_error``.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import ClearOutput, DeduplicateIds, IgnorePattern, OverwriteKernelspec
from sqlalchemy.exc import SAWarning
from traitlets import List
from traitlets.config import Config, LoggingConfigurable

from autograder.pipeline import flags as F
from autograder.pipeline.scoring import (
    NO_RESPONSE,
    NotebookRun,
    Scores,
    auto_comments,
    duration,
    parse_timestamp,
    score_submission,
)
from autograder.pipeline.types import GradeJob, GradeResult
from autograder.pipeline.worker import execution, warm
from autograder.pipeline.worker import feedback as feedback_mod
from autograder.pipeline.worker.budget import StageClock, StageOverrun, Usage, WorkerLimits
from autograder.pipeline.worker.folders import job_folders, populate_scratch, sweep_stale
from autograder.pipeline.worker.precheck import Precheck, with_source_files
from autograder.pipeline.worker.preprocessors import (
    CheckCellMetadata,
    RestoreCells,
    SanitizeOutputs,
    SkipUngraded,
    TrackedLimitOutput,
)
from autograder.pipeline.worker.preprocessors.timed_execute import last_kernel_start_seconds
from autograder.pipeline.worker.verify import (
    VerifyChecks,
    grading_plan,
    hidden_delimiter,
    never_ran,
    prepare_grading_dir,
    show_scores,
)

NOTEBOOK_STAGES = ("sanitize", "execute", "verify")
"""What each notebook goes through, in order: methods of :class:`_Grading` of these names."""


class SubmissionPipeline(LoggingConfigurable):
    """The worker's preprocessors (``c.SubmissionPipeline`` in ``nbgrader_config.py``), as
    nbgrader's ``Autograde`` declares its own.  A preprocessor whose ``enabled`` is False
    is skipped (nbconvert's ``ClearMetadataPreprocessor`` is, unless turned on)."""

    sanitize_preprocessors = List([
        ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreCells, CheckCellMetadata,
    ], help="Before execution, against the private gradebook: the instructor's cells "
            "restored (RestoreCells is nbgrader's OverwriteCells, and more).").tag(config=True)
    verify_preprocessors = List([
        IgnorePattern, ClearMetadataPreprocessor, TrackedLimitOutput, CheckCellMetadata,
    ], help="After the checks are judged (VerifyChecks, always first); SanitizeOutputs "
            "always runs after them.").tag(config=True)

    def apply(self, classes, nb, resources):
        for cls in classes:
            pp = cls(config=self.config)
            if getattr(pp, "enabled", True):
                nb, resources = pp.preprocess(nb, resources)
        return nb, resources


@dataclass
class _Notebook:
    """One notebook between its stages."""

    name: str
    nb: nbformat.NotebookNode
    resources: dict
    collected: Path | None = None
    """Where the results of its checks were taken, out of the kernel's reach."""
    plan: dict = field(default_factory=dict)
    """grade id -> the inputs drawn for its check (:func:`.verify.grading_plan`), once."""
    verdicts: dict = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}.ipynb"


# --------------------------------------------------------------------------- #
def grade_submission(job: GradeJob) -> GradeResult:
    """Grade one submission (see the module docstring). Never raises."""
    result = GradeResult(student=job.student, assignment=job.assignment,
                         flags=list(job.submission.flags),
                         worker=f"{socket.gethostname()}:{os.getpid()}")
    usage = Usage().start()
    try:
        with warnings.catch_warnings(), job_folders() as (tmp, db_dir):
            # nbgrader's gradebook API trips SQLAlchemy's autoflush warnings: noise
            warnings.simplefilter("ignore", SAWarning)
            _Grading(job, result, tmp, db_dir).run()
    except Exception as exc:
        result.status = "error"
        result.error = traceback.format_exc()
        result.notebooks, result.feedback, result.comments = {}, {}, {}
        result.scores = Scores()
        result.flag(F.GRADER_ERROR, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    if str(exc) else type(exc).__name__)
    result.usage = usage.stop()
    result.timings["worker_total"] = result.usage["wall_seconds"]
    return result


class _Grading:
    """One job being graded: its stages, and the state they share."""

    def __init__(self, job: GradeJob, result: GradeResult, tmp: Path, db_dir: Path):
        self.job, self.result, self.tmp, self.db_dir = job, result, tmp, db_dir
        self.cfg = job.config if job.config is not None else Config()
        self.pipeline = SubmissionPipeline(config=self.cfg)
        self.stage = StageClock(result.add_time, WorkerLimits(config=self.cfg))
        self.graded: dict[str, _Notebook] = {}

    def run(self) -> None:
        with self.stage("precheck"):
            self.precheck()
        if F.GRADER_ERROR in F.flag_names(self.result.flags):  # the precheck itself failed
            self.result.status = "error"
            return
        (self.db_dir / "gradebook.db").write_bytes(self.job.structure_db)
        started = self.kernels()  # one started ahead for this job, if any
        try:
            scratch = started.scratch if started is not None else self.tmp / "scratch"
            populate_scratch(scratch, with_source_files(self.files, self.job.source_files))
            self.kernel = started.km if started is not None else None  # for the first run
            for name in self.job.structure.notebooks:
                if self.notebooks.get(name) is not None:
                    self.grade_notebook(name, scratch)
        finally:
            if started is not None:  # its folder goes; the kernel too, if no notebook ran
                started.discard()
        with self.stage("score"):
            self.score()
        for n in self.graded.values():
            self.feedback(n)

    # ------------------------------------------------------------------ #
    def precheck(self) -> None:
        """The folder as read -> the notebooks to grade, the files kept, flags."""
        sub = Precheck(config=self.cfg).finished(self.job.submission,
                                                 self.job.structure.cell_ids)
        self.notebooks, self.files = sub.notebooks, sub.files
        self.result.flags, self.result.files = list(sub.flags), sorted(sub.files)

    def kernels(self):
        """The kernel started for this job while the last was graded (None: none), and one
        started now for the next job, if one follows (:mod:`.warm`)."""
        if not self.job.sandbox:
            return None
        key = execution.kernel_key(self.job, self.cfg)
        started = warm.take(key)
        if self.job.warm_next and warm.enabled(self.cfg):
            warm.prestart(key, lambda folder: execution.start_kernel(self.job, self.cfg, folder))
        return started

    def grade_notebook(self, name: str, scratch: Path) -> None:
        job = self.job
        n = _Notebook(name, nbformat.reads(self.notebooks[name], as_version=4), {
            "nbgrader": {"student": job.student, "assignment": job.assignment,
                         "notebook": name, "db_url": f"sqlite:///{self.db_dir / 'gradebook.db'}"},
            "unique_key": name,
            "output_files_dir": f"{name}_files",
            "metadata": {"path": str(scratch)},
        })
        for stage in NOTEBOOK_STAGES:
            try:
                with self.stage(stage) as lap:
                    if getattr(self, stage)(n, scratch, lap) is False:
                        return  # graded as missing
            except StageOverrun as over:
                self.result.flag(F.GRADER_LIMIT, f"{n.label}: {over}")
                if getattr(self, f"{stage}_overrun")(n) is False:
                    return
        if n.resources.get("rnn_course", {}).get("output_truncated"):
            self.result.flag(F.OUTPUT_TRUNCATED, f"{n.label}: output over nbgrader's LimitOutput")
        self.result.comments[name] = auto_comments(n.nb)
        self.graded[name] = n

    def sanitize(self, n: _Notebook, scratch: Path, lap) -> bool:
        """nbgrader's sanitize steps; False when nbgrader cannot (graded as unusable)."""
        try:
            n.nb, n.resources = self.pipeline.apply(self.pipeline.sanitize_preprocessors,
                                                    n.nb, n.resources)
            # the instructor's marks (the job's structure) and the notebook as submitted
            n.nb, n.resources = SkipUngraded(
                config=self.cfg, cells=set(self.job.structure.skipped.get(n.name, ())),
                submitted=self.notebooks[n.name]).preprocess(n.nb, n.resources)
        except Exception as exc:  # metadata nbgrader cannot work with
            self.result.flag(F.INVALID_NOTEBOOK, f"{n.label}: nbgrader could not sanitize it "
                                                 f"({type(exc).__name__}: {str(exc)[:100]})")
            return False
        restored = n.resources.get("rnn_course", {}).get("restored_cells", [])
        if restored:
            shown = ", ".join(restored[:5]) + (f" and {len(restored) - 5} more"
                                               if len(restored) > 5 else "")
            self.result.flag(F.TAMPERED_CELLS_RESTORED, f"{n.label}: {shown}")
        return True

    def sanitize_overrun(self, n: _Notebook) -> bool:
        return False  # graded as unusable, like a notebook nbgrader rejects

    def execute(self, n: _Notebook, scratch: Path, lap) -> None:
        """The student's code in the sandbox; each graded cell gets its inputs as it runs."""
        grading_dir = scratch / execution.GRADING_SUBDIR
        if grading_dir.is_symlink() or grading_dir.is_file():
            grading_dir.unlink()
        elif grading_dir.exists():
            shutil.rmtree(grading_dir)
        prepare_grading_dir(grading_dir)
        n.collected = Path(tempfile.mkdtemp(prefix="results-", dir=scratch.parent))
        n.plan = grading_plan(n.nb, self.job.seed_secret, self.job.assignment,
                              self.job.student, self.cfg)
        graded_cells = dict(
            plan=n.plan, shared_dir=grading_dir, collect_dir=n.collected,
            hidden_marker=hidden_delimiter(self.cfg),
            max_result_bytes=VerifyChecks(config=self.cfg).max_result_bytes)
        n.nb, flags = execution.run_notebook(n.nb, scratch, self.job, self.cfg, graded_cells,
                                             self.kernel)
        self.kernel = None  # it ran this notebook and is shut down
        lap.carve("sandbox_start", last_kernel_start_seconds())
        for flag in flags:
            self.result.flag(flag, n.label)
        stopping = [f for f in flags if f in F.STOPPING]
        if stopping:
            n.not_run = never_ran(n.nb, ", ".join(stopping))

    def verify(self, n: _Notebook, scratch: Path, lap) -> None:
        """The verdicts, judged here; nbgrader's steps after Execute; the sanitizer."""
        verifier = VerifyChecks(config=self.cfg, grading_dir=str(n.collected), plan=n.plan,
                                secret=self.job.seed_secret)
        n.nb, n.resources = verifier.preprocess(n.nb, n.resources)
        n.verdicts = dict(n.resources.get("rnn_course", {}).get("checks", {}))
        n.nb, n.resources = self.pipeline.apply(self.pipeline.verify_preprocessors,
                                                n.nb, n.resources)
        # nothing the student's code output stays active in a browser (stored and feedback)
        n.nb, n.resources = SanitizeOutputs(config=self.cfg).preprocess(n.nb, n.resources)

    def verify_overrun(self, n: _Notebook) -> None:
        """Nothing judged: every graded cell scores 0; no output of the student's is kept,
        since the sanitizer may not have run."""
        for cell in n.nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        n.nb, n.resources = SanitizeOutputs(config=self.cfg).preprocess(n.nb, n.resources)
        n.verdicts = {}
        n.not_run = {gid: F.GRADER_LIMIT for gid in self.job.structure.notebooks.get(n.name, {})}

    def score(self) -> None:
        """The points, once, from the verdicts."""
        job, result = self.job, self.result
        scores = score_submission(
            job.structure, {name: NotebookRun(
                verdicts=n.verdicts, not_run=n.not_run,
                unanswered=frozenset(gid for gid, c in result.comments[name].items()
                                     if c == NO_RESPONSE))
                for name, n in self.graded.items()},
            student=job.student, timestamp=parse_timestamp(job.submission.timestamp),
            extension_seconds=job.extension_seconds, config=self.cfg)
        result.scores = scores
        if scores.seconds_late > 0:
            result.flag(F.LATE, f"submitted {duration(scores.seconds_late)} after the due date")
        for name, n in self.graded.items():
            show_scores(n.nb, scores.cells[name], n.not_run)
            result.notebooks[name] = nbformat.writes(n.nb)

    def feedback(self, n: _Notebook) -> None:
        """These very numbers, and every flag of the submission."""
        result = self.result
        resources = feedback_mod.feedback_resources(
            self.job.student, self.job.assignment, n.name, result.scores,
            result.comments.get(n.name, {}))
        try:
            with self.stage("feedback"):
                result.feedback[n.name] = feedback_mod.render_feedback(
                    n.nb, resources, result.flags, self.cfg)
        except StageOverrun as over:
            result.flag(F.GRADER_LIMIT, f"{n.label}: {over}")
            result.feedback[n.name] = feedback_mod.short_feedback(resources, result.flags)


# --------------------------------------------------------------------------- #
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
