"""Reference solutions: the contract shared by hidden tests, experiments and benchmarks.

Grader-side only: this module is never installed for students and never
imported inside a student's kernel.

Dimension letters
-----------------
N  batch size            T  sequence length (time steps)
D  input dimension       H  hidden dimension

Conventions: row-major, batch first, float64.  ``x`` (N, T, D), ``h0`` (N, H),
``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,).  The LSTM stacks its four gates along
the last axis in the order **i, f, o, g**: ``Wx`` (D, 4H), ``Wh`` (H, 4H),
``b`` (4H,); its initial cell state is zero.

How the layer functions are organised (why they are fast):

* the input projection ``x @ Wx + b`` of every time step is one matrix
  product over all N*T rows, done before the recurrence;
* only the recurrence itself (``h_{t-1} @ Wh`` and the nonlinearity) runs once
  per step, on contiguous time-major buffers, writing into preallocated arrays;
* the weight gradients are one matrix product each over all steps, after the
  backward recurrence has produced every step's pre-activation gradient.
"""

from __future__ import annotations

import numbers

import numpy as np

from rnn_course.contract import CONTRACT

# The graded functions are the contract's (its names, arguments and returned values
# are written once, in rnn_course.contract); sigmoid is a helper of the LSTM's.
__all__ = ["sigmoid", *CONTRACT]


# --------------------------------------------------------------------------- #
# Nonlinearities
# --------------------------------------------------------------------------- #
def sigmoid(a, out=None):
    """Numerically stable logistic sigmoid, elementwise.

    Uses ``e = exp(-|a|)`` so that no exponential overflows: for a >= 0 the
    result is ``1 / (1 + e)``, for a < 0 it is ``e / (1 + e)``.  Accurate to a
    relative 1e-16 everywhere and warning-free for |a| > 700.

    Inputs:
    - a: array of any shape.
    - out: optional array of the same shape to write into (may be ``a``).

    Returns:
    - array of the same shape as ``a``, values in [0, 1].
    """
    a = np.asarray(a, dtype=np.float64)
    if out is None:
        out = np.empty_like(a)
    with np.errstate(under="ignore"):  # exp(-800) = 0 is the right answer, not an error
        _sigmoid_into(a, out, np.empty_like(a), np.empty_like(a))
    return out


def _sigmoid_into(a, out, e, s):
    """``out[...] = sigmoid(a)`` with the scratch arrays ``e`` and ``s`` (all one shape).

    ``out`` may be ``a``; ``e`` and ``s`` must not overlap either.  Six
    passes, no masks, no allocation: ``e = exp(-|a|)``, the numerator ``s`` is
    1 where a >= 0 and e where a < 0 (``max(sign(a), e)``, as 0 < e <= 1), and
    ``out = s / (1 + e)``.  The caller handles floating-point underflow.
    """
    np.copysign(a, -1.0, out=e)  # -|a|
    np.exp(e, out=e)
    np.copysign(1.0, a, out=s)  # +1 where a >= +0, -1 where a < 0 (or a is -0.0, where e = 1)
    np.maximum(s, e, out=s)  # 1 or e, as 0 < e <= 1 (NaN propagates)
    np.add(e, 1.0, out=e)
    np.divide(s, e, out=out)


# --------------------------------------------------------------------------- #
# Vanilla RNN
# --------------------------------------------------------------------------- #
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One time step of a vanilla (tanh) RNN.

    ``next_h = tanh(x @ Wx + prev_h @ Wh + b)``

    Inputs:
    - x: input at this step, of shape (N, D)
    - prev_h: hidden state of the previous step, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, H)
    - Wh: hidden-to-hidden weights, of shape (H, H)
    - b: bias, of shape (H,)

    Returns a tuple of:
    - next_h: next hidden state, of shape (N, H)
    - cache: tuple ``(x, prev_h, Wx, Wh, next_h)`` for the backward pass
    """
    next_h = x @ Wx
    next_h += prev_h @ Wh
    next_h += b
    np.tanh(next_h, out=next_h)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one vanilla RNN step.

    Inputs:
    - dnext_h: gradient of the loss with respect to next_h, of shape (N, H)
    - cache: the cache returned by ``rnn_step_forward``

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, D)
    - dprev_h: gradient with respect to prev_h, of shape (N, H)
    - dWx: gradient with respect to Wx, of shape (D, H)
    - dWh: gradient with respect to Wh, of shape (H, H)
    - db: gradient with respect to b, of shape (H,)
    """
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h * next_h)  # tanh'(a) = 1 - tanh(a)^2
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """Vanilla RNN over a whole sequence.

    Inputs:
    - x: input sequence, of shape (N, T, D)
    - h0: initial hidden state, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, H)
    - Wh: hidden-to-hidden weights, of shape (H, H)
    - b: bias, of shape (H,)

    Returns a tuple of:
    - h: hidden states of every step, of shape (N, T, H)
    - cache: values needed by ``rnn_backward``
    """
    N, T, D = x.shape
    H = h0.shape[1]
    xt = x.transpose(1, 0, 2).copy()  # time-major (T, N, D); a copy even when N or T is 1
    hs = np.empty((T + 1, N, H))  # hs[0] = h0, hs[t + 1] = h at step t
    hs[0] = h0
    # the input projection of all steps: one (T*N, D) x (D, H) product
    np.matmul(xt.reshape(T * N, D), Wx, out=hs[1:].reshape(T * N, H))
    hs[1:] += b
    hw = np.empty((N, H))  # h_{t-1} @ Wh, reused every step
    for t in range(T):
        a = hs[t + 1]
        np.matmul(hs[t], Wh, out=hw)
        np.add(a, hw, out=a)
        np.tanh(a, out=a)
    h = hs[1:].transpose(1, 0, 2).copy()  # never a view of the cache
    return h, (xt, hs, Wx, Wh)


def rnn_backward(dh, cache, truncate=None):
    """Backpropagation through time for a vanilla RNN.

    ``dh[:, t]`` is the gradient of the loss with respect to the hidden state
    of step t coming from above (the loss at step t); the gradient carried back
    from step t + 1 through the recurrence is added to it here.

    With ``truncate=k`` the gradient of the loss at step t flows back through
    at most k recurrent steps (cells t, t-1, ..., t-k+1): in
    ``dE_t/dW = sum_s dE_t/dh_t * dh_t/dh_s * d+h_s/dW`` only the last k terms
    are kept.  ``truncate=None`` (or k >= T) is full BPTT.

    Inputs:
    - dh: upstream gradients of all hidden states, of shape (N, T, H)
    - cache: the cache returned by ``rnn_forward``
    - truncate: None or a positive int k

    Returns a tuple of:
    - dx: gradient of the inputs, of shape (N, T, D)
    - dh0: gradient of the initial hidden state, of shape (N, H)
    - dWx: gradient of the input-to-hidden weights, of shape (D, H)
    - dWh: gradient of the hidden-to-hidden weights, of shape (H, H)
    - db: gradient of the bias, of shape (H,)
    """
    xt, hs, Wx, Wh = cache
    T, N, D = xt.shape
    H = hs.shape[2]
    if truncate is not None:
        if isinstance(truncate, bool) or not isinstance(truncate, numbers.Integral) or truncate < 1:
            raise ValueError(f"truncate must be None or a positive int, got {truncate!r}")
        truncate = int(truncate)
    dht = dh.transpose(1, 0, 2)  # time-major view (T, N, H)
    da = np.empty((T, N, H))  # gradient of each step's pre-activation
    WhT = np.ascontiguousarray(Wh.T)  # (H, H) row-major: the fast layout for g @ WhT
    if truncate is None or truncate >= T:
        carry = np.zeros((N, H))  # gradient reaching h_t from steps > t
        tmp = np.empty((N, H))
        for t in range(T - 1, -1, -1):
            h = hs[t + 1]
            g = da[t]
            np.add(dht[t], carry, out=g)
            np.multiply(g, h, out=tmp)  # g * (1 - h^2) = g - (g * h) * h
            np.multiply(tmp, h, out=tmp)
            np.subtract(g, tmp, out=g)
            np.matmul(g, WhT, out=carry)
        dh0 = carry
    else:
        # carry[j]: gradient that the loss at step t + j sends to h_t after
        # passing through j cells; it may still pass through k - j cells.
        k = truncate
        carry = np.zeros((k, N, H))
        for t in range(T - 1, -1, -1):
            carry[0] = dht[t]
            h = hs[t + 1]
            carry *= 1.0 - h * h  # now per-origin pre-activation gradients
            np.sum(carry, axis=0, out=da[t])
            if t > 0:
                # ages 0..k-2 go on to step t-1; age k-1 has used its k cells
                carry[1:] = (carry[:-1].reshape((k - 1) * N, H) @ WhT).reshape(k - 1, N, H)
        dh0 = da[0] @ WhT  # every term that reached cell 0 may reach h0
    da2 = da.reshape(T * N, H)
    # dx straight into (N, T, D): one (T, H) x (H, D) product per sequence, no transpose copy
    dx = np.matmul(da.transpose(1, 0, 2), np.ascontiguousarray(Wx.T))
    dWx = xt.reshape(T * N, D).T @ da2
    dWh = hs[:-1].reshape(T * N, H).T @ da2
    db = da2.sum(axis=0)
    return dx, dh0, dWx, dWh, db


# --------------------------------------------------------------------------- #
# Gradient clipping
# --------------------------------------------------------------------------- #
def clip_by_value(grads, clip_value):
    """Clip every entry of every gradient to [-clip_value, clip_value].

    Inputs:
    - grads: dict name -> ndarray (any shapes)
    - clip_value: positive float

    Returns:
    - a new dict with the same keys and clipped copies; ``grads`` is untouched.
    """
    if not clip_value > 0:
        raise ValueError(f"clip_value must be positive, got {clip_value!r}")
    return {k: np.clip(v, -clip_value, clip_value) for k, v in grads.items()}


def clip_by_global_norm(grads, max_norm):
    """Rescale all gradients together so that their global L2 norm is at most max_norm.

    The global norm is the square root of the sum of squares of every entry of
    every array.  When it exceeds ``max_norm`` every array is multiplied by
    ``max_norm / total_norm`` (direction preserved); otherwise copies are
    returned unchanged.

    Inputs:
    - grads: dict name -> ndarray (any shapes)
    - max_norm: positive float

    Returns a tuple of:
    - clipped: a new dict with the same keys; ``grads`` is untouched
    - total_norm: the global norm before clipping (float)
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm!r}")
    total_norm = float(np.sqrt(sum(float(np.vdot(v, v)) for v in grads.values())))
    if np.isinf(total_norm):
        # the squares overflowed (entries beyond ~1e154): rescale by the largest entry first
        big = max(float(np.max(np.abs(v))) for v in grads.values() if np.size(v))
        if np.isfinite(big):
            total_norm = big * float(np.sqrt(sum(float(np.vdot(v / big, v / big))
                                                 for v in grads.values())))
    scale = max_norm / total_norm if total_norm > max_norm else 1.0
    return {k: v * scale for k, v in grads.items()}, total_norm


# --------------------------------------------------------------------------- #
# LSTM
# --------------------------------------------------------------------------- #
def lstm_gates(a):
    """Split LSTM pre-activations into gate activations, order i, f, o, g.

    Inputs:
    - a: pre-activations, of shape (N, 4H)

    Returns a tuple of:
    - i: input gate sigmoid(a[:, 0:H]), of shape (N, H)
    - f: forget gate sigmoid(a[:, H:2H]), of shape (N, H)
    - o: output gate sigmoid(a[:, 2H:3H]), of shape (N, H)
    - g: candidate tanh(a[:, 3H:4H]), of shape (N, H)
    """
    H = a.shape[1] // 4
    s = sigmoid(a[:, : 3 * H])
    return s[:, :H], s[:, H : 2 * H], s[:, 2 * H :], np.tanh(a[:, 3 * H :])


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One time step of an LSTM.

    ``a = x @ Wx + prev_h @ Wh + b``; ``i, f, o, g = lstm_gates(a)``;
    ``next_c = f * prev_c + i * g``; ``next_h = o * tanh(next_c)``.

    Inputs:
    - x: input at this step, of shape (N, D)
    - prev_h: previous hidden state, of shape (N, H)
    - prev_c: previous cell state, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, 4H)
    - Wh: hidden-to-hidden weights, of shape (H, 4H)
    - b: biases, of shape (4H,)

    Returns a tuple of:
    - next_h: next hidden state, of shape (N, H)
    - next_c: next cell state, of shape (N, H)
    - cache: values needed by ``lstm_step_backward``
    """
    a = x @ Wx
    a += prev_h @ Wh
    a += b
    i, f, o, g = lstm_gates(a)
    next_c = f * prev_c + i * g
    tc = np.tanh(next_c)
    next_h = o * tc
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc)


def _lstm_cell_backward(dnext_h, dc, prev_c, i, f, o, g, tc, da):
    """Gradient of one LSTM cell's pre-activations, written into ``da`` (N, 4H).

    ``dc`` is the gradient arriving at the cell state from the next step; the
    returned value is the gradient passed on to the previous cell state.
    """
    H = i.shape[1]
    dc = dc + dnext_h * o * (1.0 - tc * tc)
    np.multiply(dc * g, i * (1.0 - i), out=da[:, :H])  # input gate
    np.multiply(dc * prev_c, f * (1.0 - f), out=da[:, H : 2 * H])  # forget gate
    np.multiply(dnext_h * tc, o * (1.0 - o), out=da[:, 2 * H : 3 * H])  # output gate
    np.multiply(dc * i, 1.0 - g * g, out=da[:, 3 * H :])  # candidate
    return dc * f


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one LSTM step.

    Inputs:
    - dnext_h: gradient with respect to next_h, of shape (N, H)
    - dnext_c: gradient with respect to next_c, of shape (N, H)
    - cache: the cache returned by ``lstm_step_forward``

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, D)
    - dprev_h: gradient with respect to prev_h, of shape (N, H)
    - dprev_c: gradient with respect to prev_c, of shape (N, H)
    - dWx: gradient with respect to Wx, of shape (D, 4H)
    - dWh: gradient with respect to Wh, of shape (H, 4H)
    - db: gradient with respect to b, of shape (4H,)
    """
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc = cache
    da = np.empty((x.shape[0], 4 * i.shape[1]))
    dprev_c = _lstm_cell_backward(dnext_h, dnext_c, prev_c, i, f, o, g, tc, da)
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    """LSTM over a whole sequence; the initial cell state is zero.

    Inputs:
    - x: input sequence, of shape (N, T, D)
    - h0: initial hidden state, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, 4H)
    - Wh: hidden-to-hidden weights, of shape (H, 4H)
    - b: biases, of shape (4H,)

    Returns a tuple of:
    - h: hidden states of every step, of shape (N, T, H)
    - cache: values needed by ``lstm_backward``
    """
    N, T, D = x.shape
    H = h0.shape[1]
    xt = x.transpose(1, 0, 2).copy()  # (T, N, D), never a view of the caller's x
    # gates[t] holds step t's pre-activations, then (in place) its activations
    gates = (xt.reshape(T * N, D) @ Wx).reshape(T, N, 4 * H)
    gates += b
    hs = np.empty((T + 1, N, H))
    cs = np.empty((T + 1, N, H))
    tcs = np.empty((T, N, H))
    hs[0] = h0
    cs[0] = 0.0
    hw = np.empty((N, 4 * H))  # h_{t-1} @ Wh, then scratch
    e, s = hw[:, : 3 * H], np.empty((N, 3 * H))  # sigmoid scratch
    ig = np.empty((N, H))
    with np.errstate(under="ignore"):
        for t in range(T):
            a = gates[t]
            np.matmul(hs[t], Wh, out=hw)
            np.add(a, hw, out=a)
            sig = a[:, : 3 * H]
            _sigmoid_into(sig, sig, e, s)
            np.tanh(a[:, 3 * H :], out=a[:, 3 * H :])
            i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            c = cs[t + 1]
            np.multiply(f, cs[t], out=c)
            np.multiply(i, g, out=ig)
            np.add(c, ig, out=c)
            np.tanh(c, out=tcs[t])
            np.multiply(o, tcs[t], out=hs[t + 1])
    h = hs[1:].transpose(1, 0, 2).copy()  # never a view of the cache
    return h, (xt, hs, cs, tcs, gates, Wx, Wh)


def lstm_backward(dh, cache):
    """Backpropagation through time for an LSTM.

    ``dh[:, t]`` is the upstream gradient of the hidden state at step t; the
    gradients carried back through h and through the cell state c are added.

    Inputs:
    - dh: upstream gradients of all hidden states, of shape (N, T, H)
    - cache: the cache returned by ``lstm_forward``

    Returns a tuple of:
    - dx: gradient of the inputs, of shape (N, T, D)
    - dh0: gradient of the initial hidden state, of shape (N, H)
    - dWx: gradient of the input-to-hidden weights, of shape (D, 4H)
    - dWh: gradient of the hidden-to-hidden weights, of shape (H, 4H)
    - db: gradient of the biases, of shape (4H,)
    """
    xt, hs, cs, tcs, gates, Wx, Wh = cache
    T, N, D = xt.shape
    H = hs.shape[2]
    dht = dh.transpose(1, 0, 2)
    da = np.empty((T, N, 4 * H))
    WhT = np.ascontiguousarray(Wh.T)  # (4H, H) row-major: the fast layout for da[t] @ WhT
    dnext_h = np.zeros((N, H))
    dc = np.zeros((N, H))  # gradient reaching c_t from steps > t
    dhh = np.empty((N, H))
    tmp = np.empty((N, H))
    for t in range(T - 1, -1, -1):
        a = gates[t]
        i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        tc = tcs[t]
        d = da[t]
        d_i, d_f, d_o, d_g = d[:, :H], d[:, H : 2 * H], d[:, 2 * H : 3 * H], d[:, 3 * H :]
        np.add(dht[t], dnext_h, out=dhh)  # total gradient of h_t
        # dc += dh * o * (1 - tanh(c)^2)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        np.multiply(tmp, o, out=tmp)
        np.multiply(tmp, dhh, out=tmp)
        np.add(dc, tmp, out=dc)
        # sigmoid'(a) = s * (1 - s) for the gates i, f, o at once
        s3 = a[:, : 3 * H]
        d3 = d[:, : 3 * H]
        np.subtract(1.0, s3, out=d3)
        np.multiply(d3, s3, out=d3)
        np.multiply(d_i, g, out=d_i)  # dc * g * i (1 - i)
        np.multiply(d_f, cs[t], out=d_f)  # dc * prev_c * f (1 - f)
        np.multiply(d_o, tc, out=d_o)  # dh * tanh(c) * o (1 - o)
        np.multiply(d_o, dhh, out=d_o)
        np.multiply(g, g, out=d_g)  # dc * i * (1 - g^2)
        np.subtract(1.0, d_g, out=d_g)
        np.multiply(d_g, i, out=d_g)
        d_if = d.reshape(N, 4, H)[:, :2]  # gates i and f: both times dc
        np.multiply(d_if, dc[:, None, :], out=d_if)
        np.multiply(d_g, dc, out=d_g)
        np.multiply(dc, f, out=dc)  # on to c_{t-1}
        np.matmul(d, WhT, out=dnext_h)
    da2 = da.reshape(T * N, 4 * H)
    # dx straight into (N, T, D): one (T, 4H) x (4H, D) product per sequence, no transpose copy
    dx = np.matmul(da.transpose(1, 0, 2), np.ascontiguousarray(Wx.T))
    dWx = xt.reshape(T * N, D).T @ da2
    dWh = hs[:-1].reshape(T * N, H).T @ da2
    db = da2.sum(axis=0)
    return dx, dnext_h, dWx, dWh, db


# --------------------------------------------------------------------------- #
# GRU
# --------------------------------------------------------------------------- #
# Blocks of Wx, Wh, b and of the pre-activations, in the order r, z, n
# (rnn_course.contract.GRU_GATES): r = [:, 0:H], z = [:, H:2H], n = [:, 2H:3H].
def gru_step_forward(x, prev_h, Wx, Wh, b):
    """One time step of a GRU (Cho et al. 2014, in d2l's form).

    ``r = sigmoid(x Wx_r + prev_h Wh_r + b_r)``,
    ``z = sigmoid(x Wx_z + prev_h Wh_z + b_z)``,
    ``n = tanh(x Wx_n + (r * prev_h) Wh_n + b_n)``,
    ``next_h = (1 - z) * n + z * prev_h``.

    Inputs:
    - x: input at this step, of shape (N, D)
    - prev_h: previous hidden state, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, 3H), blocks r, z, n
    - Wh: hidden-to-hidden weights, of shape (H, 3H), blocks r, z, n
    - b: biases, of shape (3H,)

    Returns a tuple of:
    - next_h: next hidden state, of shape (N, H)
    - cache: values needed by ``gru_step_backward``
    """
    H = prev_h.shape[1]
    a = x @ Wx
    a += b
    rz = a[:, : 2 * H]
    rz += prev_h @ Wh[:, : 2 * H]
    sigmoid(rz, out=rz)
    r, z = rz[:, :H], rz[:, H:]
    rh = r * prev_h
    n = a[:, 2 * H :]
    n += rh @ Wh[:, 2 * H :]
    np.tanh(n, out=n)
    next_h = prev_h - n
    next_h *= z
    next_h += n  # (1 - z) * n + z * prev_h
    return next_h, (x, prev_h, Wx, Wh, a, rh)


def _gru_cell_backward(dnext_h, prev_h, rh, a, Wh_nT, da):
    """Gradient of one GRU step's pre-activations, written into ``da`` (N, 3H).

    ``a`` holds the step's activations r, z, n; ``Wh_nT`` is ``Wh[:, 2H:].T``.
    Returns the part of ``dprev_h`` that does not go through ``da @ Wh_rz.T``:
    the direct path ``dnext_h * z`` plus the path through the reset gate's
    product ``r * prev_h``.
    """
    H = prev_h.shape[1]
    r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
    d_r, d_z, d_n = da[:, :H], da[:, H : 2 * H], da[:, 2 * H :]
    np.multiply(dnext_h, 1.0 - z, out=d_n)  # gradient of n
    d_n *= 1.0 - n * n  # through the tanh
    drh = d_n @ Wh_nT  # gradient of r * prev_h
    np.multiply(dnext_h, prev_h - n, out=d_z)
    d_z *= z * (1.0 - z)
    np.multiply(drh, prev_h, out=d_r)
    d_r *= r * (1.0 - r)
    return dnext_h * z + drh * r


def gru_step_backward(dnext_h, cache):
    """Backward pass of one GRU step.

    Inputs:
    - dnext_h: gradient with respect to next_h, of shape (N, H)
    - cache: the cache returned by ``gru_step_forward``

    Returns a tuple of:
    - dx: gradient with respect to x, of shape (N, D)
    - dprev_h: gradient with respect to prev_h, of shape (N, H)
    - dWx: gradient with respect to Wx, of shape (D, 3H)
    - dWh: gradient with respect to Wh, of shape (H, 3H)
    - db: gradient with respect to b, of shape (3H,)
    """
    x, prev_h, Wx, Wh, a, rh = cache
    H = prev_h.shape[1]
    da = np.empty_like(a)
    dprev_h = _gru_cell_backward(dnext_h, prev_h, rh, a, Wh[:, 2 * H :].T, da)
    dprev_h += da[:, : 2 * H] @ Wh[:, : 2 * H].T
    dWh = np.empty_like(Wh)
    np.matmul(prev_h.T, da[:, : 2 * H], out=dWh[:, : 2 * H])
    np.matmul(rh.T, da[:, 2 * H :], out=dWh[:, 2 * H :])
    return da @ Wx.T, dprev_h, x.T @ da, dWh, da.sum(axis=0)


def gru_forward(x, h0, Wx, Wh, b):
    """GRU over a whole sequence.

    Inputs:
    - x: input sequence, of shape (N, T, D)
    - h0: initial hidden state, of shape (N, H)
    - Wx: input-to-hidden weights, of shape (D, 3H), blocks r, z, n
    - Wh: hidden-to-hidden weights, of shape (H, 3H), blocks r, z, n
    - b: biases, of shape (3H,)

    Returns a tuple of:
    - h: hidden states of every step, of shape (N, T, H)
    - cache: values needed by ``gru_backward``
    """
    N, T, D = x.shape
    H = h0.shape[1]
    xt = x.transpose(1, 0, 2).copy()  # (T, N, D), never a view of the caller's x
    # gates[t] holds step t's input projections, then (in place) its r, z, n
    gates = (xt.reshape(T * N, D) @ Wx).reshape(T, N, 3 * H)
    gates += b
    hs = np.empty((T + 1, N, H))
    rhs = np.empty((T, N, H))
    hs[0] = h0
    Wh_rz, Wh_n = Wh[:, : 2 * H], Wh[:, 2 * H :]
    hw = np.empty((N, 2 * H))
    hn = np.empty((N, H))
    e, s = np.empty((N, 2 * H)), np.empty((N, 2 * H))  # sigmoid scratch
    with np.errstate(under="ignore"):
        for t in range(T):
            a = gates[t]
            rz, n = a[:, : 2 * H], a[:, 2 * H :]
            np.matmul(hs[t], Wh_rz, out=hw)
            np.add(rz, hw, out=rz)
            _sigmoid_into(rz, rz, e, s)
            np.multiply(rz[:, :H], hs[t], out=rhs[t])
            np.matmul(rhs[t], Wh_n, out=hn)
            np.add(n, hn, out=n)
            np.tanh(n, out=n)
            h = hs[t + 1]
            np.subtract(hs[t], n, out=h)
            np.multiply(h, rz[:, H:], out=h)
            np.add(h, n, out=h)
    h = hs[1:].transpose(1, 0, 2).copy()  # never a view of the cache
    return h, (xt, hs, rhs, gates, Wx, Wh)


def gru_backward(dh, cache):
    """Backpropagation through time for a GRU.

    ``dh[:, t]`` is the upstream gradient of the hidden state at step t; the
    gradient carried back from step t + 1 is added to it.

    Inputs:
    - dh: upstream gradients of all hidden states, of shape (N, T, H)
    - cache: the cache returned by ``gru_forward``

    Returns a tuple of:
    - dx: gradient of the inputs, of shape (N, T, D)
    - dh0: gradient of the initial hidden state, of shape (N, H)
    - dWx: gradient of the input-to-hidden weights, of shape (D, 3H)
    - dWh: gradient of the hidden-to-hidden weights, of shape (H, 3H)
    - db: gradient of the biases, of shape (3H,)
    """
    xt, hs, rhs, gates, Wx, Wh = cache
    T, N, D = xt.shape
    H = hs.shape[2]
    dht = dh.transpose(1, 0, 2)
    da = np.empty((T, N, 3 * H))
    Wh_rzT = np.ascontiguousarray(Wh[:, : 2 * H].T)
    Wh_nT = np.ascontiguousarray(Wh[:, 2 * H :].T)
    dnext_h = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dhh = dht[t] + dnext_h  # total gradient of h_t
        dnext_h = _gru_cell_backward(dhh, hs[t], rhs[t], gates[t], Wh_nT, da[t])
        dnext_h += da[t, :, : 2 * H] @ Wh_rzT
    da2 = da.reshape(T * N, 3 * H)
    dx = np.matmul(da.transpose(1, 0, 2), np.ascontiguousarray(Wx.T))
    dWx = xt.reshape(T * N, D).T @ da2
    dWh = np.empty_like(Wh, dtype=np.float64)
    dWh[:, : 2 * H] = hs[:-1].reshape(T * N, H).T @ da2[:, : 2 * H]
    dWh[:, 2 * H :] = rhs.reshape(T * N, H).T @ da2[:, 2 * H :]
    db = da2.sum(axis=0)
    return dx, dnext_h, dWx, dWh, db
