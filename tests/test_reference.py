"""Tests of the reference solutions (autograder/reference.py).

The oracles here share no code with what they check: gradients are compared
with a centred finite-difference helper written in this module (not
``rnn_course.gradcheck``), truncated BPTT with a deliberately naive
double loop, layers with their step functions looped over time, and forward
passes with closed forms computed with ``math`` on Python floats.

Dimension letters: N batch, T time steps, D input size, H hidden size.
"""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pytest

from autograder import reference as R
from rnn_course import contract
from rnn_course.contract import (
    GRU_GATES,
    LSTM_GATES,
    LSTM_STEP_ARGS,
    SEQ_ARGS,
    SEQ_GRADS,
    STEP_ARGS,
)

# --------------------------------------------------------------------------- #
# Tolerances
# --------------------------------------------------------------------------- #
# Forward values (all O(1)) against closed forms: absolute.
FWD_ATOL = 1e-10
# Gradients against centred differences: NORMWISE relative error
# ||a - n|| / (||a|| + ||n||).  Normwise because with h = 1e-5 each numeric
# entry carries an absolute error of ~1e-11, so single entries whose true
# value is ~1e-5 would fail an elementwise 1e-7 test by chance; a correct
# gradient scores ~1e-10 normwise, a wrong one > 1e-3.
GRAD_RTOL = 1e-7
FD_STEP = 1e-5
# The same computation done in another order (layer vs looped steps, naive
# truncated BPTT vs the vectorised one): rounding differences only.
ORDER_RTOL = 1e-12
ORDER_ATOL = 1e-13
# sigmoid: symmetry sigmoid(-a) = 1 - sigmoid(a), absolute; agreement with
# 1 / (1 + exp(-a)) evaluated with math, relative (a few ulp).
SIGMOID_SYM_ATOL = 1e-15
SIGMOID_RTOL = 1e-15
# clip_by_global_norm: ||clipped|| <= max_norm * (1 + NORM_SLACK)
NORM_SLACK = 1e-12

# (N, T, D, H), including every "one" edge case.
SHAPES = [
    pytest.param(1, 1, 1, 1, id="N1-T1-D1-H1"),
    pytest.param(1, 4, 3, 2, id="N1"),
    pytest.param(3, 1, 2, 4, id="T1"),
    pytest.param(2, 3, 1, 3, id="D1"),
    pytest.param(2, 3, 4, 1, id="H1"),
    pytest.param(3, 5, 4, 3, id="N3-T5-D4-H3"),
]
LOOP_SHAPES = [SHAPES[0], SHAPES[2], SHAPES[5]]


# --------------------------------------------------------------------------- #
# Independent helpers
# --------------------------------------------------------------------------- #
def seeded(*key):
    """A generator whose stream depends only on ``key``: tests are independent of
    their order and of the process (crc32, not the salted built-in hash)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def rnn_args(rng, N, T, D, H, gates=1, step=False):
    """Random inputs for an RNN (gates=1) or LSTM (gates=4) layer or step.

    Returns dict x (N, T, D) or (N, D) if step, h0/prev_h (N, H),
    Wx (D, gates*H), Wh (H, gates*H), b (gates*H,).  Weights are scaled so the
    nonlinearities are not saturated.
    """
    x = rng.standard_normal((N, D) if step else (N, T, D))
    h = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, gates * H)) / math.sqrt(D)
    Wh = 0.7 * rng.standard_normal((H, gates * H)) / math.sqrt(H)
    b = 0.5 * rng.standard_normal(gates * H)
    return dict(x=x, **{"prev_h" if step else "h0": h}, Wx=Wx, Wh=Wh, b=b)


def fd_grad(forward, args, name, douts):
    """Centred-difference gradient of sum_k <out_k, dout_k> with respect to args[name].

    ``forward(**args)`` returns (out_1, ..., out_K, cache).  Every evaluation
    gets fresh copies of all arguments, the perturbed one passed explicitly.
    """
    x = args[name]
    grad = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        outs = []
        for step in (FD_STEP, -FD_STEP):
            a = {k: v.copy() for k, v in args.items()}
            a[name][idx] += step
            outs.append(forward(**a)[:-1])
        grad[idx] = sum(float(np.sum((p - m) * d))
                        for p, m, d in zip(*outs, douts, strict=True)) / (2 * FD_STEP)
    return grad


def normwise_error(a, n):
    """||a - n|| / (||a|| + ||n||), 0 when both are zero."""
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def assert_gradients(forward, backward, args, names, rng):
    """Run forward/backward once and compare every returned gradient with fd_grad."""
    res = forward(**{k: v.copy() for k, v in args.items()})
    outs, cache = res[:-1], res[-1]
    douts = [rng.standard_normal(o.shape) for o in outs]
    grads = backward(*douts, cache)
    assert len(grads) == len(names)
    for name, g in zip(names, grads, strict=True):
        assert g.shape == args[name].shape, f"d{name} shape"
        err = normwise_error(g, fd_grad(forward, args, name, douts))
        assert err < GRAD_RTOL, f"d{name}: normwise relative error {err:.2e}"


def assert_close(actual, expected, what=""):
    np.testing.assert_allclose(actual, expected, rtol=ORDER_RTOL, atol=ORDER_ATOL, err_msg=what)


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_fd_oracle_on_a_known_gradient():
    """The finite-difference helper itself: d<X @ W, G>/dW = X^T G, d/dX = G W^T."""
    rng = seeded("oracle")
    X, W, G = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))

    def fwd(X, W):
        return X @ W, None

    assert normwise_error(fd_grad(fwd, dict(X=X, W=W), "W", [G]), X.T @ G) < 1e-9
    assert normwise_error(fd_grad(fwd, dict(X=X, W=W), "X", [G]), G @ W.T) < 1e-9


# --------------------------------------------------------------------------- #
# Gradients against finite differences, every function, edge shapes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_step_backward_matches_finite_differences(N, T, D, H):
    rng = seeded("rnn_step", N, T, D, H)
    args = rnn_args(rng, N, T, D, H, step=True)
    assert_gradients(R.rnn_step_forward, R.rnn_step_backward, args, STEP_ARGS, rng)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_rnn_backward_matches_finite_differences(N, T, D, H):
    rng = seeded("rnn", N, T, D, H)
    args = rnn_args(rng, N, T, D, H)
    assert_gradients(R.rnn_forward, R.rnn_backward, args, SEQ_ARGS, rng)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_lstm_step_backward_matches_finite_differences(N, T, D, H):
    rng = seeded("lstm_step", N, T, D, H)
    args = rnn_args(rng, N, T, D, H, gates=4, step=True)
    args = dict(x=args["x"], prev_h=args["prev_h"], prev_c=rng.standard_normal((N, H)),
                Wx=args["Wx"], Wh=args["Wh"], b=args["b"])
    assert_gradients(R.lstm_step_forward, R.lstm_step_backward, args, LSTM_STEP_ARGS, rng)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_lstm_backward_matches_finite_differences(N, T, D, H):
    rng = seeded("lstm", N, T, D, H)
    args = rnn_args(rng, N, T, D, H, gates=4)
    assert_gradients(R.lstm_forward, R.lstm_backward, args, SEQ_ARGS, rng)


def test_sigmoid_derivative_matches_finite_differences():
    a = np.linspace(-8, 8, 33)
    s = R.sigmoid(a)
    numeric = (R.sigmoid(a + FD_STEP) - R.sigmoid(a - FD_STEP)) / (2 * FD_STEP)
    assert normwise_error(s * (1 - s), numeric) < GRAD_RTOL


# --------------------------------------------------------------------------- #
# Forward passes against closed forms
# --------------------------------------------------------------------------- #
def test_rnn_step_zero_weights_gives_tanh_of_bias():
    rng = seeded("zero-weights")
    b = rng.standard_normal(4)
    next_h, _ = R.rnn_step_forward(rng.standard_normal((3, 2)), rng.standard_normal((3, 4)),
                                   np.zeros((2, 4)), np.zeros((4, 4)), b)
    expected = [[math.tanh(v) for v in b]] * 3
    np.testing.assert_allclose(next_h, expected, rtol=0, atol=FWD_ATOL)


def test_rnn_step_hand_computed_values():
    x = np.array([[1.0, 2.0]])
    prev_h = np.array([[0.5, -1.0]])
    Wx = np.array([[0.1, 0.2], [0.3, 0.4]])
    Wh = np.array([[0.5, -0.5], [0.25, 0.0]])
    b = np.array([0.01, -0.02])
    next_h, _ = R.rnn_step_forward(x, prev_h, Wx, Wh, b)
    # a0 = 1*.1 + 2*.3 + .5*.5 - 1*.25 + .01 = .71;  a1 = .2 + .8 - .25 - 0 - .02 = .73
    np.testing.assert_allclose(next_h, [[math.tanh(0.71), math.tanh(0.73)]], rtol=0,
                               atol=FWD_ATOL)


@pytest.mark.parametrize("term", ["x", "prev_h", "b"])
def test_rnn_step_each_term_alone(term):
    """Zero all terms but one, so a wrong term cannot hide behind the others."""
    rng = seeded("term", term)
    N, D, H = 2, 3, 4
    args = rnn_args(rng, N, 1, D, H, step=True)
    for other in {"x", "prev_h", "b"} - {term}:
        args[other] = np.zeros_like(args[other])
    next_h, _ = R.rnn_step_forward(**args)
    x, h, Wx, Wh, b = (args[k] for k in STEP_ARGS)
    expected = [[math.tanh(sum(x[n, d] * Wx[d, j] for d in range(D))
                           + sum(h[n, k] * Wh[k, j] for k in range(H)) + b[j])
                 for j in range(H)] for n in range(N)]
    np.testing.assert_allclose(next_h, expected, rtol=0, atol=FWD_ATOL)


def test_rnn_forward_without_recurrence_is_independent_steps():
    rng = seeded("no-recurrence")
    args = rnn_args(rng, 2, 4, 3, 5)
    args["Wh"] = np.zeros((5, 5))
    h, _ = R.rnn_forward(**args)
    expected = np.tanh(np.einsum("ntd,dh->nth", args["x"], args["Wx"]) + args["b"])
    np.testing.assert_allclose(h, expected, rtol=0, atol=FWD_ATOL)


def test_rnn_forward_scalar_recursion():
    """H = D = 1, no input: h_t = tanh(w * h_{t-1})."""
    w, h0, T = 1.3, 0.8, 6
    h, _ = R.rnn_forward(np.ones((1, T, 1)), np.array([[h0]]), np.zeros((1, 1)),
                         np.array([[w]]), np.zeros(1))
    expected, v = [], h0
    for _ in range(T):
        v = math.tanh(w * v)
        expected.append(v)
    np.testing.assert_allclose(h[0, :, 0], expected, rtol=0, atol=FWD_ATOL)


def test_rnn_backward_scalar_chain_is_a_product():
    """Gradient of h_T alone: dh0 = prod_t w (1 - h_t^2), the vanishing-gradient product."""
    wx, w, bias, h0, T = 0.6, 0.9, 0.1, -0.4, 5
    xs = [0.3, -1.2, 0.7, 2.0, -0.5]
    h, cache = R.rnn_forward(np.array(xs).reshape(1, T, 1), np.array([[h0]]),
                             np.array([[wx]]), np.array([[w]]), np.array([bias]))
    hs, v = [], h0
    for xt in xs:
        v = math.tanh(wx * xt + w * v + bias)
        hs.append(v)
    dh = np.zeros((1, T, 1))
    dh[0, -1, 0] = 1.0
    dx, dh0, _, _, _ = R.rnn_backward(dh, cache)
    # dL/da_t = prod_{s >= t} (1 - h_s^2) * w^(T-1-t)
    da = [math.prod((1 - hs[s] ** 2) for s in range(t, T)) * w ** (T - 1 - t) for t in range(T)]
    np.testing.assert_allclose(dx[0, :, 0], [wx * d for d in da], rtol=1e-12, atol=0)
    assert dh0[0, 0] == pytest.approx(w * da[0], rel=1e-12)


def test_lstm_step_closed_form_with_constant_gates():
    """Wx = Wh = 0: the gates are functions of b only, distinct per block and unit."""
    rng = seeded("lstm-closed")
    H = 2
    bi, bf, bo, bg = [0.3, -1.0], [-0.7, 2.0], [1.1, 0.2], [0.45, -1.5]
    b = np.array(bi + bf + bo + bg)
    prev_c = rng.standard_normal((3, H))
    next_h, next_c, _ = R.lstm_step_forward(rng.standard_normal((3, 4)),
                                            rng.standard_normal((3, H)), prev_c,
                                            np.zeros((4, 4 * H)), np.zeros((H, 4 * H)), b)
    for n in range(3):
        for j in range(H):
            c = sig(bf[j]) * prev_c[n, j] + sig(bi[j]) * math.tanh(bg[j])
            assert next_c[n, j] == pytest.approx(c, abs=FWD_ATOL)
            assert next_h[n, j] == pytest.approx(sig(bo[j]) * math.tanh(c), abs=FWD_ATOL)


GATES = LSTM_GATES


def test_reference_functions_follow_the_contract():
    """Every contract function exists in the reference with exactly the contract's arguments."""
    import inspect

    for name, (args, _) in contract.CONTRACT.items():
        assert callable(getattr(R, name, None)), name
        assert tuple(inspect.signature(getattr(R, name)).parameters) == args, name


@pytest.mark.parametrize("k,gate", list(enumerate(GATES)))
def test_lstm_gates_order_i_f_o_g(k, gate):
    """Only pre-activation block k is nonzero: only the k-th returned gate moves."""
    H, v = 3, 1.7
    a = np.zeros((2, 4 * H))
    a[:, k * H:(k + 1) * H] = v
    out = R.lstm_gates(a)
    rest = {"i": 0.5, "f": 0.5, "o": 0.5, "g": 0.0}  # sigmoid(0), tanh(0)
    moved = {"i": sig(v), "f": sig(v), "o": sig(v), "g": math.tanh(v)}
    for name, arr in zip(GATES, out, strict=True):
        assert arr.shape == (2, H)
        want = moved[name] if name == gate else rest[name]
        np.testing.assert_allclose(arr, want, rtol=0, atol=FWD_ATOL, err_msg=f"gate {name}")


@pytest.mark.parametrize("k,gate", list(enumerate(GATES)))
def test_lstm_step_which_output_moves(k, gate):
    """From i = f = o = 1/2, g = 0, prev_c = 1, raise one gate's bias block.

    i alone moves nothing (g = 0); f moves c and h; o moves h only; g moves c and h.
    """
    H, v = 2, 2.0
    b = np.zeros(4 * H)
    b[k * H:(k + 1) * H] = v
    next_h, next_c, _ = R.lstm_step_forward(np.ones((1, 3)), np.ones((1, H)), np.ones((1, H)),
                                            np.zeros((3, 4 * H)), np.zeros((H, 4 * H)), b)
    c = {"i": 0.5, "f": sig(v), "o": 0.5, "g": 0.5 + 0.5 * math.tanh(v)}[gate]
    o = sig(v) if gate == "o" else 0.5
    np.testing.assert_allclose(next_c, c, rtol=0, atol=FWD_ATOL)
    np.testing.assert_allclose(next_h, o * math.tanh(c), rtol=0, atol=FWD_ATOL)


def test_lstm_forward_constant_gates_geometric_cell():
    """Wx = Wh = 0 and c0 = 0: c_t = i g (1 - f^t) / (1 - f), h_t = o tanh(c_t)."""
    T, H = 6, 1
    bi, bf, bo, bg = 0.4, 1.2, -0.3, 0.9
    h, _ = R.lstm_forward(np.ones((1, T, 2)), np.full((1, H), 5.0), np.zeros((2, 4)),
                          np.zeros((1, 4)), np.array([bi, bf, bo, bg]))
    i, f, o, g = sig(bi), sig(bf), sig(bo), math.tanh(bg)
    expected = [o * math.tanh(i * g * (1 - f ** t) / (1 - f)) for t in range(1, T + 1)]
    np.testing.assert_allclose(h[0, :, 0], expected, rtol=0, atol=FWD_ATOL)


def test_lstm_forward_starts_from_zero_cell_state():
    rng = seeded("c0")
    N, D, H = 2, 3, 2
    args = rnn_args(rng, N, 1, D, H, gates=4)
    args["b"][H:2 * H] = 3.0  # forget gate open: a nonzero c0 would show
    h, _ = R.lstm_forward(**args)
    x0, h0 = args["x"][:, 0], args["h0"]
    with_zero, _, _ = R.lstm_step_forward(x0, h0, np.zeros((N, H)), args["Wx"], args["Wh"],
                                          args["b"])
    with_one, _, _ = R.lstm_step_forward(x0, h0, np.ones((N, H)), args["Wx"], args["Wh"],
                                         args["b"])
    assert_close(h[:, 0], with_zero)
    assert np.max(np.abs(h[:, 0] - with_one)) > 1e-3


# --------------------------------------------------------------------------- #
# Truncated BPTT against a naive implementation
# --------------------------------------------------------------------------- #
def naive_rnn_backward(dh, x, h0, Wx, Wh, b, k=None):
    """BPTT written as plainly as possible: for each loss step t, walk back by hand
    through at most k cells t, t-1, ..., t-k+1 (all of them if k is None),
    accumulating every gradient; a chain that gets through cell 0 reaches h0."""
    N, T, D = x.shape
    k = T if k is None else k
    hs = [h0]  # hs[s + 1] is the hidden state of step s
    for s in range(T):
        hs.append(np.tanh(x[:, s] @ Wx + hs[s] @ Wh + b))
    dx, dh0 = np.zeros_like(x), np.zeros_like(h0)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    for t in range(T):
        g = dh[:, t].copy()  # gradient of the loss at step t w.r.t. h_s, s = t first
        for s in range(t, max(t - k, -1), -1):
            da = g * (1 - hs[s + 1] ** 2)
            dx[:, s] += da @ Wx.T
            dWx += x[:, s].T @ da
            dWh += hs[s].T @ da
            db += da.sum(axis=0)
            g = da @ Wh.T
            if s == 0:
                dh0 += g
    return dx, dh0, dWx, dWh, db


TRUNC_SHAPES = [(2, 5, 3, 4), (1, 4, 2, 3), (3, 1, 2, 2), (2, 6, 1, 1)]


@pytest.mark.parametrize("N,T,D,H,k", [
    pytest.param(*s, k, id=f"N{s[0]}-T{s[1]}-D{s[2]}-H{s[3]}-k{k}")
    for s in TRUNC_SHAPES for k in range(1, s[1] + 3)
])
def test_truncated_bptt_matches_naive(N, T, D, H, k):
    rng = seeded("trunc", N, T, D, H)
    args = rnn_args(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    _, cache = R.rnn_forward(**args)
    got = R.rnn_backward(dh, cache, truncate=k)
    want = naive_rnn_backward(dh, **args, k=k)
    for name, g, w in zip(SEQ_GRADS, got, want, strict=True):
        assert_close(g, w, f"{name}, truncate={k}")


def test_naive_bptt_oracle_is_the_true_gradient():
    """The naive oracle with no truncation agrees with finite differences."""
    rng = seeded("naive-oracle")
    args = rnn_args(rng, 2, 4, 3, 3)
    dh = rng.standard_normal((2, 4, 3))
    want = naive_rnn_backward(dh, **args)
    for name, g in zip(SEQ_ARGS, want, strict=True):
        assert normwise_error(g, fd_grad(R.rnn_forward, args, name, [dh])) < GRAD_RTOL, name


@pytest.mark.parametrize("k", [None, 3, 4, 50])
def test_truncate_none_or_at_least_T_is_full_bptt(k):
    rng = seeded("full")
    args = rnn_args(rng, 2, 3, 2, 3)
    dh = rng.standard_normal((2, 3, 3))
    _, cache = R.rnn_forward(**args)
    full = R.rnn_backward(dh, cache)
    for g, w in zip(R.rnn_backward(dh, cache, truncate=k), full, strict=True):
        assert_close(g, w, f"truncate={k}")


def test_truncation_below_T_changes_the_recurrent_gradient():
    rng = seeded("trunc-differs")
    args = rnn_args(rng, 2, 4, 2, 3)
    dh = rng.standard_normal((2, 4, 3))
    _, cache = R.rnn_forward(**args)
    dWh_full = R.rnn_backward(dh, cache)[3]
    dWh_1 = R.rnn_backward(dh, cache, truncate=1)[3]
    assert normwise_error(dWh_1, dWh_full) > 1e-3


def test_truncate_accepts_numpy_integers():
    rng = seeded("np-int")
    args = rnn_args(rng, 2, 4, 2, 3)
    dh = rng.standard_normal((2, 4, 3))
    _, cache = R.rnn_forward(**args)
    for g, w in zip(R.rnn_backward(dh, cache, truncate=np.int64(2)),
                    R.rnn_backward(dh, cache, truncate=2), strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("k", [0, -1, 1.5, 2.0, float("inf"), True, False, "2"])
def test_truncate_invalid_raises_value_error(k):
    rng = seeded("bad-k")
    args = rnn_args(rng, 1, 3, 2, 2)
    _, cache = R.rnn_forward(**args)
    with pytest.raises(ValueError):
        R.rnn_backward(np.ones((1, 3, 2)), cache, truncate=k)


# --------------------------------------------------------------------------- #
# Layers equal their step functions looped over time
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("N,T,D,H", LOOP_SHAPES)
def test_rnn_layer_equals_step_loop(N, T, D, H):
    rng = seeded("rnn-loop", N, T, D, H)
    a = rnn_args(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h_layer, cache = R.rnn_forward(**a)
    grads_layer = R.rnn_backward(dh, cache)

    h, hs, caches = a["h0"], [], []
    for t in range(T):
        h, c = R.rnn_step_forward(a["x"][:, t], h, a["Wx"], a["Wh"], a["b"])
        hs.append(h)
        caches.append(c)
    assert_close(h_layer, np.stack(hs, axis=1), "h")

    dx = np.zeros_like(a["x"])
    dWx, dWh, db = np.zeros_like(a["Wx"]), np.zeros_like(a["Wh"]), np.zeros_like(a["b"])
    dprev = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev, gWx, gWh, gb = R.rnn_step_backward(dh[:, t] + dprev, caches[t])
        dWx, dWh, db = dWx + gWx, dWh + gWh, db + gb
    for name, g, w in zip(SEQ_GRADS, grads_layer,
                          [dx, dprev, dWx, dWh, db], strict=True):
        assert_close(g, w, name)


@pytest.mark.parametrize("N,T,D,H", LOOP_SHAPES)
def test_lstm_layer_equals_step_loop(N, T, D, H):
    rng = seeded("lstm-loop", N, T, D, H)
    a = rnn_args(rng, N, T, D, H, gates=4)
    dh = rng.standard_normal((N, T, H))
    h_layer, cache = R.lstm_forward(**a)
    grads_layer = R.lstm_backward(dh, cache)

    h, c, hs, caches = a["h0"], np.zeros((N, H)), [], []
    for t in range(T):
        h, c, cc = R.lstm_step_forward(a["x"][:, t], h, c, a["Wx"], a["Wh"], a["b"])
        hs.append(h)
        caches.append(cc)
    assert_close(h_layer, np.stack(hs, axis=1), "h")

    dx = np.zeros_like(a["x"])
    dWx, dWh, db = np.zeros_like(a["Wx"]), np.zeros_like(a["Wh"]), np.zeros_like(a["b"])
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, gWx, gWh, gb = R.lstm_step_backward(
            dh[:, t] + dprev_h, dprev_c, caches[t])
        dWx, dWh, db = dWx + gWx, dWh + gWh, db + gb
    for name, g, w in zip(SEQ_GRADS, grads_layer,
                          [dx, dprev_h, dWx, dWh, db], strict=True):
        assert_close(g, w, name)


# --------------------------------------------------------------------------- #
# Stable sigmoid
# --------------------------------------------------------------------------- #
def test_sigmoid_no_warnings_for_large_inputs():
    """No overflow, invalid or divide warning for |a| up to 1e4 (and beyond).

    Underflow is not checked: exp(-|a|) rounding to 0 for |a| > 745 is the
    correct, benign result, and numpy ignores underflow by default.
    """
    a = np.concatenate([np.linspace(-1e4, 1e4, 20001), [-745.2, -709.8, 709.8, 745.2, 1e308]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s = R.sigmoid(a)
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))


def test_sigmoid_exact_values():
    assert R.sigmoid(np.array(0.0)) == 0.5
    assert R.sigmoid(np.array(-0.0)) == 0.5
    assert R.sigmoid(np.array(1e4)) == 1.0
    assert R.sigmoid(np.array(-1e4)) == 0.0


def test_sigmoid_monotone():
    s = R.sigmoid(np.linspace(-50, 50, 400001))
    assert np.all(np.diff(s) >= 0)


def test_sigmoid_symmetric():
    a = np.concatenate([np.linspace(-40, 40, 80001), np.geomspace(1e-12, 1e4, 1000)])
    err = np.abs(R.sigmoid(-a) - (1.0 - R.sigmoid(a)))
    assert np.max(err) <= SIGMOID_SYM_ATOL


def test_sigmoid_matches_textbook_formula_where_that_is_safe():
    a = np.linspace(-30, 36, 6601)
    want = np.array([1.0 / (1.0 + math.exp(-v)) for v in a])
    np.testing.assert_allclose(R.sigmoid(a), want, rtol=SIGMOID_RTOL, atol=0)


def test_sigmoid_out_argument_and_in_place():
    a = np.linspace(-3, 3, 7)
    want = R.sigmoid(a)
    out = np.empty_like(a)
    assert R.sigmoid(a, out=out) is out
    np.testing.assert_array_equal(out, want)
    b = a.copy()
    R.sigmoid(b, out=b)
    np.testing.assert_array_equal(b, want)


@pytest.mark.parametrize("a", [np.array(1), np.arange(6).reshape(1, 2, 3) - 3])
def test_sigmoid_shape_and_dtype(a):
    s = R.sigmoid(a)
    assert s.shape == a.shape and s.dtype == np.float64


# --------------------------------------------------------------------------- #
# Gradient clipping
# --------------------------------------------------------------------------- #
def make_grads(scale=1.0):
    rng = seeded("grads")
    return {"Wx": scale * rng.standard_normal((3, 4)), "Wh": scale * rng.standard_normal((4, 4)),
            "b": scale * rng.standard_normal(4), "s": np.array(scale * 0.5)}


def independent_norm(grads):
    return math.sqrt(math.fsum(float(v) ** 2 for g in grads.values() for v in np.ravel(g)))


def assert_untouched_and_new(before, grads, out):
    assert list(out) == list(grads)
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])
        assert out[k] is not grads[k] and not np.shares_memory(out[k], grads[k]), k


def test_clip_by_value_clips_entries():
    grads = make_grads(3.0)
    out = R.clip_by_value(grads, 1.5)
    for k, v in grads.items():
        w = np.array([min(max(e, -1.5), 1.5) for e in np.ravel(v)]).reshape(v.shape)
        np.testing.assert_array_equal(out[k], w)
        assert np.all(np.abs(out[k]) <= 1.5)
    assert any(np.any(np.abs(v) > 1.5) for v in grads.values())  # the test did clip


def test_clip_by_value_leaves_input_untouched_and_returns_new_arrays():
    grads = make_grads(3.0)
    before = {k: v.copy() for k, v in grads.items()}
    assert_untouched_and_new(before, grads, R.clip_by_value(grads, 0.5))


def test_clip_by_value_no_op_below_threshold():
    grads = make_grads(1.0)
    c = 1.0 + max(float(np.max(np.abs(v))) for v in grads.values())
    out = R.clip_by_value(grads, c)
    for k in grads:
        np.testing.assert_array_equal(out[k], grads[k])


@pytest.mark.parametrize("c", [0, -1.0, float("nan")])
def test_clip_by_value_invalid_threshold(c):
    with pytest.raises(ValueError):
        R.clip_by_value(make_grads(), c)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_global_norm_total_norm_is_independent_computation(scale):
    grads = make_grads(scale)
    _, total = R.clip_by_global_norm(grads, 1.0)
    assert isinstance(total, float)
    assert total == pytest.approx(independent_norm(grads), rel=1e-14)


@pytest.mark.parametrize("max_norm", [0.1, 1.0, 3.0])
def test_global_norm_clipped_norm_bound_and_direction(max_norm):
    grads = make_grads(2.0)
    total = independent_norm(grads)
    assert total > max_norm
    out, _ = R.clip_by_global_norm(grads, max_norm)
    new_norm = independent_norm(out)
    assert new_norm <= max_norm * (1 + NORM_SLACK)
    assert new_norm == pytest.approx(max_norm, rel=1e-12)
    # one common positive factor for every entry of every array: direction kept
    for k, v in grads.items():
        np.testing.assert_allclose(out[k], v * (max_norm / total), rtol=1e-13, atol=0,
                                   err_msg=k)


@pytest.mark.parametrize("margin", [1.0, 1.5])
def test_global_norm_no_op_at_or_below_threshold(margin):
    grads = make_grads()
    out, total = R.clip_by_global_norm(grads, total_norm := independent_norm(grads) * margin)
    assert total_norm >= total
    for k in grads:
        np.testing.assert_array_equal(out[k], grads[k])


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_global_norm_leaves_input_untouched_and_returns_new_arrays(max_norm):
    grads = make_grads(2.0)
    before = {k: v.copy() for k, v in grads.items()}
    out, _ = R.clip_by_global_norm(grads, max_norm)
    assert_untouched_and_new(before, grads, out)


@pytest.mark.parametrize("m", [0, -1.0, float("nan"), -float("inf")])
def test_global_norm_invalid_threshold(m):
    with pytest.raises(ValueError):
        R.clip_by_global_norm(make_grads(), m)


def test_global_norm_empty_dict():
    out, total = R.clip_by_global_norm({}, 1.0)
    assert out == {} and total == 0.0


def test_global_norm_huge_gradients_keep_their_direction():
    grads = {"W": np.array([3e200, -4e200])}
    out, total = R.clip_by_global_norm(grads, 1.0)
    assert total == pytest.approx(5e200, rel=1e-12)
    np.testing.assert_allclose(out["W"], [0.6, -0.8], rtol=1e-12)


# --------------------------------------------------------------------------- #
# The contract: no mutation, float64, shapes
# --------------------------------------------------------------------------- #
N_, T_, D_, H_ = 2, 3, 4, 5


def _calls():
    """name -> (function, args, expected output shapes, in order; None = not an array)."""
    rng = seeded("contract")
    r = rnn_args(rng, N_, T_, D_, H_)
    rs = rnn_args(rng, N_, T_, D_, H_, step=True)
    ls = rnn_args(rng, N_, T_, D_, H_, gates=4, step=True)
    ll = rnn_args(rng, N_, T_, D_, H_, gates=4)
    c = rng.standard_normal((N_, H_))
    nh, dt = (N_, H_), (N_, T_, H_)
    _, rs_cache = R.rnn_step_forward(**{k: v.copy() for k, v in rs.items()})
    _, r_cache = R.rnn_forward(**{k: v.copy() for k, v in r.items()})
    lstep = dict(x=ls["x"], prev_h=ls["prev_h"], prev_c=c, Wx=ls["Wx"], Wh=ls["Wh"], b=ls["b"])
    _, _, ls_cache = R.lstm_step_forward(**{k: v.copy() for k, v in lstep.items()})
    _, l_cache = R.lstm_forward(**{k: v.copy() for k, v in ll.items()})
    gs = rnn_args(rng, N_, T_, D_, H_, gates=3, step=True)
    gl = rnn_args(rng, N_, T_, D_, H_, gates=3)
    _, gs_cache = R.gru_step_forward(**{k: v.copy() for k, v in gs.items()})
    _, g_cache = R.gru_forward(**{k: v.copy() for k, v in gl.items()})
    ggrads = [(D_, 3 * H_), (H_, 3 * H_), (3 * H_,)]
    rgrads = [(D_, H_), (H_, H_), (H_,)]
    lgrads = [(D_, 4 * H_), (H_, 4 * H_), (4 * H_,)]
    grads = {"Wx": rng.standard_normal((D_, H_)), "b": rng.standard_normal(H_)}
    return {
        "sigmoid": (R.sigmoid, dict(a=rng.standard_normal((3, 4))), [(3, 4)]),
        "rnn_step_forward": (R.rnn_step_forward, rs, [nh, None]),
        "rnn_step_backward": (R.rnn_step_backward, dict(dnext_h=rng.standard_normal(nh),
                              cache=rs_cache), [(N_, D_), nh] + rgrads),
        "rnn_forward": (R.rnn_forward, r, [dt, None]),
        "rnn_backward": (R.rnn_backward, dict(dh=rng.standard_normal(dt), cache=r_cache),
                         [(N_, T_, D_), nh] + rgrads),
        "rnn_backward_truncated": (R.rnn_backward, dict(dh=rng.standard_normal(dt),
                                   cache=r_cache, truncate=2), [(N_, T_, D_), nh] + rgrads),
        "lstm_gates": (R.lstm_gates, dict(a=rng.standard_normal((N_, 4 * H_))), [nh] * 4),
        "lstm_step_forward": (R.lstm_step_forward, lstep, [nh, nh, None]),
        "lstm_step_backward": (R.lstm_step_backward, dict(
            dnext_h=rng.standard_normal(nh), dnext_c=rng.standard_normal(nh),
            cache=ls_cache), [(N_, D_), nh, nh] + lgrads),
        "lstm_forward": (R.lstm_forward, ll, [dt, None]),
        "lstm_backward": (R.lstm_backward, dict(dh=rng.standard_normal(dt), cache=l_cache),
                          [(N_, T_, D_), nh] + lgrads),
        "gru_step_forward": (R.gru_step_forward, gs, [nh, None]),
        "gru_step_backward": (R.gru_step_backward, dict(dnext_h=rng.standard_normal(nh),
                              cache=gs_cache), [(N_, D_), nh] + ggrads),
        "gru_forward": (R.gru_forward, gl, [dt, None]),
        "gru_backward": (R.gru_backward, dict(dh=rng.standard_normal(dt), cache=g_cache),
                         [(N_, T_, D_), nh] + ggrads),
        "clip_by_value": (lambda **kw: tuple(R.clip_by_value(**kw).values()),
                          dict(grads=grads, clip_value=0.5), [(D_, H_), (H_,)]),
        "clip_by_global_norm": (lambda **kw: (*R.clip_by_global_norm(**kw)[0].values(), None),
                                dict(grads=grads, max_norm=0.5), [(D_, H_), (H_,), None]),
    }


CONTRACT = list(_calls())


def _snapshot(value):
    """Deep copy of the arrays inside (nested tuples / dicts of) arguments."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    return value


def _assert_same(a, b, where):
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (tuple, dict)):
        items = a.items() if isinstance(a, dict) else enumerate(a)
        for k, v in items:
            _assert_same(v, b[k], f"{where}[{k}]")


@pytest.mark.parametrize("name", CONTRACT)
def test_reference_does_not_mutate_inputs(name):
    fn, args, _ = _calls()[name]
    before = _snapshot(args)
    fn(**args)
    for k in args:
        _assert_same(before[k], args[k], f"{name}: argument {k}")


@pytest.mark.parametrize("name", CONTRACT)
def test_reference_outputs_float64_with_contract_shapes(name):
    fn, args, shapes = _calls()[name]
    out = fn(**args)
    out = out if isinstance(out, tuple) else (out,)
    assert len(out) == len(shapes)
    for k, (o, shape) in enumerate(zip(out, shapes, strict=True)):
        if shape is None:
            continue
        assert isinstance(o, np.ndarray) and o.dtype == np.float64, f"{name} output #{k}"
        assert o.shape == shape, f"{name} output #{k}: {o.shape} != {shape}"


# N == 1 or T == 1 once made np.ascontiguousarray return a view of the cache
ALIAS_CASES = [
    pytest.param(cell, N, T, id=f"{cell}-N{N}-T{T}")
    for cell, N, T in (("rnn", 2, 3), ("lstm", 2, 3), ("lstm", 2, 1),
                       ("rnn", 1, 3), ("rnn", 2, 1), ("lstm", 1, 3), ("rnn", 1, 1),
                       ("gru", 2, 3), ("gru", 1, 1), ("gru", 2, 1))
]


@pytest.mark.parametrize("cell,N,T", ALIAS_CASES)
def test_layer_output_is_not_the_cache(cell, N, T):
    """Writing into the returned h (e.g. masking it) must not change the backward pass."""
    fwd, bwd, gates = {"rnn": (R.rnn_forward, R.rnn_backward, 1),
                       "lstm": (R.lstm_forward, R.lstm_backward, 4),
                       "gru": (R.gru_forward, R.gru_backward, 3)}[cell]
    rng = seeded("alias", cell, N, T)
    args = rnn_args(rng, N, T, 3, 4, gates=gates)
    dh = rng.standard_normal((N, T, 4))
    _, cache = fwd(**args)
    want = bwd(dh, cache)
    h, cache = fwd(**args)
    h[...] = 0.0
    for g, w in zip(bwd(dh, cache), want, strict=True):
        np.testing.assert_array_equal(g, w)


# --------------------------------------------------------------------------- #
# GRU: blocks r, z, n; next_h = (1 - z) * n + z * prev_h
# --------------------------------------------------------------------------- #
def naive_gru_step(x, prev_h, Wx, Wh, b):
    """One GRU step written entry by entry from the equations, with ``math`` on
    Python floats (an oracle that shares no code or layout trick with the reference)."""
    N, D = x.shape
    H = prev_h.shape[1]

    def pre(row, k, j, h):  # pre-activation of block k, unit j, from the state h
        return (sum(x[row, d] * Wx[d, k * H + j] for d in range(D))
                + sum(h[i] * Wh[i, k * H + j] for i in range(H)) + b[k * H + j])

    out = np.empty((N, H))
    for row in range(N):
        h = [float(v) for v in prev_h[row]]
        r = [sig(pre(row, 0, j, h)) for j in range(H)]
        z = [sig(pre(row, 1, j, h)) for j in range(H)]
        rh = [r[i] * h[i] for i in range(H)]
        n = [math.tanh(pre(row, 2, j, rh)) for j in range(H)]
        out[row] = [(1.0 - z[j]) * n[j] + z[j] * h[j] for j in range(H)]
    return out


def test_gru_gates_order_r_z_n():
    assert GRU_GATES == ("r", "z", "n")


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_gru_step_backward_matches_finite_differences(N, T, D, H):
    rng = seeded("gru_step", N, T, D, H)
    args = rnn_args(rng, N, T, D, H, gates=3, step=True)
    assert_gradients(R.gru_step_forward, R.gru_step_backward, args, STEP_ARGS, rng)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_gru_backward_matches_finite_differences(N, T, D, H):
    rng = seeded("gru", N, T, D, H)
    args = rnn_args(rng, N, T, D, H, gates=3)
    assert_gradients(R.gru_forward, R.gru_backward, args, SEQ_ARGS, rng)


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_gru_step_matches_the_equations(N, T, D, H):
    rng = seeded("gru-naive", N, T, D, H)
    args = rnn_args(rng, N, T, D, H, gates=3, step=True)
    next_h, _ = R.gru_step_forward(**args)
    np.testing.assert_allclose(next_h, naive_gru_step(**args), rtol=0, atol=FWD_ATOL)


def test_gru_forward_matches_the_equations_over_time():
    rng = seeded("gru-naive-seq")
    a = rnn_args(rng, 2, 4, 3, 2, gates=3)
    h, _ = R.gru_forward(**a)
    prev = a["h0"]
    for t in range(4):
        prev = naive_gru_step(a["x"][:, t], prev, a["Wx"], a["Wh"], a["b"])
        np.testing.assert_allclose(h[:, t], prev, rtol=0, atol=FWD_ATOL, err_msg=f"t={t}")


@pytest.mark.parametrize("k,gate", list(enumerate(GRU_GATES)))
def test_gru_step_one_block_of_the_bias(k, gate):
    """Wx = Wh = 0 and only bias block k nonzero: next_h = (1 - z) n + z prev_h in closed form."""
    H, v = 2, 1.3
    b = np.zeros(3 * H)
    b[k * H:(k + 1) * H] = v
    prev_h = np.array([[0.4, -0.7]])
    next_h, _ = R.gru_step_forward(np.ones((1, 3)), prev_h, np.zeros((3, 3 * H)),
                                   np.zeros((H, 3 * H)), b)
    z = sig(v) if gate == "z" else 0.5
    n = math.tanh(v) if gate == "n" else 0.0
    want = [(1.0 - z) * n + z * p for p in prev_h[0]]
    np.testing.assert_allclose(next_h[0], want, rtol=0, atol=FWD_ATOL)


def test_gru_reset_gate_acts_on_h_before_wh_n():
    """r = 0 (b_r = -800) removes prev_h from n altogether, whatever Wh_n is."""
    rng = seeded("gru-reset")
    a = rnn_args(rng, 3, 1, 2, 4, gates=3, step=True)
    a["b"][:4] = -800.0
    a["Wh"][:, :8] = 0.0  # z does not depend on prev_h either
    h1, _ = R.gru_step_forward(**a)
    z = R.sigmoid(a["x"] @ a["Wx"][:, 4:8] + a["b"][4:8])
    n = np.tanh(a["x"] @ a["Wx"][:, 8:] + a["b"][8:])
    np.testing.assert_allclose(h1, (1.0 - z) * n + z * a["prev_h"], rtol=0, atol=FWD_ATOL)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_gru_saturated_gates_are_stable(sign):
    """|b| ~ 800: no warning, and z = 1 keeps prev_h, z = 0 (with r = 1) gives n alone."""
    rng = seeded("gru-huge", sign)
    a = rnn_args(rng, 3, 5, 2, 2, gates=3)
    a["b"][:2] = -sign * 800.0
    a["b"][2:4] = sign * 750.0
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        h, cache = R.gru_forward(**a)
        grads = R.gru_backward(rng.standard_normal(h.shape), cache)
    assert all(np.all(np.isfinite(g)) for g in (h, *grads))
    if sign > 0:  # z = 1: the state never moves
        np.testing.assert_allclose(h, np.broadcast_to(a["h0"][:, None], h.shape), rtol=0,
                                   atol=FWD_ATOL)
    else:  # z = 0 and r = 1: h_t = n_t
        prev = a["h0"]
        for t in range(5):
            prev = np.tanh(a["x"][:, t] @ a["Wx"][:, 4:] + prev @ a["Wh"][:, 4:] + a["b"][4:])
            np.testing.assert_allclose(h[:, t], prev, rtol=0, atol=FWD_ATOL)


@pytest.mark.parametrize("N,T,D,H", LOOP_SHAPES)
def test_gru_layer_equals_step_loop(N, T, D, H):
    rng = seeded("gru-loop", N, T, D, H)
    a = rnn_args(rng, N, T, D, H, gates=3)
    dh = rng.standard_normal((N, T, H))
    h_layer, cache = R.gru_forward(**a)
    grads_layer = R.gru_backward(dh, cache)

    h, hs, caches = a["h0"], [], []
    for t in range(T):
        h, cc = R.gru_step_forward(a["x"][:, t], h, a["Wx"], a["Wh"], a["b"])
        hs.append(h)
        caches.append(cc)
    assert_close(h_layer, np.stack(hs, axis=1), "h")

    dx = np.zeros_like(a["x"])
    dWx, dWh, db = np.zeros_like(a["Wx"]), np.zeros_like(a["Wh"]), np.zeros_like(a["b"])
    dprev = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev, gWx, gWh, gb = R.gru_step_backward(dh[:, t] + dprev, caches[t])
        dWx, dWh, db = dWx + gWx, dWh + gWh, db + gb
    for name, g, w in zip(SEQ_GRADS, grads_layer, [dx, dprev, dWx, dWh, db], strict=True):
        assert_close(g, w, name)


def test_gru_step_output_is_not_the_cache():
    """Writing into the returned next_h must not change the step's backward pass."""
    rng = seeded("gru-step-alias")
    a = rnn_args(rng, 2, 1, 3, 4, gates=3, step=True)
    d = rng.standard_normal((2, 4))
    want = R.gru_step_backward(d, R.gru_step_forward(**a)[1])
    next_h, cache = R.gru_step_forward(**a)
    next_h[...] = 0.0
    for g, w in zip(R.gru_step_backward(d, cache), want, strict=True):
        np.testing.assert_array_equal(g, w)
