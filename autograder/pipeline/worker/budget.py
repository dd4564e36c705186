"""The grader's own budget for one submission: time limits on the worker's stages, and
what the worker spent (CPU seconds, peak memory).

The sandbox bounds what a student's kernel may use; this module bounds what
the *grader* spends on a submission after the kernel is gone: restoring the
cells (``sanitize``), judging the checks (``verify``) and rendering the
feedback (``feedback``).  The precheck's caps (file sizes, number of cells,
JSON depth) keep each of these small for any notebook; the time limits here
are the backstop.  A stage that runs over its limit raises
:class:`StageOverrun` in the worker, which turns it into the
``grader_limit`` flag on that student only.

The limit is a ``SIGALRM`` timer, so it needs the worker's main thread: a
process of the local pool always is.  A Dask worker runs jobs in threads,
where no in-process timer can interrupt Python code; there the coordinator's
per-job deadline (:func:`autograder.pipeline.coordinator.runner._deadline`) is the bound.
"""

from __future__ import annotations

import re
import resource
import signal
import threading
import time
from contextlib import contextmanager

from traitlets import Float
from traitlets.config import Configurable


class WorkerLimits(Configurable):
    """Seconds the worker may spend on each of its own stages, per notebook
    (``c.WorkerLimits`` in ``nbgrader_config.py``; 0 turns a limit off)."""

    sanitize_seconds = Float(
        60.0, help="Restoring the instructor's cells with nbgrader's preprocessors."
    ).tag(config=True)
    verify_seconds = Float(
        120.0, help="Judging every graded cell's check, then nbgrader's steps after Execute "
                    "and the output sanitizer."
    ).tag(config=True)
    feedback_seconds = Float(
        60.0, help="Rendering one notebook's feedback HTML."
    ).tag(config=True)

    def seconds(self, stage: str) -> float:
        """The limit of ``stage`` (0: none; a stage without a limit of its own has none)."""
        return float(getattr(self, f"{stage}_seconds", 0.0))


WORKER_BOUNDS = {"cpu_seconds": 10.0, "peak_rss_mib": 768.0}
"""What the grader's worker process may spend on one submission, hostile or not: its own
CPU seconds (the sandboxed kernel's are its own limits) and its peak resident memory.
docs/security.md states these; the hostile suite checks every student against them."""


class StageOverrun(BaseException):
    """A worker stage ran past its time limit.

    A ``BaseException``, like ``KeyboardInterrupt``: code of the stage that
    catches ``Exception`` (a check's judge, say) must not swallow it and go on.
    """

    def __init__(self, stage: str, seconds: float):
        super().__init__(f"the grader's {stage} stage took more than {seconds:g} s")
        self.stage = stage
        self.seconds = seconds


def can_interrupt() -> bool:
    """Whether :func:`time_limit` can stop the calling code (the main thread only)."""
    return threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(stage: str, seconds: float):
    """Raise :class:`StageOverrun` in the block if it runs longer than ``seconds``.

    No limit when ``seconds`` is 0 or when not in the main thread (see the
    module docstring).  Nested use is not supported: the worker's stages follow
    each other.
    """
    if seconds <= 0 or not can_interrupt():
        yield
        return

    def _expired(signum, frame):
        raise StageOverrun(stage, seconds)

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class StageClock:
    """The one wrapper of the worker's stages: ``with clock("verify"):`` runs the block
    within that stage's limit (:class:`WorkerLimits`) and adds the seconds it took to
    ``timings[stage]``, overrun or not.  A stage may hand part of its time to another
    (``carve``: the kernel's start-up, inside ``execute``, is ``sandbox_start``)."""

    def __init__(self, add_time, limits: WorkerLimits):
        self._add_time, self.limits = add_time, limits

    @contextmanager
    def __call__(self, stage: str):
        lap = _Lap()
        try:
            with time_limit(stage, self.limits.seconds(stage)):
                yield lap
        finally:
            spent = time.monotonic() - lap.started
            for other, seconds in lap.carved.items():
                seconds = min(seconds, spent)
                self._add_time(other, seconds)
                spent -= seconds
            self._add_time(stage, spent)


class _Lap:
    def __init__(self):
        self.started = time.monotonic()
        self.carved: dict[str, float] = {}

    def carve(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` of this stage as ``stage`` instead (at most what it took)."""
        self.carved[stage] = self.carved.get(stage, 0.0) + seconds


# --------------------------------------------------------------------------- #
_HWM = re.compile(rb"VmHWM:\s+(\d+)\s+kB")


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident size (Linux ``clear_refs``); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status", "rb") as fh:
            match = _HWM.search(fh.read())
    except OSError:
        match = None
    if match is not None:
        return int(match.group(1)) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # since the process began


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Usage:
    """What this process spends between :meth:`start` and :meth:`stop`: its own CPU
    seconds (all threads; not the sandboxed kernel, a separate process) and its
    peak resident memory.

    The peak is exact per submission on Linux (the peak is reset at the start);
    elsewhere it is the process's peak so far, an upper bound.  Under Dask,
    several jobs share a process: both figures then include the neighbours'.
    """

    def start(self) -> Usage:
        self.exact_peak = _reset_peak_rss()
        self._cpu = _cpu_seconds()
        self._wall = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        return {
            "cpu_seconds": round(_cpu_seconds() - self._cpu, 3),
            "peak_rss_mib": round(_peak_rss_bytes() / 2**20, 1),
            "wall_seconds": round(time.monotonic() - self._wall, 3),
        }
