"""The one place where student code runs: a notebook in a sandboxed kernel (or, with
``--unsafe-no-sandbox``, a plain local one), and the kernels started ahead for it."""

from __future__ import annotations

import functools
from pathlib import Path

from traitlets.config import Config

from autograder.pipeline.flags import KERNEL_DIED, TIMEOUT
from autograder.pipeline.types import GradeJob
from autograder.pipeline.worker import warm
from autograder.pipeline.worker.preprocessors import TimedExecute, graded_cells_class
from autograder.pipeline.worker.preprocessors.timed_execute import TimingMixin
from autograder.sandbox.client import ReadyKernelManager
from rnn_course.grading import GRADING_DIR_ENV
from rnn_course.widgets import STATIC_ENV as STATIC_WIDGETS_ENV

GRADING_SUBDIR = ".grading"
KERNEL_SECTIONS = ("SandboxedKernelManager", "Execute", "ExecutePreprocessor", "NotebookClient")
"""The config sections that decide how a sandboxed kernel is started (:func:`kernel_key`)."""


def run_notebook(nb, scratch: Path, job: GradeJob, cfg: Config, graded_cells: dict,
                 kernel=None):
    """Execute ``nb`` with ``scratch`` as its working folder: ``(nb, flags)``.

    In the sandbox by default (:func:`autograder.sandbox.execute_notebook`;
    ``kernel``: one :func:`start_kernel` started on ``scratch``), else
    (``--unsafe-no-sandbox``) in a plain local kernel.  ``graded_cells`` are
    the arguments of :func:`~autograder.pipeline.worker.preprocessors.graded_cells_class`
    but the base.  Never raises for the notebook's behaviour.
    """
    if job.sandbox:
        from autograder.sandbox import execute_notebook

        cls = graded_cells_class(_timed_sandbox_execute(), **graded_cells)
        return execute_notebook(nb, str(scratch), job.limits,
                                extra_env=_kernel_env(), preprocessor_class=cls, config=cfg,
                                kernel=kernel)
    return _run_unsandboxed(nb, scratch, job, cfg, graded_cells)


def _kernel_env() -> dict[str, str]:
    from autograder.sandbox import SANDBOX_HOME

    return {GRADING_DIR_ENV: f"{SANDBOX_HOME}/{GRADING_SUBDIR}", STATIC_WIDGETS_ENV: "1"}


@functools.cache
def _timed_sandbox_execute() -> type:
    from autograder.sandbox import SandboxExecute

    return type("TimedSandboxExecute", (TimingMixin, SandboxExecute), {})


def kernel_key(job: GradeJob, cfg: Config) -> str:
    """What :func:`run_notebook` starts ``job``'s kernel with: a waiting kernel must match."""
    return warm.kernel_key(job.limits, _kernel_env(),
                           {name: cfg.get(name) for name in KERNEL_SECTIONS})


def start_kernel(job: GradeJob, cfg: Config, scratch: Path):
    """Start, on the empty folder ``scratch``, the kernel :func:`run_notebook` would start.

    Raises :class:`SandboxError` when it cannot, or when it would run as the shared
    fallback uid (no pool account free).
    """
    from autograder.sandbox import SandboxError
    from autograder.sandbox.execute import discard_kernel
    from autograder.sandbox.execute import start_kernel as start

    # the plan and folders of GradedCells only matter once cells run; its kernel
    # arguments (no history database) are the same for every job
    cls = graded_cells_class(_timed_sandbox_execute(), plan={}, shared_dir="",
                             collect_dir="", hidden_marker="")
    km = start(str(scratch), job.limits, extra_env=_kernel_env(), preprocessor_class=cls,
               config=cfg)
    if km.shares_uid:
        # every pool account is taken: a kernel that only waits must not crowd the shared
        # uid (and its process limit) of the kernels that run
        discard_kernel(km)
        raise SandboxError("no free kernel account for a kernel started ahead")
    return km


def _run_unsandboxed(nb, scratch: Path, job: GradeJob, cfg: Config, graded_cells: dict):
    env = {GRADING_DIR_ENV: str(scratch / GRADING_SUBDIR), STATIC_WIDGETS_ENV: "1"}
    # nothing in a scratch kernel is worth a graceful shutdown
    pp = graded_cells_class(TimedExecute, **graded_cells)(
        config=cfg, extra_env=env, shutdown_kernel="immediate",
        kernel_manager_class=ReadyKernelManager)
    if job.limits is not None:
        pp.timeout = job.limits.cell_timeout
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
