"""The bubblewrap command line that puts a student kernel in its sandbox.

What the sandbox shows (everything else of the host is absent, not just
unreadable):

- read-only: ``/usr`` (and the ``/bin``, ``/lib*`` links or folders), a few
  files of ``/etc`` that the dynamic linker and libc read, the grader's Python
  environment (relocated to :data:`SANDBOX_VENV`, plus the base interpreter it
  points at), and the student-facing packages under :data:`SANDBOX_LIB`;
- writable: the scratch copy of one submission at the kernel's cwd and home,
  a private size-limited tmpfs ``/tmp``, and the folder of the kernel's
  connection file and zmq ipc sockets (same path inside and out, because the
  socket paths are written in the connection file; the caller makes both the
  scratch and this folder size-limited tmpfs mounts where it can: see
  ``docs/security.md``, "Every writable place of the sandbox");
- the root of the sandbox and ``/dev`` (both tmpfs, i.e. memory) are
  remounted read-only once built, so nothing else is writable; there is no
  ``/dev/shm`` (no POSIX semaphores, so no ``multiprocessing``).

Namespaces: user (with further user namespaces disabled), pid, network (only
an unconfigured loopback), ipc, uts and cgroup; a new session (no TIOCSTI on
the grader's terminal); no capabilities; a clean environment; killed when the
grader dies.

When the grader runs as root, the kernel must not.  ``unshare --mount`` gives
a private mount namespace in which a few lines of ``sh`` bind every path the
kernel needs under a staging tmpfs (root may read paths such as
``/root/.pyenv`` that the kernel's uid may not traverse); ``setpriv`` then
drops to the kernel's uid, with no capabilities and ``no_new_privs``, and
execs the same unprivileged bubblewrap as above.  Every step execs the next,
so bubblewrap's parent is the grader itself: ``--die-with-parent`` relies on
a parent-death signal, which a parent of another uid could only send with
CAP_KILL (a root bubblewrap monitor drops it).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import tempfile

# Where the grader's Python environment (sys.prefix) appears in the sandbox.
SANDBOX_VENV = "/opt/python-env"
# Folder on the kernel's PYTHONPATH that holds the student-facing packages.
SANDBOX_LIB = "/opt/course-lib"
# Default home and cwd of the kernel (the scratch copy is bound here).
SANDBOX_HOME = "/home/student"

# Top-level host folders that are links or folders of system libraries and tools.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Files of /etc that libc, the dynamic linker and Python read.  Not /etc as a
# whole: it can hold host secrets that a non-root grader account may read.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/alternatives",
)


class SandboxError(RuntimeError):
    """The sandbox could not be set up (a grader-side problem, not the student's)."""


@dataclasses.dataclass(frozen=True)
class Mount:
    """One bind mount: host path ``src`` shown at ``dest`` in the sandbox."""

    src: str
    dest: str
    writable: bool = False


@dataclasses.dataclass
class SandboxPlan:
    """Everything bubblewrap needs to know about one sandbox.

    ``mounts`` are the per-kernel binds (Python, packages, scratch, runtime
    folder); the system folders and ``/etc`` files are added by
    :func:`build_command`; ``data_files`` are small read-only files passed as
    file descriptors.  ``masked`` are sandbox paths hidden under an empty
    read-only tmpfs.  ``drop_to`` is ``(uid, gid)`` when the grader is root;
    ``stage_dir`` is then an empty host folder used as the mount point of the
    staging tmpfs.
    """

    mounts: list[Mount]
    env: dict[str, str]
    cwd: str
    tmp_bytes: int
    masked: list[str] = dataclasses.field(default_factory=list)
    drop_to: tuple[int, int] | None = None
    stage_dir: str | None = None
    etc_files: tuple[str, ...] = ETC_FILES
    hostname: str = "sandbox"
    # (open file descriptor, sandbox path): files copied in read-only (bwrap
    # --ro-bind-data); the caller passes the descriptors to the child.
    data_files: list[tuple[int, str]] = dataclasses.field(default_factory=list)


def _system_args() -> list[str]:
    """Read-only binds of the system folders, recreating merged-/usr links."""
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _inner_command(plan: SandboxPlan, command: list[str], sources: list[str], bwrap: str):
    """The unprivileged bubblewrap that runs ``command``; ``sources[i]`` feeds ``mounts[i]``."""
    args = [
        bwrap,
        "--unshare-user",
        # A student may not create user namespaces of their own: less kernel
        # attack surface, and no way to regain capabilities inside.
        "--disable-userns",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        plan.hostname,
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
    ]
    for key, value in plan.env.items():
        args += ["--setenv", key, value]
    args += _system_args()
    for path in plan.etc_files:
        args += ["--ro-bind-try", path, path]
    # bwrap's /dev is a tmpfs (half the RAM) owned by the sandbox user: freeze
    # it, or it is unlimited memory-backed storage.  The device nodes are
    # separate binds and stay usable (/dev/null...).
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    args += ["--size", str(plan.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    for mount, src in zip(plan.mounts, sources, strict=True):
        args += ["--bind" if mount.writable else "--ro-bind", src, mount.dest]
    for fd, dest in plan.data_files:
        args += ["--ro-bind-data", str(fd), dest]
    for path in plan.masked:
        args += ["--perms", "0555", "--tmpfs", path, "--remount-ro", path]
    # Built: freeze the root tmpfs so that only the binds above stay writable.
    args += ["--remount-ro", "/", "--chdir", plan.cwd, "--"]
    return args + list(command)


# Runs as root inside ``unshare --mount``: a tmpfs on the stage folder, then
# one bind per source at stage/0, stage/1, ...; then it execs the rest of argv.
_STAGE_SCRIPT = """set -e
stage=$1; count=$2; shift 2
mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev rnn-sbx-stage "$stage"
i=0
while [ "$i" -lt "$count" ]; do
  if [ -d "$1" ]; then mkdir "$stage/$i"; else : > "$stage/$i"; fi
  mount --bind "$1" "$stage/$i"
  i=$((i + 1)); shift
done
exec "$@"
"""


def build_command(
    plan: SandboxPlan,
    command: list[str],
    *,
    bwrap: str = "bwrap",
    setpriv: str = "setpriv",
    unshare: str = "unshare",
) -> list[str]:
    """The argv that runs ``command`` inside the sandbox described by ``plan``."""
    if plan.drop_to is None:
        return _inner_command(plan, command, [m.src for m in plan.mounts], bwrap)
    if not plan.stage_dir:
        raise SandboxError("a stage_dir is needed to drop privileges")
    uid, gid = plan.drop_to
    stage = plan.stage_dir
    sources = [f"{stage}/{index}" for index in range(len(plan.mounts))]
    staging = [unshare, "--mount", "--propagation", "private", "--", "sh", "-c", _STAGE_SCRIPT]
    staging += ["rnn-sandbox-stage", stage, str(len(plan.mounts))]
    staging += [mount.src for mount in plan.mounts]
    drop = [
        setpriv,
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
    return staging + drop + _inner_command(plan, command, sources, bwrap)


def find_bwrap() -> str | None:
    """Absolute path of the ``bwrap`` executable, or None."""
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=4)
def _probe(bwrap: str, setpriv: str | None, uid: int) -> tuple[bool, str]:
    root = uid == 0
    base = tempfile.mkdtemp(prefix="rnn-sbx-probe-")
    try:
        stage = os.path.join(base, "stage")
        os.mkdir(stage)
        plan = SandboxPlan(
            mounts=[],
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            tmp_bytes=1024 * 1024,
            drop_to=(65534, 65534) if root else None,
            stage_dir=stage if root else None,
        )
        argv = build_command(plan, ["true"], bwrap=bwrap, setpriv=setpriv or "setpriv")
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bubblewrap could not be run: {exc}"
        if proc.returncode != 0:
            lines = (proc.stderr or "").strip().splitlines() or [f"exit status {proc.returncode}"]
            return False, (
                f"bubblewrap cannot create a sandbox here ({lines[-1].strip()}); "
                "unprivileged user namespaces may be disabled"
            )
        return True, f"bubblewrap works ({bwrap})"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def sandbox_available() -> tuple[bool, str]:
    """Whether student kernels can be sandboxed here, and a one-line reason.

    Runs ``true`` in a sandbox built exactly like a kernel's (including the
    root-to-nobody drop when the grader is root).  The result is cached for the
    life of the process.
    """
    bwrap = find_bwrap()
    if bwrap is None:
        return False, (
            "bubblewrap (bwrap) is not installed: run tools/install-system-deps.sh "
            "or 'apt-get install bubblewrap'"
        )
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and (setpriv is None or shutil.which("unshare") is None):
        return False, "setpriv and unshare (util-linux) are needed to drop root privileges"
    return _probe(bwrap, setpriv, os.geteuid())


def unavailable_reason() -> str | None:
    """None when kernels can be sandboxed here, else the one-line reason why not."""
    ok, reason = sandbox_available()
    return None if ok else reason
