"""Tests of rnn_course.gradcheck: the finite-difference helper, the error
measures, and check_layer_gradients on correct and deliberately broken layers."""

from __future__ import annotations

import numpy as np
import pytest

from autograder import reference as R
from rnn_course import gradcheck
from rnn_course.contract import LSTM_STEP_GRADS, STEP_ARGS, STEP_GRADS
from rnn_course.gradcheck import (
    GradientReport,
    OutputShapeError,
    check_layer_gradients,
    eval_numerical_gradient,
    gradient_matches,
    gradient_problem,
    numeric_gradient,
    perturbed_outputs,
    rel_error,
    rel_error_norm,
)

# A correct gradient scores ~1e-10 (see the module docstring); 1e-8 leaves room.
FD_RTOL = 1e-8
# What students are told to expect of a correct layer.
LAYER_TOL = 1e-7
N, T, D, H = 3, 4, 4, 5  # N != H so that a gradient summed over the wrong axis has a wrong shape


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def step_inputs(rng, gates=1):
    return dict(x=rng.standard_normal((N, D)), prev_h=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, gates * H)) / 2,
                Wh=rng.standard_normal((H, gates * H)) / 2,
                b=rng.standard_normal(gates * H) / 2)


def lstm_step_inputs(rng):
    a = step_inputs(rng, gates=4)
    return dict(x=a["x"], prev_h=a["prev_h"], prev_c=rng.standard_normal((N, H)),
                Wx=a["Wx"], Wh=a["Wh"], b=a["b"])


def layer_inputs(rng, gates=1):
    return dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, gates * H)) / 2,
                Wh=rng.standard_normal((H, gates * H)) / 2,
                b=rng.standard_normal(gates * H) / 2)


# --------------------------------------------------------------------------- #
# eval_numerical_gradient
# --------------------------------------------------------------------------- #
def test_gradient_of_sum_of_squares(rng):
    x = rng.standard_normal((3, 4))
    g = eval_numerical_gradient(lambda v: np.sum(v ** 2), x)
    assert g.shape == x.shape and g.dtype == np.float64
    assert rel_error_norm(g, 2 * x) < FD_RTOL


def test_gradient_of_elementwise_sin_with_upstream(rng):
    x, df = rng.standard_normal(7), rng.standard_normal(7)
    g = eval_numerical_gradient(np.sin, x, df)
    assert rel_error_norm(g, np.cos(x) * df) < FD_RTOL


def test_gradient_of_matrix_product_both_arguments(rng):
    X, W, G = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    assert rel_error_norm(eval_numerical_gradient(lambda w: X @ w, W, G), X.T @ G) < FD_RTOL
    assert rel_error_norm(eval_numerical_gradient(lambda v: v @ W, X, G), G @ W.T) < FD_RTOL


def test_gradient_of_zero_dimensional_argument():
    g = eval_numerical_gradient(lambda v: float(v) ** 3, np.array(2.0))
    assert g.shape == () and g == pytest.approx(12.0, rel=1e-9)


def test_integer_argument_is_differentiated_as_float():
    g = eval_numerical_gradient(lambda v: np.sum(v ** 2), np.array([1, 2, 3]))
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, [2.0, 4.0, 6.0], rtol=1e-9)


def test_input_is_not_mutated_even_if_read_only(rng):
    x = rng.standard_normal((2, 3))
    before = x.copy()
    x.flags.writeable = False
    eval_numerical_gradient(lambda v: np.sum(np.tanh(v)), x)
    np.testing.assert_array_equal(x, before)


def test_function_must_use_its_argument(rng):
    """The CS231n trap: f reads a captured array, not its argument.  We never
    mutate the caller's array, so such an f has gradient zero -- visibly wrong
    instead of accidentally right."""
    x = rng.standard_normal(4)
    np.testing.assert_array_equal(eval_numerical_gradient(lambda _: np.sum(x ** 2), x), 0.0)


def test_function_returning_its_argument(rng):
    """f(v) = v: the two evaluations must not share a buffer."""
    x, df = rng.standard_normal(5), rng.standard_normal(5)
    assert rel_error_norm(eval_numerical_gradient(lambda v: v, x, df), df) < FD_RTOL


def test_function_reusing_an_output_buffer(rng):
    buf = np.empty(5)

    def f(v):
        np.multiply(v, 3.0, out=buf)
        return buf

    x, df = rng.standard_normal(5), rng.standard_normal(5)
    assert rel_error_norm(eval_numerical_gradient(f, x, df), 3 * df) < FD_RTOL


def test_function_mutating_its_argument(rng):
    def f(v):
        v *= 2.0
        return np.sum(v)

    x = rng.standard_normal(4)
    np.testing.assert_allclose(eval_numerical_gradient(f, x), 2.0, rtol=1e-9)


def test_array_output_without_upstream_raises(rng):
    with pytest.raises(ValueError, match="pass df"):
        eval_numerical_gradient(np.sin, rng.standard_normal(3))


def test_upstream_of_wrong_shape_raises(rng):
    with pytest.raises(ValueError, match="shape"):
        eval_numerical_gradient(np.sin, rng.standard_normal(3), df=np.ones(4))


def test_tuple_output_gets_a_helpful_error(rng):
    x = rng.standard_normal((1, D))
    with pytest.raises(TypeError, match=r"\[0\]"):
        eval_numerical_gradient(lambda v: R.rnn_step_forward(v, np.zeros((1, H)),
                                                            np.ones((D, H)), np.eye(H),
                                                            np.zeros(H)),
                                x, df=np.ones((1, H)))


@pytest.mark.parametrize("h", [0.0, -1e-5, float("nan")])
def test_nonpositive_step_raises(h):
    with pytest.raises(ValueError):
        eval_numerical_gradient(np.sum, np.ones(2), h=h)


# --------------------------------------------------------------------------- #
# rel_error, rel_error_norm
# --------------------------------------------------------------------------- #
def test_rel_error_known_values():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error([1.0, 2.0], [3.0, 2.0]) == pytest.approx(0.5)
    assert rel_error([1.0], [-1.0]) == pytest.approx(1.0)
    assert rel_error(0.0, 1e-10) == pytest.approx(1e-2)  # the 1e-8 floor
    assert rel_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0


def test_rel_error_norm_known_values():
    assert rel_error_norm([3.0, 4.0], [3.0, 4.0]) == 0.0
    assert rel_error_norm(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error_norm([3.0, 4.0], [-3.0, -4.0]) == pytest.approx(1.0)
    assert rel_error_norm([3.0, 4.0], [0.0, 0.0]) == pytest.approx(1.0)
    assert rel_error_norm([1.0, 0.0], [1.0, 1.0]) == pytest.approx(1 / (1 + np.sqrt(2)))


def test_norm_error_forgives_noise_on_near_zero_entries():
    """Why the normwise measure exists: 1e-11 of noise on a zero entry."""
    analytic, numeric = np.array([1.0, 0.0]), np.array([1.0, 1e-11])
    assert rel_error(analytic, numeric) > 1e-7
    assert rel_error_norm(analytic, numeric) < 1e-10


@pytest.mark.parametrize("fn", [rel_error, rel_error_norm])
def test_error_measures_reject_shape_mismatch(fn):
    with pytest.raises(ValueError, match=r"\(5,\).*\(1, 5\)"):
        fn(np.ones(5), np.ones((1, 5)))


@pytest.mark.parametrize("fn", [rel_error, rel_error_norm])
def test_error_measures_propagate_nan(fn):
    assert np.isnan(fn([1.0, np.nan], [1.0, 1.0]))


# --------------------------------------------------------------------------- #
# check_layer_gradients on the reference layers
# --------------------------------------------------------------------------- #
def test_reference_rnn_step_passes(rng):
    inputs = step_inputs(rng)
    report = check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, inputs)
    assert isinstance(report, GradientReport)
    assert [c.name for c in report] == list(STEP_GRADS)
    assert report.ok(LAYER_TOL), report
    for c in report:
        assert c.numeric.shape == inputs[c.name[1:]].shape


def test_reference_lstm_step_passes_with_two_outputs(rng):
    report = check_layer_gradients(R.lstm_step_forward, R.lstm_step_backward,
                                   lstm_step_inputs(rng))
    assert len(report) == 6 and report.ok(LAYER_TOL), report


def test_reference_rnn_layer_passes(rng):
    report = check_layer_gradients(R.rnn_forward, lambda dh, cache: R.rnn_backward(dh, cache),
                                   layer_inputs(rng))
    assert report.ok(LAYER_TOL), report


def test_reference_lstm_layer_passes(rng):
    report = check_layer_gradients(R.lstm_forward, R.lstm_backward, layer_inputs(rng, gates=4))
    assert report.ok(LAYER_TOL), report


def test_truncated_bptt_is_not_the_gradient(rng):
    """Truncated BPTT is an approximation: the check must say so."""
    report = check_layer_gradients(R.rnn_forward,
                                   lambda dh, cache: R.rnn_backward(dh, cache, truncate=1),
                                   layer_inputs(rng))
    assert not report.ok(LAYER_TOL)
    assert report["dx"].ok(LAYER_TOL) is False and "dWh" in report.failed()


def test_caller_inputs_untouched(rng):
    inputs = step_inputs(rng)
    before = {k: v.copy() for k, v in inputs.items()}
    check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, inputs)
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], before[k])


def test_same_seed_same_report(rng):
    inputs = step_inputs(rng)
    a = check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, inputs, seed=7)
    b = check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, inputs, seed=7)
    assert a.errors == b.errors


# --------------------------------------------------------------------------- #
# Planted bugs: caught, and the right gradient named
# --------------------------------------------------------------------------- #
def backward_without_tanh_derivative(dnext_h, cache):
    x, prev_h, Wx, Wh, _ = cache
    da = dnext_h  # BUG: forgot * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def backward_dropping_db(dnext_h, cache):
    dx, dprev_h, dWx, dWh, db = R.rnn_step_backward(dnext_h, cache)
    return dx, dprev_h, dWx, dWh, np.zeros_like(db)  # BUG: db forgotten


def backward_dWh_from_next_h(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, next_h.T @ da, da.sum(axis=0)  # BUG: next_h


def backward_untransposed_Wh(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh, x.T @ da, prev_h.T @ da, da.sum(axis=0)  # BUG: Wh not Wh.T


def backward_db_wrong_axis(dnext_h, cache):
    dx, dprev_h, dWx, dWh, _ = R.rnn_step_backward(dnext_h, cache)
    x, prev_h, Wx, Wh, next_h = cache
    return dx, dprev_h, dWx, dWh, (dnext_h * (1 - next_h ** 2)).sum(axis=1)  # BUG: axis


@pytest.mark.parametrize("backward,wrong", [
    pytest.param(backward_dropping_db, "db", id="drops-db"),
    pytest.param(backward_dWh_from_next_h, "dWh", id="dWh-uses-next_h"),
    pytest.param(backward_untransposed_Wh, "dprev_h", id="Wh-not-transposed"),
])
def test_single_wrong_gradient_is_caught_and_named(rng, backward, wrong):
    report = check_layer_gradients(R.rnn_step_forward, backward, step_inputs(rng))
    assert report.failed(LAYER_TOL) == [wrong]
    assert report.worst.name == wrong
    assert f"worst: {wrong}[" in str(report)


def test_missing_tanh_derivative_fails_every_gradient(rng):
    report = check_layer_gradients(R.rnn_step_forward, backward_without_tanh_derivative,
                                   step_inputs(rng))
    assert report.failed(LAYER_TOL) == list(STEP_GRADS)
    assert "FAILED" in str(report)


def _lstm_da(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc = cache
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f),
                         dnext_h * tc * o * (1 - o), dc * i * (1 - g ** 2)], axis=1)
    return da, dc * f


def lstm_backward_swapping_i_f(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh = cache[:5]
    da, dprev_c = _lstm_da(dnext_h, dnext_c, cache)
    da = np.concatenate([da[:, H:2 * H], da[:, :H], da[:, 2 * H:]], axis=1)  # BUG: f, i, o, g
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_backward_ignoring_dnext_c(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh = cache[:5]
    da, dprev_c = _lstm_da(dnext_h, np.zeros_like(dnext_c), cache)  # BUG
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def test_lstm_helper_backward_is_right(rng):
    """The planted-bug LSTM backwards below are built on a correct core."""
    def backward(dnext_h, dnext_c, cache):
        x, prev_h, prev_c, Wx, Wh = cache[:5]
        da, dprev_c = _lstm_da(dnext_h, dnext_c, cache)
        return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)

    assert check_layer_gradients(R.lstm_step_forward, backward, lstm_step_inputs(rng)).ok()


def test_lstm_swapped_gates_caught_cell_gradient_still_right(rng):
    report = check_layer_gradients(R.lstm_step_forward, lstm_backward_swapping_i_f,
                                   lstm_step_inputs(rng))
    assert report.failed(LAYER_TOL) == list(STEP_GRADS)
    assert report["dprev_c"].ok(LAYER_TOL)


def test_lstm_ignoring_dnext_c_is_caught(rng):
    report = check_layer_gradients(R.lstm_step_forward, lstm_backward_ignoring_dnext_c,
                                   lstm_step_inputs(rng))
    assert "dprev_c" in report.failed(LAYER_TOL) and not report.ok(LAYER_TOL)


def test_single_wrong_entry_is_located(rng):
    def backward(dnext_h, cache):
        dx, dprev_h, dWx, dWh, db = R.rnn_step_backward(dnext_h, cache)
        dWh = dWh.copy()
        dWh[2, 3] += 0.5  # BUG in one entry
        return dx, dprev_h, dWx, dWh, db

    report = check_layer_gradients(R.rnn_step_forward, backward, step_inputs(rng))
    assert report.failed() == ["dWh"]
    assert report.worst.worst_index == (2, 3)
    line = report.worst.worst_entry()
    assert line.startswith("dWh[2, 3]: analytic ") and ", numeric " in line
    assert "rel error" in line and line in str(report)


def test_gradient_of_wrong_shape_fails_with_a_note(rng):
    report = check_layer_gradients(R.rnn_step_forward, backward_db_wrong_axis, step_inputs(rng))
    assert report.failed() == ["db"]
    assert report["db"].rel_error == np.inf
    assert f"db: has shape ({N},), expected ({H},)" in str(report)


def test_missing_gradient_fails_with_a_note(rng):
    def backward(dnext_h, cache):
        dx, dprev_h, dWx, dWh, db = R.rnn_step_backward(dnext_h, cache)
        return dx, dprev_h, None, dWh, db

    report = check_layer_gradients(R.rnn_step_forward, backward, step_inputs(rng))
    assert report.failed() == ["dWx"] and "None" in str(report)


def test_nan_gradient_fails_and_is_the_worst(rng):
    def backward(dnext_h, cache):
        dx, dprev_h, dWx, dWh, db = R.rnn_step_backward(dnext_h, cache)
        dWx = dWx.copy()
        dWx[1, 2] = np.nan
        return dx, dprev_h, dWx, dWh, db

    report = check_layer_gradients(R.rnn_step_forward, backward, step_inputs(rng))
    assert not report.ok() and report.worst.name == "dWx"
    assert report.worst.worst_index == (1, 2)


def test_in_place_modification_is_reported(rng):
    def forward(x, prev_h, Wx, Wh, b):
        out = R.rnn_step_forward(x, prev_h.copy(), Wx, Wh, b)
        prev_h *= 2.0  # BUG: writes into the caller's array
        return out

    inputs = step_inputs(rng)
    before = inputs["prev_h"].copy()
    report = check_layer_gradients(forward, R.rnn_step_backward, inputs)
    assert not report.ok()
    assert "forward modified its argument 'prev_h' in place" in str(report)
    np.testing.assert_array_equal(inputs["prev_h"], before)


def test_backward_modifying_upstream_is_reported(rng):
    def backward(dnext_h, cache):
        grads = R.rnn_step_backward(dnext_h.copy(), cache)
        dnext_h[...] = 0.0
        return grads

    report = check_layer_gradients(R.rnn_step_forward, backward, step_inputs(rng))
    assert all(c.ok(LAYER_TOL) for c in report) and not report.ok()
    assert "upstream gradient" in str(report)


# --------------------------------------------------------------------------- #
# API details
# --------------------------------------------------------------------------- #
def test_report_table_and_lookup(rng):
    report = check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, step_inputs(rng))
    text = str(report)
    assert text.splitlines()[0].split() == ["gradient", "shape", "rel", "error", "max", "elem",
                                            "status"]
    for name in STEP_GRADS:
        assert any(line.startswith(name + " ") for line in text.splitlines()), name
    assert repr(report) == text and "worst: " in text
    assert report["Wh"] is report["dWh"]
    assert set(report.errors) == set(STEP_GRADS)
    with pytest.raises(KeyError):
        report["W"]


def test_assert_ok_raises_with_table(rng):
    good = check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, step_inputs(rng))
    good.assert_ok()
    bad = check_layer_gradients(R.rnn_step_forward, backward_dropping_db, step_inputs(rng))
    with pytest.raises(AssertionError, match="db"):
        bad.assert_ok()


def test_tolerance_is_configurable(rng):
    report = check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, step_inputs(rng),
                                   tol=1e-30)
    assert not report.ok() and report.ok(1e-7)
    assert "FAIL" in str(report)


def test_explicit_upstream_single_and_multiple(rng):
    inputs = step_inputs(rng)
    up = rng.standard_normal((N, H))
    assert check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, inputs,
                                 upstream=up).ok()
    ups = (rng.standard_normal((N, H)), rng.standard_normal((N, H)))
    assert check_layer_gradients(R.lstm_step_forward, R.lstm_step_backward,
                                 lstm_step_inputs(rng), upstream=ups).ok()


def test_upstream_only_through_the_cell_state(rng):
    """dnext_h = 0: only the path through next_c is exercised, and checked."""
    ups = (np.zeros((N, H)), rng.standard_normal((N, H)))
    assert check_layer_gradients(R.lstm_step_forward, R.lstm_step_backward,
                                 lstm_step_inputs(rng), upstream=ups).ok()
    report = check_layer_gradients(R.lstm_step_forward, lstm_backward_ignoring_dnext_c,
                                   lstm_step_inputs(rng), upstream=ups)
    assert report.failed() == list(LSTM_STEP_GRADS)


@pytest.mark.parametrize("upstream", [
    pytest.param([np.ones((N, H))] * 2, id="too-many"),
    pytest.param(np.ones((N, H + 1)), id="wrong-shape"),
])
def test_bad_upstream_raises(rng, upstream):
    with pytest.raises(ValueError):
        check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, step_inputs(rng),
                              upstream=upstream)


def test_argnames_order_and_skipping(rng):
    inputs = step_inputs(rng)

    def backward(dnext_h, cache):
        dx, dprev_h, dWx, dWh, db = R.rnn_step_backward(dnext_h, cache)
        return db, dWh, dx, "ignored"

    report = check_layer_gradients(R.rnn_step_forward, backward, inputs,
                                   argnames=["b", "Wh", "x", None])
    assert [c.name for c in report] == ["db", "dWh", "dx"] and report.ok()


@pytest.mark.parametrize("argnames", [
    pytest.param(list(STEP_ARGS[:-1]), id="too-few"),
    pytest.param([*STEP_ARGS[:-1], "bias"], id="unknown"),
])
def test_bad_argnames_raise(rng, argnames):
    with pytest.raises(ValueError):
        check_layer_gradients(R.rnn_step_forward, R.rnn_step_backward, step_inputs(rng),
                              argnames=argnames)


def test_non_array_inputs_pass_through(rng):
    def forward(x, W, scale):
        assert scale == 3 and isinstance(scale, int)
        return scale * np.tanh(x @ W), (x, W, scale)

    def backward(dout, cache):
        x, W, scale = cache
        da = dout * scale * (1 - np.tanh(x @ W) ** 2)
        return da @ W.T, x.T @ da

    report = check_layer_gradients(forward, backward, dict(
        x=rng.standard_normal((2, 3)), W=rng.standard_normal((3, 4)), scale=3),
        argnames=["x", "W"])
    assert report.ok()


def test_scalar_output_layer(rng):
    def forward(x):
        return float(np.sum(x ** 3)), x

    def backward(dloss, x):
        return dloss * 3 * x ** 2

    report = check_layer_gradients(forward, backward, dict(x=rng.standard_normal((2, 2))))
    assert report.ok()


def test_forward_without_cache_raises(rng):
    with pytest.raises(ValueError, match="cache"):
        check_layer_gradients(lambda x: np.tanh(x), lambda d, c: d, dict(x=np.ones(3)))


# --------------------------------------------------------------------------- #
# The checks' half-and-half finite differences: the same toolkit, one policy
# --------------------------------------------------------------------------- #
def test_tables_then_gradient_equal_eval_numerical_gradient(rng):
    """perturbed_outputs (a correct forward, at release) + numeric_gradient (the verdict)
    compute exactly what eval_numerical_gradient does, argument by argument."""
    args = step_inputs(rng)
    dout = rng.standard_normal((N, H))

    def forward(**kw):
        return R.rnn_step_forward(**kw)[0]

    tables = perturbed_outputs(forward, args, STEP_ARGS, prefix="a_")
    assert tables["a_plus_Wh"].shape == (H * H, N, H)
    for name in STEP_ARGS:
        got = numeric_gradient(tables, name, dout, args[name].shape, prefix="a_")
        want = eval_numerical_gradient(
            lambda v, name=name: forward(**{**args, name: v}), args[name], dout)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    with pytest.raises(OutputShapeError, match="shape"):
        numeric_gradient(tables, "b", np.ones((N, H + 1)), args["b"].shape, prefix="a_")


def test_gradient_verdicts_check_shape_then_finiteness_then_error():
    want = np.array([1.0, -2.0, 3.0])
    assert gradient_matches(want * (1 + 1e-9), want)
    assert gradient_problem("db", want * (1 + 1e-9), want) is None
    assert gradient_problem("db", want[:2], want) == "db has shape (2,), expected (3,)"
    assert gradient_problem("db", np.array([1.0, np.nan, 3.0]), want) == "db contains NaN or inf"
    assert not gradient_matches(np.array([1.0, np.nan, 3.0]), want)
    message = gradient_problem("db", 1.01 * want, want)
    assert message.startswith("db disagrees with the finite-difference gradient")
    assert f"should be below {gradcheck.GRAD_TOL:.0e}" in message
    assert gradient_problem("db", 1.000001 * want, want, gradcheck.GATED_GRAD_TOL) is None


def test_one_step_and_one_tolerance_for_students_and_checks():
    import inspect

    defaults = inspect.signature(check_layer_gradients).parameters
    assert defaults["h"].default == gradcheck.FD_STEP
    assert defaults["tol"].default == gradcheck.GRAD_TOL
    assert inspect.signature(eval_numerical_gradient).parameters["h"].default == \
        gradcheck.FD_STEP
    assert gradcheck.GRAD_TOL < gradcheck.GATED_GRAD_TOL < gradcheck.LINEAR_TOL
