"""A control group per sandbox: memory and tasks of everything one kernel starts.

The rlimits of :mod:`.limits` are per process: a kernel that forks six
children may hold six times ``memory_bytes``.  A cgroup bounds the whole
submission instead: the memory of every process the kernel starts (their
tmpfs pages included, without swap) and their number of tasks.  The rlimits
stay, as the inner layer.

Where groups are made: under the grader's **own** group of each hierarchy, in
a folder :data:`PARENT_NAME` (``<own group>/rnn-course/<grader pid>-<token>``),
so that a kernel stays inside whatever limit the host put on its grader (a
container, a systemd slice).  Both layouts are handled, per controller:

- **cgroup v2** (one unified hierarchy): the controllers must be enabled in
  the parent's ``cgroup.subtree_control``.  A group that holds processes (the
  grader's own, unless it is the root) cannot enable them, so its parent is
  tried next: that is systemd's ``Delegate=yes`` with ``DelegateSubgroup=``.
  Files: ``memory.max``, ``memory.swap.max``, ``pids.max``, ``cgroup.procs``,
  ``memory.events`` (``oom_kill``), ``pids.events`` (``max``), ``cgroup.kill``.
- **cgroup v1** (one hierarchy per controller, e.g. ``/sys/fs/cgroup/memory``
  and ``/sys/fs/cgroup/pids``): ``memory.limit_in_bytes``,
  ``memory.memsw.limit_in_bytes`` (where swap is accounted), ``pids.max``,
  ``memory.oom_control`` (``oom_kill``), ``pids.events`` (``max``); no
  ``cgroup.kill``, so the tasks are signalled one by one (through pidfds:
  a recycled pid is never hit).

The kernel's launcher joins the group in the forked child before it execs
anything (:meth:`Group.join`, from the ``preexec_fn``): no student code ever
runs outside it.  A grader that cannot make groups (not root, no delegation,
no controller) says once which protection is lost and how to get it back,
and grading goes on with the rlimits alone.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import secrets
import signal
import threading
import time

log = logging.getLogger(__name__)

MEMORY = "memory"
PIDS = "pids"
CONTROLLERS = (MEMORY, PIDS)
# Folder, under the grader's own group, that holds one group per sandbox.
PARENT_NAME = "rnn-course"
# Name of one sandbox's group: the grader's pid (for the sweep), then a token.
_GROUP_NAME = re.compile(r"^(\d+)-[0-9a-f]+$")
# How long killing and removing a group may wait for its tasks to exit.
SETTLE_SECONDS = 5.0

# How to get the protection back, said with every warning.
HOW_TO_ENABLE = (
    "run the grader as root, or as a systemd service with Delegate=yes "
    "(and DelegateSubgroup=grader) on cgroup v2"
)

# The warning when a controller cannot be used: what is lost, and what is left.
LOST = {MEMORY: "whole-submission memory limit lost", PIDS: "whole-submission task limit lost"}
CONSEQUENCE = {
    MEMORY: "each process keeps its own memory limit (RLIMIT_AS), but a submission's "
    "processes together may use many times it",
    PIDS: "only the per-uid process limit (RLIMIT_NPROC) bounds a fork bomb",
}

_warned: set[str] = set()
_warn_lock = threading.Lock()


def warn_once(message: str) -> None:
    """Log ``message`` as a warning, once per process."""
    with _warn_lock:
        if message not in _warned:
            _warned.add(message)
            log.warning(message)


@dataclasses.dataclass(frozen=True)
class Place:
    """Where sandbox groups of one hierarchy are made.

    ``parent`` is the ``rnn-course`` folder; ``controllers`` the ones of
    :data:`CONTROLLERS` this hierarchy serves; ``version`` 1 or 2.
    """

    version: int
    parent: str
    controllers: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Usage:
    """What a group's counters say once its kernel has ended."""

    oom_kills: int = 0  # tasks killed because the group ran out of memory
    task_refusals: int = 0  # forks and thread starts refused at the task limit
    memory_peak: int | None = None  # bytes, where the hierarchy records it

    @property
    def memory_limit_hit(self) -> bool:
        return self.oom_kills > 0

    @property
    def task_limit_hit(self) -> bool:
        return self.task_refusals > 0


# --------------------------------------------------------------------------- file helpers
def _write(path: str, value: str) -> None:
    """Write ``value`` to an existing control file (never creates one)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as fh:
        return fh.read()


def _counter(path: str, key: str) -> int:
    """The value of ``key`` in a flat-keyed file such as ``memory.events`` (0 if absent)."""
    try:
        text = _read(path)
    except OSError:
        return 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def _number(path: str) -> int | None:
    try:
        text = _read(path).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def make_group(path: str, exist_ok: bool = False) -> None:
    """Create a group folder (the kernel fills it with the interface files)."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not exist_ok:
            raise


def remove_group(path: str) -> None:
    """Delete an empty group folder (its interface files go with it)."""
    os.rmdir(path)


def _pids(folder: str) -> list[int]:
    try:
        return [int(p) for p in _read(os.path.join(folder, "cgroup.procs")).split()]
    except (OSError, ValueError):
        return []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive, someone else's
    return True


# --------------------------------------------------------------------------- one group
class Group:
    """The group(s) of one sandbox: one folder per hierarchy that serves a controller."""

    def __init__(self, folders: list[tuple[Place, str]]) -> None:
        self.folders = folders
        # Opened at join time in the forked child: precomputed here.
        self._procs_files = [os.path.join(path, "cgroup.procs") for _, path in folders]

    @property
    def paths(self) -> list[str]:
        return [path for _, path in self.folders]

    @property
    def controllers(self) -> set[str]:
        return {c for place, _ in self.folders for c in place.controllers}

    def join(self) -> None:
        """Move the calling process into the group (for a ``preexec_fn``).

        Writes ``0`` ("myself") to each ``cgroup.procs``: system calls on
        precomputed paths only, safe in a child forked from a threaded grader.
        Raises ``OSError``: then the launch fails, rather than run unbounded.
        """
        for path in self._procs_files:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def usage(self) -> Usage:
        oom = refused = 0
        peak = None
        for place, path in self.folders:
            if MEMORY in place.controllers:
                if place.version == 2:
                    oom += _counter(os.path.join(path, "memory.events"), "oom_kill")
                    peak = _number(os.path.join(path, "memory.peak"))
                else:
                    oom += _counter(os.path.join(path, "memory.oom_control"), "oom_kill")
                    peak = _number(os.path.join(path, "memory.max_usage_in_bytes"))
            if PIDS in place.controllers:
                refused += _counter(os.path.join(path, "pids.events"), "max")
        return Usage(oom_kills=oom, task_refusals=refused, memory_peak=peak)

    def kill(self, timeout: float = SETTLE_SECONDS) -> bool:
        """SIGKILL every task of the group; True once none is left."""
        done = [_kill_folder(place.version, path, timeout) for place, path in self.folders]
        return all(done)

    def remove(self, timeout: float = SETTLE_SECONDS) -> bool:
        """Kill what is left, then delete the group's folders; True if all are gone."""
        self.kill(timeout)
        done = [_remove_folder(path, timeout) for _, path in self.folders]
        return all(done)


def _kill_folder(version: int, path: str, timeout: float) -> bool:
    """SIGKILL the tasks of one group folder and wait until it is empty."""
    kill_file = os.path.join(path, "cgroup.kill")
    if version == 2 and os.path.exists(kill_file):
        try:
            _write(kill_file, "1")
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while True:
        pids = _pids(path)
        if not pids:
            return True
        for pid in pids:
            _kill_member(pid, path)
        if time.monotonic() > deadline:
            log.warning("cgroup %s still has tasks %s", path, pids[:10])
            return False
        time.sleep(0.01)


def _kill_member(pid: int, path: str) -> None:
    """SIGKILL ``pid`` if it is (still) a member of group ``path``, never a recycled pid.

    The pidfd pins the process that had ``pid`` when it was opened; if the
    group still lists ``pid`` afterwards, the holder of ``pid`` is in the
    group, so either it is that process or that process is gone (and the
    signal then goes nowhere).
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return  # gone already
    try:
        if pid in _pids(path):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(pidfd)


def _remove_folder(path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            remove_group(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            # EBUSY: tasks still exiting (or a child group; never ours)
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                log.warning("could not remove cgroup %s: %s", path, exc)
                return False
        time.sleep(0.01)


# --------------------------------------------------------------------------- discovery
@dataclasses.dataclass
class _Mount:
    version: int
    mountpoint: str
    root: str
    controllers: tuple[str, ...]  # v1: from the mount options; v2: empty (read the files)


def unescape(field: str) -> str:
    """A path field of mountinfo (spaces and such are octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[_Mount]:
    """The cgroup (v1) and cgroup2 mounts listed in a ``/proc/<pid>/mountinfo``."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or len(fields) < dash + 4:
            continue
        fstype, super_opts = fields[dash + 1], fields[dash + 3].split(",")
        root, mountpoint = unescape(fields[3]), unescape(fields[4])
        if fstype == "cgroup2":
            mounts.append(_Mount(2, mountpoint, root, ()))
        elif fstype == "cgroup":
            mine = tuple(c for c in CONTROLLERS if c in super_opts)
            if mine:
                mounts.append(_Mount(1, mountpoint, root, mine))
    return mounts


def parse_proc_cgroup(text: str) -> tuple[dict[str, str], str | None]:
    """``({v1 controller: path}, v2 path or None)`` from a ``/proc/<pid>/cgroup``."""
    v1: dict[str, str] = {}
    v2 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, names, path = parts
        if hid == "0" and names == "":
            v2 = path
        else:
            for name in names.split(","):
                v1[name] = path
    return v1, v2


def _folder(mount: _Mount, path: str) -> str | None:
    """Host folder of group ``path`` in ``mount`` (None if the mount does not show it)."""
    root = mount.root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        return None
    rel = path[len(root):].lstrip("/")
    return os.path.join(mount.mountpoint, rel) if rel else mount.mountpoint


def _writable(folder: str) -> None:
    """Raise ``PermissionError`` unless this process may create groups in ``folder``."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), folder)


def _enable(folder: str, controllers: tuple[str, ...]) -> None:
    """Make sure ``controllers`` are enabled for the children of v2 group ``folder``."""
    control = os.path.join(folder, "cgroup.subtree_control")
    enabled = set(_read(control).split())
    missing = [c for c in controllers if c not in enabled]
    if missing:
        _write(control, " ".join(f"+{c}" for c in missing))


class Cgroups:
    """Where this process may make sandbox groups, found once (:meth:`places`).

    ``proc_self`` (normally ``/proc/self``) holds the ``mountinfo`` and
    ``cgroup`` files read to find the hierarchies; a test points it at a fake
    file system.
    """

    def __init__(self, proc_self: str = "/proc/self") -> None:
        self.proc_self = proc_self
        self._lock = threading.Lock()
        self._places: list[Place] | None = None
        self._lost: dict[str, str] = {}
        self._swept = False

    # ----------------------------------------------------------------- finding the places
    def places(self) -> list[Place]:
        """The places groups are made in, found (and the parents created) on first call."""
        with self._lock:
            if self._places is None:
                self._places, self._lost = self._discover()
            return self._places

    def lost(self) -> dict[str, str]:
        """``{controller: why}`` for each controller no group can use here."""
        self.places()
        return dict(self._lost)

    def _discover(self) -> tuple[list[Place], dict[str, str]]:
        try:
            mounts = parse_mountinfo(_read(os.path.join(self.proc_self, "mountinfo")))
            v1_paths, v2_path = parse_proc_cgroup(_read(os.path.join(self.proc_self, "cgroup")))
        except OSError as exc:
            return [], {c: f"cannot read /proc: {exc}" for c in CONTROLLERS}
        places: list[Place] = []
        lost: dict[str, str] = {}
        todo = list(CONTROLLERS)
        # v1 first: a controller bound to a v1 hierarchy is absent from v2.
        for controller in CONTROLLERS:
            own = v1_paths.get(controller)
            if controller not in todo or own is None:
                continue
            todo.remove(controller)
            shown = [(m, _folder(m, own)) for m in mounts
                     if m.version == 1 and controller in m.controllers]
            shown = [(m, f) for m, f in shown if f is not None]
            if not shown:
                lost[controller] = f"the grader's v1 {controller} group {own} is not mounted"
                continue
            mount, own_folder = shown[0]
            # co-mounted controllers (memory,pids in one hierarchy) share the place
            mine = (controller,) + tuple(c for c in mount.controllers
                                         if c in todo and v1_paths.get(c) == own)
            for c in mine[1:]:
                todo.remove(c)
            parent = os.path.join(own_folder, PARENT_NAME)
            try:
                make_group(parent, exist_ok=True)
                _writable(parent)
            except OSError as exc:
                why = f"cannot create groups in {parent}: {exc.strerror}"
                lost.update({c: why for c in mine})
                continue
            places.append(Place(1, parent, mine))
        v2 = next((m for m in mounts if m.version == 2), None)
        if todo and v2 is not None and v2_path is not None:
            place, why = self._v2_place(v2, v2_path, tuple(todo))
            if place is not None:
                places.append(place)
                todo = [c for c in todo if c not in place.controllers]
            lost.update({c: why for c in todo})
            todo = []
        lost.update({c: "no cgroup hierarchy has this controller" for c in todo})
        return places, lost

    def _v2_place(self, mount: _Mount, own: str, wanted: tuple[str, ...]):
        own_folder = _folder(mount, own)
        if own_folder is None:
            return None, f"the grader's group {own} is outside {mount.mountpoint}"
        try:
            available = set(_read(os.path.join(own_folder, "cgroup.controllers")).split())
        except OSError as exc:
            return None, f"cannot read {own_folder}/cgroup.controllers: {exc.strerror}"
        usable = tuple(c for c in wanted if c in available)
        if not usable:
            return None, f"not delegated to the grader's group {own_folder} on cgroup v2"
        candidates = [own_folder]
        if os.path.normpath(own_folder) != os.path.normpath(mount.mountpoint):
            # The grader's own group holds processes, so it cannot enable
            # controllers for its children: try its (delegated) parent.
            candidates.append(os.path.dirname(os.path.normpath(own_folder)))
        why = ""
        for folder in candidates:
            parent = os.path.join(folder, PARENT_NAME)
            try:
                _enable(folder, usable)
                make_group(parent, exist_ok=True)
                _writable(parent)
                _enable(parent, usable)
            except OSError as exc:
                why = f"cannot enable {'+'.join(usable)} under {folder}: {exc.strerror}"
                continue
            return Place(2, parent, usable), ""
        return None, why

    # ----------------------------------------------------------------- one sandbox's group
    def create(self, memory_bytes: int, tasks: int, name: str | None = None) -> Group | None:
        """A new group with these limits, or None (said once in the log) when impossible."""
        places = self.places()
        self.sweep()
        for controller, why in sorted(self.lost().items()):
            warn_once(f"{LOST[controller]} ({why}): {CONSEQUENCE[controller]}; to get it "
                      f"back, {HOW_TO_ENABLE}")
        if not places:
            return None
        name = name or f"{os.getpid()}-{secrets.token_hex(6)}"
        folders: list[tuple[Place, str]] = []
        try:
            for place in places:
                path = os.path.join(place.parent, name)
                make_group(path)
                folders.append((place, path))
                _set_limits(place, path, memory_bytes, tasks)
        except OSError as exc:
            Group(folders).remove()
            warn_once(f"whole-submission limits lost for some kernels (cannot create a cgroup "
                      f"under {places[0].parent}: {exc.strerror}): they run with their "
                      f"rlimits only; to get them back, {HOW_TO_ENABLE}")
            return None
        return Group(folders)

    def sweep(self) -> None:
        """Kill and remove the groups of graders that died (once per process).

        A grader killed by SIGKILL leaves its groups (empty: its sandboxes
        died with it); they are named after its pid.  Groups of a live pid
        are left alone.
        """
        with self._lock:
            if self._swept:
                return
            self._swept = True
        for place in self.places():
            try:
                names = os.listdir(place.parent)
            except OSError:
                continue
            for name in names:
                match = _GROUP_NAME.match(name)
                if not match or int(match.group(1)) == os.getpid():
                    continue
                if _pid_alive(int(match.group(1))):
                    continue
                Group([(place, os.path.join(place.parent, name))]).remove()

    def groups_of(self, pid: int) -> list[str]:
        """Folders of the sandbox groups that grader ``pid`` made and that still exist."""
        found = []
        for place in self.places():
            try:
                names = os.listdir(place.parent)
            except OSError:
                continue
            found += [os.path.join(place.parent, n) for n in sorted(names)
                      if n.startswith(f"{pid}-") and _GROUP_NAME.match(n)]
        return found


def _set_limits(place: Place, path: str, memory_bytes: int, tasks: int) -> None:
    """Write the limits of one group folder (the memory limit before the swap one)."""
    if MEMORY in place.controllers:
        if place.version == 2:
            _write(os.path.join(path, "memory.max"), str(memory_bytes))
            swap = os.path.join(path, "memory.swap.max")
            if os.path.exists(swap):
                _write(swap, "0")
        else:
            _write(os.path.join(path, "memory.limit_in_bytes"), str(memory_bytes))
            memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):
                # memory + swap = memory: no swap (must be set after the memory limit)
                _write(memsw, str(memory_bytes))
    if PIDS in place.controllers:
        _write(os.path.join(path, "pids.max"), str(tasks))


_default: Cgroups | None = None
_default_lock = threading.Lock()


def default() -> Cgroups:
    """The process-wide :class:`Cgroups` of this host."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Cgroups()
        return _default
