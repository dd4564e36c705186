"""How much gradient reaches an input k steps before the loss, measured with a backward pass.

::

    norms = gradient_at_lag(gru_forward, gru_backward, params, x)
    norms[k]   # ||dL/dx_{T-1-k}||, for a loss L on the last hidden state only

The loss is ``L = sum(dlast * h[:, -1])``: a fixed direction on the last
hidden state, the shape of the gradient a readout from the last step sends
back.  One call of ``backward`` with ``dh`` zero except at the last step gives
``dx``; the norm of ``dx[:, T-1-k]`` is the gradient that reached the input k
steps before the loss.  The functions come from the caller (the course
contract), so a notebook measures the student's own backward pass.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["last_step_direction", "gradient_at_lag", "relative_gradient"]


def last_step_direction(N, H, seed=0):
    """A random unit-norm upstream gradient for the last hidden state, of shape (N, H)."""
    dlast = np.random.default_rng(seed).standard_normal((N, H))
    return dlast / np.linalg.norm(dlast)


def gradient_at_lag(forward, backward, params, x, dlast=None, seed=0):
    """Norm of the gradient that the loss on the last step sends to each earlier input.

    Inputs:
    - forward: ``forward(x, h0, Wx, Wh, b) -> h, cache`` (the course contract)
    - backward: ``backward(dh, cache) -> dx, dh0, dWx, dWh, db``
    - params: dict with ``Wx``, ``Wh``, ``b`` (any cell: RNN, LSTM or GRU)
    - x: inputs, of shape (N, T, D); h0 = 0
    - dlast: gradient of the loss with respect to the last hidden state, of
      shape (N, H) (default: :func:`last_step_direction` with ``seed``)

    Returns:
    - norms: array of shape (T,), ``norms[k] = ||dL/dx[:, T-1-k]||`` (over the
      batch and the input dimension): the gradient reaching lag k
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, D), got {x.shape}")
    N, T, _ = x.shape
    H = params["Wh"].shape[0]
    if dlast is None:
        dlast = last_step_direction(N, H, seed)
    dlast = np.asarray(dlast, dtype=np.float64)
    if dlast.shape != (N, H):
        raise ValueError(f"dlast must have shape (N, H) = ({N}, {H}), got {dlast.shape}")
    h, cache = forward(x, np.zeros((N, H)), params["Wx"], params["Wh"], params["b"])
    dh = np.zeros(np.shape(h))
    dh[:, -1] = dlast
    dx = np.asarray(backward(dh, cache)[0])
    if dx.shape != x.shape:
        raise ValueError(f"dx returned by backward has shape {dx.shape}, expected {x.shape}")
    return np.linalg.norm(dx, axis=(0, 2))[::-1].copy()


def relative_gradient(norms):
    """``norms / norms[0]``: the fraction of the gradient at lag 0 that reaches lag k."""
    norms = np.asarray(norms, dtype=np.float64)
    return norms / norms[0] if norms[0] > 0 else norms
