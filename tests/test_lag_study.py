"""Tests of the lag study's tools: the gradient reaching lag k, truncation, the look inside."""

import numpy as np
import pytest

from autograder import reference as ref
from rnn_course.data import CountryLanguageTask
from rnn_course.gradcheck import GRAD_TOL, eval_numerical_gradient, rel_error_norm
from rnn_course.gradient_flow import gradient_at_lag, last_step_direction, relative_gradient
from rnn_course.probe import carrier_unit, find_carrier, separation_scores
from rnn_course.training import init_params

CELLS = ("rnn", "lstm", "gru")


def _layers(cell):
    return getattr(ref, f"{cell}_forward"), getattr(ref, f"{cell}_backward")


# --------------------------------------------------------------------------- #
# The gradient reaching lag k
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cell", CELLS)
def test_gradient_at_lag_matches_finite_differences(cell):
    """norms[k] is the norm of dL/dx_{T-1-k} for L = sum(dlast * h_{T-1}): the oracle
    differentiates that loss numerically, through the forward pass only."""
    forward, backward = _layers(cell)
    N, T, D, H = 3, 6, 4, 5
    rng = np.random.default_rng(0)
    params = init_params(cell, D, H, 2, seed=1, forget_bias=1.0)
    params["b"] = params["b"] + 0.1 * rng.standard_normal(params["b"].shape)
    x = rng.standard_normal((N, T, D))
    dlast = last_step_direction(N, H, seed=2)

    def loss(xv):
        h, _ = forward(xv, np.zeros((N, H)), params["Wx"], params["Wh"], params["b"])
        return float(np.sum(dlast * h[:, -1]))

    dx = eval_numerical_gradient(loss, x)
    want = np.linalg.norm(dx, axis=(0, 2))[::-1]
    got = gradient_at_lag(forward, backward, params, x, dlast=dlast)
    assert got.shape == (T,)
    assert rel_error_norm(got, want) < GRAD_TOL
    assert np.all(got > 0)


def test_gradient_at_lag_tells_a_vanishing_rnn_from_a_gru():
    task = CountryLanguageTask(60)
    x, _ = task.batch(8, seed=0)
    rel = {}
    for cell in ("rnn", "gru"):
        params = init_params(cell, task.input_size, 16, task.output_size, seed=0,
                             forget_bias=3.0)
        rel[cell] = relative_gradient(gradient_at_lag(*_layers(cell), params, x))
    assert rel["rnn"][0] == rel["gru"][0] == 1.0
    assert rel["rnn"][60] < 1e-4 and rel["gru"][60] > 1e-2  # ~4e-6 and ~0.14


def test_gradient_at_lag_rejects_bad_shapes():
    params = init_params("rnn", 3, 4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, D\)"):
        gradient_at_lag(ref.rnn_forward, ref.rnn_backward, params, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dlast must have shape \(N, H\) = \(2, 4\)"):
        gradient_at_lag(ref.rnn_forward, ref.rnn_backward, params, np.zeros((2, 5, 3)),
                        dlast=np.ones((2, 3)))


# --------------------------------------------------------------------------- #
# Truncation: with truncate=k nothing reaches beyond k cells
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("k", [1, 3, 7])
def test_truncated_gradient_beyond_k_is_exactly_zero(k):
    N, T, D, H = 4, 10, 3, 6
    rng = np.random.default_rng(k)
    params = init_params("rnn", D, H, 2, seed=k)
    x = rng.standard_normal((N, T, D))
    h, cache = ref.rnn_forward(x, np.zeros((N, H)), params["Wx"], params["Wh"], params["b"])
    dh = np.zeros_like(h)
    dh[:, -1] = rng.standard_normal((N, H))
    dx, dh0, *_ = ref.rnn_backward(dh, cache, truncate=k)
    # the loss at step T-1 reaches cells T-1 .. T-k: lags 0 .. k-1, and no further
    assert np.all(dx[:, : T - k] == 0.0) and np.all(dh0 == 0.0)
    assert np.all(np.linalg.norm(dx[:, T - k:], axis=(0, 2)) > 0)
    full = gradient_at_lag(ref.rnn_forward, ref.rnn_backward, params, x, dlast=dh[:, -1])
    cut = gradient_at_lag(ref.rnn_forward, lambda d, c: ref.rnn_backward(d, c, truncate=k),
                          params, x, dlast=dh[:, -1])
    np.testing.assert_array_equal(cut[k:], 0.0)
    np.testing.assert_allclose(cut[:k], full[:k], rtol=1e-12)  # within k: the full gradient


# --------------------------------------------------------------------------- #
# The look inside: the unit that carries the class
# --------------------------------------------------------------------------- #
def test_separation_scores_and_carrier_unit():
    rng = np.random.default_rng(0)
    N, T, H = 300, 12, 6
    y = rng.integers(0, 3, size=N)
    h = rng.standard_normal((N, T, H))
    h[:, :, 4] += 5.0 * y[:, None]  # unit 4 holds the class at every step
    h[:, :6, 1] += 20.0 * y[:, None]  # unit 1 holds it strongly, but only until step 5
    scores = separation_scores(h, y)
    assert scores.shape == (T, H) and np.all(scores >= 0)
    assert scores[:6, 1].min() > scores[:6, 4].max() > 5.0  # unit 1 wins where it holds it
    unit, worst = carrier_unit(h, y, slice(1, T - 1))
    assert unit == 4 and worst.shape == (H,)  # but only unit 4 carries it across
    assert carrier_unit(h, y, slice(1, 5))[0] == 1
    # a noise unit scores near 0: between-class variance of 3 means of 100 samples
    assert worst[[0, 2, 3, 5]].max() < 0.2
    with pytest.raises(ValueError, match="at least two classes"):
        separation_scores(h, np.zeros(N, dtype=int))
    with pytest.raises(ValueError, match="steps selects no time step"):
        carrier_unit(h, y, slice(3, 3))


def test_find_carrier_on_a_planted_network():
    """A hand-built GRU-like state: a network whose unit 2 copies the country indicator."""
    task = CountryLanguageTask(8)

    def copy_forward(x, h0, Wx, Wh, b):
        # unit 2 holds "is the opening country France?"; the rest is noise from the input
        N, T, D = x.shape
        h = np.tanh(x @ Wx)
        h[:, :, 2] = x[:, :1, 0]
        return h, None

    params = {"Wx": np.random.default_rng(0).standard_normal((task.input_size, 5)),
              "Wh": np.zeros((5, 5)), "b": np.zeros(5)}
    found = find_carrier(copy_forward, params, task, n=200)
    assert found["unit"] == 2
    assert found["h"].shape == (200, task.seq_len, 5) and found["scores"].shape == (10, 5)
    with pytest.raises(ValueError, match="a gap of at least one"):
        find_carrier(copy_forward, params, CountryLanguageTask(0))


def test_the_gru_notebooks_provided_truncated_bptt_matches_the_reference():
    """The provided assignment-2 rnn_backward of the gru notebook, run on the provided
    rnn_forward's cache, equals the reference for full and truncated BPTT."""
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "source" / "gru" / "gru.ipynb")
                    .read_text())
    cells = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]}
    ns = {"np": np}
    exec(cells["gru_rnn_lstm_provided"], ns)  # noqa: S102 - the course's own notebook
    exec(cells["gru_bptt_provided"], ns)  # noqa: S102
    rng = np.random.default_rng(0)
    N, T, D, H = 3, 9, 4, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh = 0.5 * rng.standard_normal((D, H)), 0.5 * rng.standard_normal((H, H))
    b = rng.standard_normal(H)
    dh = rng.standard_normal((N, T, H))
    _, cache = ns["rnn_forward"](x, h0, Wx, Wh, b)
    _, ref_cache = ref.rnn_forward(x, h0, Wx, Wh, b)
    for k in (None, 1, 2, 5, T, 20):
        got = ns["rnn_backward"](dh, cache, truncate=k)
        want = ref.rnn_backward(dh, ref_cache, truncate=k)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="truncate must be a positive int or None"):
        ns["rnn_backward"](dh, cache, truncate=0)
