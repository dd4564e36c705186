"""Hidden checks of the ``bptt`` assignment (grader side).

Random sizes on every draw (N in 1..5, T in 1..8, D and H in 1..7) and, for
truncated BPTT, a random ``truncate`` in 1..T+1 (so k = 1, 1 < k < T and
k >= T all occur).  ``rnn_backward`` is called on the cache of the notebook's
own (provided, locked) ``rnn_forward``; ``expected`` uses the reference's
forward and backward, whose cache differs but whose gradients must agree.

``gradient_norms_through_time`` is not in the reference contract; its
expected values are composed from ``reference.rnn_step_backward``: one step
back with upstream gradient g and tanh derivative ``dact_t`` is the step
backward's ``dprev_h`` for a cache whose ``next_h`` satisfies
``1 - next_h**2 = dact_t``, i.e. ``next_h = sqrt(1 - dact_t)`` (the cache
layout ``(x, prev_h, Wx, Wh, next_h)`` is documented by the reference).
"""

from __future__ import annotations

import numpy as np

from autograder.protocol.hidden import HiddenSpec
from autograder.protocol.hidden.rnn_cell import draw_sizes, draw_weights

SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")


def _backward_inputs(rng, truncated=False):
    s = draw_sizes(rng)
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    inp = {"x": rng.standard_normal((N, T, D)), "h0": rng.uniform(-1, 1, size=(N, H)),
           **draw_weights(rng, D, H), "dh": rng.standard_normal((N, T, H))}
    if truncated:
        inp["truncate"] = np.array(int(rng.integers(1, T + 2)))
    return inp


def _backward_expected(ref, inp):
    dh = inp.pop("dh")
    truncate = inp.pop("truncate", None)
    _, cache = ref.rnn_forward(**inp)
    k = None if truncate is None else int(truncate)
    return dict(zip(SEQ_GRADS, ref.rnn_backward(dh, cache, truncate=k), strict=True))


def reference_gradient_norms(ref, dact, Wh, dlast) -> np.ndarray:
    """Norms of the gradient reaching h_{T-1-d}, d = 0..T, built from ``ref.rnn_step_backward``.

    Inputs:
    - ref: the reference module
    - dact: derivative of the nonlinearity at every step, of shape (N, T, H), in [0, 1]
    - Wh: hidden-to-hidden weights, of shape (H, H)
    - dlast: gradient of the loss with respect to the last hidden state, of shape (N, H)

    Returns:
    - norms: array of shape (T + 1,)
    """
    N, T, H = dact.shape
    g = np.array(dlast, dtype=np.float64)
    norms = [np.linalg.norm(g)]
    zeros_x, zeros_Wx, zeros_h = np.zeros((N, 1)), np.zeros((1, H)), np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        next_h = np.sqrt(np.clip(1.0 - dact[:, t], 0.0, None))  # 1 - next_h**2 == dact_t
        g = ref.rnn_step_backward(g, (zeros_x, zeros_h, zeros_Wx, Wh, next_h))[1]
        norms.append(np.linalg.norm(g))
    return np.array(norms)


def _norm_inputs(rng):
    s = draw_sizes(rng)
    N, T, H = s["N"], s["T"], s["H"]
    if rng.random() < 1 / 3:
        dact = np.ones((N, T, H))  # a linear RNN
    else:
        dact = rng.uniform(0.0, 1.0, size=(N, T, H))
    return {"dact": dact, "Wh": rng.uniform(0.5, 1.5) * rng.standard_normal((H, H)) / np.sqrt(H),
            "dlast": rng.standard_normal((N, H))}


rnn_backward_hidden = HiddenSpec(
    id="rnn_backward_hidden",
    make_inputs=_backward_inputs,
    expected=_backward_expected,
    doc="full BPTT on random sizes, after the notebook's rnn_forward",
)

rnn_backward_truncated_hidden = HiddenSpec(
    id="rnn_backward_truncated_hidden",
    make_inputs=lambda rng: _backward_inputs(rng, truncated=True),
    expected=_backward_expected,
    doc="truncated BPTT with a random truncate in 1..T+1",
)

gradient_norms_hidden = HiddenSpec(
    id="gradient_norms_hidden",
    make_inputs=_norm_inputs,
    expected=lambda ref, inp: {"norms": reference_gradient_norms(ref, **inp)},
    doc="gradient_norms_through_time on random sizes, tanh-like and linear",
)
