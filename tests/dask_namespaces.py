"""A dask.distributed cluster on this machine whose processes share no folder with the grader.

:class:`Cluster` starts a ``dask scheduler`` and ``dask worker`` processes, each in a mount
namespace of its own (``unshare --mount --propagation private``, root only, as in CI) where

* ``/tmp`` is a private, empty tmpfs (the test's course folders live under ``/tmp``: gone);
* every folder of ``hide`` (the repository, itself a course folder, and the test's course)
  is covered by an empty tmpfs, read-only, into which only the paths of ``keep`` (the Python
  environment and the grader's code) are bound back, read-only.

So a worker sees the interpreter, the packages and the system, never a course's source,
release, gradebook or submissions: what it grades comes as the job's bytes, and what it
grades goes back as the result's.  The student kernels inside still run in bubblewrap (the
sandbox stages its own binds in a mount namespace of its own, see
``autograder/sandbox/bwrap.py``).  Each process is a session of its own, so that a test
can SIGKILL a worker or the scheduler with everything it started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from postgres_cluster import free_port  # the tests' one home of a free port

REPO = Path(__file__).resolve().parents[1]
KEEP = (Path(sys.prefix), REPO / "autograder", REPO / "rnn_course")
"""What a grading worker needs of the repository: the environment and the code it imports."""

# Runs as root in the new mount namespace, then execs the dask command ("$@").  $1: the
# folders to hide, $2: the paths to bind back (both ':'-separated), then the command.
ISOLATE = r"""
set -eu
hide=$1; keep=$2; shift 2
# the paths to keep are bound aside first (under /mnt, outside /tmp and the hidden
# folders): a checkout under /tmp (a fresh clone in mktemp's folder) keeps its .venv
mount -t tmpfs -o mode=700,size=1m tmpfs /mnt
IFS=:
i=0
for p in $keep; do
  i=$((i+1)); mkdir "/mnt/$i"; mount --rbind "$p" "/mnt/$i"
done
mount -t tmpfs -o mode=1777,size=2g tmpfs /tmp
for h in $hide; do
  case "$h" in /tmp/*) mkdir -p "$h";; esac  # (in the new /tmp: a checkout under /tmp)
  [ -d "$h" ] && mount -t tmpfs -o mode=755,size=1m tmpfs "$h"
done
i=0
for p in $keep; do
  i=$((i+1)); mkdir -p "$p"; mount --move "/mnt/$i" "$p"
  mount -o remount,bind,ro "$p"
done
for h in $hide; do
  [ -d "$h" ] && mount -o remount,ro "$h"
done
umount /mnt
unset IFS
exec "$@"
"""


def isolated(argv: list[str], hide: list[Path], keep=KEEP) -> list[str]:
    """``argv`` run in a mount namespace of its own that hides ``hide`` (see the module)."""
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", ISOLATE, "sh",
            ":".join(map(str, hide)), ":".join(map(str, keep)), *argv]


class Cluster:
    """A scheduler and ``workers`` single-threaded workers, each in its own namespace."""

    def __init__(self, hide: list[Path], logs: Path, workers: int = 2):
        self.hide = [REPO, *hide]
        self.logs = logs
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.names = [f"w{i}" for i in range(1, workers + 1)]
        self._log_files = []

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        dask = str(Path(sys.executable).parent / "dask")
        log = open(self.logs / f"{name}-{time.monotonic_ns()}.log", "w")
        self._log_files.append(log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RNN_COURSE_")}
        return subprocess.Popen(isolated([dask, *argv], self.hide), stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd="/",
                                start_new_session=True)

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("scheduler", [
            "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
            "--no-dashboard", "--dashboard-address", "127.0.0.1:0"])

    def start_worker(self, name: str) -> None:
        self.workers[name] = self._spawn(name, [
            "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
            "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--host", "127.0.0.1",
            "--death-timeout", "120"])

    def restart_workers(self) -> None:
        """New workers for the old ones, which stop when they lose their scheduler (as a
        Deployment's pods are restarted); an old one still finishing is killed."""
        old = dict(self.workers)
        for name in old:
            self.start_worker(name)
        for proc in old.values():
            self.kill(proc)

    def start(self) -> Cluster:
        self.start_scheduler()
        for name in self.names:
            self.start_worker(name)
        self.wait_for_workers(len(self.names))
        return self

    def client(self, timeout="30s"):
        from distributed import Client

        return Client(self.address, timeout=timeout)

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        with self.client(timeout=f"{timeout}s") as client:
            client.wait_for_workers(n, timeout=timeout)

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL ``proc``'s whole session (the process and everything it started)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(30)

    def kill_scheduler(self) -> None:
        self.kill(self.scheduler)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc is not None and proc.poll() is None:
                self.kill(proc)
        for log in self._log_files:
            log.close()

    def worker_of(self, pid: int) -> str | None:
        """The name of the worker whose session ``pid`` belongs to, or None."""
        roots = {proc.pid: name for name, proc in self.workers.items() if proc.poll() is None}
        while pid > 1:
            if pid in roots:
                return roots[pid]
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return None
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid
        return None


def processes_running(argv: list[str]) -> list[int]:
    """Pids of the processes whose command line is exactly ``argv``."""
    want = "\0".join(argv) + "\0"
    out = []
    for entry in os.listdir("/proc"):
        if re.fullmatch(r"\d+", entry):
            try:
                if Path(f"/proc/{entry}/cmdline").read_text() == want:
                    out.append(int(entry))
            except OSError:
                continue
    return out
