"""The channel between a notebook's kernel and the grader: the one module that owns it.

Everything that crosses between the student's kernel and the grader's process
is named here, and only here: the environment variable that switches the
kernel into grading mode, the folder layout, the file names, what may be
written (plain numeric arrays) and how the grader reads it back (no pickles,
bounded size).  The kernel can only import ``rnn_course``, so the grader
(:mod:`autograder.pipeline.worker.verify`, :mod:`autograder.pipeline.worker.submission`) imports
these names from this student-facing module rather than the other way round.

While a submission is graded, ``RNN_COURSE_GRADING_DIR`` names a folder shared
by both sides::

    <dir>/inputs/<check id>.npz    written by the grader just before the graded cell
                                   that calls the check runs, removed right after:
                                   the inputs it drew for this submission (hidden
                                   and visible checks alike); the folder is empty
                                   whenever no graded cell runs
    <dir>/results/<check id>.npz   written by the kernel: the plain arrays each
                                   check's ``run`` returned; emptied before each
                                   graded cell, and the grader takes only that
                                   cell's own check's file, right after the cell

The kernel never judges anything while grading; the grader regenerates every
input itself (it never trusts the kernel's copy) and judges the results in its
own process.  The folder lies in the kernel's own, writable scratch folder, so
every grader-side function here works from open folder descriptors and never
follows a link (:func:`deliver`, :func:`collect`, :func:`clear`).  Outside
grading (a student or an instructor in Jupyter) the variable is unset and
checks judge in the kernel (see :mod:`rnn_course.checks`).
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import stat
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


def delivered(check: str) -> "dict[str, np.ndarray] | None":
    """The inputs the grader delivered for ``check``, or None when there are none.

    The grader delivers a check's inputs only while the graded cell that calls
    it runs (grading mode only).
    """
    path = input_path(_grading_folder(check_id(check), "graded inputs exist"), check)
    try:
        with np.load(path, allow_pickle=False) as data:
            return decode_inputs({k: data[k] for k in data.files})
    except FileNotFoundError:
        return None


def inputs(check: str) -> dict[str, np.ndarray]:
    """The inputs the grader drew for ``check`` (grading mode, in its graded cell only)."""
    found = delivered(check)
    if found is None:
        raise RuntimeError(f"{check}: its inputs exist only while its graded cell is graded")
    return found


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
    """Create the shared folder with an empty ``inputs/`` and ``results/`` (before the
    kernel starts)."""
    folder = Path(folder)
    (folder / INPUTS_DIR).mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
    return folder


_ARRAY, _SCALAR, _DICT = "a.", "s.", "d."


def encode_inputs(inputs: dict) -> dict[str, np.ndarray]:
    """A check's inputs as flat plain arrays, for an ``.npz``: ``a.<name>`` an array,
    ``s.<name>`` a Python number, ``d.<name>.<key>`` an array in a dict of arrays
    (what :func:`decode_inputs` turns back into the same structure)."""
    flat = {}
    for name, value in inputs.items():
        if isinstance(value, dict):
            flat.update({f"{_DICT}{name}.{k}": v for k, v in value.items()})
        elif isinstance(value, (bool, int, float)) and not isinstance(value, np.ndarray):
            flat[f"{_SCALAR}{name}"] = value
        else:
            flat[f"{_ARRAY}{name}"] = value
    return as_plain_arrays(flat)


def decode_inputs(flat: dict) -> dict:
    """The inverse of :func:`encode_inputs` (``ValueError`` for a name it never writes)."""
    inputs: dict = {}
    for key, value in flat.items():
        if key.startswith(_ARRAY):
            inputs[key[len(_ARRAY):]] = np.array(value)
        elif key.startswith(_SCALAR):
            inputs[key[len(_SCALAR):]] = np.asarray(value).item()
        elif key.startswith(_DICT) and key.count(".") >= 2:
            name, sub = key[len(_DICT):].split(".", 1)
            inputs.setdefault(name, {})[sub] = np.array(value)
        else:
            raise ValueError(f"not an input name: {key!r}")
    return inputs


def npz_bytes(arrays: dict) -> bytes:
    """``arrays`` as the bytes of an ``.npz`` of plain arrays."""
    buffer = io.BytesIO()
    np.savez(buffer, **as_plain_arrays(arrays))
    return buffer.getvalue()


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ATTEMPTS = 5  # a kernel racing the grader for a name gets it this many times at most


def _remove(name: str, dir_fd: int) -> None:
    """Remove entry ``name`` of the folder ``dir_fd``, whatever it is; never follows a link."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd, ignore_errors=True)
    else:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass


def _fresh_dir(name: str, dir_fd: int, owner: "tuple[int, int] | None",
               mode: int = 0o755) -> int:
    """Replace entry ``name`` of ``dir_fd`` by a new, empty folder; an open descriptor of it.

    ``owner`` (uid, gid) is given to the new folder when the grader may (root).
    """
    for _ in range(_ATTEMPTS):
        _remove(name, dir_fd)
        try:
            os.mkdir(name, mode, dir_fd=dir_fd)
        except FileExistsError:  # planted again in between: start over
            continue
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        return fd
    raise OSError(errno.EEXIST, f"{name}: the kernel keeps planting it")


def _open_grading_dir(folder: str | os.PathLike, create: bool):
    """(descriptor of ``folder``, owner of its parent) without following a link in it.

    ``folder``'s parent (the scratch folder) is the grader's; ``folder`` itself
    lies in the kernel's reach and is recreated when it is not a real folder.
    """
    folder = Path(folder)
    parent = os.open(folder.parent, _DIR_FLAGS)
    try:
        st = os.fstat(parent)
        owner = (st.st_uid, st.st_gid)
        try:
            return os.open(folder.name, _DIR_FLAGS, dir_fd=parent), owner
        except OSError:
            if not create:
                raise
        return _fresh_dir(folder.name, parent, owner), owner
    finally:
        os.close(parent)


def clear(folder: str | os.PathLike) -> None:
    """Empty ``inputs/`` and ``results/`` of the shared ``folder`` (grader side).

    ``inputs/`` becomes a new folder of the grader's (the kernel may read it,
    not write it, when the grader is root); ``results/`` a new folder of the
    scratch folder's owner (the kernel's uid), where ``submit`` writes.
    """
    fd, owner = _open_grading_dir(folder, create=True)
    try:
        os.close(_fresh_dir(INPUTS_DIR, fd, None))
        os.close(_fresh_dir(RESULTS_DIR, fd, owner, 0o700))
    finally:
        os.close(fd)


def deliver(folder: str | os.PathLike, check: str, arrays: dict) -> None:
    """Empty the shared ``folder``, then write the inputs of ``check`` for the kernel to read.

    Called by the grader just before the graded cell of ``check`` runs.
    """
    data = npz_bytes(encode_inputs(arrays))
    name = f"{check_id(check)}{SUFFIX}"
    clear(folder)
    fd, _ = _open_grading_dir(folder, create=True)
    try:
        inputs_fd = os.open(INPUTS_DIR, _DIR_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        for _ in range(_ATTEMPTS):
            _remove(name, inputs_fd)
            try:
                out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                              | os.O_CLOEXEC, 0o644, dir_fd=inputs_fd)
            except FileExistsError:
                continue
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
            return
        raise OSError(errno.EEXIST, f"{name}: the kernel keeps planting it")
    finally:
        os.close(inputs_fd)


def collect(folder: str | os.PathLike, check: str, dest: str | os.PathLike,
            max_bytes: int = MAX_RESULT_BYTES) -> bool:
    """Copy the result of ``check`` out of the kernel's reach, to ``dest``; then clear.

    Called by the grader right after the graded cell of ``check`` ran.  Only a
    regular file is read (never through a link, never blocking on a fifo), at
    most ``max_bytes`` + 1 of it (:func:`load_result` refuses a larger one).
    Returns whether a result was there.  ``inputs/`` and ``results/`` are
    emptied afterwards in any case.
    """
    name = f"{check_id(check)}{SUFFIX}"
    data = None
    try:
        fd, _ = _open_grading_dir(folder, create=False)
        try:
            results_fd = os.open(RESULTS_DIR, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                          dir_fd=results_fd)
        finally:
            os.close(results_fd)
        with os.fdopen(src, "rb") as fh:
            if stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                data = fh.read(max_bytes + 1)
    except OSError:
        data = None
    clear(folder)
    if data is None:
        return False
    Path(dest).write_bytes(data)
    return True


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
