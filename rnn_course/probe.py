"""A look inside a trained network: the state unit that carries the country across the gap.

::

    found = find_carrier(gru_forward, params, task)   # task: CountryLanguageTask
    found["unit"]                                     # the hidden unit that carries it
    plot_carrier(found, task)

For every hidden unit and every step, a **separation score** says how well
that unit's value alone tells the opening countries apart: the variance of
the per-country means divided by the mean variance within a country (Fisher's
ratio; 0 when the unit knows nothing about the country, large when every
country sits at its own value).  The carrier is the unit whose *weakest* step
across the gap (the filler words) scores highest: it holds the country at
every step between the country and the query, not just at some of them.

Dimension letters: N batch size, T time steps, H hidden size, K classes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["separation_scores", "carrier_unit", "find_carrier", "plot_carrier"]

_VAR_FLOOR = 1e-12  # a unit constant within every class would otherwise divide by 0


def separation_scores(h, y):
    """Fisher's ratio of every unit at every step: between-class over within-class variance.

    Inputs:
    - h: hidden states, of shape (N, T, H)
    - y: class of each sequence, of shape (N,) (at least two classes present)

    Returns:
    - scores: array of shape (T, H), >= 0
    """
    h = np.asarray(h, dtype=np.float64)
    y = np.asarray(y)
    if h.ndim != 3 or y.shape != (h.shape[0],):
        raise ValueError(f"expected h (N, T, H) and y (N,), got {h.shape} and {y.shape}")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError("y must hold at least two classes to separate")
    means = np.stack([h[y == k].mean(axis=0) for k in classes])  # (K, T, H)
    within = np.stack([h[y == k].var(axis=0) for k in classes]).mean(axis=0)
    return means.var(axis=0) / np.maximum(within, _VAR_FLOOR)


def carrier_unit(h, y, steps):
    """The unit whose lowest separation score over ``steps`` is the highest.

    Inputs:
    - h: hidden states, of shape (N, T, H); y: classes, of shape (N,)
    - steps: the time steps that must all carry the class (e.g. the gap), a
      slice or a sequence of ints

    Returns a tuple of:
    - unit: int, the carrier
    - worst: array of shape (H,), each unit's lowest score over ``steps``
    """
    scores = separation_scores(h, y)[steps]
    if scores.size == 0:
        raise ValueError("steps selects no time step")
    worst = scores.min(axis=0)
    return int(np.argmax(worst)), worst


def find_carrier(forward, params, task, n=400, seed=0):
    """Run the network on held-out France -> French sentences and find its country carrier.

    Inputs:
    - forward: the layer (``forward(x, h0, Wx, Wh, b) -> h, cache``)
    - params: dict with ``Wx``, ``Wh``, ``b`` of a trained network
    - task: a :class:`rnn_course.data.CountryLanguageTask` with gap >= 1
    - n: number of sentences; seed: their random stream

    Returns a dict with:
    - unit: the carrier (int); worst: every unit's lowest score over the gap (H,)
    - scores: separation scores of every step and unit (T, H)
    - h: hidden states (N, T, H); y: the countries (N,); x: the inputs (N, T, D)
    """
    if getattr(task, "gap", 0) < 1:
        raise ValueError("the task needs a gap of at least one filler word")
    x, y = task.batch(n, seed=np.random.SeedSequence([seed, 2]))
    h0 = np.zeros((n, params["Wh"].shape[0]))
    h = np.asarray(forward(x, h0, params["Wx"], params["Wh"], params["b"])[0])
    gap = slice(1, task.seq_len - 1)  # the filler words, after the country and before "speak"
    unit, worst = carrier_unit(h, y, gap)
    return {"unit": unit, "worst": worst, "scores": separation_scores(h, y), "h": h, "y": y,
            "x": x}


def plot_carrier(found, task, n_lines=6, ax=None):
    """The carrier unit's value over the sentence, one colour per country.

    Thin lines: single sentences; thick lines: the mean over each country.

    Inputs:
    - found: the dict of :func:`find_carrier`
    - task: the CountryLanguageTask it came from
    - n_lines: sentences drawn per country
    - ax: optional matplotlib axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    unit, h, y = found["unit"], found["h"], found["y"]
    t = np.arange(h.shape[1])
    colors = plt.get_cmap("tab10")
    for k, country in enumerate(task.countries):
        rows = np.flatnonzero(y == k)
        if rows.size == 0:
            continue
        for r in rows[:n_lines]:
            ax.plot(t, h[r, :, unit], color=colors(k), lw=0.6, alpha=0.5)
        ax.plot(t, h[rows, :, unit].mean(axis=0), color=colors(k), lw=2.5,
                label=f"{country} -> {task.classes[k]}")
    ax.axvspan(0.5, task.seq_len - 1.5, color="0.92", zorder=0, label="the gap (filler words)")
    ax.set_xlabel(f"step (0: the country, {task.seq_len - 1}: \"speak\")")
    ax.set_ylabel(f"hidden unit {unit}")
    ax.set_title(f"The unit that carries the country across the gap "
                 f"(lowest separation score over the gap {found['worst'][unit]:.1f})")
    ax.legend(fontsize="small", loc="best")
    return ax
