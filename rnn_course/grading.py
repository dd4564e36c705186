"""How a check cell hands its results to the grader (the kernel side of grading).

Every graded test cell of the course notebooks goes through this module, and
through nothing else, so that the mechanism can be hardened without touching a
notebook.  A graded cell's ``grade_id`` is also the id of its *check*:

* a **visible check** (``rnn_course.checks``) builds its inputs itself,
  deterministically, calls the student's function and judges the result;
* a **hidden check** gets its inputs from :func:`inputs`, calls the student's
  function in code hidden from students, and hands the plain arrays it got back
  to :func:`submit`.

Two modes, chosen by the environment:

* **Grading** (``RNN_COURSE_GRADING_DIR`` is set by the grader): the kernel
  never judges anything.  Hidden inputs come from ``<dir>/inputs/<id>.npz``,
  written by the grader for this submission only; results go to
  ``<dir>/results/<id>.npz`` as plain float arrays.  The grader then judges them
  in its own process, against inputs it regenerates itself, with comparison
  code that nothing in this kernel can reach or patch.
* **Interactive** (a student or an instructor in Jupyter): visible checks judge
  in the kernel and raise ``AssertionError`` with a message naming the likely
  bug.  Hidden checks only exist in the instructor's source notebook; there
  they draw fresh inputs and are judged with the grader's own code, which must
  be importable (it never is in a student's environment).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

GRADING_DIR_ENV = "RNN_COURSE_GRADING_DIR"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

# interactive mode only: the inputs handed out for each hidden check
_pending: dict[str, dict[str, np.ndarray]] = {}
_grading_dir: Path | None = None


def grading_dir() -> Path | None:
    """The folder shared with the grader, or None outside grading.

    Resolved once, so that student code changing the working directory
    later cannot redirect results.
    """
    global _grading_dir
    if _grading_dir is None:
        value = os.environ.get(GRADING_DIR_ENV)
        if value:
            _grading_dir = Path(value).absolute()
    return _grading_dir


def _check_id(check_id: str) -> str:
    if not isinstance(check_id, str) or not _ID.match(check_id):
        raise ValueError(f"invalid check id {check_id!r}")
    return check_id


def as_plain_arrays(outputs: dict) -> dict[str, np.ndarray]:
    """Turn a dict of results into plain float64 / integer / bool ndarrays.

    Anything that is not numeric (objects, strings, arrays of objects) is
    rejected with a ``TypeError`` naming the entry: only numbers cross to the
    grader.
    """
    plain = {}
    for name, value in outputs.items():
        if not isinstance(name, str) or not _ID.match(name):
            raise ValueError(f"invalid output name {name!r}")
        arr = np.array(value, copy=True)  # also strips ndarray subclasses' behaviour
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
        elif arr.dtype.kind in "iub":
            pass
        else:
            raise TypeError(
                f"output {name!r} must be a numeric array, got dtype {arr.dtype} "
                f"(from {type(value).__name__})"
            )
        plain[name] = np.array(arr, order="C", copy=True)  # keeps 0-d arrays 0-d
    return plain


def inputs(check_id: str) -> dict[str, np.ndarray]:
    """The inputs of hidden check ``check_id``, as a dict name -> float64 array.

    While grading they are the ones the grader drew for this submission; in the
    instructor's notebook they are drawn fresh on each call.
    """
    _check_id(check_id)
    folder = grading_dir()
    if folder is not None:
        path = folder / "inputs" / f"{check_id}.npz"
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k].copy() for k in data.files}
    spec = _instructor_spec(check_id)
    drawn = spec.draw(np.random.default_rng())
    _pending[check_id] = {k: v.copy() for k, v in drawn.items()}
    return drawn


def submit(check_id: str, **outputs) -> None:
    """Hand the results of check ``check_id`` over for judging.

    While grading they are written to the grader's folder (and judged later,
    by the grader); in the instructor's notebook the check is judged right
    away and a failure raises ``AssertionError``.
    """
    _check_id(check_id)
    plain = as_plain_arrays(outputs)
    folder = grading_dir()
    if folder is not None:
        results = folder / "results"
        results.mkdir(parents=True, exist_ok=True)
        np.savez(results / f"{check_id}.npz", **plain)
        return
    from rnn_course.checks import registry  # visible checks

    visible = registry().get(check_id)
    if visible is not None:
        message = visible.judge(plain)
    else:
        spec = _instructor_spec(check_id)
        if check_id not in _pending:
            raise RuntimeError(f"{check_id}: call inputs({check_id!r}) before submit()")
        message = spec.judge(_pending.pop(check_id), plain)
    if message:
        raise AssertionError(f"{check_id}: {message}")
    print(f"{check_id}: passed")


def _instructor_spec(check_id: str):
    """The grader-side spec of a hidden check (instructor environment only)."""
    try:
        from autograder.protocol.hidden import get_spec
    except ImportError:
        raise RuntimeError(
            f"{check_id} is a hidden check: it runs only when the notebook is graded"
        ) from None
    return get_spec(check_id)
