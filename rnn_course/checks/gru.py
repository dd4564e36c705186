"""Checks of the ``gru`` assignment, visible and hidden.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
The GRU's weights ``Wx`` (D, 3H), ``Wh`` (H, 3H) and bias ``b`` (3H,) hold the
blocks in the order **r, z, n**: ``[:, 0:H]`` reset gate, ``[:, H:2H]`` update
gate, ``[:, 2H:3H]`` candidate::

    r = sigmoid(x Wx_r + h Wh_r + b_r)
    z = sigmoid(x Wx_z + h Wh_z + b_z)
    n = tanh(x Wx_n + (r * h) Wh_n + b_n)
    next_h = (1 - z) * n + z * h

How the checks isolate one bug at a time:

* **gate order**: ``Wx = 0``, ``Wh`` nonzero only in its n block and only one
  block of ``b`` nonzero, so the way ``next_h`` moves says which role the
  student gave that block;
* **interpolation**: ``Wx = Wh = 0`` makes r, z, n known numbers; shutting or
  opening the update gate (a pre-activation of -+50) leaves one term alone;
* **reset gate**: ``Wh`` nonzero only in its n block, so ``r * h`` before
  ``Wh_n`` and ``r * (h Wh_n)`` after it give different numbers (H = 2);
* **gradients**: centred finite differences of a correct forward pass, whose
  evaluations the check's ``oracle`` stores once when the course is released
  (see :mod:`rnn_course.checks` and :mod:`rnn_course.gradcheck`).  Their
  tolerance is ``GATED_GRAD_TOL``.

The hidden checks (end of the module) draw new inputs for every submission:
random shapes with edge sizes (N, D, H or T equal to 1) and some bias entries
of size ~800, which saturate gates (where a naive sigmoid overflows).
Backward passes are tested through the student's own forward pass.

Closed forms in verdicts use ``sigmoid(a) = (1 + tanh(a / 2)) / 2``, which is
exact and never overflows.
"""

from __future__ import annotations

import numpy as np

from rnn_course.checks import (
    check,
    close,
    copies,
    gated,
    shape_problem,
)
from rnn_course.contract import (
    GRU_GATES,
    STEP_ARGS,
)
from rnn_course.gradcheck import (
    GATED_GRAD_TOL,
    gradient_matches,
)

GATES = GRU_GATES  # r, z, n
GATE_NAMES = {"r": "reset gate r", "z": "update gate z", "n": "candidate n"}
ORDER_TEXT = "the block order is r, z, n: r = [:, 0:H], z = [:, H:2H], n = [:, 2H:3H]"
SHUT = gated.SHUT
GRU = gated.Cell("gru", GATES, STEP_ARGS, start="h0")


def _closed_form_step(x, prev_h, Wx, Wh, b, reset="before", swap=False):
    """One GRU step written out (verdicts only); ``reset`` and ``swap`` give known bugs:
    reset="after" applies r to h @ Wh_n, "none" leaves it out; swap=True uses
    z * n + (1 - z) * h."""
    H = prev_h.shape[1]
    ax, wh = gated.blocks(x @ Wx + b, H, GATES), gated.blocks(Wh, H, GATES)
    r = gated.sigmoid(ax["r"] + prev_h @ wh["r"])
    z = gated.sigmoid(ax["z"] + prev_h @ wh["z"])
    recurrent = {"before": (r * prev_h) @ wh["n"], "after": r * (prev_h @ wh["n"]),
                 "none": prev_h @ wh["n"]}[reset]
    n = np.tanh(ax["n"] + recurrent)
    return z * n + (1.0 - z) * prev_h if swap else (1.0 - z) * n + z * prev_h


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #
def _order_inputs(rng):
    """Wx = 0 and Wh nonzero only in its n block (so r matters, and only through Wh_n)."""
    inputs = GRU.step_inputs(rng)
    inputs["Wx"] = np.zeros_like(inputs["Wx"])
    inputs["Wh"][:, :4] = 0.0
    inputs["Wh"][:, 4:] = np.array([[1.1, -0.7], [0.6, 0.9]])
    inputs["b"] = np.zeros(6)
    return inputs


# the value of the one nonzero bias block in gru_step_forward_gate_order (two units)
_BLOCK_VALUE = np.array([1.6, -1.2])


def _one_block_bias(k):
    b = np.zeros(6)
    b[2 * k:2 * k + 2] = _BLOCK_VALUE
    return b


# gate pre-activations used when Wx = Wh = 0 (then they equal b): two hidden units per gate
_BIAS = {"r": [0.5, -0.4], "z": [0.8, -0.6], "n": [0.9, -1.3]}


def _bias(z=None):
    """b (3H,) with H = 2 from _BIAS; ``z`` replaces the update gate's block."""
    return np.concatenate([np.full(2, z) if (name == "z" and z is not None)
                           else np.array(_BIAS[name]) for name in GATES])


def _bias_only_inputs(rng):
    """Like Cell.step_inputs but Wx = Wh = 0, so the gates are sigmoid / tanh of b."""
    inputs = GRU.step_inputs(rng)
    inputs["Wx"] = np.zeros_like(inputs["Wx"])
    inputs["Wh"] = np.zeros_like(inputs["Wh"])
    inputs["b"] = _bias()
    return inputs


def _reset_inputs(rng):
    """Wh nonzero only in its n block (not diagonal), r known from Wx = 0 and b_r."""
    inputs = _order_inputs(rng)
    inputs["Wx"] = 0.5 * rng.standard_normal(inputs["Wx"].shape)
    inputs["Wx"][:, :4] = 0.0
    inputs["b"] = _bias()
    return inputs


def _update_path_inputs(rng):
    """Wh = 0 and a loss on the last step only: earlier steps reach it only through
    the z * h term of next_h."""
    inputs = GRU.backward_inputs(rng)
    inputs["Wh"] = np.zeros_like(inputs["Wh"])
    inputs["b"][2:4] = 1.5  # z ~ 0.8: a clear path
    inputs["dh"][:, :-1] = 0.0
    return inputs


# --------------------------------------------------------------------------- #
# gru_step_forward
# --------------------------------------------------------------------------- #
@check("gru_step_forward_shapes", GRU.step_inputs, doc="returns next_h of shape (N, H) and a cache")
def gru_step_forward_shapes(inputs, gru_step_forward):
    return {"next_h": GRU.step(gru_step_forward, inputs)}


@gru_step_forward_shapes.verdict
def gru_step_forward_shapes(inputs, outputs):
    problem = shape_problem("next_h", outputs["next_h"], inputs["prev_h"].shape)
    if problem and np.ndim(outputs["next_h"]) == 2 and outputs["next_h"].shape[1] == 6:
        return problem + ": Wx has 3H columns, one block of H for each of r, z, n"
    return problem


@check("gru_step_forward_gate_order", _order_inputs,
       doc="with only one block of b nonzero, next_h moves as that block's gate")
def gru_step_forward_gate_order(inputs, gru_step_forward):
    out = {"base": GRU.step(gru_step_forward, inputs)}
    for k, name in enumerate(GATES):
        args = dict(inputs, b=_one_block_bias(k))
        out[f"only_{name}"] = GRU.step(gru_step_forward, args)
    return out


@gru_step_forward_gate_order.verdict
def gru_step_forward_gate_order(inputs, outputs):
    args = {k: inputs[k] for k in STEP_ARGS}
    shape = inputs["prev_h"].shape
    for k, name in enumerate(GATES):
        got = outputs[f"only_{name}"]
        problem = shape_problem("next_h", got, shape)
        if problem:
            return problem
        # what next_h would be if block k played the role of each gate
        roles = {role: _closed_form_step(**dict(args, b=_one_block_bias(GATES.index(role))))
                 for role in GATES}
        if close(got, roles[name]):
            continue
        where = f"when only b[{gated.block_range(k)}], the {GATE_NAMES[name]}'s block, is nonzero"
        acted = [role for role in GATES if role != name and close(got, roles[role])]
        if acted:
            return f"{where}, your next_h moves as if it were the {GATE_NAMES[acted[0]]}: " \
                   + ORDER_TEXT
        if close(got, outputs["base"]):
            return f"{where}, your next_h does not move: is that block read at all? " \
                   + ORDER_TEXT
        candidate = _reset_problem(dict(args, b=_one_block_bias(k)), got)
        if candidate:  # the order is right, the candidate is not
            return candidate
        return (f"{where}, your next_h is wrong ({ORDER_TEXT}); if the order is right, "
                "see gru_step_forward_interpolation and gru_step_forward_reset_gate")
    return None


_Z_SCENARIOS = {"z_shut": SHUT, "z_open": -SHUT, "mixed": None}


def _bias_only_args(inputs, z=None):
    args = copies(inputs, STEP_ARGS)
    args["Wx"][:] = 0.0
    args["Wh"][:] = 0.0
    args["b"] = _bias(z)
    return args


@check("gru_step_forward_interpolation", _bias_only_inputs,
       doc="next_h = (1 - z) * n + z * prev_h: update gate shut, open, in between")
def gru_step_forward_interpolation(inputs, gru_step_forward):
    return {label: GRU.step(gru_step_forward, _bias_only_args(inputs, z))
            for label, z in _Z_SCENARIOS.items()}


@gru_step_forward_interpolation.verdict
def gru_step_forward_interpolation(inputs, outputs):
    prev_h = inputs["prev_h"]
    for label, z_pre in _Z_SCENARIOS.items():
        blocks = gated.blocks(_bias(z_pre), 2, GATES)
        z, n = gated.sigmoid(blocks["z"]), np.tanh(blocks["n"])
        got = outputs[label]
        problem = shape_problem("next_h", got, prev_h.shape)
        if problem:
            return problem
        if close(got, (1.0 - z) * n + z * prev_h):
            continue
        if close(got, z * n + (1.0 - z) * prev_h):
            return ("next_h = z * n + (1 - z) * prev_h: the roles of z and 1 - z are swapped. "
                    "In this course z is the fraction of the old state kept: "
                    "next_h = (1 - z) * n + z * prev_h, so z = 1 copies prev_h unchanged")
        if label == "z_shut":
            where = ("with the update gate shut (z = 0, Wx = Wh = 0) next_h must be the "
                     "candidate n = tanh(b_n)")
            if close(got, n + prev_h):
                return where + ": yours still adds prev_h, not weighted by z"
            return where + ": yours is not"
        if label == "z_open":
            where = ("with the update gate open (z = 1, Wx = Wh = 0) next_h must be prev_h "
                     "unchanged: that copy is how a GRU remembers")
            if close(got, n + prev_h):
                return where + ": yours adds n, not weighted by 1 - z"
            if close(got, n):
                return where + ": yours ignores prev_h"
            return where + ": yours is not"
        if close(got, n + z * prev_h) or close(got, (1.0 - z) * n + prev_h):
            return ("next_h must be (1 - z) * n + z * prev_h, both terms weighted: one of "
                    "your weights is missing")
        return ("with z in (0, 1) next_h must be (1 - z) * n + z * prev_h: each extreme is "
                "right but the blend is not")
    return None


@check("gru_step_forward_reset_gate", _reset_inputs,
       doc="n = tanh(x Wx_n + (r * prev_h) Wh_n + b_n): r multiplies prev_h before Wh_n")
def gru_step_forward_reset_gate(inputs, gru_step_forward):
    return {"next_h": GRU.step(gru_step_forward, inputs)}


@gru_step_forward_reset_gate.verdict
def gru_step_forward_reset_gate(inputs, outputs):
    args = {k: inputs[k] for k in STEP_ARGS}
    got = outputs["next_h"]
    problem = shape_problem("next_h", got, inputs["prev_h"].shape)
    if problem:
        return problem
    if close(got, _closed_form_step(**args)):
        return None
    return _reset_problem(args, got) or (
        RESET_TEXT + " (if gru_step_forward_gate_order passes, check the n block's terms)")


RESET_TEXT = "the candidate must be n = tanh(x Wx_n + (r * prev_h) Wh_n + b_n)"


def _reset_problem(args: dict, got) -> "str | None":
    """A message when ``got`` is the step with the reset gate after the product or left
    out (the usual bugs of the candidate), else None."""
    if close(got, _closed_form_step(**args, reset="after")):
        return (RESET_TEXT + ": yours applies r after the product, r * (prev_h Wh_n). The "
                "reset gate chooses which units of prev_h the candidate reads, so it "
                "multiplies prev_h before Wh_n")
    if close(got, _closed_form_step(**args, reset="none")):
        return RESET_TEXT + ": yours uses prev_h without the reset gate r"
    return None


@check("gru_step_forward_values", GRU.step_inputs,
       doc="next_h on random inputs, every weight nonzero")
def gru_step_forward_values(inputs, gru_step_forward):
    out = {"next_h": GRU.step(gru_step_forward, inputs)}
    no_bias = dict(inputs, b=np.zeros_like(inputs["b"]))
    out["no_bias_next_h"] = GRU.step(gru_step_forward, no_bias)
    return out


@gru_step_forward_values.verdict
def gru_step_forward_values(inputs, outputs):
    args = {k: inputs[k] for k in STEP_ARGS}
    got = outputs["next_h"]
    problem = shape_problem("next_h", got, inputs["prev_h"].shape)
    if problem:
        return problem
    if not np.all(np.isfinite(got)):
        return "next_h contains NaN or inf"
    if close(got, _closed_form_step(**args)):
        return None
    H = inputs["prev_h"].shape[1]
    if close(outputs["no_bias_next_h"], _closed_form_step(**dict(args, b=0.0 * args["b"]))):
        return "next_h is right when b = 0 but not otherwise: add b (its r, z, n blocks)"
    for k, name in enumerate(GATES[:2]):
        Wh = np.array(args["Wh"], copy=True)
        Wh[:, k * H:(k + 1) * H] = 0.0
        if close(got, _closed_form_step(**dict(args, Wh=Wh))):
            return (f"your {GATE_NAMES[name]} ignores prev_h: its pre-activation is "
                    f"x Wx_{name} + prev_h Wh_{name} + b_{name}")
    Wx = np.zeros_like(args["Wx"])
    if close(got, _closed_form_step(**dict(args, Wx=Wx))):
        return "your next_h ignores x: every block has an x Wx term"
    return ("next_h is wrong for random inputs although the simpler checks may pass: "
            "compare your code with the four equations term by term")


# --------------------------------------------------------------------------- #
# gru_step_backward
# --------------------------------------------------------------------------- #
gru_step_backward_shapes = GRU.step_backward_shapes_check(
    "five gradients with the shapes of x, prev_h, Wx, Wh, b")


_BACKWARD_ORDER = ("n", "z", "r")  # the order in which a backward pass computes them

_BLOCK_HINTS = {
    "r": "the reset gate's gradient is ((dn_pre @ Wh_n.T) * prev_h) * r * (1 - r), "
         "dn_pre the gradient of n's pre-activation",
    "z": "the update gate's gradient is dnext_h * (prev_h - n) * z * (1 - z)",
    "n": "the candidate's gradient is dnext_h * (1 - z) * (1 - n**2)",
}


# n first: the reset gate's gradient is computed from the candidate's
@GRU.gate_blocks_check("db, block by block (r, z, n), against finite differences",
                       order=_BACKWARD_ORDER)
def gru_step_backward_gate_blocks(wrong):
    note = ("; the r block is computed from n's, so fix n first"
            if wrong[0] == "n" and "r" in wrong else "")
    return GRU.block_message(wrong, GATE_NAMES, _BLOCK_HINTS, note)


_STEP_HINTS = {
    "x": "dx = da @ Wx.T, da (N, 3H) the gradient of the three pre-activations",
    "prev_h": "prev_h reaches next_h by three paths: dnext_h * z, (dn_pre @ Wh_n.T) * r "
              "through r * prev_h, and da_rz @ Wh_rz.T through the gates; add all three",
    "Wx": "dWx = x.T @ da",
    "Wh": "dWh_r and dWh_z are prev_h.T @ da_r and prev_h.T @ da_z, but dWh_n is "
          "(r * prev_h).T @ dn_pre",
    "b": "db sums da over the batch (see gru_step_backward_gate_blocks)",
}


gru_step_backward_gradcheck = GRU.step_gradcheck_check(
    "all five gradients against centred finite differences", _STEP_HINTS, STEP_ARGS)


# --------------------------------------------------------------------------- #
# gru_forward
# --------------------------------------------------------------------------- #
gru_forward_shapes = GRU.forward_shapes_check()


@check("gru_forward_first_step", GRU.one_step_inputs,
       doc="with T = 1, h[:, 0] is one step from h0")
def gru_forward_first_step(inputs, gru_forward):
    return GRU.h_run(inputs, gru_forward)


@gru_forward_first_step.verdict
def gru_forward_first_step(inputs, outputs):
    x, h0 = inputs["x"][:, 0], inputs["h0"]
    weights = {k: inputs[k] for k in ("Wx", "Wh", "b")}
    got = outputs["h"]
    problem = shape_problem("h", got, (h0.shape[0], 1, h0.shape[1]))
    if problem:
        return problem
    if close(got[:, 0], _closed_form_step(x, h0, **weights)):
        return None
    where = "with T = 1, h[:, 0] must be one GRU step from h0"
    if close(got[:, 0], _closed_form_step(x, np.zeros_like(h0), **weights)):
        return where + ": yours ignores h0 (the first step's prev_h is h0)"
    if close(got[:, 0], h0):
        return where + ": yours stores h0 itself; h[:, t] is the state after reading x[:, t]"
    return where + " (if gru_step_forward passes its checks, check what you feed it)"


gru_forward_matches_steps = GRU.forward_matches_steps_check()


# --------------------------------------------------------------------------- #
# gru_backward
# --------------------------------------------------------------------------- #
gru_backward_shapes = GRU.backward_shapes_check()


@GRU.through_check("backward_through_update", _update_path_inputs,
                   "with Wh = 0 the gradient reaches earlier steps through z * h alone")
def gru_backward_through_update(outputs, got, numeric):
    if gradient_matches(got, numeric, GATED_GRAD_TOL):
        return None
    forward = gated.forward_problem(outputs, "gru_forward")
    if forward:
        return forward
    if not gradient_matches(got[:, -1], numeric[:, -1], GATED_GRAD_TOL):
        return GRU.LAST_STEP_WRONG
    where = GRU.EARLIER_STEPS_WRONG + ("next_h = (1 - z) * n + z * prev_h, the update "
                                         "gate's copy of the old state")
    if np.allclose(got[:, :-1], 0.0, atol=1e-12):
        return where + (": yours is zero there. Carry dprev_h of step t back and add it to "
                        "dh[:, t - 1]")
    return where + ": add dprev_h of step t to dh[:, t - 1] before step t - 1's backward"


gru_backward_gradcheck = GRU.backward_gradcheck_check(
    "the h gradient from step t + 1, added to dh[:, t]")


# --------------------------------------------------------------------------- #
# Hidden checks: new inputs for every submission
# --------------------------------------------------------------------------- #
gru_step_forward_hidden = GRU.step_forward_hidden_check(
    "one GRU step on random shapes, some gates saturated", saturated=2)
gru_step_backward_hidden = GRU.step_backward_hidden_check(
    "the five gradients of one step (through the student's forward pass)")
gru_forward_hidden = GRU.forward_hidden_check(
    "hidden states of a whole sequence on random shapes, some gates saturated", saturated=2)
gru_backward_hidden = GRU.backward_hidden_check(saturated=2)
