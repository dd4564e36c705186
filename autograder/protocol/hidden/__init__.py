"""Hidden checks, judged by the grader (never inside the student's kernel).

A hidden check is the grader-side half of a hidden test cell.  The cell, which
students never see, does::

    _in = grading.inputs("rnn_step_forward_hidden")
    _next_h, _ = rnn_step_forward(**_in)
    grading.submit("rnn_step_forward_hidden", next_h=_next_h)

and its :class:`HiddenSpec` here says how to draw those inputs and what the
outputs must be: ``expected(reference, inputs)`` mirrors the cell's calls with
:mod:`autograder.reference`.  While grading, the grader draws the inputs from a
seed the student cannot know (:func:`seed_for`), writes them for the kernel,
and afterwards regenerates them from the seed (it never trusts the kernel's
copy) and compares the submitted arrays with the reference's.

One module per assignment defines its specs; :func:`registry` collects them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from autograder import reference
from rnn_course.checks import collect

ASSIGNMENT_MODULES = ("rnn_cell", "bptt", "clipping", "lstm")


@dataclass(frozen=True)
class HiddenSpec:
    """How one hidden check draws its inputs and what it expects."""

    id: str
    make_inputs: Callable[[np.random.Generator], dict]
    expected: Callable[[object, dict], dict]
    doc: str = ""
    rtol: float = 1e-6
    atol: float = 1e-8

    def draw(self, rng: np.random.Generator) -> dict:
        """Fresh inputs: dict name -> float64 array."""
        return {k: np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f"
                else np.asarray(v) for k, v in self.make_inputs(rng).items()}

    def judge(self, inputs: dict, outputs: dict) -> "str | None":
        """None if ``outputs`` match the reference on ``inputs``, else a short message.

        The message names the output and the kind of mismatch; it never shows
        the inputs or the expected values.
        """
        want = self.expected(reference, {k: v.copy() for k, v in inputs.items()})
        for name, w in want.items():
            w = np.asarray(w)
            if name not in outputs:
                return f"no value for {name!r} was produced"
            g = np.asarray(outputs[name])
            if g.dtype.kind not in "fiub":
                return f"{name} is not a numeric array"
            if g.shape != w.shape:
                return f"{name} has shape {g.shape}, expected {w.shape}"
            if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
                return f"{name} contains NaN or inf"
            if not np.allclose(g.astype(np.float64), w, rtol=self.rtol, atol=self.atol):
                err = float(np.max(np.abs(g.astype(np.float64) - w)))
                return f"{name} differs from the expected values (max abs error {err:.3g})"
        return None


def registry() -> dict[str, HiddenSpec]:
    """Every hidden check of every assignment, by id (ids are unique course-wide)."""
    return collect("autograder.protocol.hidden", ASSIGNMENT_MODULES, HiddenSpec)


def get_spec(check_id: str) -> HiddenSpec:
    """The spec of hidden check ``check_id`` (``KeyError`` with a clear message if unknown)."""
    specs = registry()
    if check_id not in specs:
        raise KeyError(f"no hidden check named {check_id!r}")
    return specs[check_id]
