"""Checks of the ``lstm`` assignment, visible and hidden.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
The LSTM's pre-activations ``a`` (N, 4H) hold the gate blocks in the order
**i, f, o, g**: ``a[:, 0:H]`` input gate, ``a[:, H:2H]`` forget gate,
``a[:, 2H:3H]`` output gate, ``a[:, 3H:4H]`` candidate; the initial cell
state of a sequence is zero.

How the checks isolate one bug at a time:

* **gates**: only one block of ``a`` is nonzero, so the gate that moves names
  the block the student read;
* **cell update**: ``Wx = Wh = 0`` makes the pre-activation equal to ``b``, so
  the gates are known numbers; shutting one gate (a pre-activation of -50,
  sigmoid ~ 2e-22) leaves one term of the cell update alone;
* **gradients**: centred finite differences of a correct forward pass.  The
  check's ``oracle`` evaluates it at every perturbed point; it runs once, on
  ``autograder.reference``, when the course is released, and ``verdict``
  forms the numeric gradient from the stored values (see
  :mod:`rnn_course.checks` and :mod:`rnn_course.gradcheck`).  The student's
  kernel only computes gradients.  Their tolerance is ``GATED_GRAD_TOL``.

The hidden checks (end of the module) draw new inputs for every submission:
random shapes with small edge sizes (N, D, H or T equal to 1) and, for the
gates and the step forward, some pre-activations of size ~800, where a naive
sigmoid overflows.  Backward passes are tested through the student's own
forward pass.

Closed forms in verdicts use ``sigmoid(z) = (1 + tanh(z / 2)) / 2``, which is
exact and never overflows.
"""

from __future__ import annotations

import warnings

import numpy as np

from rnn_course.checks import (
    EDGE,
    check,
    close,
    copies,
    gated,
    regime_sizes,
    shape_problem,
    unpack,
)
from rnn_course.contract import (
    LSTM_GATES,
    LSTM_STEP_ARGS,
)
from rnn_course.gradcheck import (
    EXACT_RTOL,
    GATED_GRAD_TOL,
    gradient_matches,
)

GATES = LSTM_GATES  # i, f, o, g
STEP_ARGS = LSTM_STEP_ARGS
GATE_NAMES = {"i": "input gate i", "f": "forget gate f", "o": "output gate o",
              "g": "candidate g"}
SHUT = gated.SHUT
LSTM = gated.Cell("lstm", GATES, STEP_ARGS, start="h0 and c0 = 0")


def _slice_text(k):
    return f"a[:, {gated.block_range(k)}]"


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #
def _gate_inputs(rng):
    """N=3, H=2: moderate pre-activations (|a| < 3), so every gate is far from saturation."""
    return {"a": rng.uniform(-3.0, 3.0, size=(3, 8)), "H": 2}


def _stable_inputs(rng):
    """Huge pre-activations, where exp(-a) or exp(a) overflows float64 (exp(710) = inf)."""
    huge, edge = rng.uniform(750.0, 900.0, size=2), rng.uniform(710.0, 720.0, size=2)
    large, small = rng.uniform(20.0, 40.0, size=2), rng.uniform(0.5, 2.5)
    row = np.array([huge[0], -huge[1], edge[0], -edge[1], 0.0, large[0], -large[1], small])
    return {"a": np.stack([row, -row[::-1]]), "H": 2}


# gate pre-activations used when Wx = Wh = 0 (then a = b): two hidden units per gate
_BIAS = {"i": [0.4, -0.8], "f": [1.2, -0.3], "o": [0.7, -1.1], "g": [0.9, -0.6]}


def _bias(**shut):
    """b (4H,) with H = 2 from _BIAS; gates named in ``shut`` get the pre-activation SHUT."""
    return np.concatenate([np.full(2, SHUT) if shut.get(k) else np.array(_BIAS[k])
                           for k in GATES])


def _bias_only_inputs(rng):
    """Like Cell.step_inputs but Wx = Wh = 0, so the pre-activation is exactly b."""
    inputs = LSTM.step_inputs(rng)
    inputs["Wx"] = np.zeros_like(inputs["Wx"])
    inputs["Wh"] = np.zeros_like(inputs["Wh"])
    inputs["b"] = _bias()
    return inputs


def _constant_gate_inputs(rng):
    """T=5 with Wx = Wh = 0: every step has the same gates, so c_t has a closed form."""
    inputs = LSTM.seq_inputs(rng, T=5)
    inputs["Wx"] = np.zeros_like(inputs["Wx"])
    inputs["Wh"] = np.zeros_like(inputs["Wh"])
    inputs["b"] = _bias()
    return inputs


def _cell_path_inputs(rng):
    """Wh = 0 and a loss on the last step only: earlier steps reach it only through c."""
    inputs = LSTM.backward_inputs(rng)
    inputs["Wh"] = np.zeros_like(inputs["Wh"])
    inputs["dh"][:, :-1] = 0.0
    return inputs


# --------------------------------------------------------------------------- #
# lstm_gates
# --------------------------------------------------------------------------- #
def _gates(lstm_gates, a):
    i, f, o, g = unpack(lstm_gates(np.array(a, copy=True)), GATES, "lstm_gates")
    return [np.asarray(v, dtype=np.float64) for v in (i, f, o, g)]


@check("lstm_gates_shapes", _gate_inputs, doc="i, f, o, g each of shape (N, H)")
def lstm_gates_shapes(inputs, lstm_gates):
    return dict(zip(GATES, _gates(lstm_gates, inputs["a"]), strict=True))


@lstm_gates_shapes.verdict
def lstm_gates_shapes(inputs, outputs):
    N, H = inputs["a"].shape[0], inputs["H"]
    for name in GATES:
        problem = shape_problem(name, outputs[name], (N, H))
        if problem:
            return (f"{problem}: a has shape (N, 4H) = {inputs['a'].shape}, so each gate is "
                    f"one block of H = {H} columns")
    return None


def _stacked_gates(lstm_gates, a):
    """The four gates as one (4, N, H) array (a clear ValueError if their shapes differ)."""
    gates = _gates(lstm_gates, a)
    shapes = {g.shape for g in gates}
    if len(shapes) != 1:
        shown = ", ".join(f"{n} {g.shape}" for n, g in zip(GATES, gates, strict=True))
        raise ValueError(f"lstm_gates returned gates of different shapes ({shown}); "
                         "each must be (N, H): see lstm_gates_shapes")
    return np.stack(gates)


@check("lstm_gates_order", _gate_inputs,
       doc="block k of a drives gate k, in the order i, f, o, g")
def lstm_gates_order(inputs, lstm_gates):
    N, H = inputs["a"].shape[0], inputs["H"]
    out = {"base": _stacked_gates(lstm_gates, np.zeros((N, 4 * H)))}
    for k, name in enumerate(GATES):
        a = np.zeros((N, 4 * H))
        a[:, k * H:(k + 1) * H] = 2.0  # only this block is nonzero
        out[f"only_{name}"] = _stacked_gates(lstm_gates, a)
    return out


@lstm_gates_order.verdict
def lstm_gates_order(inputs, outputs):
    N, H = inputs["a"].shape[0], inputs["H"]
    base = outputs["base"]
    if base.shape != (4, N, H):
        return f"the gates have shapes {base.shape[1:]}, expected (N, H) = {(N, H)}"
    for k, name in enumerate(GATES):
        got = outputs[f"only_{name}"]
        moved = [GATES[j] for j in range(4) if not np.allclose(got[j], base[j], atol=1e-12)]
        if moved == [name]:
            continue
        where = (f"when only the {GATE_NAMES[name]} block {_slice_text(k)} is nonzero")
        if not moved:
            return (f"{where}, none of your gates changes: is that block read at all? "
                    "The order is i, f, o, g: i = a[:, 0:H], f = a[:, H:2H], "
                    "o = a[:, 2H:3H], g = a[:, 3H:4H]")
        shown = ", ".join(moved)
        return (f"{where}, your {shown} changed instead of just {name}: the gate order is "
                "i, f, o, g (i = a[:, 0:H], f = a[:, H:2H], o = a[:, 2H:3H], g = a[:, 3H:4H])")
    return None


@check("lstm_gates_values", _gate_inputs,
       doc="i, f, o are sigmoids and g is a tanh of their blocks")
def lstm_gates_values(inputs, lstm_gates):
    return dict(zip(GATES, _gates(lstm_gates, inputs["a"]), strict=True))


@lstm_gates_values.verdict
def lstm_gates_values(inputs, outputs):
    H = inputs["H"]
    blocks = gated.blocks(inputs["a"], H, GATES)
    for name in GATES:
        got, z = outputs[name], blocks[name]
        problem = shape_problem(name, got, z.shape)
        if problem:
            return problem
        sig, tanh = gated.sigmoid(z), np.tanh(z)
        want, other = (tanh, sig) if name == "g" else (sig, tanh)
        if close(got, want):
            continue
        if close(got, other):
            if name == "g":
                return ("g is a sigmoid of its block; the candidate g is a tanh, so that "
                        "the cell can be written with values in (-1, 1), negative ones too")
            return (f"{name} is a tanh of its block; {GATE_NAMES[name]} is a sigmoid, "
                    "a number in (0, 1) saying how much passes")
        func = "tanh" if name == "g" else "sigmoid"
        k = GATES.index(name)
        return (f"{name} is wrong (max abs error {float(np.max(np.abs(got - want))):.3g}): "
                f"expected {func}({_slice_text(k)})")
    return None


@check("lstm_gates_stable", _stable_inputs,
       doc="no overflow warning, NaN or inf for pre-activations of +-800")
def lstm_gates_stable(inputs, lstm_gates):
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"):
        warnings.simplefilter("always")
        gates = _gates(lstm_gates, inputs["a"])
    out = dict(zip(GATES, gates, strict=True))
    out["n_warnings"] = np.array(sum(issubclass(w.category, RuntimeWarning) for w in caught))
    return out


@lstm_gates_stable.verdict
def lstm_gates_stable(inputs, outputs):
    H = inputs["H"]
    blocks = gated.blocks(inputs["a"], H, GATES)
    for name in GATES:
        got = outputs[name]
        problem = shape_problem(name, got, blocks[name].shape)
        if problem:
            return problem
        if not np.all(np.isfinite(got)):
            return (f"{name} contains NaN or inf for pre-activations beyond +-710: "
                    "exp(710) overflows to inf, and inf / inf is NaN")
        want = np.tanh(blocks[name]) if name == "g" else gated.sigmoid(blocks[name])
        if not np.allclose(got, want, rtol=EXACT_RTOL, atol=1e-15):
            return (f"{name} is wrong for large pre-activations (max abs error "
                    f"{float(np.max(np.abs(got - want))):.3g}): sigmoid(a) is 1 for a large "
                    "a > 0 and 0 for a large a < 0")
    n_warnings = int(np.ravel(outputs["n_warnings"])[0])
    if n_warnings:
        return (f"computing the gates raised {n_warnings} overflow "
                "warning(s): np.exp(-a) overflows for a = -800. Only ever take exp of a "
                "number <= 0: with e = exp(-|a|), sigmoid(a) = 1 / (1 + e) for a >= 0 "
                "and e / (1 + e) for a < 0")
    return None


# --------------------------------------------------------------------------- #
# lstm_step_forward
# --------------------------------------------------------------------------- #
def _closed_form_step(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step written out with the closed-form sigmoid (verdicts only)."""
    H = prev_h.shape[1]
    z = gated.blocks(x @ Wx + prev_h @ Wh + b, H, GATES)
    c = gated.sigmoid(z["f"]) * prev_c + gated.sigmoid(z["i"]) * np.tanh(z["g"])
    return gated.sigmoid(z["o"]) * np.tanh(c), c


@check("lstm_step_forward_shapes", LSTM.step_inputs,
       doc="returns next_h and next_c of shape (N, H), and a cache")
def lstm_step_forward_shapes(inputs, lstm_step_forward):
    next_h, next_c = LSTM.step(lstm_step_forward, inputs)
    return {"next_h": next_h, "next_c": next_c}


@lstm_step_forward_shapes.verdict
def lstm_step_forward_shapes(inputs, outputs):
    shape = inputs["prev_h"].shape
    return (shape_problem("next_h", outputs["next_h"], shape)
            or shape_problem("next_c", outputs["next_c"], shape))


_TERMS = ("x", "prev_h", "b")


@check("lstm_step_forward_preactivation", LSTM.step_inputs,
       doc="a = x @ Wx + prev_h @ Wh + b, one term at a time (prev_c = 0)")
def lstm_step_forward_preactivation(inputs, lstm_step_forward):
    out = {}
    for term in _TERMS:
        args = copies(inputs, STEP_ARGS)
        args["prev_c"][:] = 0.0
        for other in _TERMS:
            if other != term:
                args[other][:] = 0.0
        out[f"{term}_next_h"], out[f"{term}_next_c"] = LSTM.step(lstm_step_forward, args)
    return out


@lstm_step_forward_preactivation.verdict
def lstm_step_forward_preactivation(inputs, outputs):
    wrong = []
    for term in _TERMS:
        args = {k: np.array(inputs[k], copy=True) for k in STEP_ARGS}
        args["prev_c"][:] = 0.0
        for other in _TERMS:
            if other != term:
                args[other][:] = 0.0
        want_h, want_c = _closed_form_step(**args)
        if not (close(outputs[f"{term}_next_h"], want_h)
                and close(outputs[f"{term}_next_c"], want_c)):
            wrong.append(term)
    if not wrong:
        return None
    if len(wrong) == len(_TERMS):
        return ("next_h / next_c are wrong whichever term of the pre-activation is "
                "nonzero, so the bug is probably after it: make lstm_gates_* and "
                "lstm_step_forward_cell_state pass first")
    term = wrong[0]
    weight = {"x": "x @ Wx", "prev_h": "prev_h @ Wh", "b": "+ b (broadcast over the batch)"}
    others = " = ".join(t for t in _TERMS if t != term)
    return (f"with only {term} nonzero ({others} = 0, prev_c = 0) next_h / next_c are "
            f"wrong: check the {weight[term]} term of a = x @ Wx + prev_h @ Wh + b, "
            "shape (N, 4H)")


_SCENARIOS = {"shut_i": {"i": True}, "shut_f": {"f": True}, "open": {}}


def _bias_only_args(inputs, **shut):
    args = copies(inputs, STEP_ARGS)
    args["Wx"][:] = 0.0
    args["Wh"][:] = 0.0
    args["b"] = _bias(**shut)
    return args


@check("lstm_step_forward_cell_state", _bias_only_inputs,
       doc="next_c = f * prev_c + i * g, one term at a time")
def lstm_step_forward_cell_state(inputs, lstm_step_forward):
    out = {}
    for label, shut in _SCENARIOS.items():
        _, out[f"{label}_next_c"] = LSTM.step(lstm_step_forward, _bias_only_args(inputs, **shut))
    return out


@lstm_step_forward_cell_state.verdict
def lstm_step_forward_cell_state(inputs, outputs):
    prev_c, prev_h = inputs["prev_c"], inputs["prev_h"]
    for label, shut in _SCENARIOS.items():
        z = gated.blocks(_bias(**shut), 2, GATES)
        i, f, g = gated.sigmoid(z["i"]), gated.sigmoid(z["f"]), np.tanh(z["g"])
        keep, write = f * prev_c, np.broadcast_to(i * g, prev_c.shape)
        got = outputs[f"{label}_next_c"]
        problem = shape_problem("next_c", got, prev_c.shape)
        if problem:
            return problem
        if close(got, keep + write):
            continue
        if label == "shut_i":
            where = ("with the input gate shut (i = 0, Wx = Wh = 0) next_c must be "
                     "f * prev_c, what the forget gate keeps of the old cell state")
            if close(got, f * prev_h):
                return where + ": yours multiplies prev_h instead of prev_c"
            if close(got, write):
                return where + ": yours ignores prev_c (the forget gate must act on it)"
            if close(got, prev_c):
                return where + ": yours passes prev_c through without the forget gate"
            if close(got, (1.0 - f) * prev_c):
                return where + ": yours keeps (1 - f) * prev_c; f itself is the fraction kept"
            return where + (": yours is something else (is f the second block, a[:, H:2H]? "
                            "make the lstm_gates checks pass first)")
        if label == "shut_f":
            where = ("with the forget gate shut (f = 0, Wx = Wh = 0) next_c must be "
                     "i * g, the new content written to the cell")
            if close(got, write + prev_c):
                return where + ": yours still adds prev_c, not gated by f"
            return where + ": yours is not (check which gates multiply: i with g)"
        return ("with both gates open next_c must be f * prev_c + i * g: each term alone "
                "is right but their combination is not (add them)")
    return None


@check("lstm_step_forward_hidden_state", _bias_only_inputs,
       doc="next_h = o * tanh(next_c)")
def lstm_step_forward_hidden_state(inputs, lstm_step_forward):
    next_h, next_c = LSTM.step(lstm_step_forward, _bias_only_args(inputs))
    return {"next_h": next_h, "next_c": next_c}


@lstm_step_forward_hidden_state.verdict
def lstm_step_forward_hidden_state(inputs, outputs):
    shape = inputs["prev_h"].shape
    problem = (shape_problem("next_h", outputs["next_h"], shape)
               or shape_problem("next_c", outputs["next_c"], shape))
    if problem:
        return problem
    z = gated.blocks(_bias(), 2, GATES)
    o, c, got = gated.sigmoid(z["o"]), outputs["next_c"], outputs["next_h"]
    if close(got, o * np.tanh(c)):
        return None
    where = "next_h must be o * tanh(next_c) (o the third block, applied to your next_c)"
    if close(got, o * c):
        return where + ": yours is o * next_c, without the tanh"
    if close(got, np.tanh(o * c)):
        return where + ": yours applies tanh after multiplying by o"
    for name in ("i", "f"):
        if close(got, gated.sigmoid(z[name]) * np.tanh(c)):
            return where + f": yours uses the {GATE_NAMES[name]} instead of o"
    if close(got, o * np.tanh(inputs["prev_c"])):
        return where + ": yours uses prev_c instead of next_c"
    return where + ": yours is something else"


# --------------------------------------------------------------------------- #
# lstm_step_backward
# --------------------------------------------------------------------------- #
lstm_step_backward_shapes = LSTM.step_backward_shapes_check(
    "six gradients with the shapes of x, prev_h, prev_c, Wx, Wh, b")


@check("lstm_step_backward_dprev_c", _bias_only_inputs,
       doc="dprev_c = (dnext_c + dnext_h * o * (1 - tanh(next_c)**2)) * f, one path at a time")
def lstm_step_backward_dprev_c(inputs, lstm_step_forward, lstm_step_backward):
    args = _bias_only_args(inputs)
    zeros = np.zeros_like(inputs["dnext_h"])
    via_c = LSTM.step_backward(lstm_step_forward, lstm_step_backward, args, zeros,
                           inputs["dnext_c"])
    via_h = LSTM.step_backward(lstm_step_forward, lstm_step_backward, args, inputs["dnext_h"],
                           zeros)
    return {"via_c": via_c["dprev_c"], "via_h": via_h["dprev_c"]}


@lstm_step_backward_dprev_c.verdict
def lstm_step_backward_dprev_c(inputs, outputs):
    z = gated.blocks(_bias(), 2, GATES)
    i, f, o = (gated.sigmoid(z[k]) for k in ("i", "f", "o"))
    g = np.tanh(z["g"])
    c = f * inputs["prev_c"] + i * g
    dnext_c, dnext_h = inputs["dnext_c"], inputs["dnext_h"]
    got = outputs["via_c"]
    problem = shape_problem("dprev_c", got, dnext_c.shape)
    if problem:
        return problem
    if not close(got, dnext_c * f):
        where = ("with dnext_h = 0 the loss sees prev_c only through next_c = f * prev_c + "
                 "i * g, so dprev_c = dnext_c * f (the additive path)")
        if close(got, dnext_c):
            return where + ": yours forgets the factor f"
        return where + ": yours is not"
    got = outputs["via_h"]
    dc = dnext_h * o * (1.0 - np.tanh(c) ** 2)
    if not close(got, dc * f):
        where = ("with dnext_c = 0 the gradient reaches next_c through next_h = o * "
                 "tanh(next_c), i.e. dnext_h * o * (1 - tanh(next_c)**2), and then prev_c "
                 "through the factor f")
        if np.allclose(got, 0.0, atol=1e-12):
            return where + ": yours is zero, the path through next_h is missing"
        if close(got, dnext_h * o * f):
            return where + ": yours misses the tanh derivative 1 - tanh(next_c)**2"
        if close(got, dnext_h * (1.0 - np.tanh(c) ** 2) * f):
            return where + ": yours misses the factor o"
        if close(got, dc):
            return where + ": yours misses the factor f"
        return where + ": yours is not"
    return None


_STEP_HINTS = {
    "x": "dx = da @ Wx.T, da (N, 4H) the gradient of the pre-activation",
    "prev_h": "dprev_h = da @ Wh.T",
    "prev_c": ("dprev_c = (dnext_c + dnext_h * o * (1 - tanh(next_c)**2)) * f; every gate's "
               "gradient uses that total gradient of next_c, so check it first"),
    "Wx": "dWx = x.T @ da",
    "Wh": "dWh = prev_h.T @ da",
    "b": "db sums da over the batch (see lstm_step_backward_gate_blocks)",
}


_BLOCK_HINTS = {
    "i": "the input gate's gradient is (gradient of next_c) * g * i * (1 - i)",
    "f": "the forget gate's gradient is (gradient of next_c) * prev_c * f * (1 - f)",
    "o": "the output gate's gradient is dnext_h * tanh(next_c) * o * (1 - o)",
    "g": "the candidate's gradient is (gradient of next_c) * i * (1 - g**2)",
}


@LSTM.gate_blocks_check("db, block by block (i, f, o, g), against finite differences")
def lstm_step_backward_gate_blocks(wrong):
    if wrong == ["i", "f", "g"]:
        return ("the i, f and g blocks of db are wrong but o is right: they all share the "
                "gradient of next_c, dnext_c + dnext_h * o * (1 - tanh(next_c)**2); "
                "check that total first")
    return LSTM.block_message(wrong, GATE_NAMES, _BLOCK_HINTS)


# dprev_c first: the gradient of next_c feeds every other one
lstm_step_backward_gradcheck = LSTM.step_gradcheck_check(
    "all six gradients against centred finite differences", _STEP_HINTS,
    ("prev_c", "x", "prev_h", "Wx", "Wh", "b"))


# --------------------------------------------------------------------------- #
# lstm_forward
# --------------------------------------------------------------------------- #
lstm_forward_shapes = LSTM.forward_shapes_check()


@check("lstm_forward_c0_zero", LSTM.one_step_inputs,
       doc="with T = 1, h[:, 0] is one step from h0 and c0 = 0")
def lstm_forward_c0_zero(inputs, lstm_forward):
    return LSTM.h_run(inputs, lstm_forward)


@lstm_forward_c0_zero.verdict
def lstm_forward_c0_zero(inputs, outputs):
    x, h0 = inputs["x"][:, 0], inputs["h0"]
    weights = (inputs["Wx"], inputs["Wh"], inputs["b"])
    got = outputs["h"]
    problem = shape_problem("h", got, (h0.shape[0], 1, h0.shape[1]))
    if problem:
        return problem
    want, _ = _closed_form_step(x, h0, np.zeros_like(h0), *weights)
    if close(got[:, 0], want):
        return None
    where = "with T = 1, h[:, 0] must be one LSTM step from h0 with c0 = 0"
    if close(got[:, 0], _closed_form_step(x, h0, h0, *weights)[0]):
        return where + ": yours starts the cell state from h0; start it at np.zeros((N, H))"
    if close(got[:, 0], _closed_form_step(x, h0, np.ones_like(h0), *weights)[0]):
        return where + ": yours starts the cell state at ones; start it at zeros"
    if close(got[:, 0], _closed_form_step(x, np.zeros_like(h0), np.zeros_like(h0),
                                           *weights)[0]):
        return where + ": yours ignores h0 (the first step's prev_h is h0)"
    return where + " (if lstm_step_forward passes its checks, check what you feed it)"


@check("lstm_forward_carries_cell", _constant_gate_inputs,
       doc="constant gates: c_t = f * c_(t-1) + i * g accumulates from c0 = 0")
def lstm_forward_carries_cell(inputs, lstm_forward):
    return LSTM.h_run(inputs, lstm_forward)


@lstm_forward_carries_cell.verdict
def lstm_forward_carries_cell(inputs, outputs):
    N, T, _ = inputs["x"].shape
    got = outputs["h"]
    problem = shape_problem("h", got, (N, T, 2))
    if problem:
        return problem
    z = gated.blocks(inputs["b"], 2, GATES)
    i, f, o = (gated.sigmoid(z[k]) for k in ("i", "f", "o"))
    g = np.tanh(z["g"])
    # c_t = i g (1 + f + ... + f^t), a geometric sum, the same for every sequence
    t = np.arange(1, T + 1)[:, None]
    want = np.broadcast_to(o * np.tanh(i * g * (1.0 - f ** t) / (1.0 - f)), (N, T, 2))
    if close(got, want):
        return None
    where = ("with Wx = Wh = 0 every step has the same gates, so the cell state must "
             "grow as c_t = f * c_(t-1) + i * g from c0 = 0")
    if close(got, np.broadcast_to(got[:, :1], got.shape)):
        return where + (": your h is the same at every step, as if the cell state were "
                        "reset: pass next_c of step t on as prev_c of step t + 1")
    if close(got[:, 0], want[:, 0]):
        return where + ": your first step is right, later ones are not (is next_c passed on?)"
    return where + ": yours differs from the first step on"


lstm_forward_matches_steps = LSTM.forward_matches_steps_check()


# --------------------------------------------------------------------------- #
# lstm_backward
# --------------------------------------------------------------------------- #
lstm_backward_shapes = LSTM.backward_shapes_check()


@LSTM.through_check("backward_through_cell", _cell_path_inputs,
                    "with Wh = 0 the gradient reaches earlier steps through the cell state alone")
def lstm_backward_through_cell(outputs, got, numeric):
    if not gradient_matches(got, numeric, GATED_GRAD_TOL):
        forward = gated.forward_problem(outputs, "lstm_forward")
        if forward:
            return forward
    if not gradient_matches(got[:, -1], numeric[:, -1], GATED_GRAD_TOL):
        return LSTM.LAST_STEP_WRONG
    if gradient_matches(got, numeric, GATED_GRAD_TOL):
        return None
    where = LSTM.EARLIER_STEPS_WRONG + "the cell state"
    if np.allclose(got[:, :-1], 0.0, atol=1e-12):
        return where + (": yours is zero there. Carry dprev_c of step t back as dnext_c "
                        "of step t - 1 (starting from zeros at the last step)")
    return where + ": pass dprev_c of step t back as dnext_c of step t - 1"


lstm_backward_gradcheck = LSTM.backward_gradcheck_check(
    "the h gradient from step t + 1, added to dh[:, t], or the c gradient from step t + 1, "
    "passed as dnext_c (lstm_backward_through_cell tests that one alone)")


# --------------------------------------------------------------------------- #
# Hidden checks: new inputs for every submission
# --------------------------------------------------------------------------- #
def _draw_gates(rng, regime):
    s = regime_sizes(rng, regime, "NH")
    a = 3.0 * rng.standard_normal((s["N"], 4 * s["H"]))
    return {"a": a if regime == EDGE else gated.saturate(rng, a)}


@check("lstm_gates_hidden", gated.both(_draw_gates), hidden=True, outputs=GATES,
       doc="gate values on random shapes, with pre-activations up to |a| ~ 900")
def lstm_gates_hidden(inputs, lstm_gates):
    return dict(zip(GATES, _gates(lstm_gates, inputs["a"]), strict=True))


lstm_step_forward_hidden = LSTM.step_forward_hidden_check(
    "one LSTM step on random shapes, some gates saturated by |b| ~ 800", saturated=4)
lstm_step_backward_hidden = LSTM.step_backward_hidden_check(
    "the six gradients of one step (through the student's forward pass)")
lstm_forward_hidden = LSTM.forward_hidden_check(
    "hidden states of a whole sequence on random shapes")
lstm_backward_hidden = LSTM.backward_hidden_check()
