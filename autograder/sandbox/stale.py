"""The one sweep of the folders dead grader processes left behind.

Each is named ``<prefix><pid>-<random>`` after the process that made it (a sandbox's
runtime folder, a job's folders, a kernel started ahead); a process killed outright
cannot remove its own.  An entry is stale when, checked in this order: its name matches
with an ASCII pid (any name is read safely); ``lstat`` (never following a link) says it
is a folder owned by this uid (anything else, another account's above all, is left
untouched: no signal, no parsing); no process has that pid (one too large to be a pid
has none).  One bad entry never stops a sweep.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
from collections.abc import Callable

MAX_PID = 1 << 22
"""Linux's largest possible pid (``PID_MAX_LIMIT``)."""
RUNTIME_PREFIX = "rnn-sbx-"
"""A sandbox's runtime folder: ``<runtime_base>/rnn-sbx-<grader pid>-*``."""
_RUNTIME = re.compile(rf"{RUNTIME_PREFIX}(\d+)-")
_swept: set[str] = set()


def stale_folders(base: str, pattern: re.Pattern) -> list[str]:
    """The stale folders of ``base``; ``pattern``'s group 1 is their maker's pid."""
    try:
        names = os.listdir(base)
    except OSError:
        return []
    found = []
    for name in names:
        try:
            if _is_stale(base, name, pattern):
                found.append(os.path.join(base, name))
        except Exception:  # one bad entry never stops a sweep
            continue
    return found


def _is_stale(base: str, name: str, pattern: re.Pattern) -> bool:
    match = pattern.match(name)
    if match is None:
        return False
    try:
        st = os.lstat(os.path.join(base, name))
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return False  # a link, a file, a device, or another account's: never touched
    digits = match.group(1)
    if not (digits.isascii() and digits.isdigit()):
        return False  # not a name a grader makes
    pid = int(digits)
    if pid > MAX_PID:  # no process has it (os.kill would raise OverflowError)
        return True
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, as another account's process
        return False
    return False


def remove_stale_folders(base: str, pattern: re.Pattern,
                         before: Callable[[str], None] | None = None) -> list[str]:
    """Remove the :func:`stale_folders` of ``base``, calling ``before(path)`` first; the paths."""
    found = stale_folders(base, pattern)
    for path in found:
        try:
            if before is not None:
                before(path)
            shutil.rmtree(path, ignore_errors=True)
        except Exception:  # one bad entry never stops a sweep
            continue
    return found


def sweep_runtime(runtime_base: str) -> None:
    """Remove the runtime folders of dead graders of this uid (once per process): their
    sandboxes' processes killed (--die-with-parent normally took them along), their
    scratch tmpfs unmounted (rmtree would only empty it), then the folder."""
    if runtime_base in _swept:
        return
    _swept.add(runtime_base)
    remove_stale_folders(runtime_base, _RUNTIME, before=_end_sandbox)


def _end_sandbox(path: str) -> None:
    from .scratch import unmount_under

    needle = path.encode() + b"/"  # a process whose command line names the folder
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if needle in fh.read():
                    os.kill(int(entry), signal.SIGKILL)
        except OSError:
            continue
    unmount_under(path)
