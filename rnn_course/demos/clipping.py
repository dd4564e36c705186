"""Plots and the threshold widget of the ``clipping`` notebook (no solutions in here).

Every function takes the recurrent layer as functions, so the notebook passes
the RNN of its provided cell and the student's ``clip_by_global_norm``.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
"""

from __future__ import annotations

import numpy as np

from rnn_course import data, training
from rnn_course.widgets import Slider, slider_plot


def gradient_by_distance(rnn_forward, rnn_backward, scales, gap=60, hidden_size=32,
                         batch_size=64, seed=0):
    """How much gradient reaches each input, counted back from the last step.

    For every recurrent scale s the RNN gets Xavier input weights and
    ``Wh = s * Q`` (Q orthogonal), reads a batch of France -> French sequences
    with ``gap`` fillers, and back-propagates a random gradient placed on the
    last hidden state only.

    Inputs:
    - rnn_forward, rnn_backward: the layer (course contract)
    - scales: iterable of floats, the multipliers of the orthogonal Wh
    - gap: number of filler tokens (T = gap + 2)
    - hidden_size: H; batch_size: N; seed: int

    Returns:
    - dict scale -> array of shape (T,): entry k is ||dx[:, T - 1 - k]||, the
      gradient reaching the input k steps before the end
    """
    task = data.CountryLanguageTask(gap=gap)
    x, _ = task.batch(batch_size, seed=seed)
    upstream = np.random.default_rng(seed + 1).standard_normal((batch_size, hidden_size))
    norms = {}
    for scale in scales:
        p = training.init_rnn(task.input_size, hidden_size, task.output_size, seed=seed)
        h, cache = rnn_forward(x, np.zeros((batch_size, hidden_size)), p["Wx"],
                               scale * p["Wh"], p["b"])
        dh = np.zeros_like(h)
        dh[:, -1] = upstream
        dx = rnn_backward(dh, cache)[0]
        norms[scale] = np.linalg.norm(dx, axis=(0, 2))[::-1]
    return norms


def plot_gradient_by_distance(norms, ax=None, title=None):
    """Plot the output of :func:`gradient_by_distance` on a log scale."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for scale, n in norms.items():
        ax.semilogy(np.arange(len(n)), n, label=f"Wh = {scale:g} x orthogonal")
    ax.set_xlabel("k: steps between the input and the loss")
    ax.set_ylabel("gradient norm reaching the input")
    ax.set_title(title or "Gradient flowing back through time")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return ax


def plot_runs(runs, max_norm=None, axes=None, title=None):
    """Loss and gradient norm of training runs, side by side.

    Inputs:
    - runs: dict label -> :class:`rnn_course.training.History`
    - max_norm: optional threshold drawn as a horizontal line on the norm panel
    - axes: optional pair of matplotlib axes
    - title: optional figure title
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    else:
        fig = axes[0].figure
    ax_loss, ax_norm = axes
    colors = ["tab:gray", "tab:blue", "tab:orange", "tab:green"]
    for n, (label, hist) in enumerate(runs.items()):
        color = colors[n % len(colors)]
        acc = hist.final_accuracy
        shown = f"{label} (accuracy {acc:.0%})" if acc is not None else label
        if hist.diverged:
            shown += ", diverged"
        steps = np.arange(1, len(hist.loss) + 1)
        ax_loss.plot(steps, hist.loss, color=color, lw=1, label=shown)
        ax_norm.semilogy(steps, hist.grad_norm, color=color, lw=1, label=label)
    first = next(iter(runs.values()))
    ax_loss.axhline(np.log(1.0 / first.chance), color="k", ls=":", lw=1,
                    label="chance (loss ln K)")
    ax_loss.set_xlabel("training step")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(fontsize="small")
    if max_norm is not None:
        ax_norm.axhline(max_norm, color="tab:red", ls="--", lw=1, label=f"max_norm = {max_norm:g}")
    ax_norm.set_xlabel("training step")
    ax_norm.set_ylabel("global gradient norm (before clipping)")
    ax_norm.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return axes


def threshold_widget(train_run, baseline, default=1.0, low=0.01, high=100.0,
                     static=(1.0, 30.0)):
    """A max_norm slider over one training run: same data, initialisation and optimiser.

    Inputs:
    - train_run: function ``max_norm -> History`` (max_norm None = no clipping);
      it is called once per new threshold and its results are cached
    - baseline: the History of the unclipped run, drawn in grey for comparison
    - default, low, high: the slider (log scale)
    - static: thresholds drawn when there is no front end to move the slider

    Returns the ipywidgets object, or None when drawn statically.
    """
    import matplotlib.pyplot as plt

    cache = {}

    def draw(max_norm):
        key = float(f"{max_norm:.3g}")
        if key not in cache:
            cache[key] = train_run(key)
        plot_runs({"no clipping": baseline, f"max_norm = {key:g}": cache[key]},
                  max_norm=key, axes=plt.subplots(1, 2, figsize=(12, 4))[1],
                  title=f"Clipping the global gradient norm at {key:g}")

    return slider_plot(draw, static_values=[{"max_norm": v} for v in static],
                       max_norm=Slider(default, low, high, step=0.1, log=True,
                                       description="max_norm"))
