"""Where a worker keeps a job's folders."""

from __future__ import annotations

import os


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
