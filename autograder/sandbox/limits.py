"""Resource limits of one sandboxed notebook run, and how they reach the kernel.

The kernel-side limits come in two layers.  The inner one is POSIX rlimits, set
in the launching child just before it execs bubblewrap, so bubblewrap, the
kernel and everything the student's code forks inherit them and none of them
can raise them again; they bound each process.  The outer one bounds the
submission as a whole: a cgroup (memory, tasks; :mod:`.cgroups`) that the same
child joins before it execs, and a size-limited scratch folder
(:mod:`.scratch`).  The grader-side
limits (timeouts, output caps) live in the same dataclass so that a caller
configures a whole run with one object.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from collections.abc import Callable

MiB = 1024**2
GiB = 1024**3

# Seconds between the soft CPU limit (SIGXCPU, which we report as cpu_limit)
# and the hard one (SIGKILL), for code that catches or ignores SIGXCPU.
CPU_HARD_GRACE_SECONDS = 2


@dataclasses.dataclass(frozen=True)
class Limits:
    """Every limit a single notebook execution runs under.

    Kernel side (enforced by the operating system inside the sandbox):

    - ``memory_bytes``: address space of each process (RLIMIT_AS); allocations
      beyond it fail with ``MemoryError`` instead of exhausting the host.
    - ``cpu_seconds``: CPU time of each process (RLIMIT_CPU); SIGXCPU, then
      SIGKILL two seconds later.
    - ``max_processes``: how many more processes/threads the kernel's user may
      create (RLIMIT_NPROC, counted on top of what that uid already runs).
    - ``file_bytes``: largest file the kernel may write (RLIMIT_FSIZE).
    - ``open_files``: open file descriptors per process (RLIMIT_NOFILE).
    - ``tmp_bytes``: size of the private ``/tmp`` (a tmpfs, i.e. memory).

    Whole submission (everything the kernel starts, together):

    - ``submission_memory_bytes``: memory of all its processes, their tmpfs
      pages included, without swap (cgroup ``memory.max`` /
      ``memory.limit_in_bytes``); past it the kernel's OOM killer ends one of
      them.
    - ``submission_tasks``: processes and threads at once (cgroup ``pids.max``);
      forks past it fail.
    - ``scratch_bytes``: bytes in the scratch folder, the kernel's home (a
      tmpfs of that size; root graders only).

    Grader side (enforced by the notebook client):

    - ``cell_timeout``: seconds a cell may run before it is interrupted.
    - ``wall_seconds``: seconds the whole notebook may take, kernel start
      included; then the sandbox's process group is killed.
    - ``cell_output_bytes`` / ``notebook_output_bytes``: output kept per cell
      and per notebook; the rest is dropped while it arrives.
    """

    memory_bytes: int = 2 * GiB
    cpu_seconds: int = 600
    max_processes: int = 64
    file_bytes: int = 64 * MiB
    open_files: int = 256
    tmp_bytes: int = 256 * MiB
    submission_memory_bytes: int = 2 * GiB
    submission_tasks: int = 256
    scratch_bytes: int = 1 * GiB
    cell_timeout: int = 60
    wall_seconds: int = 900
    cell_output_bytes: int = 1_000_000
    notebook_output_bytes: int = 5_000_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{field.name} must be a positive int, got {value!r}")


# The fields of Limits enforced by the notebook client (the grader's side); the
# others are enforced on the kernel's side, and SandboxedKernelManager takes them.
CLIENT_LIMITS = ("cell_timeout", "wall_seconds", "cell_output_bytes", "notebook_output_bytes")
KERNEL_LIMITS = tuple(f.name for f in dataclasses.fields(Limits) if f.name not in CLIENT_LIMITS)
OUTPUT_LIMITS = ("cell_output_bytes", "notebook_output_bytes")
"""The client limits that the notebook client takes as traits of its own."""

# One line of help per limit, for the configurable trait each gets (configurable_limits).
LIMIT_HELP = {
    "memory_bytes": "Address-space limit of each kernel process (RLIMIT_AS).",
    "cpu_seconds": "CPU seconds per kernel process (RLIMIT_CPU): SIGXCPU, then SIGKILL.",
    "max_processes": "Processes/threads the kernel may add to those its uid already runs "
                     "(RLIMIT_NPROC).",
    "file_bytes": "Largest file the kernel may write (RLIMIT_FSIZE).",
    "open_files": "Open file descriptors per process (RLIMIT_NOFILE).",
    "tmp_bytes": "Size of the kernel's private /tmp (a tmpfs, so memory).",
    "submission_memory_bytes": "Memory of everything the kernel starts, together, without "
                               "swap (a cgroup).",
    "submission_tasks": "Processes and threads of everything the kernel starts, together "
                        "(a cgroup).",
    "scratch_bytes": "Size of the scratch folder as the kernel sees it (a tmpfs; root "
                     "graders only).",
    "cell_timeout": "Seconds a cell may run before it is interrupted.",
    "wall_seconds": "Seconds the whole notebook may take, kernel start included.",
    "cell_output_bytes": "Output bytes kept per cell; the rest is dropped as it arrives.",
    "notebook_output_bytes": "Output bytes kept per notebook; the rest is dropped as it "
                             "arrives.",
}


def configurable_limits(names: tuple[str, ...]) -> type:
    """A traitlets mixin with one configurable ``Int`` trait per :class:`Limits` field in
    ``names``, its default :class:`Limits`'s: the classes that take limits as traits
    (``SandboxedKernelManager``, the notebook client) restate none of them."""
    import types

    from traitlets import HasTraits, Int

    defaults = Limits()
    traits = {name: Int(getattr(defaults, name), help=LIMIT_HELP[name]).tag(config=True)
              for name in names}
    return types.new_class("ConfigurableLimits", (HasTraits,),
                           exec_body=lambda ns: ns.update(traits))


def count_tasks(uid: int) -> int:
    """Number of tasks (processes and threads) that ``uid`` runs on this host now.

    RLIMIT_NPROC is checked against *all* tasks of the real uid, not only the
    sandbox's, so the limit we set is this count plus the sandbox's allowance.
    """
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as fh:
                status = fh.read()
        except OSError:
            continue  # the process ended while we looked
        owner = threads = None
        for line in status.splitlines():
            if line.startswith("Uid:"):
                owner = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        if owner == uid:
            total += threads or 1
    return total


def _clamp(value: int, which: int) -> int:
    """``value`` lowered to the current hard limit, which only root may raise."""
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY and os.geteuid() != 0:
        return min(value, hard)
    return value


def rlimits_for(limits: Limits, uid: int) -> dict[int, tuple[int, int]]:
    """The (soft, hard) rlimits for a kernel that will run as ``uid``."""
    nproc = _clamp(count_tasks(uid) + limits.max_processes, resource.RLIMIT_NPROC)
    cpu = limits.cpu_seconds
    return {
        resource.RLIMIT_AS: (limits.memory_bytes, limits.memory_bytes),
        resource.RLIMIT_CPU: (cpu, cpu + CPU_HARD_GRACE_SECONDS),
        resource.RLIMIT_NPROC: (nproc, nproc),
        resource.RLIMIT_FSIZE: (limits.file_bytes, limits.file_bytes),
        resource.RLIMIT_NOFILE: (limits.open_files, limits.open_files),
        # A core dump of a 2 GiB kernel would land in the scratch folder.
        resource.RLIMIT_CORE: (0, 0),
    }


def make_preexec(
    rlimits: dict[int, tuple[int, int]], join: Callable[[], None] | None = None
) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: ``join()``, then apply ``rlimits``.

    It runs in the forked child before exec, so it only makes system calls on
    precomputed values (``join`` moves the child into its cgroup, see
    :meth:`.cgroups.Group.join`): no imports, no allocation-heavy work,
    nothing that could wait on a lock held by another thread of the grader at
    fork time.  If ``join`` raises, the launch fails: nothing runs outside
    its group.
    """
    items = [(which, (min(soft, hard), hard)) for which, (soft, hard) in rlimits.items()]

    def _apply() -> None:
        if join is not None:
            join()
        for which, pair in items:
            resource.setrlimit(which, pair)

    return _apply
