"""A job's folders in a worker: where they go, how they are filled, and the sweep of
those a dead worker left behind."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autograder.pipeline.worker import warm

SCRATCH_PREFIX = "rnn-grade-"
"""A job's folders: ``<tmp>/rnn-grade-<worker pid>-*`` (the submission's copy, its kernel's
scratch) and ``<memory_dir>/rnn-gradebook-<worker pid>-*`` (its private gradebook)."""
GRADEBOOK_PREFIX = "rnn-gradebook-"
_STALE = re.compile(rf"(?:{SCRATCH_PREFIX}|{GRADEBOOK_PREFIX}|{warm.PREFIX})(\d+)-")


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


@contextmanager
def job_folders() -> Iterator[tuple[Path, Path]]:
    """``(tmp, db_dir)``: a job's private folders (0700), removed afterwards."""
    pid = os.getpid()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{pid}-",
                                     ignore_cleanup_errors=True) as tmp, \
            tempfile.TemporaryDirectory(prefix=f"{GRADEBOOK_PREFIX}{pid}-", dir=memory_dir(),
                                        ignore_cleanup_errors=True) as db_dir:
        yield Path(tmp), Path(db_dir)


def populate_scratch(scratch: Path, files: dict[str, bytes]) -> None:
    """``files`` (relative path -> bytes) under ``scratch``."""
    scratch.mkdir(exist_ok=True)  # a kernel started ahead waits on it, empty
    for rel, data in files.items():
        target = scratch.joinpath(*rel.split("/"))
        if scratch not in target.resolve().parents:
            continue  # "..": the precheck never lets one through, but be sure
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_bytes(data)


def sweep_stale() -> list[str]:
    """Remove the folders of jobs whose worker died (killed outright, it could not), and
    those of the kernels it started ahead (:mod:`.warm`); called by the coordinator before
    it forks its workers.

    They hold a copy of a student's submission (mode 0700, but nothing else removes
    them).  What is stale, and what is never touched (a link, another account's folder,
    any odd name), is :mod:`autograder.sandbox.stale`'s one rule.  Returns the paths removed.
    """
    from autograder.sandbox.stale import remove_stale_folders

    return [path for base in dict.fromkeys((tempfile.gettempdir(), memory_dir()))
            if base for path in remove_stale_folders(base, _STALE)]
