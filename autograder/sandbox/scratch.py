"""The kernel's scratch folder on a size-limited tmpfs: a disk bound per submission.

``RLIMIT_FSIZE`` caps each file; nothing else caps how much a kernel writes
to its scratch folder.  When the grader is root, each sandbox gets a tmpfs of
``Limits.scratch_bytes`` (and :data:`SCRATCH_INODES` files) in its private
runtime folder: the host scratch copy is copied in before the kernel starts,
the tmpfs (not the host folder) is the kernel's home, and once the kernel has
ended what it left is copied back into the host folder, where the grader reads
the results, and the tmpfs is unmounted.  Its pages are memory, charged to
the memory cgroup of whoever writes them: the kernel's writes count against
the submission's memory too.

Copying back reads what a student controlled, so it never follows links,
skips fifos and devices, copies each inode once (hard links become links),
and stops at ``scratch_bytes`` of data and :data:`SCRATCH_INODES` entries:
sparse files and hard-link farms cannot turn a bounded tmpfs into unbounded
host disk.

A grader that cannot mount (not root, or no CAP_SYS_ADMIN) binds the host
folder as before and says once that the disk bound is lost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import stat

from .cgroups import unescape, warn_once

log = logging.getLogger(__name__)

# Files, folders and links the scratch tmpfs may hold (tmpfs nr_inodes), and
# the most entries copied back from it.
SCRATCH_INODES = 16384
# Free space under which the scratch counts as full (it was written to its limit).
FULL_SLACK_BYTES = 1024 * 1024
# The warning when the bound cannot be had: what is lost, and what is left.
LOST = "scratch disk bound lost"
CONSEQUENCE = ("each file the kernel writes is still capped (RLIMIT_FSIZE), their total is not, "
               "until the notebook's wall clock ends it")
NOT_ROOT = (f"{LOST} (only root can mount a size-limited tmpfs as the kernel's scratch and "
            f"runtime folders): {CONSEQUENCE}; to get it back, run the grader as root")


def cannot_mount(exc: OSError) -> str:
    return (f"{LOST} (cannot mount a tmpfs: {exc.strerror}): {CONSEQUENCE}; to get it back, "
            "run the grader as root with CAP_SYS_ADMIN")


MS_NOSUID = 0x2
MS_NODEV = 0x4
MNT_DETACH = 0x2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _mount_tmpfs(target: str, options: str) -> None:
    rc = _libc.mount(b"rnn-sbx-scratch", os.fsencode(target), b"tmpfs",
                     ctypes.c_ulong(MS_NOSUID | MS_NODEV), options.encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _unmount(target: str) -> None:
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def mounts_under(path: str, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    prefix = os.path.realpath(path).rstrip("/")
    found = []
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = unescape(fields[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


def unmount_under(path: str) -> None:
    """Detach every mount at or below ``path`` (a dead grader's scratch tmpfs)."""
    for point in mounts_under(path):
        try:
            _unmount(point)
        except OSError as exc:
            log.warning("could not unmount %s: %s", point, exc)


RUNTIME_BYTES = 64 * 1024
"""Size of the tmpfs of a kernel's runtime folder: its connection file (under 1 KB) and
five ipc sockets (no data) need none of it; a kernel that writes there gets ENOSPC."""
RUNTIME_INODES = 32
"""Entries the runtime folder's tmpfs may hold (the connection file and five sockets)."""


def bound_runtime_folder(path: str, uid: int, gid: int) -> bool:
    """Mount a tmpfs of :data:`RUNTIME_BYTES` on folder ``path``, owned by ``uid:gid``, mode
    0700: the kernel's runtime folder (connection file, ipc sockets), which the kernel may
    write, then holds no more than that, charged to the kernel's memory group like the
    scratch.  False (said once, as for the scratch) where no tmpfs can be mounted."""
    if os.geteuid() != 0:
        warn_once(NOT_ROOT)
        return False
    try:
        _mount_tmpfs(path, f"size={RUNTIME_BYTES},nr_inodes={RUNTIME_INODES},mode=700,"
                           f"uid={uid},gid={gid}")
    except OSError as exc:
        warn_once(cannot_mount(exc))
        return False
    return True


class BoundedScratch:
    """A tmpfs of ``size`` bytes at ``mountpoint`` standing in for host folder ``host``."""

    def __init__(self, host: str, mountpoint: str, size: int, inodes: int = SCRATCH_INODES):
        self.host = host
        self.mountpoint = mountpoint
        self.size = size
        self.inodes = inodes
        self.mounted = False

    @classmethod
    def create(cls, host: str, mountpoint: str, size: int, uid: int, gid: int,
               inodes: int = SCRATCH_INODES) -> BoundedScratch | None:
        """Mount, empty and owned by ``uid:gid``; None (said once) if not root.  :meth:`fill`
        then copies the host folder in."""
        if os.geteuid() != 0:
            warn_once(NOT_ROOT)
            return None
        scratch = cls(host, mountpoint, size, inodes)
        mode = stat.S_IMODE(os.stat(host).st_mode)
        os.mkdir(mountpoint, 0o700)
        try:
            _mount_tmpfs(mountpoint, f"size={size},nr_inodes={inodes},mode={mode:o},"
                                     f"uid={uid},gid={gid}")
        except OSError as exc:
            os.rmdir(mountpoint)
            warn_once(cannot_mount(exc))
            return None
        scratch.mounted = True
        return scratch

    def fill(self, uid: int, gid: int) -> None:
        """Make the tmpfs hold what the host folder holds now, owned by ``uid:gid``
        (what it held is replaced: see :meth:`SandboxedKernelManager.hand_in`)."""
        clear_folder(self.mountpoint)
        copy_tree(self.host, self.mountpoint, owner=(uid, gid))

    def full(self) -> bool:
        """Whether the kernel filled it (less than a MiB or no inode left)."""
        try:
            st = os.statvfs(self.mountpoint)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < FULL_SLACK_BYTES or st.f_favail == 0

    def copy_back(self) -> None:
        """Make the host folder hold what the kernel left (call once the kernel has ended).

        Owners are kept (the kernel's uid, as if it had written the host folder).
        """
        clear_folder(self.host)
        copy_tree(self.mountpoint, self.host, keep_owner=True, budget=self.size,
                  max_entries=self.inodes, lenient=True)

    def unmount(self) -> None:
        if self.mounted:
            try:
                _unmount(self.mountpoint)
            except OSError as exc:
                log.warning("could not unmount the scratch tmpfs %s: %s", self.mountpoint, exc)
                return
            self.mounted = False
        try:
            os.rmdir(self.mountpoint)
        except OSError:
            pass


def clear_folder(path: str) -> None:
    """Delete everything inside ``path`` (never following links), keep ``path``."""
    stack = [(path, False)]
    while stack:
        folder, visited = stack.pop()
        if visited:
            if folder != path:
                os.rmdir(folder)
            continue
        stack.append((folder, True))
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)


def copy_tree(src: str, dst: str, *, owner: tuple[int, int] | None = None,
              keep_owner: bool = False, budget: int | None = None,
              max_entries: int | None = None, lenient: bool = False) -> None:
    """Copy the contents of folder ``src`` into existing folder ``dst``.

    Folders, regular files and symbolic links (as links, never followed);
    anything else is skipped.  A file with several names is copied once and
    linked.  ``owner``: chown what is made to it; ``keep_owner``: to the
    owner of its source.  ``budget``: bytes of file data
    at most; ``max_entries``: entries at most; past either, the rest is
    skipped (and logged).  ``lenient``: an entry that cannot be copied (a
    path too long, say) is skipped instead of raising.
    """
    state = {"copied": {}, "budget": budget, "entries": max_entries, "skipped": 0,
             "owner": owner, "keep_owner": keep_owner}
    stack = [(src, dst)]
    while stack:
        source, target = stack.pop()
        try:
            with os.scandir(source) as it:
                found = list(it)
        except OSError:
            if not lenient:
                raise
            state["skipped"] += 1
            continue
        for entry in found:
            try:
                _copy_entry(entry, os.path.join(target, entry.name), state, stack)
            except OSError:
                if not lenient:
                    raise
                state["skipped"] += 1
    if state["skipped"]:
        log.warning("copying %s: %d entries skipped (special files, errors, or past the "
                    "bound)", src, state["skipped"])


def _copy_entry(entry: os.DirEntry, out: str, state: dict,
                stack: list[tuple[str, str]]) -> None:
    if state["entries"] is not None:
        if state["entries"] <= 0:
            state["skipped"] += 1
            return
        state["entries"] -= 1
    st = entry.stat(follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(out, stat.S_IMODE(st.st_mode) | 0o700)
        stack.append((entry.path, out))
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(entry.path), out)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in state["copied"]:
            os.link(state["copied"][key], out)
        elif state["budget"] is not None and st.st_size > state["budget"]:
            state["skipped"] += 1
            return
        else:
            _copy_file(entry.path, out, stat.S_IMODE(st.st_mode) & 0o777)
            state["copied"][key] = out
            if state["budget"] is not None:
                state["budget"] -= st.st_size
    else:
        state["skipped"] += 1  # fifo, socket, device
        return
    if state["owner"] is not None:
        os.chown(out, *state["owner"], follow_symlinks=False)
    elif state["keep_owner"]:
        os.chown(out, st.st_uid, st.st_gid, follow_symlinks=False)


def _copy_file(src: str, dst: str, mode: int) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                       mode)
        try:
            while os.sendfile(fout, fin, None, 1 << 30) > 0:
                pass
        finally:
            os.close(fout)
    finally:
        os.close(fin)
