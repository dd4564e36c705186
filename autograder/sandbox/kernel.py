"""A jupyter_client kernel manager that starts ipykernel inside bubblewrap.

Use it wherever a ``KernelManager`` class is accepted, e.g.
``NotebookClient(nb, km=SandboxedKernelManager(scratch_dir=...))`` or the
``kernel_manager_class`` trait of nbclient / nbgrader's ``Execute``.  Every
setting is a configurable trait (``c.SandboxedKernelManager.memory_bytes``...).

Everything the kernel starts runs in a cgroup of its own (memory and tasks of
the whole submission, :mod:`.cgroups`) and, when the grader is root, sees its
scratch folder on a size-limited tmpfs (:mod:`.scratch`); after the kernel ends,
:attr:`SandboxedKernelManager.cgroup_usage` and ``scratch_full`` say which of
those limits it reached.

The kernel talks to the grader over zmq **ipc** sockets in a per-kernel
runtime folder that is bound into the sandbox at the same path (a 64 KiB tmpfs
of its own when the grader is root), through a relay that runs as the
kernel's uid and connects to each socket once (:mod:`.relay`); the sandbox
has no network at all.  The kernel spec is built here, not looked up: the
notebook's metadata cannot choose another kernel or interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import typing as t

import zmq
from jupyter_client.kernelspec import KernelSpec
from traitlets import Bool, CaselessStrEnum, Dict, Int, List, Unicode, default

from . import cgroups, uids
from . import relay as relay_process
from .bwrap import (
    ETC_FILES,
    SANDBOX_HOME,
    SANDBOX_LIB,
    SANDBOX_VENV,
    Mount,
    SandboxError,
    SandboxPlan,
    build_command,
)
from .client import ReadyKernelManager
from .fontcache import matplotlib_font_list
from .limits import KERNEL_LIMITS, Limits, configurable_limits, make_preexec, rlimits_for
from .scratch import BoundedScratch, bound_runtime_folder, unmount_under
from .stale import RUNTIME_PREFIX, sweep_runtime
from .uids import LOCK_DIR, POOL_PREFIX

PRELOAD_MODULES = ("numpy", "matplotlib.pyplot")
"""What every notebook of the course imports first (``preload_modules``' default)."""
# Run by the kernel as it starts (IPKernelApp.exec_lines), in a namespace of its own.
_PRELOAD = """\
import importlib, os, sys
cwd, path = os.getcwd(), sys.path[:]
sys.path[:] = [p for p in path if p not in ("", ".", cwd)]
os.chdir("/")
try:
    for name in NAMES:
        try:
            importlib.import_module(name)
        except Exception:
            pass
finally:
    os.chdir(cwd)
    sys.path[:] = path
"""
# Bytes of the kernel's stderr kept for diagnostics (bwrap errors, tracebacks).
LOG_TAIL_BYTES = 4096
RELAY_SCRIPT = os.path.abspath(relay_process.__file__)
RELAY_MEMORY_FACTOR = 2
RELAY_MEMORY_BASE = 512 * 1024**2
"""The relay's address space: RELAY_MEMORY_FACTOR x max_message_bytes + RELAY_MEMORY_BASE."""
RELAY_START_SECONDS = 20.0


def relay_preexec(address_space: int):
    """preexec_fn of the relay: its own session, and its address space bounded."""

    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _chown_tree(path: str, uid: int, gid: int) -> None:
    """Give ``path`` and everything below it to ``uid:gid``, never following links.

    A submission may contain symlinks (to /etc/shadow, say): following one
    would hand a host file to the kernel's user.
    """
    os.chown(path, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _package_location(name: str) -> tuple[str, bool]:
    """Host path of importable ``name`` and whether it is a package folder."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise SandboxError(f"student package {name!r} is not importable by the grader")
    if spec.submodule_search_locations:
        return os.path.realpath(list(spec.submodule_search_locations)[0]), True
    if not spec.origin:
        raise SandboxError(f"student package {name!r} has no file to bind")
    return os.path.realpath(spec.origin), False


def prebuild_font_list(config=None) -> bool:
    """Build matplotlib's font list now, before worker processes are forked.

    Each process builds it once, in a throw-away sandbox (0.5 s of CPU); built
    in the coordinator before the pool forks, every worker shares that one
    build.  Best effort, like the list itself.  True when there is a list.
    """
    try:
        return SandboxedKernelManager(config=config).font_list() is not None
    except Exception:  # no sandbox here: kernels build their own, as without the cache
        return False


def compile_student_packages(config=None) -> list[str]:
    """Byte-compile the student packages where they lie; returns the folders compiled.

    A sandboxed kernel cannot write ``.pyc`` files (``PYTHONDONTWRITEBYTECODE``,
    read-only binds), so without bytecode beside the sources every kernel
    compiles them again: about 0.1 s of CPU per ``rnn_cell`` submission.
    Bytecode is checked against the source's size and modification time, so
    an edited source is never run stale.  Best effort: a folder the grader
    may not write is left as it is.
    """
    import compileall

    done = []
    for name in SandboxedKernelManager(config=config).student_packages:
        try:
            src, is_dir = _package_location(name)
            ok = (compileall.compile_dir(src, quiet=2) if is_dir
                  else compileall.compile_file(src, quiet=2))
        except (SandboxError, OSError):
            continue
        if ok:
            done.append(src)
    return done


def _traversable_by(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid:gid`` may walk down to ``path`` (search permission on each folder)."""
    current = "/"
    for part in [""] + os.path.realpath(path).strip("/").split("/"):
        current = os.path.join(current, part)
        st = os.stat(current)
        if st.st_uid == uid:
            bit = 0o100
        elif st.st_gid == gid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class SandboxedKernelManager(ReadyKernelManager, configurable_limits(KERNEL_LIMITS)):
    """Starts an ipykernel in a bubblewrap sandbox with resource limits."""

    # --- what the kernel sees -------------------------------------------------
    scratch_dir = Unicode(
        "",
        help="Host folder holding the scratch copy of ONE submission; the only "
        "persistent writable place of the kernel, bound at `sandbox_home`.  Empty: "
        "use the `cwd` given to start_kernel (nbclient passes the notebook's folder). "
        "When the grader is root it is copied into a tmpfs of `scratch_bytes` that the "
        "kernel sees instead, and what the kernel left there is copied back (links "
        "never followed) once it ends; if no tmpfs can be mounted, the folder itself is "
        "chowned (recursively, links not followed) to the kernel's uid.  Pass a copy the "
        "caller owns.",
    ).tag(config=True)
    sandbox_home = Unicode(
        SANDBOX_HOME, help="Path of the scratch folder inside the sandbox: cwd and HOME."
    ).tag(config=True)
    student_packages = List(
        Unicode(),
        ["rnn_course"],
        help="Importable packages the student's code may use beyond the Python "
        f"environment; each is bound read-only under {SANDBOX_LIB} (on PYTHONPATH). "
        "Editable installs point into the course folder, which the sandbox does not show.",
    ).tag(config=True)
    preload_modules = List(
        Unicode(),
        list(PRELOAD_MODULES),
        help="Modules the kernel imports as it starts, before any cell runs, so that a "
        "kernel started ahead of need has them imported while it waits (matplotlib.pyplot "
        "alone is about 0.4 s of CPU).  Imported the same way whether the kernel was "
        "started ahead or on demand: from the Python environment and the student "
        "packages only, never from the scratch folder, with / as working folder (a "
        "submission's matplotlibrc or numpy.py is not read).  One that fails to import "
        "is left for the notebook to import itself.  Empty: nothing is imported.",
    ).tag(config=True)
    hidden_packages = List(
        Unicode(),
        ["autograder", "debugpy"],
        help="Packages that must stay invisible to the kernel.  If one is installed "
        "inside the Python environment (not editable), an empty read-only folder "
        "hides it; if it lives elsewhere (editable), it is simply not bound.  "
        "debugpy: a grading kernel needs no debugger, and ipykernel importing it "
        "costs each kernel 80 ms of CPU.",
    ).tag(config=True)
    extra_ro_binds = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        help="Extra read-only binds, {sandbox_path: host_path}, e.g. a data folder.",
    ).tag(config=True)
    etc_files = List(
        Unicode(), list(ETC_FILES), help="Files of /etc bound read-only if they exist."
    ).tag(config=True)
    extra_env = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        help="Environment variables added to the kernel's minimal environment "
        "(e.g. RNN_COURSE_GRADING_DIR).  Nothing else of the grader's environment "
        "reaches the kernel.",
    ).tag(config=True)

    # --- who runs it ------------------------------------------------------------
    kernel_uid_pool = Unicode(
        POOL_PREFIX,
        help="When the grader is root, each kernel leases for its lifetime a uid of its "
        "own among the system accounts whose names start with this prefix (`make setup` "
        "creates rnn-sbx-00 .. rnn-sbx-15): RLIMIT_NPROC counts per uid, so one "
        "student's fork bomb cannot starve another's kernel.  All leased: the kernel "
        "runs as `kernel_uid` (shared, flagged); no such account: refused (uids.PoolMissing).",
    ).tag(config=True)
    uid_lock_dir = Unicode(
        LOCK_DIR, help="Root-owned folder of the uid leases' lock files (see kernel_uid_pool)."
    ).tag(config=True)
    kernel_uid = Int(
        65534,
        help="uid of the kernel when the grader runs as root and no pool account is free "
        "(default: nobody, shared by such kernels).  Ignored when the grader is not root "
        "(the kernel then runs as the grader's uid, isolated by an unprivileged user "
        "namespace).",
    ).tag(config=True)
    kernel_gid = Int(65534, help="gid of the kernel when the grader runs as root.").tag(
        config=True
    )

    # --- plumbing -----------------------------------------------------------------------
    bwrap_path = Unicode("bwrap", help="The bubblewrap executable.").tag(config=True)
    setpriv_path = Unicode(
        "setpriv", help="util-linux setpriv, used to drop root privileges."
    ).tag(config=True)
    runtime_base = Unicode(
        help="Host folder under which each kernel gets a private runtime folder "
        "(connection file, ipc sockets).  Keep it short: unix socket paths are "
        "limited to 107 bytes.  Default: the system temporary folder."
    ).tag(config=True)
    transport = CaselessStrEnum(
        ["ipc"],
        default_value="ipc",
        help="Always zmq ipc: the sandbox has no network, so tcp cannot work.",
    ).tag(config=True)
    max_message_bytes = Int(
        256 * 1024**2,
        help="Largest message, all frames together, the grader accepts from the kernel. "
        "With the relay (the default), a bigger message is dropped by the relay (flag "
        "output_truncated), and one too big for the relay's own memory "
        "(RELAY_MEMORY_FACTOR times this, plus a base) stops the notebook (flag "
        "message_limit); the grader never holds it.  The client's sockets also refuse any "
        "frame over this size (zmq MAXMSGSIZE).",
    ).tag(config=True)
    relay = Bool(
        True,
        help="Put a relay process (autograder/sandbox/relay.py), memory-bounded, between "
        "the kernel and the grader's client, so that a message is bounded as a whole "
        "before the grader holds it.  Off: only each frame is bounded.",
    ).tag(config=True)
    share_font_list = Bool(
        True,
        help="Give every kernel a read-only copy of matplotlib's font list, built once per "
        "grader process in a sandbox, instead of each kernel rebuilding it (~0.4 s).",
    ).tag(config=True)
    autorestart = Bool(False, help="Never restart a sandboxed kernel that died.").tag(
        config=True
    )

    @default("runtime_base")
    def _runtime_base_default(self) -> str:
        return tempfile.gettempdir()

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self._base_dir: str | None = None
        self._run_dir: str | None = None
        self._log: t.IO[bytes] | None = None
        self._proc: subprocess.Popen | None = None
        self._spec: KernelSpec | None = None
        self._scratch = ""
        self._data_fds: list[tuple[int, str]] = []
        self._lease: uids.Lease | None = None
        self._cgroup: cgroups.Group | None = None
        self._bounded: BoundedScratch | None = None
        #: Process group of the sandbox (the launcher starts a new session);
        #: killing it ends the sandbox.  Set once the kernel is launched.
        self.sandbox_pgid: int | None = None
        #: Counters of the sandbox's cgroup, read when it is removed (None:
        #: no cgroup, or the kernel has not ended yet).
        self.cgroup_usage: cgroups.Usage | None = None
        #: Whether the kernel filled its scratch folder (set when it ends).
        self.scratch_full = False
        self._relay: subprocess.Popen | None = None
        self._relay_dir: str | None = None
        #: Messages the relay dropped (over ``max_message_bytes``), and whether it
        #: died (a message too big for its memory); both read when the kernel ends.
        self.relay_dropped = 0
        self.relay_died = False

    # --- limits as one object ---------------------------------------------------------
    def apply_limits(self, limits: Limits) -> None:
        """Set the kernel-side traits from a :class:`Limits`."""
        for name in KERNEL_LIMITS:
            setattr(self, name, getattr(limits, name))

    def limits(self) -> Limits:
        """The kernel-side limits in force, as a :class:`Limits`."""
        return Limits(**{name: getattr(self, name) for name in KERNEL_LIMITS})

    # --- the Python environment ---------------------------------------------------------
    def _python_mounts(self) -> tuple[list[Mount], str, str]:
        """Binds of the interpreter, its path and ipykernel_launcher's path, in the sandbox."""
        # The grader's own environment: it has ipykernel, numpy and the course's
        # pinned dependencies, and the kernel must match what the grader checked.
        prefix = os.path.realpath(sys.prefix)
        mounts = [Mount(prefix, SANDBOX_VENV)]
        base = os.path.realpath(sys.base_prefix)
        real_exe = os.path.realpath(sys.executable)
        if base != prefix and not _within(base, "/usr"):
            # A venv's python is a symlink to the base interpreter: bind that
            # prefix at its own path (and only it, not e.g. all of /root).
            mounts.append(Mount(base, base))
        if not any(_within(real_exe, m.src) for m in mounts) and not _within(real_exe, "/usr"):
            exe_dir = os.path.dirname(real_exe)
            mounts.append(Mount(exe_dir, exe_dir))
        exe = sys.executable
        if not _within(exe, sys.prefix):
            raise SandboxError(f"cannot place the interpreter {exe} inside the sandbox")
        python = SANDBOX_VENV + exe[len(sys.prefix.rstrip("/")) :]
        launcher_spec = importlib.util.find_spec("ipykernel_launcher")
        if launcher_spec is None or not launcher_spec.origin:
            raise SandboxError("ipykernel is not installed in the grader's environment")
        launcher = os.path.realpath(launcher_spec.origin)
        if not _within(launcher, prefix):
            raise SandboxError("ipykernel must be installed in the Python environment")
        return mounts, python, SANDBOX_VENV + launcher[len(prefix) :]

    @property
    def kernel_spec(self) -> KernelSpec:  # type: ignore[override]
        """A fixed ipykernel spec; the notebook's kernelspec name is ignored."""
        if self._spec is None:
            _, python, launcher = self._python_mounts()
            self._spec = KernelSpec(
                # The launcher by path, not `-m`: with -m, sys.path[0] would be
                # the scratch folder and a student's `ipykernel_launcher.py`
                # would replace the kernel.  ipykernel adds the cwd back later.
                argv=[python, launcher, "-f", "{connection_file}"],
                display_name="Python 3 (sandboxed)",
                language="python",
                # Signals cannot cross into the sandbox's new session; ipykernel
                # handles interrupt_request on the control channel.
                interrupt_mode="message",
                metadata={},
            )
        return self._spec

    @property
    def ipykernel(self) -> bool:
        """Always an ipykernel (nbclient then passes the in-memory history option)."""
        return True

    # --- building the sandbox ---------------------------------------------------------------
    def _kernel_ids(self) -> tuple[int, int]:
        if os.geteuid() == 0:
            if self._lease is not None:
                return self._lease.uid, self._lease.gid
            return self.kernel_uid, self.kernel_gid
        return os.geteuid(), os.getegid()

    def _lease_uid(self) -> None:
        """Take a uid of the pool for this kernel (root only; see ``kernel_uid_pool``)."""
        self._release_uid()
        if os.geteuid() == 0:
            self._lease = uids.lease(uids.pool_accounts(self.kernel_uid_pool),
                                     (self.kernel_uid, self.kernel_gid), self.uid_lock_dir)

    @property
    def shares_uid(self) -> bool:
        """Whether the kernel runs as the shared fallback uid (root grader, no pool account
        was free): its processes then count against the same RLIMIT_NPROC as others'."""
        return self._lease is not None and self._lease.shared

    def _release_uid(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def _env(self) -> dict[str, str]:
        env = {
            "HOME": self.sandbox_home,
            "PATH": f"{SANDBOX_VENV}/bin:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": SANDBOX_LIB,
            "PYTHONDONTWRITEBYTECODE": "1",
            # A submission may carry ~/.local: its site-packages stays out.
            "PYTHONNOUSERSITE": "1",
            "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            # glibc reserves 64 MiB of address space per malloc arena and
            # thread; with RLIMIT_AS that would eat the student's memory.
            "MALLOC_ARENA_MAX": "2",
            "LANG": "C.UTF-8",
            # Per-run state in the private /tmp, not in the scratch folder, and
            # no IPython/Jupyter start-up files from the submission.
            "IPYTHONDIR": "/tmp/ipython",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            "XDG_CACHE_HOME": "/tmp/cache",
            "JUPYTER_CONFIG_DIR": "/tmp/jupyter/config",
            "JUPYTER_DATA_DIR": "/tmp/jupyter/data",
            "JUPYTER_RUNTIME_DIR": "/tmp/jupyter/runtime",
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        env.update(self.extra_env)
        return env

    def _plan(self, scratch: str) -> SandboxPlan:
        assert self._run_dir is not None and self._base_dir is not None
        mounts, _, _ = self._python_mounts()
        venv = os.path.realpath(sys.prefix)
        masked = []
        for name in self.hidden_packages:
            spec = importlib.util.find_spec(name)
            locations = list(spec.submodule_search_locations or []) if spec else []
            for location in locations:
                location = os.path.realpath(location)
                if _within(location, venv):
                    masked.append(SANDBOX_VENV + location[len(venv) :])
        for name in self.student_packages:
            if name in self.hidden_packages:
                raise SandboxError(f"{name!r} is both a student and a hidden package")
            src, is_dir = _package_location(name)
            mounts.append(Mount(src, f"{SANDBOX_LIB}/{name}" + ("" if is_dir else ".py")))
        for dest, src in sorted(self.extra_ro_binds.items()):
            if not os.path.isabs(dest) or os.path.normpath(dest) == "/":
                raise SandboxError(f"extra_ro_binds: {dest!r} is not an absolute sandbox path")
            mounts.append(Mount(os.path.realpath(src), os.path.normpath(dest)))
        for mount in mounts:
            # A scratch folder holding (say) the Python environment would make
            # it writable through the scratch bind: a caller's mistake, refused.
            if _within(mount.src, scratch):
                raise SandboxError(f"scratch folder {scratch} contains {mount.src}")
        # the size-limited copy of the scratch folder where there is one
        home = self._bounded.mountpoint if self._bounded is not None else scratch
        mounts.append(Mount(home, self.sandbox_home, writable=True))
        mounts.append(Mount(self._run_dir, self._run_dir, writable=True))
        return self._make_plan(mounts, self._base_dir, masked=masked)

    def _make_plan(self, mounts: list[Mount], base_dir: str, **extra: t.Any) -> SandboxPlan:
        root = os.geteuid() == 0
        return SandboxPlan(
            mounts=mounts,
            env=self._env(),
            cwd=self.sandbox_home,
            tmp_bytes=self.tmp_bytes,
            drop_to=self._kernel_ids() if root else None,
            stage_dir=os.path.join(base_dir, "stage") if root else None,
            etc_files=tuple(self.etc_files),
            data_files=list(self._data_fds),
            **extra,
        )

    def _new_base_dir(self) -> str:
        """A private host folder for one sandbox: ``run/`` (kernel's) and ``stage/``."""
        uid, gid = self._kernel_ids()
        if not _traversable_by(self.runtime_base, uid, gid):
            # The unprivileged bubblewrap resolves the staged paths as that uid.
            raise SandboxError(
                f"runtime_base {self.runtime_base} is not reachable by uid {uid}: "
                "choose a folder every parent of which others may search"
            )
        sweep_runtime(self.runtime_base)
        # realpath: the ipc socket paths must read the same inside and out.
        prefix = f"{RUNTIME_PREFIX}{os.getpid()}-"
        base = os.path.realpath(tempfile.mkdtemp(prefix=prefix, dir=self.runtime_base))
        os.chmod(base, 0o755)
        run = os.path.join(base, "run")
        os.mkdir(run, 0o700)
        os.mkdir(os.path.join(base, "stage"), 0o755)
        if os.geteuid() == 0:
            os.chown(run, uid, gid)
        return base

    def run_python(self, code: str, timeout: float = 120) -> tuple[int, bytes]:
        """Run ``code`` with the sandboxed interpreter in a throw-away sandbox.

        For trusted set-up code only (it gets the kernel's view and limits,
        an empty scratch folder and no ipc folder).  Returns ``(status, stdout)``.
        """
        uid, _ = self._kernel_ids()
        base = self._new_base_dir()
        try:
            mounts, python, _ = self._python_mounts()
            mounts.append(Mount(os.path.join(base, "run"), self.sandbox_home, writable=True))
            argv = build_command(
                self._make_plan(mounts, base),
                [python, "-c", code],
                bwrap=self.bwrap_path,
                setpriv=self.setpriv_path,
            )
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                cwd=base,
                timeout=timeout,
                preexec_fn=make_preexec(rlimits_for(self.limits(), uid)),
            )
            return proc.returncode, proc.stdout
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def font_list(self) -> tuple[str, bytes] | None:
        """matplotlib's font list for this environment, built on first use per process."""
        if not self.share_font_list:
            return None
        key = os.path.realpath(sys.prefix)  # the list holds paths, the same for every uid
        return matplotlib_font_list(key, self.run_python)

    def _font_list_fds(self) -> list[tuple[int, str]]:
        """A memfd holding matplotlib's font list, bound into the kernel's MPLCONFIGDIR."""
        built = self.font_list()
        if built is None:
            return []
        name, body = built
        fd = os.memfd_create("rnn-sbx-fontlist")
        os.write(fd, body)
        os.lseek(fd, 0, os.SEEK_SET)
        return [(fd, f"{self._env()['MPLCONFIGDIR']}/{name}")]

    def _close_data_fds(self) -> None:
        for fd, _ in self._data_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._data_fds = []

    def _prepare_runtime(self, scratch: str) -> None:
        """Create the runtime folder and hand it, and the scratch copy, to the kernel's uid."""
        self._lease_uid()
        uid, gid = self._kernel_ids()
        self._base_dir = self._new_base_dir()
        self._run_dir = os.path.join(self._base_dir, "run")
        # the kernel writes there (its sockets): a tiny tmpfs of its own, not host disk
        bound_runtime_folder(self._run_dir, uid, gid)
        self._plan(scratch)  # refuses a bad scratch folder before anything is chowned
        self.cgroup_usage, self.scratch_full = None, False
        self._relay_dir, self.relay_dropped, self.relay_died = None, 0, False
        self._proc = None
        try:
            self._bounded = BoundedScratch.create(
                scratch, os.path.join(self._base_dir, "scratch"), self.scratch_bytes, uid, gid
            )
        except OSError as exc:
            raise SandboxError(
                f"cannot mount the scratch folder's {self.scratch_bytes}-byte tmpfs: {exc}"
            ) from exc
        self.hand_in()  # the folder as it is now: its copy in the tmpfs, or chowned
        self._cgroup = cgroups.default().create(self.submission_memory_bytes,
                                                self.submission_tasks)
        self.connection_file = os.path.join(self._run_dir, "kernel.json")
        self.ip = os.path.join(self._run_dir, "kernel-ipc")
        self._log = tempfile.TemporaryFile(prefix="rnn-sbx-log-")
        self._close_data_fds()
        self._data_fds = self._font_list_fds()

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The ipykernel command line, wrapped in bubblewrap."""
        inner = super().format_kernel_cmd(extra_arguments)
        if self.preload_modules:
            code = _PRELOAD.replace("NAMES", repr(tuple(self.preload_modules)))
            inner.append(f"--IPKernelApp.exec_lines=exec({code!r}, {{}})")
        return build_command(
            self._plan(self._scratch), inner, bwrap=self.bwrap_path, setpriv=self.setpriv_path
        )

    def live_path(self, host_path: str) -> str:
        """Where ``host_path``, a path inside the scratch folder, is while the kernel runs.

        With a bounded scratch (a root grader) the kernel works in a tmpfs copy,
        not in the host folder: a grader that hands the kernel files while it runs
        (or reads them back) must use this path.  Without one it is ``host_path``.
        """
        if self._bounded is None or not self._scratch:
            return str(host_path)
        rel = os.path.relpath(os.path.realpath(host_path), self._scratch)
        if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
            raise SandboxError(f"{host_path} is not inside the scratch folder {self._scratch}")
        return os.path.normpath(os.path.join(self._bounded.mountpoint, rel))

    def hand_in(self) -> None:
        """Show the kernel what its scratch folder holds now.

        Done at every start; again for a kernel started ahead of need
        (:func:`~.execute.start_kernel`) on an empty scratch folder, before any
        code runs in it: the grader then writes the submission's files into that
        host folder and calls this.  A bounded scratch (root grader) gets a fresh
        copy of the folder in its tmpfs; a root grader without one chowns the
        folder to the kernel's uid; otherwise the kernel sees the host folder
        itself.  Raises :class:`SandboxError` when the files cannot be handed in.
        """
        if not self._scratch or self._base_dir is None:
            raise SandboxError("no kernel was started to hand files to")
        uid, gid = self._kernel_ids()
        try:
            if self._bounded is not None:
                self._bounded.fill(uid, gid)
            elif os.geteuid() == 0:
                _chown_tree(self._scratch, uid, gid)
        except OSError as exc:
            raise SandboxError(
                f"cannot copy the scratch folder into its {self.scratch_bytes}-byte tmpfs: {exc}"
            ) from exc

    async def _async_pre_start_kernel(  # type: ignore[override]
        self, **kw: t.Any
    ) -> tuple[list[str], dict[str, t.Any]]:
        scratch = self.scratch_dir or kw.get("cwd") or ""
        if not scratch or not os.path.isdir(scratch):
            raise SandboxError(f"scratch folder {scratch!r} does not exist")
        self._scratch = os.path.realpath(scratch)
        if self._scratch == "/":
            raise SandboxError("the scratch folder cannot be /")
        try:
            self._prepare_runtime(self._scratch)
            kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
            if self.relay:
                # before the kernel's limits are worked out: the relay runs as the kernel's
                # uid, and its threads count in the uid's RLIMIT_NPROC like the kernel's own
                self._start_relay()
        except BaseException:
            self._discard_runtime()
            raise
        uid, gid = self._kernel_ids()
        if os.geteuid() == 0:
            # Written 0600 by root: the kernel must be able to read it.
            os.chown(self.connection_file, uid, gid)
        assert self._log is not None
        kw.update(
            # bubblewrap clears the environment anyway; this keeps the grader's
            # (database URLs, tokens) out of even the launcher processes.
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            cwd=self._run_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=make_preexec(
                rlimits_for(self.limits(), uid),
                join=self._cgroup.join if self._cgroup is not None else None,
            ),
            pass_fds=tuple(fd for fd, _ in self._data_fds),
        )
        return kernel_cmd, kw

    pre_start_kernel = _async_pre_start_kernel  # type: ignore[assignment]

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: t.Any) -> None:
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        except BaseException:
            self._discard_runtime()
            raise
        finally:
            self._close_data_fds()  # bubblewrap has its copies (or never will)
        assert self.provisioner is not None
        self._proc = getattr(self.provisioner, "process", None)
        self.sandbox_pgid = getattr(self.provisioner, "pgid", None)

    _launch_kernel = _async_launch_kernel  # type: ignore[assignment]

    # --- the relay between kernel and client -----------------------------------------------
    def _start_relay(self) -> None:
        """Start the relay (see :mod:`.relay`) and wait until its client-side sockets are bound.

        A root grader starts it as root (it binds its sockets in the grader's folder and
        opens its report file), and it then drops to the kernel's uid and gid by itself,
        before it touches any path of the kernel's runtime folder.  It gets the channels'
        ports on stdin (not the connection file, which the kernel may rewrite, nor the
        key, which it does not need).
        """
        assert self._base_dir is not None
        self._relay_dir = os.path.join(self._base_dir, "relay")
        os.mkdir(self._relay_dir, 0o700)  # the grader's only: the kernel cannot reach it
        cmd = [sys.executable, "-I", RELAY_SCRIPT, os.path.join(self._relay_dir, "c"),
               str(self.max_message_bytes), os.path.join(self._relay_dir, "dropped")]
        if os.geteuid() == 0:
            cmd += [str(i) for i in self._kernel_ids()]
        info = {"ip": self.ip, **{f"{channel}_port": getattr(self, f"{channel}_port")
                                  for channel in relay_process.CHANNELS}}
        memory = RELAY_MEMORY_FACTOR * self.max_message_bytes + RELAY_MEMORY_BASE
        self._relay = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "MALLOC_ARENA_MAX": "2"},
            preexec_fn=relay_preexec(memory), close_fds=True)
        assert self._relay.stdin is not None and self._relay.stdout is not None
        try:
            self._relay.stdin.write(json.dumps(info).encode())
            self._relay.stdin.close()
        except OSError:
            pass  # it died: said below
        ready, _, _ = select.select([self._relay.stdout], [], [], RELAY_START_SECONDS)
        line = self._relay.stdout.readline() if ready else b""
        if line != relay_process.READY:
            status = self.relay_status
            self._stop_relay()
            raise SandboxError(f"the message relay did not start (status {status})")

    @property
    def relay_status(self) -> int | None:
        return None if self._relay is None else self._relay.poll()

    def _stop_relay(self) -> None:
        """Stop the relay; read how many messages it dropped and whether it had died."""
        if self._relay is None:
            return
        status = self._relay.poll()
        # KERNEL_GONE: the kernel never offered its sockets; the relay itself is sound
        self.relay_died = status not in (None, 0, relay_process.KERNEL_GONE)
        if status is None:
            self._relay.kill()
        self._relay.wait()
        if self._relay.stdout is not None:
            self._relay.stdout.close()
        self._relay = None
        try:
            with open(os.path.join(self._relay_dir or "", "dropped")) as fh:
                self.relay_dropped = int(fh.read().strip() or 0)
        except (OSError, ValueError):
            pass

    async def _async_is_alive(self) -> bool:
        """False, and the sandbox killed, once the relay is gone: nothing reaches the grader."""
        if self._relay is not None and self._relay.poll() is not None:
            self.kill_sandbox()
            return False
        return await super()._async_is_alive()

    is_alive = _async_is_alive  # type: ignore[assignment]

    def client(self, **kwargs: t.Any) -> t.Any:
        """A kernel client that talks to the relay (when there is one), and whose sockets
        refuse frames over ``max_message_bytes``."""
        if self._relay_dir is not None:
            kwargs.setdefault("ip", os.path.join(self._relay_dir, "c"))
        kc = super().client(**kwargs)
        # The client creates (and later destroys) its own context; sockets made
        # from it inherit this default.  Set before any channel connects.
        kc.context.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        return kc

    # --- outcome ------------------------------------------------------------------------------
    @property
    def exit_status(self) -> int | None:
        """Exit status of the sandbox (None while it runs).

        bubblewrap passes on its command's status: 128+N when the kernel was
        killed by signal N (137: SIGKILL, 152: SIGXCPU); a negative value means
        the sandbox itself was killed, e.g. by the grader.
        """
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        """The last bytes the sandbox wrote to stdout/stderr (bwrap errors, crashes)."""
        if self._log is None or self._log.closed:
            return ""
        try:
            self._log.flush()
            size = self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, size - limit))
            return self._log.read(limit).decode("utf-8", "replace")
        except OSError:
            return ""

    def kill_sandbox(self) -> None:
        """SIGKILL the sandbox's process group now (safe from any thread)."""
        if self.sandbox_pgid is not None and self.exit_status is None:
            try:
                os.killpg(self.sandbox_pgid, signal.SIGKILL)
            except OSError:
                pass  # already gone

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if restart:
            return
        # Nothing of the sandbox may outlive its kernel manager.
        self.kill_sandbox()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.log.warning("sandbox process %s did not exit", self._proc.pid)
        self._discard_runtime()

    def _discard_runtime(self) -> None:
        """End what is left of the sandbox and delete its runtime folder; give its uid back.

        In order: kill every task of the cgroup and read its counters; copy
        the scratch tmpfs back to the host folder (only once a kernel was
        launched: before that the host folder is the reference) and unmount
        it; remove the cgroup, then the runtime folder (connection key,
        sockets).
        """
        self._close_data_fds()
        self._stop_relay()
        if self._cgroup is not None:
            self._cgroup.kill()
            self.cgroup_usage = self._cgroup.usage()
        if self._bounded is not None:
            try:
                self.scratch_full = self._bounded.full()
                if self._proc is not None:
                    self._bounded.copy_back()
            finally:
                self._bounded.unmount()
                self._bounded = None
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        self._release_uid()
        if self._base_dir is not None:
            unmount_under(self._base_dir)  # the runtime folder's tmpfs
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = None

    cleanup_resources = _async_cleanup_resources  # type: ignore[assignment]

    def close_log(self) -> None:
        """Release the diagnostics log (after :meth:`log_tail` is no longer needed)."""
        if self._log is not None:
            self._log.close()
