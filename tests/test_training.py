"""Tests of rnn_course.training: initialisation, optimisers, loss heads, the loop."""

import functools
import json
import warnings

import numpy as np
import pytest

from autograder import reference as ref
from rnn_course.data import AddingTask, CountryLanguageTask
from rnn_course.training import (
    SGD,
    Adam,
    History,
    evaluate,
    global_norm,
    init_lstm,
    init_params,
    init_rnn,
    mean_squared_error,
    predict,
    softmax_cross_entropy,
    train,
)


def rel_error(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


# --------------------------------------------------------------------------- #
# Initialisation
# --------------------------------------------------------------------------- #
def test_rnn_init_shapes_and_orthogonal_wh():
    p = init_rnn(7, 16, 3, seed=0)
    assert {k: v.shape for k, v in p.items()} == {
        "Wx": (7, 16), "Wh": (16, 16), "b": (16,), "Wy": (16, 3), "by": (3,)}
    np.testing.assert_allclose(p["Wh"].T @ p["Wh"], np.eye(16), rtol=0, atol=1e-10)
    np.testing.assert_allclose(p["Wh"] @ p["Wh"].T, np.eye(16), rtol=0, atol=1e-10)
    assert not p["b"].any() and not p["by"].any()


def test_lstm_init_blocks_and_forget_bias():
    H = 12
    p = init_lstm(5, H, 4, seed=1, forget_bias=2.5)
    assert p["Wx"].shape == (5, 4 * H) and p["Wh"].shape == (H, 4 * H) and p["b"].shape == (4 * H,)
    for k in range(4):  # every gate's recurrent block is orthogonal
        block = p["Wh"][:, k * H:(k + 1) * H]
        np.testing.assert_allclose(block.T @ block, np.eye(H), rtol=0, atol=1e-10)
    # gate order i, f, o, g: only the second block holds the forget bias
    np.testing.assert_array_equal(p["b"][H:2 * H], 2.5)
    np.testing.assert_array_equal(np.delete(p["b"], np.s_[H:2 * H]), 0.0)
    assert np.all(init_lstm(5, H, 4)["b"][H:2 * H] == 1.0)  # the default is 1.0


def test_xavier_variance_and_bound():
    D, H = 300, 200
    p = init_rnn(D, H, 1, seed=0)
    bound = np.sqrt(6 / (D + H))
    assert np.abs(p["Wx"]).max() <= bound
    # 60 000 draws from U(-a, a): the sample variance is within a few % of 2 / (D + H)
    assert p["Wx"].var() == pytest.approx(2 / (D + H), rel=0.03)
    lstm = init_lstm(D, H, 1, seed=0)
    for k in range(4):  # each gate block gets its own Xavier (D, H) scale
        assert lstm["Wx"][:, k * H:(k + 1) * H].var() == pytest.approx(2 / (D + H), rel=0.03)


def test_init_is_seeded():
    a, b, c = init_lstm(4, 8, 2, seed=3), init_lstm(4, 8, 2, seed=3), init_lstm(4, 8, 2, seed=4)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["Wx"], c["Wx"])
    assert init_params("rnn", 4, 8, 2)["Wh"].shape == (8, 8)
    assert init_params("gru", 4, 8, 2, forget_bias=2.0)["b"][8:16].tolist() == [2.0] * 8
    with pytest.raises(ValueError, match="cell must be one of rnn, lstm, gru"):
        init_params("peephole", 4, 8, 2)
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        init_rnn(4, 0, 2)


# --------------------------------------------------------------------------- #
# Optimisers
# --------------------------------------------------------------------------- #
def _quadratic(params, target, scale):
    """f = 0.5 * sum(scale * (w - target)^2) and its gradient."""
    diff = params["w"] - target
    return 0.5 * float(np.sum(scale * diff * diff)), {"w": scale * diff}


@pytest.mark.parametrize(
    "opt, steps",
    [(SGD(lr=0.1), 300), (SGD(lr=0.05, momentum=0.9), 300), (Adam(lr=0.05), 1000)],
    ids=repr,
)
def test_optimizers_minimise_a_quadratic(opt, steps):
    rng = np.random.default_rng(0)
    target = rng.standard_normal((3, 4))
    scale = rng.uniform(0.5, 2.0, size=(3, 4))  # an ill-conditioned bowl
    params = {"w": np.zeros((3, 4))}
    w = params["w"]
    for _ in range(steps):
        _, grads = _quadratic(params, target, scale)
        opt.step(params, grads)
    assert params["w"] is w  # updated in place
    np.testing.assert_allclose(params["w"], target, atol=1e-4)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="lr must be a positive number"):
        Adam(lr=0)
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD(momentum=1.0)
    with pytest.raises(ValueError, match="grads has keys"):
        SGD().step({"w": np.zeros(2)}, {"v": np.zeros(2)})
    with pytest.raises(ValueError, match="has shape"):
        Adam().step({"w": np.zeros(2)}, {"w": np.zeros(3)})


# --------------------------------------------------------------------------- #
# Loss heads
# --------------------------------------------------------------------------- #
def _numeric_grad(f, x, eps=1e-5):
    """Centred differences of the scalar f at x; f gets the perturbed copy explicitly."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        grad[idx] = (f(xp) - f(xm)) / (2 * eps)
    return grad


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 5))
    y = rng.integers(0, 5, size=6)
    loss, dlogits = softmax_cross_entropy(logits, y)
    assert loss == pytest.approx(-np.mean(np.log(
        np.exp(logits)[np.arange(6), y] / np.exp(logits).sum(axis=1))))
    num = _numeric_grad(lambda z: softmax_cross_entropy(z, y)[0], logits)
    assert rel_error(num, dlogits) < 1e-7  # centred differences: typically ~1e-9


def test_softmax_cross_entropy_is_stable():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / divide-by-zero warning
        loss, dlogits = softmax_cross_entropy(logits, np.array([0, 2]))
        big, _ = softmax_cross_entropy(logits, np.array([2, 0]))
    assert loss == pytest.approx(np.log(2) / 2)  # row 0 certain, row 1 a tie
    assert big == pytest.approx((2e4 + 1e4 + np.log(2)) / 2)
    assert np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(dlogits, [[0, 0, 0], [0, 0.25, -0.25]], atol=1e-15)


def test_mean_squared_error_gradient():
    rng = np.random.default_rng(1)
    pred, y = rng.standard_normal((8, 1)), rng.standard_normal(8)
    loss, dpred = mean_squared_error(pred, y)
    assert loss == pytest.approx(np.mean((pred[:, 0] - y) ** 2))
    num = _numeric_grad(lambda z: mean_squared_error(z, y)[0], pred)
    assert rel_error(num, dpred) < 1e-7
    with pytest.raises(ValueError, match="pred has shape"):
        mean_squared_error(np.zeros((3, 2)), np.zeros(3))


# --------------------------------------------------------------------------- #
# The training loop, with the reference layers
# --------------------------------------------------------------------------- #
def test_train_lowers_the_loss_on_a_short_gap():
    task = CountryLanguageTask(3)
    params = init_rnn(task.input_size, 16, task.output_size, seed=0)
    hist = train(ref.rnn_forward, ref.rnn_backward, params, task, steps=200, batch_size=32,
                 seed=0, progress=False)
    assert np.mean(hist.loss[:10]) > 1.2  # ~ ln 4 = 1.39 at the start
    assert np.mean(hist.loss[-20:]) < 0.1
    assert hist.final_accuracy == 1.0 and hist.eval_accuracy[0] < 0.6
    assert evaluate(ref.rnn_forward, params, task, n=300)["accuracy"] == 1.0


def test_train_lstm_and_history_contents():
    task = CountryLanguageTask(4)
    params = init_lstm(task.input_size, 8, task.output_size, seed=0)
    hist = train(ref.lstm_forward, ref.lstm_backward, params, task, steps=30, batch_size=8,
                 eval_every=10, eval_size=50, seed=1, progress=False)
    assert isinstance(hist, History) and hist.steps == 30 and not hist.diverged
    assert len(hist.loss) == len(hist.grad_norm) == 30
    assert hist.eval_step == [0, 10, 20, 30]
    assert len(hist.eval_loss) == len(hist.eval_accuracy) == 4
    assert all(0.0 <= a <= 1.0 for a in hist.eval_accuracy)
    assert hist.chance == 0.25 and hist.seconds > 0
    json.dumps(hist.as_dict())  # serialisable


def test_clip_hook_is_called_and_norms_recorded():
    task = CountryLanguageTask(5)
    params = init_rnn(task.input_size, 8, task.output_size, seed=0)
    seen = []

    def clip(grads):
        clipped, norm = ref.clip_by_global_norm(grads, max_norm=1e-3)
        seen.append(norm)
        return clipped, norm

    before = {k: v.copy() for k, v in params.items()}
    hist = train(ref.rnn_forward, ref.rnn_backward, params, task, steps=5, batch_size=8,
                 optimizer=SGD(lr=1.0), clip=clip, progress=False)
    assert len(seen) == 5
    np.testing.assert_allclose(hist.grad_norm, seen, rtol=1e-12)  # the norm *before* clipping
    assert min(hist.grad_norm) > 1e-3  # so clipping was active ...
    step = np.sqrt(sum(np.sum((params[k] - before[k]) ** 2) for k in params))
    assert step <= 5 * 1e-3 + 1e-12  # ... and bounded every SGD step by lr * max_norm


def test_clip_hook_may_return_a_dict_via_partial():
    task = CountryLanguageTask(2)
    params = init_rnn(task.input_size, 8, task.output_size)
    clip = functools.partial(ref.clip_by_value, clip_value=0.01)  # returns a plain dict
    hist = train(ref.rnn_forward, ref.rnn_backward, params, task, steps=3, clip=clip,
                 progress=False)
    assert hist.steps == 3
    with pytest.raises(ValueError, match="clip\\(grads\\) must return a dict"):
        train(ref.rnn_forward, ref.rnn_backward, params, task, steps=1,
              clip=lambda g: 1.0, progress=False)


def test_train_on_the_adding_problem():
    task = AddingTask(6)
    params = init_lstm(task.input_size, 8, task.output_size, seed=0)
    hist = train(ref.lstm_forward, ref.lstm_backward, params, task, steps=200, batch_size=32,
                 optimizer=Adam(1e-2), progress=False)
    assert np.mean(hist.loss[-20:]) < task.baseline_loss / 2  # well below predicting 1.0
    assert predict(ref.lstm_forward, params, task.batch(3, seed=0)[0]).shape == (3, 1)


def test_divergence_stops_training():
    task = CountryLanguageTask(2)
    params = init_rnn(task.input_size, 4, task.output_size)

    def exploding_forward(x, h0, Wx, Wh, b):
        h, cache = ref.rnn_forward(x, h0, Wx, Wh, b)
        return h * np.nan, cache

    with pytest.warns(RuntimeWarning, match="non-finite"):
        hist = train(exploding_forward, ref.rnn_backward, params, task, steps=10, progress=False)
    assert hist.diverged and hist.steps == 1


def test_bad_student_functions_give_clear_errors():
    task = CountryLanguageTask(2)
    params = init_rnn(task.input_size, 4, task.output_size)
    shape_msg = r"h returned by forward: .*shape \(N, T, H\) = \(\d+, 4, 4\), got \(\d+, 4\)"
    with pytest.raises(ValueError, match=shape_msg):
        train(lambda x, h0, *w: (h0, None), ref.rnn_backward, params, task, steps=1,
              progress=False)
    with pytest.raises(ValueError, match="must return a tuple \\(h, cache\\)"):
        train(lambda *a: None, ref.rnn_backward, params, task, steps=1, progress=False)

    def transposed_backward(dh, cache):
        dx, dh0, dWx, dWh, db = ref.rnn_backward(dh, cache)
        return dx, dh0, dWx.T, dWh, db

    dwx_msg = r"dWx returned by backward \(the shape of Wx\): expected shape \(9, 4\), got \(4, 9\)"
    with pytest.raises(ValueError, match=dwx_msg):
        train(ref.rnn_forward, transposed_backward, params, task, steps=1, progress=False)
    with pytest.raises(ValueError, match="params is missing"):
        train(ref.rnn_forward, ref.rnn_backward, {"Wx": 1}, task, steps=1, progress=False)
    wrong_task = CountryLanguageTask(2, n_countries=3, n_fillers=5)  # same D, but V = 3
    with pytest.raises(ValueError, match=r"Wy: expected shape \(H, V\) = \(4, 3\), got \(4, 4\)"):
        train(ref.rnn_forward, ref.rnn_backward, params, wrong_task, steps=1, progress=False)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        train(ref.rnn_forward, ref.rnn_backward, params, task, steps=0, progress=False)


def test_global_norm():
    assert global_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}) == pytest.approx(5.0)


def test_anneal_decays_the_learning_rate_linearly_and_restores_it():
    task = CountryLanguageTask(2)
    params = init_rnn(task.input_size, 4, task.output_size)
    seen = []

    class Recording(SGD):
        def step(self, params, grads):
            seen.append(self.lr)
            super().step(params, grads)

    opt = Recording(lr=0.4)
    train(ref.rnn_forward, ref.rnn_backward, params, task, steps=4, optimizer=opt,
          anneal=True, progress=False)
    np.testing.assert_allclose(seen, [0.4, 0.3, 0.2, 0.1], rtol=1e-12)
    assert opt.lr == 0.4  # the caller's optimiser comes back as it went in
    seen.clear()
    train(ref.rnn_forward, ref.rnn_backward, params, task, steps=2, optimizer=opt,
          progress=False)
    assert seen == [0.4, 0.4]  # without anneal: constant
