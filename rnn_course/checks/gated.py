"""What the checks of the gated cells share (LSTM: 4 blocks, GRU: 3 blocks).

* the blocks of a gate array, a sigmoid that is exact for any input;
* finite-difference tables of a correct forward (an ``oracle``'s work) and the
  message for a backward check whose forward pass is wrong;
* hidden-check inputs: every draw holds one case of each regime
  (:func:`rnn_course.checks.regimes`), the generic sizes (distinct, 2..7) with some
  sigmoid gates saturated in both directions, and the edge sizes (all 1).

Not an assignment: no checks here.
"""

from __future__ import annotations

import numpy as np

from rnn_course.checks import EDGE, GENERIC, copies, regime_sizes, wrong_forward
from rnn_course.gradcheck import perturbed_outputs


def sigmoid(a):
    """The logistic sigmoid through tanh (no overflow for any a), as float64."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(a, dtype=np.float64)))


def blocks(a, H: int, names) -> dict:
    """The gate blocks of a (.., len(names) * H) array, as a dict name -> block."""
    return {name: a[..., k * H:(k + 1) * H] for k, name in enumerate(names)}


def fd_tables(call, inputs, arg_names, names) -> dict:
    """The correct forward's outputs ``call(args)`` (one flat vector) at every perturbation
    of ``names`` (:func:`~rnn_course.gradcheck.perturbed_outputs`) and unperturbed."""
    out = perturbed_outputs(lambda **args: call(args), copies(inputs, arg_names), names)
    out["forward_ref"] = call(copies(inputs, arg_names))
    return out


def forward_problem(outputs, function: str) -> "str | None":
    """:func:`~rnn_course.checks.wrong_forward` on ``forward`` (from ``run``) and
    ``forward_ref`` (stored by the oracle)."""
    return wrong_forward(function, outputs.get("forward", np.zeros(0)), outputs["forward_ref"])


HUGE = (700.0, 900.0)
"""|pre-activation| that overflows a naive exp: exp(710) is inf in float64."""


def saturate(rng: np.random.Generator, a: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Set about ``fraction`` of the entries of ``a`` to +-U(700, 900), in place, with at
    least one of each sign."""
    flat = a.reshape(-1)
    mask = rng.random(flat.shape) < fraction
    mask[:2] = True
    signs = rng.choice([-1.0, 1.0], size=flat.shape)
    signs[0], signs[1] = 1.0, -1.0
    flat[mask] = (signs * rng.uniform(*HUGE, size=flat.shape))[mask]
    rng.shuffle(flat)
    return a


def weights(rng, D: int, H: int, blocks: int, scale: float = 0.5) -> dict:
    return {"Wx": scale * rng.standard_normal((D, blocks * H)),
            "Wh": scale * rng.standard_normal((H, blocks * H)),
            "b": scale * rng.standard_normal(blocks * H)}


def step(rng, regime: str, blocks: int, with_c: bool, saturated: int = 0,
         upstream: bool = False) -> dict:
    """One step's inputs; ``saturated`` sigmoid blocks of ``b`` get huge entries (generic
    sizes only); ``upstream`` adds dnext_h (and dnext_c)."""
    s = regime_sizes(rng, regime, "NDH")
    N, D, H = s["N"], s["D"], s["H"]
    inputs = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H))}
    if with_c:
        inputs["prev_c"] = 2.0 * rng.standard_normal((N, H))
    inputs.update(weights(rng, D, H, blocks))
    if saturated and regime != EDGE:
        saturate(rng, inputs["b"][: saturated * H], fraction=0.25)
    if upstream:
        inputs["dnext_h"] = rng.standard_normal((N, H))
        if with_c:
            inputs["dnext_c"] = rng.standard_normal((N, H))
    return inputs


def sequence(rng, regime: str, blocks: int, saturated: int = 0,
             upstream: bool = False) -> dict:
    """A sequence's inputs (T = 1 in the edge regime); ``upstream`` adds dh."""
    s = regime_sizes(rng, regime)
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    inputs = {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
              **weights(rng, D, H, blocks)}
    if saturated and regime != EDGE:
        saturate(rng, inputs["b"][: saturated * H], fraction=0.15)
    if upstream:
        inputs["dh"] = rng.standard_normal((N, T, H))
    return inputs


def both(draw, **kwargs) -> dict:
    """The regimes of a hidden check: ``draw(rng, regime, **kwargs)`` for each."""
    return {GENERIC: lambda rng: draw(rng, GENERIC, **kwargs),
            EDGE: lambda rng: draw(rng, EDGE, **kwargs)}
