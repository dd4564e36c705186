"""matplotlib's font list, built once per grader process and shown to every kernel.

Each sandbox starts with an empty private /tmp, so matplotlib would rebuild
its font list (fontlist-v*.json, about 0.4 s) in every kernel that plots.  We
build it once per process, in a sandbox identical to a kernel's (the list holds
absolute font paths, which must be the sandbox's), keep the bytes in memory,
and each kernel gets them as a read-only file in its MPLCONFIGDIR.  No student
code runs during the build and the file is read-only, so no submission can
change what another one sees.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

# Printed by the build sandbox: the file's name on the first line, then its text.
BUILD_CODE = (
    "import glob, os, sys\n"
    "import matplotlib.font_manager\n"
    "[path] = glob.glob(os.path.join(os.environ['MPLCONFIGDIR'], 'fontlist-*.json'))\n"
    "sys.stdout.write(os.path.basename(path) + '\\n' + open(path).read())\n"
)
# Guards against a pathological font folder: the list is ~40 kB here.
MAX_FONT_LIST_BYTES = 8 * 1024 * 1024

_lock = threading.Lock()
_cache: dict[str, tuple[str, bytes] | None] = {}


def matplotlib_font_list(
    key: str, run_python: Callable[[str], tuple[int, bytes]]
) -> tuple[str, bytes] | None:
    """``(file name, content)`` of the font list for environment ``key``, or None.

    ``run_python(code)`` runs ``code`` with the sandboxed interpreter and
    returns ``(exit status, stdout)``.  A failed build is remembered too (None):
    kernels then simply build their own list, as without this cache.
    """
    with _lock:
        if key in _cache:
            return _cache[key]
        result = None
        if importlib.util.find_spec("matplotlib") is not None:
            try:
                result = _build(run_python)
            except Exception as exc:  # an optimisation only: never fail a kernel for it
                log.warning("could not pre-build matplotlib's font list: %s", exc)
        _cache[key] = result
        return result


def _build(run_python: Callable[[str], tuple[int, bytes]]) -> tuple[str, bytes] | None:
    status, out = run_python(BUILD_CODE)
    if status != 0 or len(out) > MAX_FONT_LIST_BYTES:
        log.warning("matplotlib font list build exited with %s", status)
        return None
    name, _, body = out.partition(b"\n")
    filename = name.decode("ascii", "replace").strip()
    well_formed = filename.startswith("fontlist-") and filename.endswith(".json")
    if not well_formed or "/" in filename:
        return None
    json.loads(body)  # must be the JSON matplotlib wrote
    return filename, body
