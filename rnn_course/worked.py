"""A worked example of BPTT small enough to follow with a pencil (issue 26).

One sentence (N = 1) of T = 3 steps, D = 2 inputs, H = 2 hidden units, round numbers.
:func:`bptt_by_hand` runs the student's ``rnn_forward`` and ``rnn_backward`` on it and
prints every forward value and every gradient step by step, each beside the number
expected, with the one-step Jacobians whose product carries the gradient back.

The expected numbers are stored here, rounded to 4 decimals: this module holds no
computation of a gradient (``tests/test_worked.py`` checks every number against the
grader's reference and against centred finite differences).

Notation of the ``bptt`` notebook: steps s = 0, 1, 2, ``h_{-1}`` the initial state,
``a_s = x_s Wx + h_{s-1} Wh + b``, ``h_s = tanh(a_s)``, the loss ``E = h_2[0]`` (the
first unit of the last state: ``dh`` is zero except ``dh[:, 2] = [1, 0]``);
``g_s = dE/dh_s``, ``M_s = diag(1 - h_s^2) Wh^T`` the Jacobian that carries it one
step back (``g_{s-1} = g_s M_s``), ``delta_s = g_s * (1 - h_s^2)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["INPUTS", "UPSTREAM", "EXPECTED", "TOLERANCE", "bptt_by_hand"]

INPUTS = {
    "x": np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]),  # (N, T, D) = (1, 3, 2)
    "h0": np.zeros((1, 2)),
    "Wx": np.array([[0.5, -0.5], [0.5, 0.5]]),
    "Wh": np.array([[0.5, 0.5], [-0.5, 0.5]]),
    "b": np.zeros(2),
}
UPSTREAM = np.array([[[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]])  # dh: E = h_2[0]

# every number rounded to 4 decimals; s indexes the steps 0, 1, 2
EXPECTED = {
    "a": [[0.5, -0.5], [0.9621, 0.5], [1.1416, 0.6037]],
    "h": [[0.4621, -0.4621], [0.7452, 0.4621], [0.8149, 0.5397]],
    "M": [[[0.3932, -0.3932], [0.3932, 0.3932]],
          [[0.2223, -0.2223], [0.3932, 0.3932]],
          [[0.1679, -0.1679], [0.3544, 0.3544]]],
    "g": [[-0.0287, -0.1034], [0.1679, -0.1679], [1.0, 0.0]],
    "delta": [[-0.0226, -0.0813], [0.0747, -0.1321], [0.3359, 0.0]],
    "dx": [[0.0294, -0.0519], [0.1034, -0.0287], [0.1679, 0.1679]],
    "dh0": [-0.0519, -0.0294],
    "dWx": [[0.3133, -0.0813], [0.4106, -0.1321]],
    "dWh": [[0.2848, -0.0610], [0.1207, 0.0610]],
    "db": [0.3880, -0.2134],
}
TOLERANCE = 1e-4  # the expected numbers are rounded to 4 decimals


def _fmt(v) -> str:
    return np.array2string(np.asarray(v, dtype=float), precision=4, floatmode="fixed",
                           suppress_small=True, separator=", ", sign=" ")


def _line(label: str, yours, expected) -> str:
    mark = "ok" if np.allclose(yours, expected, atol=TOLERANCE, rtol=0) else "<- differs"
    return f"  {label:<34}{_fmt(yours):>20}  {_fmt(expected):>20}  {mark}"


def bptt_by_hand(rnn_forward, rnn_backward, file=None) -> bool:
    """Print the worked example with your functions beside the expected numbers.

    Inputs:
    - rnn_forward, rnn_backward: the layer (course contract)
    - file: where to print (default: standard output)

    Returns True when every value of yours matches the expected one (within TOLERANCE).
    """
    x, h0, Wx, Wh, b = (INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b"))
    T = x.shape[1]
    lines = ["N = 1, T = 3, D = 2, H = 2; h_{-1} = 0, b = 0",
             f"  x_0, x_1, x_2 = {_fmt(x[0, 0])}, {_fmt(x[0, 1])}, {_fmt(x[0, 2])}",
             f"  Wx = {_fmt(Wx)}   Wh = {_fmt(Wh)}".replace("\n", ""),
             "  the loss E = h_2[0]: dh is zero except dh[:, 2] = [1, 0]", "",
             f"  {'forward: h_s = tanh(x_s Wx + h_(s-1) Wh + b)':<34}"
             f"{'yours':>20}  {'expected':>20}"]
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    checks = []
    for s in range(T):
        lines.append(f"  a_{s} = {_fmt(EXPECTED['a'][s])}")
        lines.append(_line(f"h_{s} = tanh(a_{s})", h[0, s], EXPECTED["h"][s]))
        checks.append(lines[-1])
    lines += ["", "  backward: g_s = dE/dh_s, carried one step back by g_(s-1) = g_s M_s,",
              "  with the Jacobian M_s = diag(1 - h_s^2) Wh^T:"]
    for s in reversed(range(T)):
        lines.append(f"  M_{s} = {_fmt(EXPECTED['M'][s])}".replace("\n", ""))
    # g_s from your rnn_backward: the dh0 it returns for the steps after s, started at h_s
    product = "g_2"
    for s in reversed(range(T)):
        if s == T - 1:
            yours = UPSTREAM[0, s]
        else:
            _, tail = rnn_forward(x[:, s + 1:], h[:, s], Wx, Wh, b)
            yours = rnn_backward(UPSTREAM[:, s + 1:], tail)[1][0] + UPSTREAM[0, s]
            product += f" M_{s + 1}"
        lines.append(_line(f"g_{s} = {product}" if s < T - 1 else "g_2 = dh[:, 2]",
                           yours, EXPECTED["g"][s]))
        checks.append(lines[-1])
    dx, dh0, dWx, dWh, db = rnn_backward(UPSTREAM, cache)
    lines.append(_line(f"dh0 = g_0 M_0 = {product} M_0", dh0[0], EXPECTED["dh0"]))
    checks.append(lines[-1])
    lines += ["", "  delta_s = g_s * (1 - h_s^2), then dx_s = delta_s Wx^T:"]
    for s in range(T):
        lines.append(f"  delta_{s} = {_fmt(EXPECTED['delta'][s])}")
        lines.append(_line(f"dx_{s} = delta_{s} Wx^T", dx[0, s], EXPECTED["dx"][s]))
        checks.append(lines[-1])
    lines += ["", "  the weights add up every step's contribution:"]
    for name, yours, label in (("dWx", dWx, "dWx = sum_s x_s^T delta_s"),
                               ("dWh", dWh, "dWh = sum_s h_(s-1)^T delta_s"),
                               ("db", db, "db = sum_s delta_s")):
        for row, (y, e) in enumerate(zip(np.atleast_2d(yours), np.atleast_2d(EXPECTED[name]),
                                         strict=True)):
            lines.append(_line(label if row == 0 else "", y, e))
            checks.append(lines[-1])
    print("\n".join(lines), file=file)
    return all(line.endswith(" ok") for line in checks)
