"""Single planted bugs, as a student would make them, one per entry.

Each is a few lines of notebook code run after the notebook's correct
functions (:func:`gradesim.student_namespace`): the wrong function replaces the
right one, and the functions built on it call it by name as a student's do.
``BUGS`` maps a name to (assignment, code, a phrase the first failing check's
message must contain); ``CORRECT`` maps a name to (assignment, code) of right code
written differently, which must score full marks.
"""

from __future__ import annotations

BUGS: dict[str, tuple[str, str, str]] = {
    # ---- rnn_cell ------------------------------------------------------- #
    "rnn_cell/no_bias": ("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh)
    return next_h, (x, prev_h, Wx, Wh, next_h)
""", "the bias b is not added"),
    "rnn_cell/wh_transposed": ("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh.T + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)
""", "columns of Wh"),
    "rnn_cell/no_tanh": ("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = x @ Wx + prev_h @ Wh + b
    return next_h, (x, prev_h, Wx, Wh, next_h)
""", "forgot the tanh"),
    "rnn_cell/tanh_from_exponentials": ("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    a = x @ Wx + prev_h @ Wh + b
    next_h = (np.exp(a) - np.exp(-a)) / (np.exp(a) + np.exp(-a))
    return next_h, (x, prev_h, Wx, Wh, next_h)
""", "np.tanh"),
    "rnn_cell/dx_no_transpose": ("rnn_cell", """
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h ** 2)
    return da @ Wx, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)
""", "transpose"),
    "rnn_cell/tanh_prime_one_minus_h": ("rnn_cell", """
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)
""", "1 - next_h**2"),
    "rnn_cell/dwh_from_next_h": ("rnn_cell", """
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, next_h.T @ da, da.sum(axis=0)
""", "dWh"),
    "rnn_cell/forward_restarts_from_h0": ("rnn_cell", """
def rnn_forward(x, h0, Wx, Wh, b):
    h = np.zeros(x.shape[:2] + h0.shape[1:])
    for t in range(x.shape[1]):
        h[:, t], _ = rnn_step_forward(x[:, t], h0, Wx, Wh, b)
    return h, None
""", "h0"),
    "rnn_cell/dprev_h_no_transpose": ("rnn_cell", """
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h ** 2)
    return da @ Wx.T, da @ Wh, x.T @ da, prev_h.T @ da, da.sum(axis=0)
""", "transpose"),
    "rnn_cell/tanh_prime_from_preactivation": ("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    a = x @ Wx + prev_h @ Wh + b
    return np.tanh(a), (x, prev_h, Wx, Wh, a)

def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, a = cache
    da = dnext_h * (1.0 - a ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)
""", "tanh derivative"),
    "rnn_cell/step_forward_not_written": ("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    raise NotImplementedError()
""", "NotImplementedError"),
    # ---- bptt ----------------------------------------------------------- #
    "bptt/dh0_zero": ("bptt", """
_right_backward = rnn_backward
def rnn_backward(dh, cache, truncate=None):
    dx, dh0, dWx, dWh, db = _right_backward(dh, cache, truncate)
    return dx, 0 * dh0, dWx, dWh, db
""", "dh0"),
    "bptt/no_carry": ("bptt", """
def rnn_backward(dh, cache, truncate=None):
    x, hs, Wx, Wh = cache
    N, T, H = dh.shape
    da = dh * (1.0 - hs[:, 1:] ** 2)
    dx = da @ Wx.T
    dWx = np.einsum("ntd,nth->dh", x, da)
    dWh = np.einsum("ntk,nth->kh", hs[:, :-1], da)
    return dx, da[:, 0] @ Wh.T, dWx, dWh, da.sum(axis=(0, 1))
""", "carr"),
    "bptt/truncate_ignored": ("bptt", """
_right_backward = rnn_backward
def rnn_backward(dh, cache, truncate=None):
    return _right_backward(dh, cache)
""", "truncate argument is ignored"),
    "bptt/norms_without_dact": ("bptt", """
def gradient_norms_through_time(dact, Wh, dlast):
    T = dact.shape[1]
    norms = np.empty(T + 1)
    grad = np.array(dlast, dtype=np.float64)
    norms[0] = np.linalg.norm(grad)
    for d in range(1, T + 1):
        grad = grad @ Wh.T
        norms[d] = np.linalg.norm(grad)
    return norms
""", "dact"),
    "bptt/fixed_block_truncation": ("bptt", """
def rnn_backward(dh, cache, truncate=None):
    x, hs, Wx, Wh = cache
    N, T, H = dh.shape
    k = T if truncate is None else int(truncate)
    da, carry = np.zeros((N, T, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        if (t + 1) % k == 0:
            carry = np.zeros((N, H))  # a new block of k steps: nothing flows across
        da[:, t] = (dh[:, t] + carry) * (1.0 - hs[:, t + 1] ** 2)
        carry = da[:, t] @ Wh.T
    dWx = np.einsum("ntd,nth->dh", x, da)
    dWh = np.einsum("ntk,nth->kh", hs[:, :-1], da)
    return da @ Wx.T, carry, dWx, dWh, da.sum(axis=(0, 1))
""", "fixed blocks"),
    # ---- clipping ------------------------------------------------------- #
    "clipping/value_never_clips": ("clipping", """
def clip_by_value(grads, clip_value):
    return {k: np.array(v, copy=True) for k, v in grads.items()}
""", "must become exactly"),
    "clipping/norm_without_sqrt": ("clipping", """
def clip_by_global_norm(grads, max_norm):
    total = float(sum(np.sum(g * g) for g in grads.values()))
    factor = max_norm / total if total > max_norm else 1.0
    return {k: g * factor for k, g in grads.items()}, total
""", "norm"),
    "clipping/value_clips_in_place": ("clipping", """
def clip_by_value(grads, clip_value):
    for g in grads.values():
        np.clip(g, -clip_value, clip_value, out=g)
    return dict(grads)
""", "in place"),
    "clipping/per_tensor_norms": ("clipping", """
def clip_by_global_norm(grads, max_norm):
    total = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    clipped = {}
    for k, g in grads.items():
        norm = float(np.sqrt(np.sum(g * g)))
        clipped[k] = g * (max_norm / norm) if norm > max_norm else g.copy()
    return clipped, total
""", "its own norm"),
    # ---- lstm ----------------------------------------------------------- #
    "lstm/gate_order": ("lstm", """
_right_gates = lstm_gates
def lstm_gates(a):
    i, f, o, g = _right_gates(a)
    return f, i, o, g
""", "gate order"),
    "lstm/sigmoid_on_g": ("lstm", """
_right_gates = lstm_gates
def lstm_gates(a):
    H = a.shape[1] // 4
    i, f, o, _ = _right_gates(a)
    return i, f, o, 1 / (1 + np.exp(-a[:, 3 * H:]))
""", "tanh"),
    "lstm/cell_ignores_forget_gate": ("lstm", """
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    i, f, o, g = lstm_gates(x @ Wx + prev_h @ Wh + b)
    next_c = prev_c + i * g
    tanh_c = np.tanh(next_c)
    return o * tanh_c, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
""", "f * prev_c"),
    "lstm/no_c_carry": ("lstm", """
def lstm_backward(dh, cache):
    N, T, H = dh.shape
    x0, _, _, Wx, Wh = cache[0][:5]
    dx = np.empty((N, T, x0.shape[1]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wx.shape[1])
    carry_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], carry_h, _, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t] + carry_h, np.zeros((N, H)), cache[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, carry_h, dWx, dWh, db
""", "dnext_c"),
    "lstm/step_backward_modifies_dnext_c": ("lstm", """
_right_step_backward = lstm_step_backward
def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dnext_c += dnext_h * o * (1.0 - tanh_c ** 2)
    return _right_step_backward(dnext_h, dnext_c - dnext_h * o * (1.0 - tanh_c ** 2), cache)
""", "modified dnext_c in place"),
    "lstm/pytorch_gate_order": ("lstm", """
def lstm_gates(a):
    H = a.shape[1] // 4
    s = 1.0 / (1.0 + np.exp(-np.clip(a, -500, 500)))
    return s[:, :H], s[:, H:2 * H], s[:, 3 * H:], np.tanh(a[:, 2 * H:3 * H])
""", "gate order"),
    # ---- gru ------------------------------------------------------------ #
    "gru/swapped_blend": ("gru", """
_right_step = gru_step_forward
def gru_step_forward(x, prev_h, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + b
    r = sigmoid(a[:, :H] + prev_h @ Wh[:, :H])
    z = sigmoid(a[:, H:2 * H] + prev_h @ Wh[:, H:2 * H])
    n = np.tanh(a[:, 2 * H:] + (r * prev_h) @ Wh[:, 2 * H:])
    return z * n + (1 - z) * prev_h, _right_step(x, prev_h, Wx, Wh, b)[1]
""", "z"),
    "gru/reset_after_product": ("gru", """
def gru_step_forward(x, prev_h, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + b
    r = sigmoid(a[:, :H] + prev_h @ Wh[:, :H])
    z = sigmoid(a[:, H:2 * H] + prev_h @ Wh[:, H:2 * H])
    n = np.tanh(a[:, 2 * H:] + r * (prev_h @ Wh[:, 2 * H:]))
    return (1 - z) * n + z * prev_h, (x, prev_h, Wx, Wh, r, z, n)
""", "after the product"),
    "gru/dprev_h_without_gate_paths": ("gru", """
_right_step_backward = gru_step_backward
def gru_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, r, z, n = cache
    H = prev_h.shape[1]
    dx, _, dWx, dWh, db = _right_step_backward(dnext_h, cache)
    da_n = dnext_h * (1.0 - z) * (1.0 - n ** 2)
    return dx, dnext_h * z + (da_n @ Wh[:, 2 * H:].T) * r, dWx, dWh, db
""", "dprev_h"),
}

EDGE_ONLY = {  # bugs that show only in an edge regime: they cost that regime's share
    "rnn_cell/tanh_from_exponentials",  # overflow for |pre-activation| > 355
    "lstm/step_backward_modifies_dnext_c",  # an argument modified in place
    "clipping/value_clips_in_place",  # an argument modified in place
}


CORRECT: dict[str, tuple[str, str]] = {
    # right code written differently: usual numerical guards, another decomposition
    "clipping/guarded_global_norm": ("clipping", """
def clip_by_global_norm(grads, max_norm):
    total_norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    factor = max_norm / (total_norm + 1e-6) if total_norm > max_norm else 1.0
    return {k: g * factor for k, g in grads.items()}, total_norm
"""),
    "lstm/gates_through_tanh": ("lstm", """
def lstm_gates(a):
    H = a.shape[1] // 4
    s = 0.5 * (1.0 + np.tanh(0.5 * a[:, :3 * H]))
    return s[:, :H], s[:, H:2 * H], s[:, 2 * H:], np.tanh(a[:, 3 * H:])
"""),
    "lstm/stacked_step_forward": ("lstm", """
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    a = np.hstack([x, prev_h]) @ np.vstack([Wx, Wh]) + b
    i, f, o, g = lstm_gates(a)
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    return o * tanh_c, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
"""),
    "rnn_cell/bias_first": ("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(b + prev_h @ Wh + x @ Wx)
    return next_h, {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "next_h": next_h}

def rnn_step_backward(dnext_h, cache):
    da = dnext_h * (1.0 - cache["next_h"] ** 2)
    return (da @ cache["Wx"].T, da @ cache["Wh"].T, cache["x"].T @ da,
            cache["prev_h"].T @ da, da.sum(axis=0))
"""),
}
