"""Visible checks: the graded test cells that students can read and run.

A visible check is three small pure functions:

* ``make_inputs(rng)`` builds its inputs from a fixed seed (so the grader can
  rebuild exactly the same inputs in its own process);
* ``run(inputs, *functions)`` calls the student's functions and returns a dict
  of plain arrays; this is the only part that runs the student's code;
* ``verdict(inputs, outputs)`` returns ``None`` when the behaviour is right,
  else a message that names the likely bug.

A check whose oracle needs the *correct* behaviour of another function (the
finite differences of a forward pass, a sequence built from steps) also has
``oracle(inputs, *functions)``, which calls only that other function.  It never
runs with the student's functions: ``python -m autograder release`` runs it
once with ``autograder.reference`` and stores the plain arrays it returns in
``rnn_course/checks/oracles/<id>.npz``; :meth:`Check.judge` merges them over
the outputs of ``run``.  So the verdict is the same in a student's notebook and
in the grader, and it never rests on numbers the student's kernel computed
about itself: a kernel that forges its "finite differences" to agree with a
wrong gradient gains nothing.

In a notebook a check is simply called with the student's functions::

    checks.rnn_step_forward_shapes(rnn_step_forward)

Interactively this runs ``run`` then ``verdict`` and raises ``AssertionError``
with the message.  While grading only ``run`` happens in the kernel; the outputs
go to the grader (``rnn_course.grading.submit``), which calls ``verdict``
itself.  A check's ``id`` is the ``grade_id`` of the cell that calls it.

One module per assignment defines its checks; :func:`registry` collects them.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rnn_course import grading
from rnn_course.gradcheck import rel_error_norm

ASSIGNMENT_MODULES = ("rnn_cell", "bptt", "clipping", "lstm")
VISIBLE_SEED = 20261121  # visible checks use fixed inputs: students may rerun them
ORACLE_DIR = Path(__file__).parent / "oracles"


class OracleMissing(RuntimeError):
    """A check's stored oracle values are missing (``python -m autograder release``)."""


@functools.lru_cache(maxsize=None)
def _stored_oracle(check_id: str) -> tuple:
    path = ORACLE_DIR / f"{check_id}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return tuple((k, np.array(data[k])) for k in data.files)
    except OSError:
        raise OracleMissing(
            f"{check_id}: the stored oracle values {path.name} are missing; "
            "rebuild them with `python -m autograder release`") from None


@dataclass(frozen=True)
class Check:
    """One visible check; its ``id`` is the grade_id of the cell that calls it."""

    id: str
    make_inputs: Callable[[np.random.Generator], dict]
    run: Callable[..., dict]
    verdict: Callable[[dict, dict], "str | None"]
    doc: str = ""
    seed: int = VISIBLE_SEED
    oracle: "Callable[..., dict] | None" = None

    def inputs(self) -> dict:
        """The check's inputs, rebuilt from its fixed seed (fresh copies every call)."""
        return self.make_inputs(np.random.default_rng(self.seed))

    def oracle_values(self) -> dict:
        """The stored outputs of ``oracle`` (fresh copies), or {} for a check without one."""
        if self.oracle is None:
            return {}
        return {k: v.copy() for k, v in _stored_oracle(self.id)}

    def judge(self, outputs: dict) -> "str | None":
        """Judge plain-array outputs against freshly rebuilt inputs: None or a message.

        The stored oracle values replace any output of the same name, so that
        only ``run``'s own results come from the code being judged.
        """
        try:
            return self.verdict(self.inputs(), {**outputs, **self.oracle_values()})
        except KeyError as exc:
            return f"missing output {exc}"

    def __call__(self, *functions):
        """Run the check on the student's functions (see the module docstring)."""
        outputs = grading.as_plain_arrays(self.run(self.inputs(), *functions))
        if grading.grading_dir() is not None:
            grading.submit(self.id, **outputs)
            return
        message = self.judge(outputs)
        if message:
            raise AssertionError(f"{self.id}: {message}")
        print(f"{self.id}: passed" + (f" ({self.doc})" if self.doc else ""))


def check(id: str, make_inputs, doc: str = "", seed: int = VISIBLE_SEED, oracle=None):
    """Decorator form: ``@check(id, make_inputs)`` on ``run``, then ``@<run>.verdict``.

    Returns a builder whose ``.verdict`` decorator yields the finished
    :class:`Check`, so each check reads top to bottom: inputs, run, verdict.
    ``oracle`` (see the module docstring) takes the same arguments as ``run``.
    """

    def wrap(run):
        class _Builder:
            def verdict(self, fn) -> Check:
                return Check(id=id, make_inputs=make_inputs, run=run, verdict=fn, doc=doc,
                             seed=seed, oracle=oracle)

        return _Builder()

    return wrap


def collect(package: str, modules, kind: type) -> dict:
    """Instances of ``kind`` defined in ``package.<module>`` for each module, by ``.id``.

    A module that does not exist is skipped (an assignment may have no checks
    yet); two different objects with one id are an error.  Shared with the
    grader's registry of hidden checks.
    """
    found: dict = {}
    for name in modules:
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{package}.{name}":
                continue
            raise
        for value in vars(module).values():
            if isinstance(value, kind):
                if value.id in found and found[value.id] is not value:
                    raise RuntimeError(f"duplicate {kind.__name__} id {value.id!r}")
                found[value.id] = value
    return found


def registry() -> dict[str, Check]:
    """Every visible check of every assignment, by id (ids are unique course-wide)."""
    return collect("rnn_course.checks", ASSIGNMENT_MODULES, Check)


# --------------------------------------------------------------------------- #
# Small helpers for verdicts: shapes first, then values, then gradients.
# --------------------------------------------------------------------------- #
def shape_problem(name: str, arr: np.ndarray, expected: tuple) -> "str | None":
    """A message when ``arr`` is not of shape ``expected``, else None."""
    if arr.shape != tuple(expected):
        return f"{name} has shape {arr.shape}, expected {tuple(expected)}"
    return None


def value_problem(name: str, got: np.ndarray, want: np.ndarray, hint: str = "",
                  rtol: float = 1e-7, atol: float = 1e-9) -> "str | None":
    """A message when ``got`` differs from ``want`` (shape, finiteness, then values)."""
    problem = shape_problem(name, got, want.shape)
    if problem:
        return problem
    if not np.all(np.isfinite(got)):
        return f"{name} contains NaN or inf"
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        err = float(np.max(np.abs(got - want)))
        return f"{name} is wrong (max abs error {err:.3g})" + (f": {hint}" if hint else "")
    return None


def wrong_forward(function: str, got, want) -> "str | None":
    """A message when a forward pass's outputs ``got`` (reported by the kernel) differ
    from a correct forward's ``want`` (stored by an oracle), else None.

    A backward pass works from the cache of the student's own forward pass, so a
    gradient check that fails may be the forward's fault.  This only chooses the
    message: the verdict never rests on numbers the kernel reports about itself.
    """
    got = np.asarray(got, dtype=np.float64)
    if got.shape == np.shape(want) and np.allclose(got, want, rtol=1e-7, atol=1e-9):
        return None
    return (f"your {function} gives wrong outputs for these inputs, and your backward pass "
            f"works from its cache: fix {function} first (see its checks), then run this "
            "check again")


# verdicts compare gradients normwise (one source of truth: rnn_course.gradcheck)
rel_error = rel_error_norm
