"""A planted plagiarism corpus for the similarity report (``rnn_cell``'s three functions).

``ORIGINAL`` is one student's solution; ``COPIED`` is the same code handed in by
another student with the variables renamed, the functions in another order, and
comments and blank lines added.  ``INDEPENDENT`` are solutions written
separately, each in its own style.  :func:`notebook` puts a solution into the
release notebook's answer cells, as a student's submission would hold it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "rnn_cell"
FUNCTIONS = ("rnn_step_forward", "rnn_step_backward", "rnn_forward")

ORIGINAL = {
    "rnn_step_forward": """
    pre = x @ Wx + prev_h @ Wh + b
    next_h = np.tanh(pre)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache
""",
    "rnn_step_backward": """
    x, prev_h, Wx, Wh, next_h = cache
    dpre = dnext_h * (1 - next_h ** 2)
    dx = dpre @ Wx.T
    dprev_h = dpre @ Wh.T
    dWx = x.T @ dpre
    dWh = prev_h.T @ dpre
    db = np.sum(dpre, axis=0)
    return dx, dprev_h, dWx, dWh, db
""",
    "rnn_forward": """
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    cache = []
    prev = h0
    for t in range(T):
        prev, step_cache = rnn_step_forward(x[:, t, :], prev, Wx, Wh, b)
        h[:, t, :] = prev
        cache.append(step_cache)
    return h, cache
""",
}

# the same code: renamed, commented, spaced out, and the functions in another order
COPIED = {
    "rnn_forward": """
    # sizes of everything
    batch, steps, dim = x.shape

    hidden = h0.shape[1]
    states = np.zeros((batch, steps, hidden))  # all the hidden states
    memo = []
    state = h0

    # walk through time
    for k in range(steps):
        state, c = rnn_step_forward(x[:, k, :], state, Wx, Wh, b)

        states[:, k, :] = state
        memo.append(c)
    return states, memo
""",
    "rnn_step_backward": """
    # unpack what forward saved
    inp, h_before, W_in, W_rec, h_after = cache

    # tanh'(a) = 1 - tanh(a)^2
    grad_a = dnext_h * (1 - h_after ** 2)
    g_in = grad_a @ W_in.T
    g_prev = grad_a @ W_rec.T

    g_Win = inp.T @ grad_a
    g_Wrec = h_before.T @ grad_a
    g_bias = np.sum(grad_a, axis=0)  # sum over the batch
    return g_in, g_prev, g_Win, g_Wrec, g_bias
""",
    "rnn_step_forward": """
    # the affine part
    activation = x @ Wx + prev_h @ Wh + b

    out = np.tanh(activation)   # squash
    saved = (x, prev_h, Wx, Wh, out)
    return out, saved
""",
}

INDEPENDENT = [
    {
        "rnn_step_forward": """
    next_h = np.tanh(np.dot(x, Wx) + np.dot(prev_h, Wh) + b)
    return next_h, {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "next_h": next_h}
""",
        "rnn_step_backward": """
    da = dnext_h * (1.0 - cache["next_h"] * cache["next_h"])
    grads = (np.dot(da, cache["Wx"].T), np.dot(da, cache["Wh"].T),
             np.dot(cache["x"].T, da), np.dot(cache["prev_h"].T, da), da.sum(0))
    return grads
""",
        "rnn_forward": """
    states = [h0]
    caches = []
    for t in range(x.shape[1]):
        nh, c = rnn_step_forward(x[:, t], states[-1], Wx, Wh, b)
        states.append(nh)
        caches.append(c)
    return np.stack(states[1:], axis=1), caches
""",
    },
    {
        "rnn_step_forward": """
    z = b + np.matmul(prev_h, Wh) + np.matmul(x, Wx)
    out = np.tanh(z)
    return out, [x, prev_h, Wx, Wh, z]
""",
        "rnn_step_backward": """
    x, prev_h, Wx, Wh, z = cache
    local = dnext_h / np.cosh(z) ** 2
    db = local.sum(axis=0)
    dWh = np.matmul(prev_h.T, local)
    dWx = np.matmul(x.T, local)
    return np.matmul(local, Wx.T), np.matmul(local, Wh.T), dWx, dWh, db
""",
        "rnn_forward": """
    outs = np.empty(x.shape[:2] + (Wh.shape[0],))
    h_t = h0.copy()
    stash = {}
    t = 0
    while t < x.shape[1]:
        h_t, stash[t] = rnn_step_forward(x[:, t, :], h_t, Wx, Wh, b)
        outs[:, t] = h_t
        t += 1
    return outs, [stash[i] for i in range(len(stash))]
""",
    },
    {
        "rnn_step_forward": """
    from numpy import tanh
    s = tanh(x.dot(Wx) + prev_h.dot(Wh) + b[None, :])
    return s, (x.copy(), prev_h.copy(), Wx, Wh, s.copy())
""",
        "rnn_step_backward": """
    xs, hs, wx, wh, out = cache
    g = (1 - np.square(out)) * dnext_h
    return (g.dot(wx.T), g.dot(wh.T), xs.T.dot(g), hs.T.dot(g),
            np.einsum("nh->h", g))
""",
        "rnn_forward": """
    result = []
    memory = []
    hidden = h0
    for xt in np.moveaxis(x, 1, 0):
        hidden, mem = rnn_step_forward(xt, hidden, Wx, Wh, b)
        result += [hidden]
        memory += [mem]
    return np.transpose(np.array(result), (1, 0, 2)), memory
""",
    },
]

_STUB = re.compile(r"    # YOUR CODE HERE\n    raise NotImplementedError\(\)\n    return [^\n]*")


def release_notebook() -> dict:
    path = REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    return json.loads(path.read_text())


def notebook(solution: dict | None, order=FUNCTIONS) -> dict:
    """The release notebook with ``solution``'s bodies in its answer cells (None: untouched);
    ``order``: the order of the answer cells' contents (a student may move code around)."""
    nb = release_notebook()
    if solution is None:
        return nb
    answers = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    sources = {}
    for cell in answers:
        source = "".join(cell["source"])
        name = next(f for f in FUNCTIONS if source.startswith(f"def {f}("))
        sources[name] = _STUB.sub(solution[name].strip("\n").replace("\\", "\\\\"), source)
    for cell, name in zip(answers, order, strict=True):
        cell["source"] = sources[name]
    return nb
