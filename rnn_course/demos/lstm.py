"""Plots and the forget-gate widget of the ``lstm`` notebook (no solutions in here).

The functions take the layers as arguments, so the notebook passes the
student's own ``lstm_forward`` / ``lstm_backward`` and the RNN of its provided
cell.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
"""

from __future__ import annotations

import numpy as np

from rnn_course import data, training
from rnn_course.widgets import Slider, slider_plot


def gradient_reach(forward, backward, params, x, seed=0):
    """How much gradient a loss on the last step sends to each input.

    A random gradient is placed on the last hidden state only and propagated
    back with ``backward``.

    Inputs:
    - forward, backward: the layer (course contract)
    - params: dict with ``Wx``, ``Wh``, ``b`` (RNN or LSTM shapes)
    - x: inputs, of shape (N, T, D)
    - seed: int, for the random upstream gradient

    Returns:
    - array of shape (T,): entry k is ||dx[:, T - 1 - k]||, the gradient reaching
      the input k steps before the end
    """
    N = x.shape[0]
    H = params["Wh"].shape[0]
    h, cache = forward(x, np.zeros((N, H)), params["Wx"], params["Wh"], params["b"])
    dh = np.zeros_like(h)
    dh[:, -1] = np.random.default_rng(seed).standard_normal((N, H))
    dx = backward(dh, cache)[0]
    return np.linalg.norm(dx, axis=(0, 2))[::-1]


def forget_bias_widget(lstm_forward, lstm_backward, rnn_forward, rnn_backward, gap=100,
                       hidden_size=32, batch_size=32, seed=0, static=(0.0, 1.0, 3.0)):
    """Slider over the LSTM's initial forget-gate bias: how much gradient survives the gap.

    Both networks are freshly initialised as in the experiment (Xavier input
    weights, orthogonal recurrent weights; the LSTM's forget-gate bias is the
    slider's value) and read the same France -> French batch.

    Inputs:
    - lstm_forward, lstm_backward, rnn_forward, rnn_backward: the layers
    - gap: number of filler tokens between the country and the query
    - hidden_size: H; batch_size: N; seed: int
    - static: forget-gate biases drawn when there is no front end

    Returns the ipywidgets object, or None when drawn statically.
    """
    import matplotlib.pyplot as plt

    task = data.CountryLanguageTask(gap=gap)
    x, _ = task.batch(batch_size, seed=seed)
    D, V = task.input_size, task.output_size
    rnn = training.init_rnn(D, hidden_size, V, seed=seed)
    rnn_reach = gradient_reach(rnn_forward, rnn_backward, rnn, x, seed=seed)
    k = np.arange(task.seq_len)

    def draw(forget_bias):
        lstm = training.init_lstm(D, hidden_size, V, seed=seed, forget_bias=forget_bias)
        reach = gradient_reach(lstm_forward, lstm_backward, lstm, x, seed=seed)
        # Wh = 0 cuts every path between steps except the cell state's
        cell_only = dict(lstm, Wh=np.zeros_like(lstm["Wh"]))
        reach_c = gradient_reach(lstm_forward, lstm_backward, cell_only, x, seed=seed)
        f0 = 1.0 / (1.0 + np.exp(-forget_bias))
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.semilogy(k, reach / reach[0], lw=2, color="tab:blue",
                    label=f"LSTM: {reach[-1] / reach[0]:.1e} reaches the country")
        ax.semilogy(k, reach_c / reach_c[0], lw=2, color="tab:green",
                    label=f"LSTM, cell-state path only (Wh = 0): {reach_c[-1] / reach_c[0]:.1e}")
        ax.semilogy(k, f0 ** k, ls="--", color="tab:green", lw=1,
                    label=f"sigmoid({forget_bias:.2g})^k = {f0:.2f}^k: a product of forget gates")
        ax.semilogy(k, rnn_reach / rnn_reach[0], lw=2, color="tab:gray",
                    label=f"RNN: {rnn_reach[-1] / rnn_reach[0]:.1e} reaches the country")
        ax.axvline(k[-1], color="k", ls=":", lw=1)
        ax.set_ylim(1e-16, 1e3)
        ax.set_xlabel("k: steps between the input and the loss")
        ax.set_ylabel("gradient reaching the input (relative to k = 0)")
        ax.set_title(f"Fresh networks, gap {gap}, LSTM forget-gate bias {forget_bias:.2g}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small", loc="lower left")
        fig.tight_layout()

    return slider_plot(draw, static_values=[{"forget_bias": v} for v in static],
                       forget_bias=Slider(3.0, -3.0, 6.0, step=0.25,
                                          description="forget bias"))


def plot_accuracy_vs_gap(results, ax=None, title=None):
    """Held-out accuracy against gap, one line per model, with the chance level.

    Inputs:
    - results: list of dicts with keys ``model``, ``lag`` (the gap), ``accuracy`` and
      ``chance``, as returned by :func:`rnn_course.experiments.run_long_range`
    - ax: optional matplotlib axes
    - title: optional title
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    # hollow, larger RNN markers stay visible where the two curves coincide
    styles = {"rnn": ("RNN", "tab:gray", "s", 11), "lstm": ("LSTM", "tab:blue", "o", 6)}
    for model in dict.fromkeys(r["model"] for r in results):
        rows = sorted((r["lag"], r["accuracy"]) for r in results if r["model"] == model)
        label, color, marker, size = styles.get(model, (model, None, "^", 8))
        ax.plot([g for g, _ in rows], [a for _, a in rows], marker=marker, color=color,
                lw=2, ms=size, mfc="none" if model == "rnn" else color, mew=2, label=label)
    gaps = sorted({r["lag"] for r in results})
    chance = results[0]["chance"]
    ax.axhline(chance, color="k", ls=":", lw=1, label=f"chance ({chance:.0%})")
    ax.set_xscale("log")
    ax.set_xticks(gaps)
    ax.set_xticklabels([str(g) for g in gaps])
    ax.minorticks_off()
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("gap: filler words between the country and 'speak'")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title or "France -> French under one budget")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    return ax
