"""Hidden checks of the ``lstm`` assignment (grader side).

Inputs are drawn anew for every submission: random shapes with small edge
sizes (N, D, H or T equal to 1) and, for the gates and the step forward, some
pre-activations of size ~800, where a naive sigmoid overflows.  Backward
passes are tested through the student's own forward pass: the hidden cell
calls forward then backward, and ``expected`` does the same with the
reference.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
"""

from __future__ import annotations

from autograder.protocol.hidden import HiddenSpec

GATES = ("i", "f", "o", "g")
STEP_GRADS = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")
SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")


def _size(rng, high=5):
    """A dimension in [1, high], 1 (an edge case) about one time in three."""
    return int(rng.choice([1, 1] + list(range(2, high + 1))))


def _with_huge_entries(rng, a, fraction=0.2):
    """Set about ``fraction`` of the entries of ``a`` to +-U(700, 900), in place."""
    mask = rng.random(a.shape) < fraction
    a[mask] = rng.choice([-1.0, 1.0], size=mask.sum()) * rng.uniform(700, 900, size=mask.sum())
    return a


def _weights(rng, D, H, scale=0.5):
    return {"Wx": scale * rng.standard_normal((D, 4 * H)),
            "Wh": scale * rng.standard_normal((H, 4 * H)),
            "b": scale * rng.standard_normal(4 * H)}


# --------------------------------------------------------------------------- #
# lstm_gates
# --------------------------------------------------------------------------- #
def _gates_inputs(rng):
    N, H = _size(rng), _size(rng)
    return {"a": _with_huge_entries(rng, 3.0 * rng.standard_normal((N, 4 * H)))}


lstm_gates_hidden = HiddenSpec(
    id="lstm_gates_hidden",
    make_inputs=_gates_inputs,
    expected=lambda ref, inp: dict(zip(GATES, ref.lstm_gates(**inp), strict=True)),
    doc="gate values on random shapes, with pre-activations up to |a| ~ 900",
)


# --------------------------------------------------------------------------- #
# lstm_step_forward / lstm_step_backward
# --------------------------------------------------------------------------- #
def _step_inputs(rng, huge=False):
    N, D, H = _size(rng), _size(rng), _size(rng)
    inputs = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H)),
              "prev_c": 2.0 * rng.standard_normal((N, H)), **_weights(rng, D, H)}
    if huge:
        _with_huge_entries(rng, inputs["b"], fraction=0.25)
    return inputs


def _step_forward_expected(ref, inp):
    next_h, next_c, _ = ref.lstm_step_forward(**inp)
    return {"next_h": next_h, "next_c": next_c}


lstm_step_forward_hidden = HiddenSpec(
    id="lstm_step_forward_hidden",
    make_inputs=lambda rng: _step_inputs(rng, huge=True),
    expected=_step_forward_expected,
    doc="one LSTM step on random shapes, some gates saturated by |b| ~ 800",
)


def _step_backward_inputs(rng):
    inputs = _step_inputs(rng)
    N, H = inputs["prev_h"].shape
    inputs["dnext_h"] = rng.standard_normal((N, H))
    inputs["dnext_c"] = rng.standard_normal((N, H))
    return inputs


def _step_backward_expected(ref, inp):
    args = {k: v for k, v in inp.items() if k not in ("dnext_h", "dnext_c")}
    _, _, cache = ref.lstm_step_forward(**args)
    grads = ref.lstm_step_backward(inp["dnext_h"], inp["dnext_c"], cache)
    return dict(zip(STEP_GRADS, grads, strict=True))


lstm_step_backward_hidden = HiddenSpec(
    id="lstm_step_backward_hidden",
    make_inputs=_step_backward_inputs,
    expected=_step_backward_expected,
    doc="the six gradients of one step (through the student's forward pass)",
)


# --------------------------------------------------------------------------- #
# lstm_forward / lstm_backward
# --------------------------------------------------------------------------- #
def _seq_inputs(rng):
    N, T, D, H = _size(rng), _size(rng, high=7), _size(rng), _size(rng)
    return {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
            **_weights(rng, D, H)}


lstm_forward_hidden = HiddenSpec(
    id="lstm_forward_hidden",
    make_inputs=_seq_inputs,
    expected=lambda ref, inp: {"h": ref.lstm_forward(**inp)[0]},
    doc="hidden states of a whole sequence on random shapes",
)


def _backward_inputs(rng):
    inputs = _seq_inputs(rng)
    N, T, _ = inputs["x"].shape
    inputs["dh"] = rng.standard_normal((N, T, inputs["h0"].shape[1]))
    return inputs


def _backward_expected(ref, inp):
    args = {k: v for k, v in inp.items() if k != "dh"}
    _, cache = ref.lstm_forward(**args)
    return dict(zip(SEQ_GRADS, ref.lstm_backward(inp["dh"], cache), strict=True))


lstm_backward_hidden = HiddenSpec(
    id="lstm_backward_hidden",
    make_inputs=_backward_inputs,
    expected=_backward_expected,
    doc="the five gradients of a whole sequence (through the student's forward pass)",
)
