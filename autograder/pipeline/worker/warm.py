"""Sandboxed kernels started ahead of need: at most one waiting per worker thread.

A worker that will get another submission starts that submission's kernel
while it grades the current one (``GradeJob.warm_next``, set by the runner),
so the next job finds its kernel booted instead of waiting the half second a
kernel takes to start.  What keeps this as safe as a kernel started on
demand:

* the kernel is started by :func:`autograder.sandbox.execute.start_kernel`,
  with the same command line, limits and environment as the job's own
  (:func:`kernel_key` must match, or the kernel is thrown away), on an empty
  scratch folder of its own; no code but ipykernel's runs in it before the
  job hands it the submission's files;
* it serves exactly one submission: :func:`take` hands it out once, and
  ``execute_notebook`` shuts it down after that notebook, as it does a kernel
  it started;
* one that died while it waited is never used: the job starts its own;
* the one still waiting when the worker process ends (or the run is over) is
  shut down by :func:`close`, registered for both ways a worker ends
  (``atexit`` and multiprocessing's finalizers).  A worker killed outright
  takes it along (bubblewrap's ``--die-with-parent``); the next run's sweeps
  remove its runtime folder and its folder here (:func:`.folders.sweep_stale`, from
  the coordinator's warm-up).

``c.WarmKernels.enabled = False`` in ``nbgrader_config.py`` turns this off.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from traitlets import Bool
from traitlets.config import Config, Configurable

log = logging.getLogger(__name__)

SCRATCH = "scratch"
PREFIX = "rnn-warm-"
"""Folders of kernels started ahead are ``<tmp>/rnn-warm-<worker pid>-*``."""


class WarmKernels(Configurable):
    """Kernels started ahead of need (``c.WarmKernels`` in ``nbgrader_config.py``)."""

    enabled = Bool(
        True,
        help="Start each local worker's next sandboxed kernel while it grades the current "
             "submission (one waiting kernel per worker, never shared by two submissions).",
    ).tag(config=True)


def enabled(config: Config | None) -> bool:
    return bool(WarmKernels(config=config if config is not None else Config()).enabled)


@dataclass
class WarmKernel:
    """A started kernel, its private folder and what it was started with."""

    km: object
    folder: Path
    key: str

    @property
    def scratch(self) -> Path:
        """The empty scratch folder the kernel was started on: the job fills it."""
        return self.folder / SCRATCH

    def alive(self) -> bool:
        return self.km.exit_status is None and self.km.relay_status is None

    def discard(self) -> None:
        """Shut the kernel down (if it still runs) and remove the folder (never raises)."""
        from autograder.sandbox.execute import discard_kernel

        try:
            discard_kernel(self.km)
        except Exception as exc:
            log.warning("could not shut down a waiting kernel: %s", exc)
        shutil.rmtree(self.folder, ignore_errors=True)


_lock = threading.Lock()
_waiting: dict[int, WarmKernel] = {}  # thread id -> its waiting kernel
_registered_in: int | None = None  # the process whose exit shuts them down


def kernel_key(*parts) -> str:
    """What a kernel was started with, as one comparable string."""
    return json.dumps(parts, sort_keys=True, default=repr)


def take(key: str) -> WarmKernel | None:
    """This thread's waiting kernel if it was started with ``key`` and still runs, else None.

    Handed out once: the caller owns it (and its folder) from here on.
    """
    warm = _pop()
    if warm is None:
        return None
    if warm.key != key or not warm.alive():
        warm.discard()
        return None
    return warm


def prestart(key: str, start: Callable[[Path], object]) -> None:
    """Start this thread's next kernel: ``start(scratch)`` returns its kernel manager.

    Best effort: a kernel that cannot start now is simply not waiting (the
    next job starts its own, and reports why if that fails too).
    """
    old = _pop()
    if old is not None:
        old.discard()
    _register()
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    (folder / SCRATCH).mkdir()
    try:
        km = start(folder / SCRATCH)
    except Exception as exc:
        log.info("no kernel started ahead: %s", exc)
        shutil.rmtree(folder, ignore_errors=True)
        return
    with _lock:
        _waiting[threading.get_ident()] = WarmKernel(km=km, folder=folder, key=key)


def waiting() -> int:
    """How many kernels wait in this process (all threads)."""
    with _lock:
        return len(_waiting)


def close() -> None:
    """Shut down every kernel waiting in this process (the run or the worker ends)."""
    with _lock:
        items = list(_waiting.values())
        _waiting.clear()
    for warm in items:
        warm.discard()


def _pop() -> WarmKernel | None:
    with _lock:
        return _waiting.pop(threading.get_ident(), None)


def _register() -> None:
    global _registered_in
    if _registered_in == os.getpid():
        return
    _registered_in = os.getpid()
    atexit.register(close)
    from multiprocessing import util

    # a pool's worker process ends through os._exit: atexit does not run there
    util.Finalize(None, close, exitpriority=10)


def _forget_in_child() -> None:
    """A forked process does not own its parent's waiting kernels."""
    global _lock
    _lock = threading.Lock()
    _waiting.clear()


os.register_at_fork(after_in_child=_forget_in_child)
