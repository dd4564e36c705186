"""Hidden checks of the ``rnn_cell`` assignment (grader side).

Every draw has its own random sizes, small edge sizes (1) included:
N in 1..5, D and H in 1..7, T in 1..8.  Values are moderate (pre-activations
of order 1), so that tanh is neither linear nor saturated everywhere.
Backward checks go through the student's own forward pass: the cell calls
``rnn_step_forward`` and hands its cache to ``rnn_step_backward``, and
``expected`` does the same with the reference.
"""

from __future__ import annotations

import numpy as np

from autograder.protocol.hidden import HiddenSpec

STEP_GRADS = ("dx", "dprev_h", "dWx", "dWh", "db")


def draw_sizes(rng: np.random.Generator) -> dict:
    """Random sizes N in 1..5, T in 1..8, D and H in 1..7 (each edge size 1 is common)."""
    return {"N": int(rng.integers(1, 6)), "T": int(rng.integers(1, 9)),
            "D": int(rng.integers(1, 8)), "H": int(rng.integers(1, 8))}


def draw_weights(rng: np.random.Generator, D: int, H: int) -> dict:
    """Wx (D, H), Wh (H, H), b (H,) scaled so that pre-activations are of order 1."""
    return {"Wx": rng.standard_normal((D, H)) / np.sqrt(D),
            "Wh": rng.uniform(0.5, 1.5) * rng.standard_normal((H, H)) / np.sqrt(H),
            "b": 0.5 * rng.standard_normal(H)}


def _step_inputs(rng):
    s = draw_sizes(rng)
    N, D, H = s["N"], s["D"], s["H"]
    return {"x": rng.standard_normal((N, D)), "prev_h": rng.uniform(-1, 1, size=(N, H)),
            **draw_weights(rng, D, H)}


def _step_backward_inputs(rng):
    inp = _step_inputs(rng)
    inp["dnext_h"] = rng.standard_normal(inp["prev_h"].shape)
    return inp


def _seq_inputs(rng):
    s = draw_sizes(rng)
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    return {"x": rng.standard_normal((N, T, D)), "h0": rng.uniform(-1, 1, size=(N, H)),
            **draw_weights(rng, D, H)}


def _step_backward_expected(ref, inp):
    dnext_h = inp.pop("dnext_h")
    _, cache = ref.rnn_step_forward(**inp)
    return dict(zip(STEP_GRADS, ref.rnn_step_backward(dnext_h, cache), strict=True))


rnn_step_forward_hidden = HiddenSpec(
    id="rnn_step_forward_hidden",
    make_inputs=_step_inputs,
    expected=lambda ref, inp: {"next_h": ref.rnn_step_forward(**inp)[0]},
    doc="rnn_step_forward on random sizes and values",
)

rnn_step_backward_hidden = HiddenSpec(
    id="rnn_step_backward_hidden",
    make_inputs=_step_backward_inputs,
    expected=_step_backward_expected,
    doc="rnn_step_backward, through the student's rnn_step_forward, on random sizes",
)

rnn_forward_hidden = HiddenSpec(
    id="rnn_forward_hidden",
    make_inputs=_seq_inputs,
    expected=lambda ref, inp: {"h": ref.rnn_forward(**inp)[0]},
    doc="rnn_forward on random sizes (T = 1 included)",
)
