"""One uid per running kernel, from a pool of system accounts (root graders only).

``RLIMIT_NPROC`` counts every process of a *uid*, whatever namespace it is in.
If every kernel ran as ``nobody``, a fork bomb in one sandbox would use up the
process budget of all the others and their kernels could not start threads.
So when the grader is root, each kernel leases a uid of its own from the
accounts named ``rnn-sbx-NN`` (``make setup`` creates 16 with
``tools/install-system-deps.sh``) for exactly its lifetime.

A lease is an exclusive ``flock`` on ``<lock_dir>/<uid>.lock``: it works
across threads, worker processes, dask workers and concurrent ``grade`` runs
on one host, and the kernel releases it when its process ends, even by
SIGKILL.  With all of them leased, the kernel falls back to the shared
``kernel_uid`` and says so once in the log (its submission is flagged).  With
no pool account at all, a root grader refuses to start (:func:`require_pool`,
one line): it never lowers the isolation silently.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import pwd
import stat
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

POOL_PREFIX = "rnn-sbx-"
LOCK_DIR = "/run/rnn-course/uids"

_warned: set[str] = set()
_warn_lock = threading.Lock()


def _warn_once(message: str) -> None:
    with _warn_lock:
        if message not in _warned:
            _warned.add(message)
            log.warning(message)


class PoolMissing(RuntimeError):
    """A root grader found no sandbox account: one line, what to run."""


def pool_missing_reason(prefix: str = POOL_PREFIX) -> "str | None":
    """Why a root grader may not run kernels here (no ``prefix*`` account), or None."""
    if os.geteuid() != 0 or pool_accounts(prefix):
        return None
    return (f"no {prefix}* accounts: a root grader runs each kernel as one of them (one uid per "
            "kernel); as root run `bash tools/install-system-deps.sh` (or `make setup`)")


def require_pool(prefix: str = POOL_PREFIX) -> None:
    """Raise :class:`PoolMissing` when the grader is root and has no sandbox account."""
    reason = pool_missing_reason(prefix)
    if reason is not None:
        raise PoolMissing(reason)


def pool_accounts(prefix: str = POOL_PREFIX) -> list[tuple[int, int]]:
    """``(uid, gid)`` of every account whose name starts with ``prefix``, by uid."""
    if not prefix:
        return []
    return sorted({(p.pw_uid, p.pw_gid) for p in pwd.getpwall()
                   if p.pw_name.startswith(prefix) and p.pw_uid != 0})


def _lock_dir(path: str) -> str:
    """Create ``path`` (0700, owned by us) or refuse one someone else could tamper with."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise PermissionError(f"{path} must be a folder owned by uid {os.geteuid()}, mode 0700")
    return path


@dataclass
class Lease:
    """A uid (and gid) leased for one kernel; :meth:`release` gives it back."""

    uid: int
    gid: int
    fd: int | None = None

    @property
    def shared(self) -> bool:
        """True for the fallback: a uid other kernels may be using at the same time."""
        return self.fd is None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def lease(accounts: list[tuple[int, int]], fallback: tuple[int, int],
          lock_dir: str = LOCK_DIR, start: int | None = None) -> Lease:
    """Lease a free account of ``accounts``, else (all leased) return ``fallback`` (shared).

    ``start`` picks where the search begins (default: from the process id),
    so that workers do not all contend for the first account.  No account at
    all is :class:`PoolMissing`, never the shared fallback.
    """
    if not accounts:
        raise PoolMissing(f"no {POOL_PREFIX}* accounts to run the kernel as (uid "
                          f"{fallback[0]} is shared by every kernel: refused); as root run "
                          "`bash tools/install-system-deps.sh`")
    folder = _lock_dir(lock_dir)
    n = len(accounts)
    first = (os.getpid() if start is None else start) % n
    for k in range(n):
        uid, gid = accounts[(first + k) % n]
        fd = os.open(os.path.join(folder, f"{uid}.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue
            raise
        return Lease(uid, gid, fd)
    _warn_once(f"all {n} rnn-sbx-* accounts are in use: extra kernels share uid "
               f"{fallback[0]} (create more accounts or run fewer workers)")
    return Lease(*fallback)
