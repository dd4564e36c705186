"""rnn_course.worked: the BPTT example's stored numbers are right, and its printout says so.

Oracles: the grader's reference (``autograder.reference``) for the forward and the five
gradients, and centred finite differences of the loss E = h_2[0] for every gradient and
every Jacobian M_s = dh_s/dh_(s-1), computed from the reference forward alone.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from autograder.reference import rnn_backward, rnn_forward
from rnn_course.gradcheck import eval_numerical_gradient
from rnn_course.worked import EXPECTED, INPUTS, TOLERANCE, UPSTREAM, bptt_by_hand

ROUNDING = 0.5e-4  # stored to 4 decimals
FD_TOL = 1e-8  # centred differences of a smooth function of order-one numbers


def _expected(name):
    return np.asarray(EXPECTED[name], dtype=np.float64)


def _states(**changes):
    args = {**INPUTS, **changes}
    return rnn_forward(args["x"], args["h0"], args["Wx"], args["Wh"], args["b"])[0]


def _loss(**changes) -> float:
    return float(np.sum(_states(**changes) * UPSTREAM))


def test_forward_numbers():
    h = _states()[0]
    assert np.abs(h - _expected("h")).max() <= ROUNDING
    previous = np.vstack([INPUTS["h0"], h[:-1]])
    a = INPUTS["x"][0] @ INPUTS["Wx"] + previous @ INPUTS["Wh"] + INPUTS["b"]
    assert np.abs(a - _expected("a")).max() <= ROUNDING
    assert np.allclose(np.tanh(a), h)


def test_gradients_match_the_reference_and_finite_differences():
    _, cache = rnn_forward(*(INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b")))
    reference = dict(zip(("dx", "dh0", "dWx", "dWh", "db"), rnn_backward(UPSTREAM, cache),
                         strict=True))
    arg = {"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "db": "b"}
    for name, got in reference.items():
        numeric = eval_numerical_gradient(lambda v, k=arg[name]: _loss(**{k: v}), INPUTS[arg[name]])
        assert np.abs(got - numeric).max() <= FD_TOL, name
        assert np.abs(np.squeeze(got) - _expected(name)).max() <= ROUNDING, name


def test_jacobians_carried_gradients_and_deltas():
    h = _states()[0]
    T = h.shape[0]
    previous = [INPUTS["h0"]] + [h[None, s] for s in range(T - 1)]
    for s in range(T):
        # M_s[k, l] = d h_s[k] / d h_(s-1)[l]: one step forward from a perturbed h_(s-1)
        def step(prev, s=s):
            return _states(x=INPUTS["x"][:, s:s + 1], h0=prev)[0, 0]
        M = np.stack([eval_numerical_gradient(step, previous[s], df=np.eye(2)[k])[0]
                      for k in range(2)])
        assert np.abs(M - _expected("M")[s]).max() <= ROUNDING, s

        # g_s = dE/dh_s: the steps after s, run from a perturbed h_s
        def rest(state, s=s):
            if s == T - 1:
                return float(state[0] @ UPSTREAM[0, s])
            return float(np.sum(_states(x=INPUTS["x"][:, s + 1:], h0=state)
                                * UPSTREAM[:, s + 1:]) + state[0] @ UPSTREAM[0, s])
        g = eval_numerical_gradient(rest, h[None, s])[0]
        assert np.abs(g - _expected("g")[s]).max() <= ROUNDING, s
        assert np.abs(g * (1 - h[s] ** 2) - _expected("delta")[s]).max() <= ROUNDING, s
    # the product of Jacobians is the carried gradient (the rounded numbers agree)
    g2 = _expected("g")[2]
    M = _expected("M")
    assert np.abs(g2 @ M[2] @ M[1] @ M[0] - _expected("dh0")).max() <= 4 * ROUNDING


def test_the_printout_marks_right_and_wrong_functions():
    out = io.StringIO()
    assert bptt_by_hand(rnn_forward, rnn_backward, file=out)
    assert "differs" not in out.getvalue() and out.getvalue().count(" ok") == 15

    out = io.StringIO()
    assert not bptt_by_hand(rnn_forward, lambda dh, c: [g * 1.5 for g in rnn_backward(dh, c)],
                            file=out)
    assert out.getvalue().count("<- differs") >= 10
    assert TOLERANCE >= 2 * ROUNDING


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stored_numbers_have_four_decimals(name):
    values = _expected(name)
    assert np.allclose(values, np.round(values, 4), atol=0, rtol=0)
