"""Hidden checks of the ``clipping`` assignment (grader side).

A gradient dict cannot cross to the grader as it is, so the hidden cells get
its arrays as separate named inputs ``g_Wx`` (D, H), ``g_Wh`` (H, H), ``g_b``
(H,) and rebuild the dict; the threshold is a 0-d array.  After the call the
cells also hand back the input arrays (``after_*``), and the specs expect them
to equal the originals: the functions must leave their input untouched.

Shapes are drawn anew for every submission, small edge sizes (1) included.
"""

from __future__ import annotations

import numpy as np

from autograder.protocol.hidden import HiddenSpec

KEYS = ("Wx", "Wh", "b")


def _size(rng):
    """A dimension, 1 (an edge case) about one time in three."""
    return int(rng.choice([1, 1, 2, 3, 4, 6]))


def _grads(rng, prefix, scale):
    D, H = _size(rng), _size(rng)
    shapes = {"Wx": (D, H), "Wh": (H, H), "b": (H,)}
    return {f"{prefix}{k}": scale * rng.standard_normal(shapes[k]) for k in KEYS}


def _as_dict(inputs, prefix):
    return {k: inputs[f"{prefix}{k}"] for k in KEYS}


def _untouched(inputs, prefix, label=""):
    return {f"{label}after_{k}": inputs[f"{prefix}{k}"].copy() for k in KEYS}


# --------------------------------------------------------------------------- #
# clip_by_value
# --------------------------------------------------------------------------- #
def _value_inputs(rng):
    inputs = _grads(rng, "g_", scale=2.0)
    # a threshold that leaves some entries alone and clips others (on both sides)
    inputs["clip_value"] = np.array(rng.uniform(0.3, 1.5))
    return inputs


def _value_expected(ref, inputs):
    clipped = ref.clip_by_value(_as_dict(inputs, "g_"), float(inputs["clip_value"]))
    out = {f"clipped_{k}": v for k, v in clipped.items()}
    out.update(_untouched(inputs, "g_"))
    return out


clip_by_value_hidden = HiddenSpec(
    id="clip_by_value_hidden",
    make_inputs=_value_inputs,
    expected=_value_expected,
    doc="clip_by_value on random shapes and threshold; input untouched",
)


# --------------------------------------------------------------------------- #
# clip_by_global_norm: one gradient above the threshold, one below
# --------------------------------------------------------------------------- #
def _global_norm(arrays):
    return float(np.sqrt(sum(np.sum(v * v) for v in arrays.values())))


def _global_inputs(rng):
    big = _grads(rng, "big_", scale=3.0)
    small = _grads(rng, "small_", scale=1.0)
    # max_norm strictly between the two global norms: `big` is clipped, `small` is not
    small_norm = _global_norm(small)
    big_norm = _global_norm(big)
    if big_norm <= 2.0 * small_norm:  # make the gap wide enough to be unambiguous
        factor = 4.0 * small_norm / max(big_norm, 1e-12)
        big = {k: v * factor for k, v in big.items()}
        big_norm *= factor
    low, high = 1.5 * small_norm, 0.75 * big_norm
    inputs = {**big, **small}
    inputs["max_norm"] = np.array(rng.uniform(low, high))
    return inputs


def _global_expected(ref, inputs):
    max_norm = float(inputs["max_norm"])
    out = {}
    for label in ("big_", "small_"):
        clipped, total = ref.clip_by_global_norm(_as_dict(inputs, label), max_norm)
        out.update({f"{label}clipped_{k}": v for k, v in clipped.items()})
        out[f"{label}total_norm"] = np.reshape(total, (1,))
        out.update(_untouched(inputs, label, label))
    return out


clip_by_global_norm_hidden = HiddenSpec(
    id="clip_by_global_norm_hidden",
    make_inputs=_global_inputs,
    expected=_global_expected,
    doc="clip_by_global_norm above and below the threshold; total_norm; input untouched",
)
