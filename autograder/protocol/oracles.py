"""The stored oracle values of the visible checks (``rnn_course/checks/oracles/``).

A visible check that needs the correct behaviour of another function (the
finite differences of a forward pass, the states of a sequence) declares an
``oracle`` (see :mod:`rnn_course.checks`).  This module runs every oracle with
``autograder.reference`` and stores the plain arrays it returns, one ``.npz``
per check.  ``python -m autograder release`` rebuilds them; the test suite
proves the stored files agree with a fresh computation; the grader refuses to
start when one is missing.

An oracle receives the reference functions its parameters name
(:func:`rnn_course.checks.functions_named`).  The checks are those of the
course's assignments (``Course(...).assignments``), passed in by the caller.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autograder import reference
from rnn_course import checks as visible
from rnn_course.grading import as_plain_arrays

# Two computations of one table on different BLAS builds may differ in the last
# bits; a finite difference divides by 2e-5, so 1e-12 here stays far below the
# checks' gradient tolerances (1e-7 and 1e-6, normwise).
SYNC_RTOL, SYNC_ATOL = 1e-12, 1e-14


def with_oracle(assignments) -> dict[str, visible.Check]:
    """The visible checks of ``assignments`` that have an oracle, by id."""
    return {cid: c for cid, c in sorted(visible.registry(assignments).items())
            if c.oracle is not None}


def compute(check: visible.Check) -> dict[str, np.ndarray]:
    """Run ``check.oracle`` on the reference functions it names; plain arrays by name."""
    functions = visible.functions_named(check.oracle, reference)
    return as_plain_arrays(check.oracle(check.inputs(), *functions))


def _same(stored: dict, fresh: dict) -> bool:
    return stored.keys() == fresh.keys() and all(
        stored[k].shape == fresh[k].shape and stored[k].dtype == fresh[k].dtype
        and np.allclose(stored[k], fresh[k], rtol=SYNC_RTOL, atol=SYNC_ATOL)
        for k in fresh)


def _load(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.array(data[k]) for k in data.files}
    except (OSError, ValueError):
        return None


def out_of_sync(assignments, folder: Path | None = None) -> list[str]:
    """Problems with the stored files: missing, stale, or left over from a removed check."""
    folder = Path(folder or visible.ORACLE_DIR)
    problems = []
    expected = with_oracle(assignments)
    for cid, check in expected.items():
        stored = _load(folder / f"{cid}.npz")
        if stored is None:
            problems.append(f"{cid}.npz is missing or unreadable")
        elif not _same(stored, compute(check)):
            problems.append(f"{cid}.npz differs from the reference's values")
    for path in sorted(folder.glob("*.npz")):
        if path.stem not in expected:
            problems.append(f"{path.name} belongs to no check")
    return problems


def missing(assignments, folder: Path | None = None) -> list[str]:
    """Ids of checks whose stored file is absent (cheap: no recomputation)."""
    folder = Path(folder or visible.ORACLE_DIR)
    return [cid for cid in with_oracle(assignments) if not (folder / f"{cid}.npz").is_file()]


def write_all(assignments, folder: Path | None = None) -> list[str]:
    """Store every oracle's values; rewrite only files whose values changed.

    Returns the names of the files written or removed (so a rebuild with
    nothing to do leaves the tree untouched).
    """
    folder = Path(folder or visible.ORACLE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    expected = with_oracle(assignments)
    for cid, check in expected.items():
        path = folder / f"{cid}.npz"
        fresh = compute(check)
        stored = _load(path)
        if stored is None or not _same(stored, fresh):
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, **fresh)
            tmp.replace(path)
            changed.append(path.name)
    for path in sorted(folder.glob("*.npz")):
        if path.stem not in expected:
            path.unlink()
            changed.append(path.name)
    visible._stored_oracle.cache_clear()
    return changed
