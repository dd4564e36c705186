"""The update-gate widget and the lag comparison of the ``gru`` notebook (no solutions here).

The functions take the layers as arguments, so the notebook passes the
student's own ``gru_forward`` and the RNN and LSTM of its provided cells.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
"""

from __future__ import annotations

import numpy as np

from rnn_course import data, training
from rnn_course.data import TASK_TITLES
from rnn_course.training import SUCCESS
from rnn_course.widgets import Slider, slider_plot

MODEL_COLORS = {"rnn": "tab:gray", "lstm": "tab:blue", "gru": "tab:purple"}


def first_token_trace(forward, params, x, x_other):
    """How much the first token still changes the hidden state, step by step.

    Inputs:
    - forward: the layer (course contract)
    - params: dict with ``Wx``, ``Wh``, ``b``
    - x, x_other: inputs of shape (N, T, D) that differ only at step 0

    Returns:
    - array of shape (T,): entry t is ||h_t(x) - h_t(x_other)|| over the batch,
      relative to t = 0
    """
    N = x.shape[0]
    h0 = np.zeros((N, params["Wh"].shape[0]))
    args = (params["Wx"], params["Wh"], params["b"])
    h, _ = forward(x, h0, *args)
    h_other, _ = forward(x_other, h0, *args)
    diff = np.linalg.norm(np.asarray(h) - np.asarray(h_other), axis=(0, 2))
    return diff / diff[0] if diff[0] > 0 else diff


def _other_country(x, n_countries):
    """The same sentences with each opening country replaced by the next one."""
    x_other = np.array(x, copy=True)
    first = x_other[:, 0, :n_countries]
    x_other[:, 0, :n_countries] = np.roll(first, 1, axis=1)
    return x_other


def update_bias_widget(gru_forward, rnn_forward, gap=60, hidden_size=32, batch_size=16,
                       seed=0, static=(0.0, 3.0)):
    """Slider over the GRU's initial update-gate bias: how long the country survives.

    Fresh networks (the experiment's initialisation) read a batch of the
    France -> French task twice, with a different country at step 0; each
    curve is how far apart the two runs' hidden states still are t steps
    later.

    Inputs:
    - gru_forward, rnn_forward: the layers
    - gap: number of filler tokens between the country and the query
    - hidden_size: H; batch_size: N; seed: int
    - static: update-gate biases drawn when there is no front end

    Returns None (see :func:`rnn_course.widgets.slider_plot`).
    """
    import matplotlib.pyplot as plt

    task = data.CountryLanguageTask(gap=gap)
    x, _ = task.batch(batch_size, seed=seed)
    x_other = _other_country(x, task.n_countries)
    D, V = task.input_size, task.output_size
    rnn = training.init_rnn(D, hidden_size, V, seed=seed)
    rnn_trace = first_token_trace(rnn_forward, rnn, x, x_other)
    t = np.arange(task.seq_len)

    def draw(update_bias):
        gru = training.init_gru(D, hidden_size, V, seed=seed, update_bias=update_bias)
        trace = first_token_trace(gru_forward, gru, x, x_other)
        # Wh = 0: z and n no longer read h, so only the copy z * h carries the country
        copy_only = dict(gru, Wh=np.zeros_like(gru["Wh"]))
        trace_copy = first_token_trace(gru_forward, copy_only, x, x_other)
        z0 = 1.0 / (1.0 + np.exp(-update_bias))
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.semilogy(t, trace, lw=2, color="tab:purple",
                    label=f"GRU: {trace[-1]:.1e} of the country left at the query")
        ax.semilogy(t, trace_copy, lw=2, color="tab:green",
                    label=f"GRU, copy path only (Wh = 0): {trace_copy[-1]:.1e}")
        ax.semilogy(t, z0 ** t, ls="--", color="tab:green", lw=1,
                    label=f"sigmoid({update_bias:.2g})^t = {z0:.2f}^t: a product of update gates")
        ax.semilogy(t, np.maximum(rnn_trace, 1e-300), lw=2, color="tab:gray",
                    label=f"RNN: {rnn_trace[-1]:.1e}")
        ax.axvline(t[-1], color="k", ls=":", lw=1)
        ax.set_ylim(1e-16, 1e1)
        ax.set_xlabel("t: steps after the country")
        ax.set_ylabel("||h_t(France) - h_t(other)||, relative to t = 0")
        ax.set_title(f"Fresh networks, gap {gap}, GRU update-gate bias {update_bias:.2g}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small", loc="lower left")
        fig.tight_layout()

    return slider_plot(draw, static_values=[{"update_bias": v} for v in static],
                       update_bias=Slider(3.0, -3.0, 6.0, step=0.25,
                                          description="update bias"))


def plot_lag_comparison(results, ax=None):
    """Held-out accuracy of each model at each gap, as grouped bars with the chance line.

    Inputs:
    - results: list of dicts with keys ``model``, ``lag`` (the gap), ``accuracy`` and
      ``chance`` (:func:`rnn_course.experiments.run_long_range` on France -> French)
    - ax: optional matplotlib axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    models = list(dict.fromkeys(r["model"] for r in results))
    gaps = sorted({r["lag"] for r in results})
    colors = MODEL_COLORS
    width = 0.8 / len(models)
    for j, model in enumerate(models):
        acc = {r["lag"]: r["accuracy"] for r in results if r["model"] == model}
        pos = np.arange(len(gaps)) + (j - (len(models) - 1) / 2) * width
        ax.bar(pos, [acc.get(g, np.nan) for g in gaps], width, label=model.upper(),
               color=colors.get(model))
    chance = results[0]["chance"]
    ax.axhline(chance, color="k", ls=":", lw=1, label=f"chance ({chance:.0%})")
    ax.set_xticks(np.arange(len(gaps)))
    ax.set_xticklabels([f"gap {g}" for g in gaps])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out accuracy")
    ax.set_title("France -> French under one budget")
    ax.legend(loc="lower left")
    return ax


def plot_lag_study(results, success=None, axes=None):
    """Success against the lag, one panel per task, one line per model.

    Inputs:
    - results: rows of :func:`rnn_course.experiments.run_study` (keys ``task``,
      ``model``, ``lag``, ``accuracy``, ``chance``)
    - success: the success threshold to draw (default
      :data:`rnn_course.training.SUCCESS`)
    - axes: optional sequence of matplotlib axes, one per task
    """
    import matplotlib.pyplot as plt

    success = SUCCESS if success is None else success
    tasks = list(dict.fromkeys(r["task"] for r in results))
    if axes is None:
        _, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.8), squeeze=False)
        axes = axes[0]
    for ax, task in zip(axes, tasks, strict=True):
        rows = [r for r in results if r["task"] == task]
        for model in dict.fromkeys(r["model"] for r in rows):
            mine = sorted((r["lag"], r["accuracy"]) for r in rows if r["model"] == model)
            ax.plot(*zip(*mine, strict=True), marker="o", lw=2, color=MODEL_COLORS.get(model),
                    label=model.upper())
        chance = sorted((r["lag"], r["chance"]) for r in rows)
        ax.plot(*zip(*chance, strict=True), color="k", ls=":", lw=1, label="chance")
        ax.axhline(success, color="tab:green", ls="--", lw=1, label=f"success ({success:.0%})")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("gap (filler words)" if task == "country" else "T (minimal length)")
        ax.set_title(TASK_TITLES.get(task, task))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("held-out success (adding: |error| < 0.04)")
    axes[0].legend(fontsize="small", loc="lower left")
    return axes


def plot_gradient_at_lag(rows, ax=None):
    """The gradient reaching lag k, relative to lag 0, one line per cell (log scale).

    Inputs:
    - rows: from :func:`rnn_course.experiments.run_gradients` (``model``,
      ``lags``, ``gradient``)
    - ax: optional matplotlib axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        g = np.maximum(np.asarray(r["gradient"]), 1e-300)
        ax.semilogy(r["lags"], g, lw=2, color=MODEL_COLORS.get(r["model"]),
                    label=f"{r['model'].upper()}: {g[-1]:.1e} at lag {r['lags'][-1]}")
    ax.set_xlabel("k: steps between the input and the loss")
    ax.set_ylabel("||dL/dx_{T-1-k}||, relative to k = 0")
    ax.set_title("The gradient reaching lag k (fresh networks, your backward passes)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    return ax
