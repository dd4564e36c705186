"""The naive per-step RNN / LSTM layer: the contrast for :mod:`bench.numerics`.

What a first implementation looks like (and what the assignments' step
functions invite): the layer is a Python loop over time calling the step
functions of :mod:`autograder.reference`, the input projection is done step by
step inside the loop, and the backward pass accumulates the weight gradients
``dWx += x_t.T @ da_t`` and ``dWh += h_{t-1}.T @ da_t`` one step at a time
(2T small products with an inner dimension of N instead of one product each
over all N*T rows).  Same mathematics as the reference layers, same
signatures (full BPTT only), so it doubles as an oracle for them.

Shapes: ``x`` (N, T, D), ``h0`` (N, H), ``Wx`` (D, G*H), ``Wh`` (H, G*H),
``b`` (G*H,), with G = 1 (RNN) or 4 (LSTM, gates i, f, o, g).
"""

from __future__ import annotations

import numpy as np

from autograder import reference as R


def rnn_forward(x, h0, Wx, Wh, b):
    """Vanilla RNN over a sequence, one ``rnn_step_forward`` per step.

    Returns ``h`` (N, T, H) and the list of step caches.
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.empty((N, T, H))
    caches = []
    prev_h = h0
    for t in range(T):
        prev_h, cache = R.rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(cache)
    return h, caches


def rnn_backward(dh, caches):
    """BPTT with one ``rnn_step_backward`` per step and per-step weight gradients.

    Returns ``dx, dh0, dWx, dWh, db`` like :func:`autograder.reference.rnn_backward`.
    """
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx = np.empty((N, T, D))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dx_t, dprev_h, dWx_t, dWh_t, db_t = R.rnn_step_backward(dh[:, t, :] + dprev_h, caches[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """LSTM over a sequence, one ``lstm_step_forward`` per step (c0 = 0).

    Returns ``h`` (N, T, H) and the list of step caches.
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.empty((N, T, H))
    caches = []
    prev_h, prev_c = h0, np.zeros((N, H))
    for t in range(T):
        prev_h, prev_c, cache = R.lstm_step_forward(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        h[:, t, :] = prev_h
        caches.append(cache)
    return h, caches


def lstm_backward(dh, caches):
    """BPTT for the LSTM with one ``lstm_step_backward`` per step.

    Returns ``dx, dh0, dWx, dWh, db`` like :func:`autograder.reference.lstm_backward`.
    """
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx = np.empty((N, T, D))
    dWx = np.zeros((D, 4 * H))
    dWh = np.zeros((H, 4 * H))
    db = np.zeros(4 * H)
    dprev_h = np.zeros((N, H))
    dprev_c = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = R.lstm_step_backward(
            dh[:, t, :] + dprev_h, dprev_c, caches[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
