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


def run_summary(label, hist, best_constant=None):
    """One line on how a training run went: its overflow, or where its loss ended.

    Inputs:
    - label: name of the run
    - hist: a :class:`rnn_course.training.History`
    - best_constant: optional loss of the best constant answer (the task's
      ``baseline_loss``), quoted beside the held-out loss

    Returns:
    - str: ``"<label>: first gradient norm G, ..."``.  A run that stopped on a
      non-finite loss or gradient norm (``hist.diverged``) gives its largest
      finite gradient norm, the loss of the step before the last, the loss and
      gradient norm of the last step and ``overflow at step K``; any other run
      its largest gradient norm and its first and last held-out loss
    """
    norms = np.array(hist.grad_norm, dtype=float)
    losses = np.array(hist.loss, dtype=float)
    head = f"{label}: first gradient norm {norms[0]:.3g}"
    if hist.diverged:
        finite = np.isfinite(losses) & np.isfinite(norms)
        largest = f"{norms[finite].max():.3g}" if finite.any() else "none"
        before = f"loss {losses[-2]:.3g} at step {hist.steps - 1}, then " if hist.steps > 1 else ""
        return (f"{head}, largest finite {largest}; {before}loss {losses[-1]:.3g} and gradient "
                f"norm {norms[-1]:.3g}: overflow at step {hist.steps}, training stopped")
    line = (f"{head}, largest {norms.max():.3g}; held-out loss {hist.eval_loss[0]:.3g} -> "
            f"{hist.eval_loss[-1]:.3g}")
    if best_constant is not None:
        line += f" (best constant answer {best_constant:.3g})"
    return f"{line} after {hist.steps} steps"


def _log10(values):
    """log10 of positive values (NaN elsewhere, which matplotlib leaves out)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(values), np.nan)


def _powers_of_ten(ax):
    """Label a panel that plots log10 values with 10^k: a log axis near 1e308 breaks the ticks."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{v:g}}}$"))


def plot_runs(runs, max_norm=None, best_constant=None, axes=None, title=None):
    """Loss and gradient norm of training runs, side by side, both on a log scale.

    A run that stopped on an overflow (``History.diverged``) ends at that step:
    a cross marks its last finite value on each panel, a dotted line the step.

    Inputs:
    - runs: dict label -> :class:`rnn_course.training.History`
    - max_norm: optional threshold drawn as a horizontal line on the norm panel
    - best_constant: optional loss of the best constant answer (the task's
      ``baseline_loss``), drawn as a horizontal line on the loss panel
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
        steps = np.arange(1, len(hist.loss) + 1)
        if hist.diverged:
            shown = f"{label}: overflow at step {hist.steps}"
        else:
            shown = f"{label} (held-out loss {hist.eval_loss[-1]:.2g})"
        ax_loss.plot(steps, _log10(hist.loss), color=color, lw=1, label=shown)
        ax_norm.plot(steps, _log10(hist.grad_norm), color=color, lw=1, label=label)
        if hist.diverged:
            for ax, values in ((ax_loss, _log10(hist.loss)), (ax_norm, _log10(hist.grad_norm))):
                last = np.flatnonzero(np.isfinite(values))[-1]  # the last finite value
                ax.plot(last + 1, values[last], "x", color="tab:red", ms=10, mew=2)
                ax.axvline(hist.steps, color="tab:red", ls=":", lw=1)
    if best_constant is not None:
        ax_loss.axhline(np.log10(best_constant), color="k", ls=":", lw=1,
                        label=f"best constant answer ({best_constant:.3g})")
    for ax in axes:
        _powers_of_ten(ax)
    ax_loss.set_xlabel("training step")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(fontsize="small")
    if max_norm is not None:
        ax_norm.axhline(np.log10(max_norm), color="tab:red", ls="--", lw=1,
                        label=f"max_norm = {max_norm:g}")
    ax_norm.set_xlabel("training step")
    ax_norm.set_ylabel("global gradient norm (before clipping)")
    ax_norm.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return axes


def threshold_widget(train_run, baseline, best_constant=None, default=1.0, low=0.01,
                     high=100.0, static=(1.0, 30.0)):
    """A max_norm slider over one training run: same data, initialisation and optimiser.

    Inputs:
    - train_run: function ``max_norm -> History`` (max_norm None = no clipping);
      it is called once per new threshold and its results are cached
    - baseline: the History of the unclipped run, drawn in grey for comparison
    - best_constant: optional loss of the best constant answer (see :func:`plot_runs`)
    - default, low, high: the slider (log scale)
    - static: thresholds drawn when there is no front end to move the slider

    Each drawing also prints the run's :func:`run_summary`.

    Returns None (see :func:`rnn_course.widgets.slider_plot`).
    """
    import matplotlib.pyplot as plt

    cache = {}

    def draw(max_norm):
        key = float(f"{max_norm:.3g}")
        if key not in cache:
            cache[key] = train_run(key)
        label = f"max_norm = {key:g}"
        print(run_summary(label, cache[key], best_constant))
        plot_runs({"no clipping": baseline, label: cache[key]}, max_norm=key,
                  best_constant=best_constant, axes=plt.subplots(1, 2, figsize=(12, 4))[1],
                  title=f"Clipping the global gradient norm at {key:g}")

    return slider_plot(draw, static_values=[{"max_norm": v} for v in static],
                       max_norm=Slider(default, low, high, step=0.1, log=True,
                                       description="max_norm"))
