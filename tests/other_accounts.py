"""Run a command as another Unix account that has a Python environment of its own.

On a real installation each account brings its own Python: a student's
single-user server has nbgrader and ``rnn_course`` in its image, a non-root
grader account owns the clone and the ``.venv`` in its home.  The tests have
one ``.venv``, in the clone, and stand in for those accounts by running the
clone's interpreter as uid 65534.  When the clone (or the base interpreter the
``.venv`` links to, e.g. ``/root/.pyenv``) sits under a folder that uid cannot
enter -- a home of mode 0700, as Debian creates them, or a ``mktemp -d`` --
the command runs in a root-run bubblewrap view of the host in which each such
folder is replaced by an empty one that holds, read-only and at their own
paths, only what the account would own: the Python environment (and the
package folders a test names).  Nothing else of that folder is visible, and no
permission of the user's own folders is changed.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys

NOBODY = 65534


def python_paths() -> list[str]:
    """What running this interpreter needs: the environment and its base installation."""
    return [sys.prefix, sys.base_prefix]


def _searchable(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid`` (with only group ``gid``) may traverse the folder ``path``."""
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def blocking_folder(path: str, uid: int = NOBODY, gid: int = NOBODY) -> str | None:
    """The outermost folder above ``path`` that ``uid`` cannot traverse, or None."""
    current = "/"
    for part in os.path.realpath(path).strip("/").split("/")[:-1]:
        current = os.path.join(current, part)
        if not _searchable(current, uid, gid):
            return current
    return None


def as_account(argv: list[str], show: list[str] | tuple[str, ...] = (), *,
               uid: int = NOBODY, gid: int = NOBODY) -> list[str]:
    """``argv`` run as ``uid``:``gid`` (by root), seeing this Python and the paths in ``show``.

    Raises RuntimeError, with one line saying why, when a view is needed and
    bubblewrap is missing.
    """
    drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
    wanted = sorted({os.path.realpath(p) for p in [*python_paths(), *show]}, key=len)
    blocked: dict[str, list[str]] = {}
    for path in wanted:
        if any(path.startswith(shown.rstrip("/") + "/") for shown in wanted if shown != path):
            continue  # inside another path shown
        folder = blocking_folder(path, uid, gid)
        if folder is not None:
            blocked.setdefault(folder, []).append(path)
    if not blocked:
        return drop + list(argv)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        first = next(iter(blocked))
        raise RuntimeError(
            f"uid {uid} cannot enter {first}, where this Python environment lives, and "
            "bubblewrap (bwrap) is not installed to show it to that account: "
            "install bubblewrap, or clone into a folder other users may enter"
        )
    view = [bwrap, "--dev-bind", "/", "/"]
    for folder, paths in blocked.items():
        view += ["--perms", "0755", "--tmpfs", folder]
        made = {folder}
        for path in paths:
            parent = folder
            for part in os.path.relpath(os.path.dirname(path), folder).split("/"):
                if part == ".":
                    continue
                parent = os.path.join(parent, part)
                if parent not in made:
                    view += ["--perms", "0755", "--dir", parent]
                    made.add(parent)
            view += ["--ro-bind", path, path]
    return view + ["--"] + drop + list(argv)
