"""The channel between a notebook's kernel and the grader: the one module that owns it.

Everything that crosses between the student's kernel and the grader's process
is named here, and only here: the environment variable that switches the
kernel into grading mode, the folder layout, the file names, what may be
written (plain numeric arrays) and how the grader reads it back (no pickles,
bounded size).  The kernel can only import ``rnn_course``, so the grader
(:mod:`autograder.pipeline.verify`, :mod:`autograder.pipeline.worker`) imports
these names from this student-facing module rather than the other way round.

While a submission is graded, ``RNN_COURSE_GRADING_DIR`` names a folder shared
by both sides::

    <dir>/inputs/<check id>.npz    written by the grader before the kernel starts:
                                   the inputs of the notebook's hidden checks,
                                   drawn for this submission only
    <dir>/results/<check id>.npz   written by the kernel: the plain arrays each
                                   check's ``run`` returned

The kernel never judges anything while grading; the grader regenerates every
input itself (it never trusts the kernel's copy) and judges the results in its
own process.  Outside grading (a student or an instructor in Jupyter) the
variable is unset and checks judge in the kernel (see :mod:`rnn_course.checks`).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

GRADING_DIR_ENV = "RNN_COURSE_GRADING_DIR"
INPUTS_DIR = "inputs"
RESULTS_DIR = "results"
SUFFIX = ".npz"
MAX_RESULT_BYTES = 64 * 1024 * 1024  # the grader's default bound on one result file
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

_grading_dir: Path | None = None


# --------------------------------------------------------------------------- #
# Both sides: names and layout
# --------------------------------------------------------------------------- #
def check_id(value: str) -> str:
    """``value`` if it is a valid check id (letters, digits, ``_.-``), else ValueError."""
    if not isinstance(value, str) or not _ID.match(value) or value in (".", ".."):
        raise ValueError(f"invalid check id {value!r}")
    return value


def input_path(folder: str | os.PathLike, check: str) -> Path:
    """Where the inputs of hidden check ``check`` lie in the shared ``folder``."""
    return Path(folder) / INPUTS_DIR / f"{check_id(check)}{SUFFIX}"


def result_path(folder: str | os.PathLike, check: str) -> Path:
    """Where the results of check ``check`` lie in the shared ``folder``."""
    return Path(folder) / RESULTS_DIR / f"{check_id(check)}{SUFFIX}"


def as_plain_arrays(outputs: dict) -> dict[str, np.ndarray]:
    """Turn a dict of results into plain float64 / integer / bool ndarrays.

    Anything that is not numeric (objects, strings, arrays of objects) is
    rejected with a ``TypeError`` naming the entry: only numbers cross to the
    grader.  Names must be valid ids (``ValueError`` otherwise).
    """
    plain = {}
    for name, value in outputs.items():
        if not isinstance(name, str) or not _ID.match(name):
            raise ValueError(f"invalid output name {name!r}")
        arr = np.array(value, copy=True)  # also strips ndarray subclasses' behaviour
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
        elif arr.dtype.kind not in "iub":
            raise TypeError(
                f"output {name!r} must be a numeric array, got dtype {arr.dtype} "
                f"(from {type(value).__name__})"
            )
        plain[name] = np.array(arr, order="C", copy=True)  # keeps 0-d arrays 0-d
    return plain


# --------------------------------------------------------------------------- #
# Kernel side
# --------------------------------------------------------------------------- #
def grading_dir() -> Path | None:
    """The folder shared with the grader, or None outside grading.

    Resolved once, so that student code changing the working directory or the
    environment later cannot redirect results.
    """
    global _grading_dir
    if _grading_dir is None:
        value = os.environ.get(GRADING_DIR_ENV)
        if value:
            _grading_dir = Path(value).absolute()
    return _grading_dir


def _grading_folder(check: str, what: str) -> Path:
    folder = grading_dir()
    if folder is None:
        raise RuntimeError(f"{check}: {what} only while the notebook is graded "
                           f"({GRADING_DIR_ENV} is not set)")
    return folder


def inputs(check: str) -> dict[str, np.ndarray]:
    """The inputs the grader drew for hidden check ``check`` (grading mode only)."""
    path = input_path(_grading_folder(check_id(check), "hidden inputs exist"), check)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k].copy() for k in data.files}


def submit(check: str, **outputs) -> None:
    """Hand the results of check ``check`` to the grader (grading mode only).

    The outputs are turned into plain arrays (:func:`as_plain_arrays`) and
    written to ``<dir>/results/<check>.npz``; the grader judges them later.
    """
    check_id(check)
    plain = as_plain_arrays(outputs)
    path = result_path(_grading_folder(check, "results are submitted"), check)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **plain)


# --------------------------------------------------------------------------- #
# Grader side
# --------------------------------------------------------------------------- #
def prepare(folder: str | os.PathLike) -> Path:
    """Create the shared folder's ``inputs/`` and ``results/`` (before the kernel starts)."""
    folder = Path(folder)
    (folder / INPUTS_DIR).mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
    return folder


def write_inputs(folder: str | os.PathLike, check: str, arrays: dict) -> None:
    """Write the inputs of hidden check ``check`` for the kernel to read."""
    np.savez(input_path(folder, check), **as_plain_arrays(arrays))


def load_result(path: str | os.PathLike, max_bytes: int = MAX_RESULT_BYTES) -> dict:
    """Load a submitted ``.npz`` safely: no pickles, bounded size, plain arrays only.

    Raises ``ValueError`` with a short reason for anything else (the reason
    becomes the verdict's message).
    """
    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise ValueError("result file too large")
        with zipfile.ZipFile(path) as zf:  # bound the *uncompressed* size too
            if sum(info.file_size for info in zf.infolist()) > max_bytes:
                raise ValueError("result file too large")
        with np.load(path, allow_pickle=False) as data:
            return {k: np.array(data[k]) for k in data.files}
    except ValueError:
        raise
    except Exception as exc:  # corrupt zip, not an npz, object arrays...
        raise ValueError(f"unreadable result ({type(exc).__name__})") from None
