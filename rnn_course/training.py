"""Initialisation, optimisers, loss heads and a training loop for recurrent layers.

The loop takes the recurrent layer as two functions, so a notebook can train
the student's own code::

    params = init_lstm(task.input_size, 32, task.output_size, seed=0)
    history = train(lstm_forward, lstm_backward, params, task, steps=300,
                    clip=functools.partial(clip_by_global_norm, max_norm=1.0))

``forward(x, h0, Wx, Wh, b) -> h, cache`` and ``backward(dh, cache) -> dx, dh0,
dWx, dWh, db`` follow the course contract (``rnn_forward`` / ``rnn_backward``
or ``lstm_forward`` / ``lstm_backward``).  The model reads out from the last
hidden state only: ``outputs = h[:, -1] @ Wy + by``.

Dimension letters
-----------------
N  batch size            T  sequence length (time steps)
D  input dimension       H  hidden dimension
V  output dimension (number of classes, or 1 for a regression)

Parameters are a dict name -> float64 array: ``Wx`` (D, H), ``Wh`` (H, H),
``b`` (H,) for an RNN, ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,) for an LSTM
(gate order i, f, o, g), and the output head ``Wy`` (H, V), ``by`` (V,).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from rnn_course.contract import GRU_GATES, LSTM_GATES
from rnn_course.validation import Dims, check_array, check_shapes

__all__ = [
    "xavier_uniform",
    "orthogonal",
    "init_rnn",
    "init_lstm",
    "init_gru",
    "init_params",
    "SGD",
    "Adam",
    "softmax_cross_entropy",
    "mean_squared_error",
    "global_norm",
    "History",
    "predict",
    "evaluate",
    "SUCCESS",
    "train",
]

RECURRENT_KEYS = ("Wx", "Wh", "b")
PARAM_KEYS = RECURRENT_KEYS + ("Wy", "by")


# --------------------------------------------------------------------------- #
# Initialisation
# --------------------------------------------------------------------------- #
def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def xavier_uniform(fan_in, fan_out, rng):
    """Glorot/Xavier uniform initialisation.

    Draws from U(-a, a) with ``a = sqrt(6 / (fan_in + fan_out))``, so the
    variance is ``2 / (fan_in + fan_out)``: activations and gradients keep
    roughly the same scale through the layer.

    Inputs:
    - fan_in, fan_out: the matrix shape (ints >= 1)
    - rng: numpy.random.Generator

    Returns:
    - array of shape (fan_in, fan_out)
    """
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=(fan_in, fan_out))


def orthogonal(n, rng):
    """A random orthogonal matrix (Haar-distributed).

    QR decomposition of a standard Gaussian matrix, with the signs of Q's
    columns corrected by the signs of R's diagonal: without that correction
    the distribution is not uniform over orthogonal matrices.  An orthogonal
    recurrent matrix preserves the norm of the state it multiplies, so at
    initialisation gradients neither explode nor vanish through ``Wh`` alone.

    Inputs:
    - n: size (int >= 1)
    - rng: numpy.random.Generator

    Returns:
    - array Q of shape (n, n) with ``Q.T @ Q = I`` (to ~1e-15)
    """
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))  # multiply column j by sign(r_jj)


def _head(H, V, rng):
    return {"Wy": xavier_uniform(H, V, rng), "by": np.zeros(V)}


def init_rnn(input_size, hidden_size, output_size, seed=0):
    """Parameters of a vanilla RNN with an output head.

    ``Wx`` Xavier uniform, ``Wh`` orthogonal, ``b`` zero, ``Wy`` Xavier
    uniform, ``by`` zero.

    Inputs:
    - input_size: D; hidden_size: H; output_size: V (ints >= 1)
    - seed: int or numpy.random.Generator (same seed, same parameters)

    Returns:
    - dict with ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,), ``Wy`` (H, V), ``by`` (V,)
    """
    D = _positive_int("input_size", input_size)
    H = _positive_int("hidden_size", hidden_size)
    V = _positive_int("output_size", output_size)
    rng = np.random.default_rng(seed)
    params = {"Wx": xavier_uniform(D, H, rng), "Wh": orthogonal(H, rng), "b": np.zeros(H)}
    params.update(_head(H, V, rng))
    return params


def init_lstm(input_size, hidden_size, output_size, seed=0, forget_bias=1.0):
    """Parameters of an LSTM (gate order i, f, o, g) with an output head.

    Each gate's block is initialised like an RNN's matrices, independently:
    ``Wx[:, kH:(k+1)H]`` Xavier uniform (D, H) and ``Wh[:, kH:(k+1)H]``
    orthogonal.  ``b`` is zero except the forget-gate block ``b[H:2H]``,
    set to ``forget_bias``: a forget gate of sigmoid(1) ~ 0.73 instead of 0.5
    lets the cell state, and its gradient, survive many steps from the start
    (Gers et al., 2000; Jozefowicz et al., 2015).

    Inputs:
    - input_size: D; hidden_size: H; output_size: V (ints >= 1)
    - seed: int or numpy.random.Generator (same seed, same parameters)
    - forget_bias: float, initial bias of the forget gate (default 1.0)

    Returns:
    - dict with ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,), ``Wy`` (H, V), ``by`` (V,)
    """
    D = _positive_int("input_size", input_size)
    H = _positive_int("hidden_size", hidden_size)
    V = _positive_int("output_size", output_size)
    if not np.isfinite(forget_bias):
        raise ValueError(f"forget_bias must be a finite number, got {forget_bias!r}")
    rng = np.random.default_rng(seed)
    Wx = np.concatenate([xavier_uniform(D, H, rng) for _ in range(4)], axis=1)
    Wh = np.concatenate([orthogonal(H, rng) for _ in range(4)], axis=1)
    b = np.zeros(4 * H)
    f = LSTM_GATES.index("f")  # the forget gate's block (gate order i, f, o, g)
    b[f * H : (f + 1) * H] = forget_bias
    params = {"Wx": Wx, "Wh": Wh, "b": b}
    params.update(_head(H, V, rng))
    return params


def init_gru(input_size, hidden_size, output_size, seed=0, update_bias=1.0):
    """Parameters of a GRU (block order r, z, n) with an output head.

    Each block is initialised like an RNN's matrices, independently:
    ``Wx[:, kH:(k+1)H]`` Xavier uniform (D, H) and ``Wh[:, kH:(k+1)H]``
    orthogonal.  ``b`` is zero except the update-gate block ``b[H:2H]``, set
    to ``update_bias``: with ``next_h = (1 - z) * n + z * h`` the update gate
    z is the fraction of the old state kept, the counterpart of the LSTM's
    forget gate, and a positive bias starts the GRU remembering.

    Inputs:
    - input_size: D; hidden_size: H; output_size: V (ints >= 1)
    - seed: int or numpy.random.Generator (same seed, same parameters)
    - update_bias: float, initial bias of the update gate (default 1.0)

    Returns:
    - dict with ``Wx`` (D, 3H), ``Wh`` (H, 3H), ``b`` (3H,), ``Wy`` (H, V), ``by`` (V,)
    """
    D = _positive_int("input_size", input_size)
    H = _positive_int("hidden_size", hidden_size)
    V = _positive_int("output_size", output_size)
    if not np.isfinite(update_bias):
        raise ValueError(f"update_bias must be a finite number, got {update_bias!r}")
    rng = np.random.default_rng(seed)
    Wx = np.concatenate([xavier_uniform(D, H, rng) for _ in GRU_GATES], axis=1)
    Wh = np.concatenate([orthogonal(H, rng) for _ in GRU_GATES], axis=1)
    b = np.zeros(3 * H)
    z = GRU_GATES.index("z")  # the update gate's block (order r, z, n)
    b[z * H : (z + 1) * H] = update_bias
    params = {"Wx": Wx, "Wh": Wh, "b": b}
    params.update(_head(H, V, rng))
    return params


CELLS = ("rnn", "lstm", "gru")


def init_params(cell, input_size, hidden_size, output_size, seed=0, forget_bias=1.0):
    """``init_rnn``, ``init_lstm`` or ``init_gru`` by name (``cell`` in ``CELLS``).

    ``forget_bias`` is the bias of the gate that keeps the old state: the
    LSTM's forget gate, the GRU's update gate (the RNN has none).
    """
    if cell == "rnn":
        return init_rnn(input_size, hidden_size, output_size, seed)
    if cell == "lstm":
        return init_lstm(input_size, hidden_size, output_size, seed, forget_bias)
    if cell == "gru":
        return init_gru(input_size, hidden_size, output_size, seed, update_bias=forget_bias)
    raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")


# --------------------------------------------------------------------------- #
# Optimisers: step(params, grads) updates params in place
# --------------------------------------------------------------------------- #
class _Optimizer:
    def __init__(self, lr):
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)

    @staticmethod
    def _check(params, grads):
        if set(grads) != set(params):
            raise ValueError(
                f"grads has keys {sorted(grads)} but params has keys {sorted(params)}"
            )
        for k, p in params.items():
            if np.shape(grads[k]) != p.shape:
                raise ValueError(
                    f"grads[{k!r}] has shape {np.shape(grads[k])}, params[{k!r}] has {p.shape}"
                )


class SGD(_Optimizer):
    """Stochastic gradient descent, optionally with (heavy-ball) momentum.

    ``v = momentum * v - lr * grad``; ``param += v``.

    Inputs:
    - lr: learning rate (> 0)
    - momentum: in [0, 1) (default 0: plain SGD)
    """

    def __init__(self, lr=0.1, momentum=0.0):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.velocity = {}

    def __repr__(self):
        return f"SGD(lr={self.lr:g}, momentum={self.momentum:g})"

    def step(self, params, grads):
        """Update every ``params[k]`` in place from ``grads[k]`` (same keys and shapes)."""
        self._check(params, grads)
        for k, p in params.items():
            if self.momentum:
                v = self.velocity.setdefault(k, np.zeros_like(p))
                v *= self.momentum
                v -= self.lr * grads[k]
                p += v
            else:
                p -= self.lr * grads[k]


class Adam(_Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected moment estimates.

    Inputs:
    - lr: learning rate (> 0)
    - beta1, beta2: decay rates of the first and second moment estimates, in [0, 1)
    - eps: added to the denominator for numerical safety
    """

    def __init__(self, lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.t = 0
        self.m = {}
        self.v = {}

    def __repr__(self):
        return f"Adam(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g})"

    def step(self, params, grads):
        """Update every ``params[k]`` in place from ``grads[k]`` (same keys and shapes)."""
        self._check(params, grads)
        self.t += 1
        # fold both bias corrections into one step size (Kingma & Ba, section 2)
        lr_t = self.lr * math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        for k, p in params.items():
            g = grads[k]
            m = self.m.setdefault(k, np.zeros_like(p))
            v = self.v.setdefault(k, np.zeros_like(p))
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)
            p -= lr_t * m / (np.sqrt(v) + self.eps)


# --------------------------------------------------------------------------- #
# Loss heads
# --------------------------------------------------------------------------- #
def softmax_cross_entropy(logits, y):
    """Mean softmax cross-entropy over the batch, and its gradient.

    Stable for any finite logits: the row maximum is subtracted before
    exponentiating and the log-probabilities use log-sum-exp, so logits of
    1e4 neither overflow nor give ``log(0)``.

    Inputs:
    - logits: scores, of shape (N, V)
    - y: integer class indices, of shape (N,), values in [0, V)

    Returns a tuple of:
    - loss: float, ``mean_n -log softmax(logits[n])[y[n]]``
    - dlogits: gradient of loss with respect to logits, of shape (N, V)
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    if logits.ndim != 2 or y.shape != (logits.shape[0],):
        raise ValueError(f"expected logits (N, V) and y (N,), got {logits.shape} and {y.shape}")
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    rows = np.arange(N)
    loss = -log_p[rows, y].mean()
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1.0
    dlogits /= N
    return float(loss), dlogits


def mean_squared_error(pred, y):
    """Mean squared error over every entry, and its gradient.

    Inputs:
    - pred: predictions, of shape (N, V)
    - y: targets, of shape (N, V), or (N,) when V == 1

    Returns a tuple of:
    - loss: float, ``mean((pred - y) ** 2)``
    - dpred: gradient of loss with respect to pred, of shape (N, V)
    """
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1:
        y = y[:, None]
    if pred.shape != y.shape:
        raise ValueError(f"pred has shape {pred.shape} but y has shape {y.shape}")
    diff = pred - y
    return float(np.mean(diff * diff)), (2.0 / diff.size) * diff


def _loss_and_grad(task, outputs, y):
    if task.kind == "classification":
        return softmax_cross_entropy(outputs, y)
    return mean_squared_error(outputs, y)


def _accuracy(task, outputs, y):
    """Fraction correct: argmax == y, or within ``task.tolerance`` for a regression."""
    if task.kind == "classification":
        return float(np.mean(outputs.argmax(axis=1) == y))
    return float(np.mean(np.abs(outputs[:, 0] - y) < task.tolerance))


def global_norm(grads):
    """Square root of the sum of squares of every entry of every array in ``grads`` (dict)."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


# --------------------------------------------------------------------------- #
# Forward and backward through the whole model
# --------------------------------------------------------------------------- #
def _check_params(params, task=None):
    """Keys and shapes of the parameters, consistent with each other and with the task."""
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict name -> array, got {type(params).__name__}")
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; expected keys {list(PARAM_KEYS)}")
    dims = Dims()
    if task is not None:
        dims.update(D=task.input_size, V=task.output_size)
        dims.sources.update(D="task.input_size", V="task.output_size")
    # G is the width of the recurrent layer's pre-activations: H for an RNN, 4H for an LSTM
    check_shapes(dims, Wx=(params["Wx"], ("D", "G")), Wh=(params["Wh"], ("H", "G")),
                 b=(params["b"], ("G",)), Wy=(params["Wy"], ("H", "V")),
                 by=(params["by"], ("V",)))


def _check_shape(what, arr, shape, letters=None):
    """Check an array returned by the student's function against the shape it must have."""
    dims = Dims(zip(letters, shape, strict=True)) if letters else None
    check_array(what, arr, letters if letters else shape, dtype=np.floating, dims=dims)


def _run_forward(forward, params, x):
    """Recurrent layer then the linear head on the last hidden state.

    Returns outputs (N, V), the hidden states h (N, T, H) and the layer's cache.
    """
    N, T, _ = x.shape
    H = params["Wy"].shape[0]
    h0 = np.zeros((N, H))
    result = forward(x, h0, params["Wx"], params["Wh"], params["b"])
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError("forward(x, h0, Wx, Wh, b) must return a tuple (h, cache)")
    h, cache = result
    _check_shape("h returned by forward", h, (N, T, H), ("N", "T", "H"))
    outputs = h[:, -1] @ params["Wy"] + params["by"]
    return outputs, h, cache


def _run_backward(backward, params, h, cache, doutputs):
    """Gradients of every parameter from the gradient of the outputs (N, V)."""
    last = h[:, -1]
    dh = np.zeros_like(h)
    dh[:, -1] = doutputs @ params["Wy"].T  # the loss only sees the last hidden state
    result = backward(dh, cache)
    if not (isinstance(result, tuple) and len(result) == 5):
        raise ValueError("backward(dh, cache) must return a tuple (dx, dh0, dWx, dWh, db)")
    _, _, dWx, dWh, db = result
    grads = {"Wx": dWx, "Wh": dWh, "b": db, "Wy": last.T @ doutputs, "by": doutputs.sum(axis=0)}
    for k in RECURRENT_KEYS:
        _check_shape(f"d{k} returned by backward (the shape of {k})", grads[k], params[k].shape)
    return grads


def _apply_clip(clip, grads):
    """Call the clipping hook; it may return ``grads`` or ``(grads, norm)``."""
    out = clip(grads)
    if isinstance(out, tuple):
        out = out[0]  # e.g. clip_by_global_norm returns (clipped, total_norm)
    if not isinstance(out, dict) or set(out) != set(grads):
        raise ValueError(
            "clip(grads) must return a dict with the same keys as grads (or a tuple "
            "(dict, norm)); to use clip_by_global_norm pass "
            "functools.partial(clip_by_global_norm, max_norm=...)"
        )
    for k, g in grads.items():
        _check_shape(f"clipped gradient {k!r}", out[k], g.shape)
    return out


def predict(forward, params, x):
    """Model outputs for a batch: ``forward(x, 0, Wx, Wh, b)[0][:, -1] @ Wy + by``.

    Inputs:
    - forward: ``forward(x, h0, Wx, Wh, b) -> h, cache``
    - params: dict with ``Wx``, ``Wh``, ``b``, ``Wy`` (H, V), ``by`` (V,)
    - x: inputs, of shape (N, T, D)

    Returns:
    - outputs (logits, or predictions for a regression), of shape (N, V)
    """
    _check_params(params)
    return _run_forward(forward, params, np.asarray(x, dtype=np.float64))[0]


SUCCESS = 0.95
"""A run succeeds when its held-out accuracy (adding problem: the fraction within 0.04) is
at least this."""


def evaluate(forward, params, task, n=1000, seed=0):
    """Loss and accuracy on a fresh batch that training with the same seed never draws.

    The batch comes from the random stream ``SeedSequence([seed, 1])``, while
    :func:`train` draws its training batches from ``SeedSequence([seed, 0])``.
    (For short gaps there are few distinct sequences, so held-out sequences can
    still coincide with training ones; the point is a fresh, unbiased sample.)

    Inputs:
    - forward: ``forward(x, h0, Wx, Wh, b) -> h, cache``
    - params: dict with ``Wx``, ``Wh``, ``b``, ``Wy`` (H, V), ``by`` (V,)
    - task: a task of :mod:`rnn_course.data`
    - n: number of held-out sequences (int >= 1)
    - seed: int

    Returns:
    - dict with ``loss`` (float), ``accuracy`` (float in [0, 1]) and
      ``chance`` (the task's chance accuracy)
    """
    _check_params(params, task)
    x, y = task.batch(n, seed=np.random.SeedSequence([seed, 1]))
    outputs = predict(forward, params, x)
    loss, _ = _loss_and_grad(task, outputs, y)
    return {"loss": loss, "accuracy": _accuracy(task, outputs, y), "chance": task.chance}


# --------------------------------------------------------------------------- #
# The training loop
# --------------------------------------------------------------------------- #
@dataclass
class History:
    """What happened during :func:`train`.

    Attributes:
    - loss: training loss of every step (list of ``steps`` floats)
    - grad_norm: global gradient norm of every step, *before* clipping
    - eval_step, eval_loss, eval_accuracy: held-out evaluations (step 0, every
      ``eval_every`` steps, and the last step)
    - steps: number of steps completed; seconds: wall time
    - diverged: True when training stopped on a non-finite loss or gradient
    - chance: the task's chance accuracy
    """

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    eval_step: list = field(default_factory=list)
    eval_loss: list = field(default_factory=list)
    eval_accuracy: list = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    diverged: bool = False
    chance: float = float("nan")

    @property
    def final_accuracy(self):
        """The last held-out accuracy (float), or None before any evaluation."""
        return self.eval_accuracy[-1] if self.eval_accuracy else None

    def as_dict(self):
        """A JSON-serialisable dict of every attribute."""
        return asdict(self)


def _record_eval(history, forward, params, task, eval_batch, step):
    x, y = eval_batch
    outputs = predict(forward, params, x)
    loss, _ = _loss_and_grad(task, outputs, y)
    history.eval_step.append(step)
    history.eval_loss.append(loss)
    history.eval_accuracy.append(_accuracy(task, outputs, y))


def train(forward, backward, params, task, *, steps=500, batch_size=32, optimizer=None,
          clip=None, seed=0, eval_every=None, eval_size=500, progress=None, desc=None,
          anneal=False):
    """Train a recurrent layer plus a linear head on a task; ``params`` are updated in place.

    Each step draws a fresh batch, runs ``forward``, reads out
    ``outputs = h[:, -1] @ Wy + by``, computes the task's loss (softmax
    cross-entropy for a classification, mean squared error for a regression),
    backpropagates with ``dh`` zero except at the last step, optionally clips
    the gradients and takes an optimiser step.

    Inputs:
    - forward: ``forward(x, h0, Wx, Wh, b) -> h, cache``, h of shape (N, T, H)
    - backward: ``backward(dh, cache) -> dx, dh0, dWx, dWh, db``
    - params: dict ``Wx``, ``Wh``, ``b``, ``Wy`` (H, V), ``by`` (V,), e.g. from init_lstm
    - task: a task of :mod:`rnn_course.data` (``batch``, ``kind``, ``chance``)
    - steps: number of optimiser steps (int >= 1)
    - batch_size: N (int >= 1)
    - optimizer: an object with ``step(params, grads)``; default ``Adam(lr=3e-3)``
    - clip: None or a hook ``clip(grads) -> grads`` or ``-> (grads, norm)``, e.g.
      ``functools.partial(clip_by_global_norm, max_norm=1.0)``
    - seed: int; training batches come from ``SeedSequence([seed, 0])`` and the
      held-out batch from ``SeedSequence([seed, 1])`` (as in :func:`evaluate`)
    - eval_every: evaluate on the held-out batch every this many steps
      (default: about 10 times per run); also at step 0 and the last step
    - eval_size: number of held-out sequences
    - progress: True / False to show / hide a tqdm bar; None (default) shows it
      in Jupyter and on a terminal, hides it when output is not a tty
    - desc: label of the progress bar
    - anneal: if True, the optimiser's learning rate decays linearly from its
      initial value to 0 over the run (step s uses ``lr * (1 - (s - 1) / steps)``):
      the last steps settle instead of oscillating, which a task with a precision
      criterion (the adding problem's 0.04) needs

    Returns:
    - a :class:`History` (per-step loss and gradient norm, held-out accuracy)
    """
    _check_params(params, task)
    steps = _positive_int("steps", steps)
    batch_size = _positive_int("batch_size", batch_size)
    eval_size = _positive_int("eval_size", eval_size)
    eval_every = max(1, steps // 10) if eval_every is None else _positive_int(
        "eval_every", eval_every)
    if clip is not None and not callable(clip):
        raise ValueError(f"clip must be None or callable, got {clip!r}")
    optimizer = Adam(lr=3e-3) if optimizer is None else optimizer
    if anneal and not isinstance(getattr(optimizer, "lr", None), float):
        raise ValueError("anneal=True needs an optimizer with a float attribute lr")
    base_lr = getattr(optimizer, "lr", None)

    history = History(chance=task.chance)
    batches = task.batches(batch_size, seed=np.random.SeedSequence([seed, 0]))
    eval_batch = task.batch(eval_size, seed=np.random.SeedSequence([seed, 1]))
    start = time.perf_counter()
    _record_eval(history, forward, params, task, eval_batch, 0)
    from tqdm.auto import tqdm  # here: every notebook imports this module, few train

    bar = tqdm(total=steps, desc=desc, disable=None if progress is None else not progress,
               leave=True)
    try:
        for step in range(1, steps + 1):
            x, y = next(batches)
            outputs, h, cache = _run_forward(forward, params, x)
            loss, doutputs = _loss_and_grad(task, outputs, y)
            grads = _run_backward(backward, params, h, cache, doutputs)
            norm = global_norm(grads)
            history.loss.append(loss)
            history.grad_norm.append(norm)
            history.steps = step
            if not (math.isfinite(loss) and math.isfinite(norm)):
                # an exploded model cannot recover; stop instead of training on NaNs
                history.diverged = True
                warnings.warn(f"training stopped at step {step}: non-finite loss or gradient",
                              RuntimeWarning, stacklevel=2)
                break
            if clip is not None:
                grads = _apply_clip(clip, grads)
            if anneal:
                optimizer.lr = base_lr * (1.0 - (step - 1) / steps)
            optimizer.step(params, grads)
            if step % eval_every == 0 or step == steps:
                _record_eval(history, forward, params, task, eval_batch, step)
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{history.eval_accuracy[-1]:.2f}",
                                refresh=False)
            bar.update(1)
    finally:
        bar.close()
        history.seconds = time.perf_counter() - start
        if anneal:
            optimizer.lr = base_lr  # the optimiser is the caller's: leave it as it came
    return history
