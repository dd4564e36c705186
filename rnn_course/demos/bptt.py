"""Plots and the widget of the ``bptt`` notebook: how gradient norms decay through time.

Dimension letters: N batch size, T sequence length, D input dimension,
H hidden dimension.

No solutions here: the forward pass (``forward(x, h0, Wx, Wh, b) -> h, cache``)
and the measurement (``norms_fn(dact, Wh, dlast) -> norms`` of shape (T+1,),
the notebook's ``gradient_norms_through_time``) are passed in.

The recurrent matrix is ``Wh = gain * Q`` with Q a random orthogonal matrix,
so that *every* singular value of Wh equals ``gain``: for a linear RNN the
gradient norm is then exactly ``gain ** d`` times its starting value, and for
a tanh RNN ``gain ** d`` is an upper bound.
"""

from __future__ import annotations

import numpy as np

from rnn_course.training import orthogonal
from rnn_course.widgets import Choice, Slider, slider_plot

NONLINEARITIES = ("tanh", "linear")


def random_rnn(D: int, H: int, gain: float, rng: np.random.Generator) -> dict:
    """Random RNN parameters with ``Wh = gain * Q`` (Q orthogonal, all singular values = gain).

    Inputs:
    - D, H: input and hidden dimensions
    - gain: the largest (and every) singular value of Wh
    - rng: numpy.random.Generator

    Returns:
    - dict with Wx (D, H) (entries of variance 1/D), Wh (H, H) and b (H,) zeros
    """
    return {"Wx": rng.standard_normal((D, H)) / np.sqrt(D), "Wh": gain * orthogonal(H, rng),
            "b": np.zeros(H)}


def measure_gradient_norms(norms_fn, forward, gain: float, T: int, nonlinearity: str = "tanh",
                           N: int = 8, D: int = 4, H: int = 32, seed: int = 0):
    """Norms of the gradient a loss at the last step sends back, for a random RNN.

    The inputs are standard normal; h0 = 0.  For ``nonlinearity="linear"`` the
    derivative of the nonlinearity is 1 everywhere and no forward pass is needed.

    Inputs:
    - norms_fn: ``gradient_norms_through_time(dact, Wh, dlast)``
    - forward: the tanh RNN forward pass ``rnn_forward(x, h0, Wx, Wh, b)``
    - gain: singular value of Wh; T: sequence length; nonlinearity: "tanh" or "linear"
    - N, D, H: batch size, input and hidden dimensions; seed: random seed

    Returns a tuple of:
    - norms: array of shape (T + 1,), norms[d] for the state d steps before the last
    - dact: the derivatives used, of shape (N, T, H)
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
    rng = np.random.default_rng(seed)
    params = random_rnn(D, H, gain, rng)
    dlast = rng.standard_normal((N, H))
    dlast /= np.linalg.norm(dlast)  # norms[0] = 1
    if nonlinearity == "linear":
        dact = np.ones((N, T, H))
    else:
        x = rng.standard_normal((N, T, D))
        states, _ = forward(x, np.zeros((N, H)), **params)
        dact = 1.0 - np.asarray(states) ** 2
    norms = np.asarray(norms_fn(dact, params["Wh"], dlast), dtype=np.float64)
    return norms, dact


def draw_gradient_norms(norms_fn, forward, gain=0.9, T=60, nonlinearity="tanh"):
    """Plot the measured norms against the distance, on a log scale, with the bound gain**d.

    For tanh it also draws the estimate ``(gain * rms(tanh'))**d``: each step back
    multiplies the gradient by tanh' elementwise (typically its root mean square)
    and then by Wh.T (exactly ``gain``, as Wh is a scaled orthogonal matrix).
    """
    import matplotlib.pyplot as plt

    T = int(T)
    norms, dact = measure_gradient_norms(norms_fn, forward, gain, T, nonlinearity)
    d = np.arange(T + 1)
    plt.figure(figsize=(7, 4))
    plt.semilogy(d, np.maximum(norms, 1e-300), lw=2, label=f"measured, {nonlinearity} RNN")
    plt.semilogy(d, gain ** d.astype(float), "--", color="grey",
                 label=r"$\sigma_{\max}(W_h)^d$ (bound; exact if linear)")
    if nonlinearity == "tanh":
        rate = gain * float(np.sqrt(np.mean(dact ** 2)))
        plt.semilogy(d, rate ** d.astype(float), ":", color="black",
                     label=rf"$(\sigma_{{\max}} \cdot \mathrm{{rms}}\,\tanh')^d$ = {rate:.3f}$^d$")
    plt.axhline(1.0, color="grey", lw=0.6)
    trend = "explodes" if norms[-1] > norms[0] else "vanishes"
    plt.title(rf"$\sigma_{{\max}}(W_h)$ = {gain:.2f}, T = {T}: the gradient {trend} "
              f"(x{norms[-1] / norms[0]:.1e} after {T} steps)")
    plt.xlabel("distance d (steps back from the last state)")
    plt.ylabel(r"$\| \partial E / \partial h_{T-1-d} \|$")
    plt.legend(loc="best", fontsize=9)


def gradient_norm_widget(norms_fn, forward):
    """Sliders for the gain (the largest singular value of Wh), T and the nonlinearity.

    Without a front end it draws three static cases: a linear RNN below and above
    gain 1, and a tanh RNN above 1.

    Inputs:
    - norms_fn: the notebook's ``gradient_norms_through_time``
    - forward: the notebook's ``rnn_forward``

    Returns the ipywidgets object, or None in static mode.
    """
    def draw(gain, T, nonlinearity):
        draw_gradient_norms(norms_fn, forward, gain, T, nonlinearity)

    return slider_plot(
        draw,
        static_values=[{"gain": 0.9, "nonlinearity": "linear"},
                       {"gain": 1.1, "nonlinearity": "linear"},
                       {"gain": 1.5, "nonlinearity": "tanh"}],
        gain=Slider(0.9, 0.25, 4.0, step=0.01, log=True, description="sigma_max(Wh)"),
        T=Slider(60, 5, 200, step=5, description="T"),
        nonlinearity=Choice(NONLINEARITIES, description="nonlinearity"),
    )
