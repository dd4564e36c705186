"""Checks of the ``clipping`` assignment, visible and hidden: ``clip_by_value`` and
``clip_by_global_norm``.

Every check builds small hand-picked gradient dicts whose right answers are
known in closed form (norms of 3-4-12-13 style Pythagorean numbers), calls the
student's function in ``run`` and judges the returned arrays in ``verdict``.

A gradient dict here always has the keys of an RNN's recurrent parameters:

- ``Wx`` of shape (D, H), ``Wh`` of shape (H, H), ``b`` of shape (H,)

and the student's functions must return a *new* dict (same keys, same shapes)
and leave the arrays they were given untouched.
"""

from __future__ import annotations

import numpy as np

from rnn_course.checks import (
    GENERIC,
    case_words,
    check,
    regime_sizes,
    shape_problem,
    unpack,
)
from rnn_course.contract import PARAMS, returns
from rnn_course.gradcheck import EXACT_RTOL, VALUE_ATOL, VALUE_RTOL

KEYS = PARAMS  # the keys of every gradient dict here
GLOBAL_RETURNS = returns("clip_by_global_norm")  # clipped, total_norm


# --------------------------------------------------------------------------- #
# Inputs (fixed, readable numbers)
# --------------------------------------------------------------------------- #
def _value_inputs(rng):
    """Entries inside, on and outside [-c, c], in arrays of three shapes (D=2, H=2); a
    threshold c drawn from ``rng`` (the pattern is fixed, the values are not)."""
    c = float(rng.uniform(0.5, 2.0))
    grads = {
        "Wx": c * np.array([[0.5, -3.0], [2.0, -0.25]]),  # (D, H)
        "Wh": c * np.array([[-1.5, 1.0], [-1.0, 0.75]]),  # (H, H); +-c sit on the boundary
        "b": c * np.array([7.0, -0.9]),  # (H,)
    }
    return {"grads": grads, "clip_value": c}


def _norm_inputs(rng):
    """Arrays of norms 3s, 4s and 12s: the global norm is sqrt(9 + 16 + 144) s = 13 s, for a
    scale s drawn from ``rng``; max_norm = 5 s (clipped), big_max_norm = 20 s (not)."""
    s = float(rng.uniform(0.5, 2.0))
    grads = {
        "Wx": s * np.array([[2.0, 0.0], [1.0, 2.0]]),  # norm 3 s
        "Wh": s * np.array([[0.0, 4.0], [0.0, 0.0]]),  # norm 4 s
        "b": s * np.array([0.0, -12.0]),  # norm 12 s
    }
    return {"grads": grads, "max_norm": 5.0 * s, "big_max_norm": 20.0 * s}


def _norms(inputs) -> list:
    """The three arrays' norms (3 s, 4 s, 12 s)."""
    return [float(np.linalg.norm(inputs["grads"][k])) for k in KEYS]


def _total(inputs) -> float:
    """The global norm of the check's gradients (13 s)."""
    return float(np.sqrt(sum(n * n for n in _norms(inputs))))


def _scalar(value):
    """The number held by a one-entry array (0-d, or (1,) after the trip to the grader)."""
    return np.ravel(value)[0]


def _copy(grads):
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in grads.items()}


def _result_arrays(result, prefix, what):
    """The arrays of a returned dict as ``{prefix + key: array}``; checks the type first."""
    if not isinstance(result, dict):
        raise TypeError(f"{what} must return a dict name -> array, got {type(result).__name__}")
    out = {f"{prefix}{k}": np.asarray(result[k], dtype=np.float64) for k in KEYS if k in result}
    out[f"{prefix}n_keys"] = np.array(len(result))
    return out


def _keys_problem(outputs, prefix="out_"):
    """A message when keys are missing or extra, or a shape differs, else None."""
    missing = [k for k in KEYS if f"{prefix}{k}" not in outputs]
    if missing:
        return (f"the returned dict has no key {missing[0]!r}: return one entry per "
                "entry of grads, with the same names")
    n_keys = int(_scalar(outputs[f"{prefix}n_keys"]))
    if n_keys != len(KEYS):
        return (f"the returned dict has {n_keys} keys, "
                f"grads has {len(KEYS)}: return exactly the keys of grads")
    return None


def _shapes_problem(inputs, outputs, prefix="out_"):
    problem = _keys_problem(outputs, prefix)
    if problem:
        return problem
    for k in KEYS:
        problem = shape_problem(f"result[{k!r}]", outputs[f"{prefix}{k}"],
                                inputs["grads"][k].shape)
        if problem:
            return problem + " (the same shape as grads[" + repr(k) + "])"
    return None


def _untouched_problem(inputs, outputs, name):
    """Messages for mutated arrays, a reused or edited dict, or reused arrays (in that order)."""
    for k in KEYS:
        if not np.array_equal(outputs[f"after_{k}"], inputs["grads"][k]):
            return (f"{name} changed grads[{k!r}] in place: compute new arrays "
                    "(e.g. g * scale, np.clip(g, ...)) instead of writing into the inputs "
                    "(g *= scale, g[...] = ..., np.clip(g, ..., out=g))")
    if bool(_scalar(outputs["same_dict"])):
        return (f"{name} returned the very dict it was given: build and return a new "
                "dict, so that the caller still has the unclipped gradients")
    for k in KEYS:
        if bool(_scalar(outputs[f"replaced_{k}"])):
            return (f"{name} replaced grads[{k!r}] in the dict it was given: put the "
                    "clipped arrays into a new dict and leave grads as it was")
    for k in KEYS:
        if bool(_scalar(outputs[f"shares_{k}"])):
            return (f"result[{k!r}] is (a view of) the array grads[{k!r}]: return a new "
                    "array (e.g. g * 1.0 or g.copy()), so that updating the result in "
                    "place cannot change grads")
    return None


def _call_untouched(function, grads, *args):
    """Call ``function(grads, *args)`` and report what it did to ``grads``.

    Returns ``(result, outputs)``: the function's return value, and plain
    arrays saying whether the arrays of grads changed (``after_<key>``), whether
    the dict's entries were replaced (``replaced_<key>``), whether the result is
    grads itself (``same_dict``) and whether result arrays share memory with
    the inputs (``shares_<key>``).
    """
    arrays = dict(grads)  # the original array objects, whatever happens to the dict
    result = function(grads, *args)
    clipped = result[0] if isinstance(result, tuple) and len(result) == 2 else result
    _result_arrays(clipped, "", "the function")  # a TypeError if it is not a dict
    out = {f"after_{k}": arrays[k] for k in KEYS}
    out["same_dict"] = np.array(clipped is grads)
    for k in KEYS:
        out[f"replaced_{k}"] = np.array(grads.get(k) is not arrays[k])
        value = clipped.get(k)
        shares = isinstance(value, np.ndarray) and np.shares_memory(value, arrays[k])
        out[f"shares_{k}"] = np.array(bool(shares))
    return result, out


def _global_result(result):
    """Split the return value of clip_by_global_norm, with a clear error if it is not a pair."""
    return unpack(result, GLOBAL_RETURNS, "clip_by_global_norm")


# --------------------------------------------------------------------------- #
# clip_by_value
# --------------------------------------------------------------------------- #
@check("clip_by_value_shapes", _value_inputs,
       doc="returns a dict with the keys and shapes of grads")
def clip_by_value_shapes(inputs, clip_by_value):
    result = clip_by_value(_copy(inputs["grads"]), inputs["clip_value"])
    return _result_arrays(result, "out_", "clip_by_value")


@clip_by_value_shapes.verdict
def clip_by_value_shapes(inputs, outputs):
    return _shapes_problem(inputs, outputs)


@check("clip_by_value_values", _value_inputs,
       doc="entries outside [-c, c] move to the nearest bound, the others stay")
def clip_by_value_values(inputs, clip_by_value):
    result = clip_by_value(_copy(inputs["grads"]), inputs["clip_value"])
    return _result_arrays(result, "out_", "clip_by_value")


@clip_by_value_values.verdict
def clip_by_value_values(inputs, outputs):
    problem = _shapes_problem(inputs, outputs)
    if problem:
        return problem
    c = inputs["clip_value"]
    for k in KEYS:
        g, out = inputs["grads"][k], outputs[f"out_{k}"]
        if not np.all(np.isfinite(out)):
            return f"result[{k!r}] contains NaN or inf"
        inside = np.abs(g) <= c
        if not np.allclose(out[inside], g[inside], rtol=0, atol=1e-12):
            return (f"result[{k!r}] changed entries that were already inside [-{c:g}, {c:g}] "
                    "(clipping by value leaves them alone; only entries beyond the bounds "
                    "move, and rescaling is what clip_by_global_norm does)")
        above, below = g > c, g < -c
        if not np.allclose(out[above], c, rtol=0, atol=1e-12):
            return (f"result[{k!r}]: entries above {c:g} must become exactly {c:g} "
                    f"(got {out[above]} for {g[above]})")
        if not np.allclose(out[below], -c, rtol=0, atol=1e-12):
            return (f"result[{k!r}]: entries below -{c:g} must become exactly -{c:g} "
                    f"(got {out[below]} for {g[below]}): clip from both sides, "
                    "the lower bound is -clip_value")
    return None


@check("clip_by_value_untouched", _value_inputs,
       doc="returns a new dict of new arrays and leaves grads unchanged")
def clip_by_value_untouched(inputs, clip_by_value):
    _, out = _call_untouched(clip_by_value, _copy(inputs["grads"]), inputs["clip_value"])
    return out


@clip_by_value_untouched.verdict
def clip_by_value_untouched(inputs, outputs):
    return _untouched_problem(inputs, outputs, "clip_by_value")


# --------------------------------------------------------------------------- #
# clip_by_global_norm
# --------------------------------------------------------------------------- #
@check("clip_by_global_norm_total_norm", _norm_inputs,
       doc="total_norm of arrays of norms 3s, 4s, 12s is 13s, measured before clipping")
def clip_by_global_norm_total_norm(inputs, clip_by_global_norm):
    _, total = _global_result(clip_by_global_norm(_copy(inputs["grads"]), inputs["max_norm"]))
    _, total_big = _global_result(
        clip_by_global_norm(_copy(inputs["grads"]), inputs["big_max_norm"]))
    return {"total_norm": np.asarray(total, dtype=np.float64),
            "total_norm_unclipped": np.asarray(total_big, dtype=np.float64)}


@clip_by_global_norm_total_norm.verdict
def clip_by_global_norm_total_norm(inputs, outputs):
    # the arrays have norms 3s, 4s and 12s; every plausible wrong recipe gives another number
    norms, total = _norms(inputs), _total(inputs)
    wrong = {
        sum(norms): "the sum of the three arrays' norms: square every entry of every array, "
                    "add them all up, and take one square root at the end",
        total ** 2: f"the sum of squares ({total ** 2:.9g}) without the final square root",
        max(norms): "the largest array norm; the global norm combines every array",
        inputs["max_norm"]: "the norm *after* clipping; return the norm measured before",
    }
    for key, when in (("total_norm", f"max_norm={inputs['max_norm']:.9g}"),
                      ("total_norm_unclipped", f"max_norm={inputs['big_max_norm']:.9g}")):
        got = outputs[key]
        if got.size != 1:
            return f"total_norm must be a single number, got an array of shape {got.shape}"
        value = float(_scalar(got))
        if np.isclose(value, total, rtol=VALUE_RTOL, atol=0):
            continue
        for number, bug in wrong.items():
            if np.isclose(value, number, rtol=VALUE_RTOL, atol=0):
                return (f"with {when} your total_norm is {value:.9g}, expected "
                        f"{total:.9g}: it is {bug}")
        return (f"with {when} your total_norm is {value:.9g}, expected the square root of "
                f"the sum of every squared entry, {total:.9g}")
    return None


@check("clip_by_global_norm_scaling", _norm_inputs,
       doc="above max_norm every array is multiplied by the same max_norm / total_norm")
def clip_by_global_norm_scaling(inputs, clip_by_global_norm):
    clipped, _ = _global_result(clip_by_global_norm(_copy(inputs["grads"]), inputs["max_norm"]))
    return _result_arrays(clipped, "out_", "clip_by_global_norm")


@clip_by_global_norm_scaling.verdict
def clip_by_global_norm_scaling(inputs, outputs):
    problem = _shapes_problem(inputs, outputs)
    if problem:
        return problem
    grads, max_norm = inputs["grads"], inputs["max_norm"]
    total = _total(inputs)
    scale = max_norm / total
    # the factor each array was multiplied by (least squares; exact for a pure rescaling)
    factors = {}
    for k in KEYS:
        g, out = grads[k], outputs[f"out_{k}"]
        if not np.all(np.isfinite(out)):
            return f"result[{k!r}] contains NaN or inf"
        f = float(np.vdot(g, out) / np.vdot(g, g))
        if not np.allclose(out, f * g, rtol=EXACT_RTOL, atol=1e-12):
            return (f"result[{k!r}] is not a multiple of grads[{k!r}]: clipping by the "
                    "global norm rescales every array, it never changes its direction "
                    "(np.clip on the entries is clip_by_value)")
        factors[k] = f
    if max(factors.values()) - min(factors.values()) > VALUE_RTOL * abs(scale):
        shown = ", ".join(f"{k} by {v:.3g}" for k, v in factors.items())
        return (f"the arrays were scaled by different factors ({shown}): each array was "
                "clipped by its own norm. Use one factor for all of them, "
                f"max_norm / total_norm = {max_norm:.9g} / {total:.9g} = {scale:.9g}, so that the "
                "direction of the whole gradient is kept")
    f = factors[KEYS[0]]
    if not np.isclose(f, scale, rtol=VALUE_RTOL, atol=0):
        hint = ""
        if np.isclose(f, 1.0):
            hint = ": the global norm is above max_norm, so the gradients must shrink"
        elif np.isclose(f, total / max_norm):
            hint = ": the factor is upside down (total_norm / max_norm)"
        return (f"every array was multiplied by {f:.9g}, expected max_norm / total_norm = "
                f"{max_norm:.9g} / {total:.9g} = {scale:.9g}{hint}")
    return None


@check("clip_by_global_norm_noop", _norm_inputs,
       doc="below max_norm the gradients come back unchanged")
def clip_by_global_norm_noop(inputs, clip_by_global_norm):
    clipped, _ = _global_result(
        clip_by_global_norm(_copy(inputs["grads"]), inputs["big_max_norm"]))
    return _result_arrays(clipped, "out_", "clip_by_global_norm")


@clip_by_global_norm_noop.verdict
def clip_by_global_norm_noop(inputs, outputs):
    problem = _shapes_problem(inputs, outputs)
    if problem:
        return problem
    big, total = inputs["big_max_norm"], _total(inputs)
    for k in KEYS:
        g, out = inputs["grads"][k], outputs[f"out_{k}"]
        if not np.allclose(out, g, rtol=VALUE_RTOL, atol=VALUE_ATOL):
            ratio = float(np.vdot(g, out) / np.vdot(g, g))
            below = f"with total_norm {total:.9g} below max_norm {big:.9g}"
            if np.isclose(ratio, big / total):
                return (f"{below} your gradients were scaled *up* by {ratio:.9g}: clipping "
                        "only ever shrinks, so below the threshold leave them unchanged "
                        "(scale = 1)")
            return (f"{below}, result[{k!r}] must equal "
                    f"grads[{k!r}] (scale 1); it differs (max abs error "
                    f"{float(np.max(np.abs(out - g))):.3g})")
    return None


@check("clip_by_global_norm_untouched", _norm_inputs,
       doc="returns a new dict of new arrays and leaves grads unchanged, clipped or not")
def clip_by_global_norm_untouched(inputs, clip_by_global_norm):
    out = {}
    for label, max_norm in (("", inputs["max_norm"]), ("noop_", inputs["big_max_norm"])):
        result, seen = _call_untouched(clip_by_global_norm, _copy(inputs["grads"]), max_norm)
        _global_result(result)
        out.update({label + k: v for k, v in seen.items()})
    return out


@clip_by_global_norm_untouched.verdict
def clip_by_global_norm_untouched(inputs, outputs):
    problem = _untouched_problem(inputs, outputs, "clip_by_global_norm")
    if problem:
        return f"when clipping (max_norm={inputs['max_norm']:g}): {problem}"
    noop = {k[len("noop_"):]: v for k, v in outputs.items() if k.startswith("noop_")}
    problem = _untouched_problem(inputs, noop, "clip_by_global_norm")
    if problem:
        return f"when the norm is below max_norm={inputs['big_max_norm']:g}: {problem}"
    return None


# --------------------------------------------------------------------------- #
# Hidden checks: shapes drawn anew for every submission, small edge sizes (1) included
# --------------------------------------------------------------------------- #
# A gradient dict cannot cross the channel as it is: its arrays travel as
# separate named inputs (``g_Wx`` (D, H), ``g_Wh`` (H, H), ``g_b`` (H,)) and
# ``run`` rebuilds the dict; a threshold is a 0-d array.  After the call
# ``run`` also hands back the dict's arrays (``after_*``), which must equal
# the originals: the functions must leave their input untouched.
def _draw_grads(rng, prefix, scale):
    s = regime_sizes(rng, GENERIC, "DH")  # every array has two entries or more
    shapes = {"Wx": (s["D"], s["H"]), "Wh": (s["H"], s["H"]), "b": (s["H"],)}
    return {f"{prefix}{k}": scale * rng.standard_normal(shapes[k]) for k in KEYS}


def _grads_of(inputs, prefix):
    return {k: np.array(inputs[f"{prefix}{k}"], dtype=np.float64, copy=True) for k in KEYS}


def _hidden_outputs(result, grads, prefix=""):
    """The arrays of a returned dict as ``<prefix>clipped_<key>``, and grads' as
    ``<prefix>after_<key>`` (a missing key is reported by the verdict)."""
    if not isinstance(result, dict):
        raise TypeError(f"the function must return a dict name -> array, got "
                        f"{type(result).__name__}")
    out = {f"{prefix}clipped_{k}": result[k] for k in KEYS if k in result}
    out.update({f"{prefix}after_{k}": grads[k] for k in KEYS})
    return out


case_words(
    edge=("after",),
    big_="a gradient whose global norm is above max_norm",
    small_="a gradient whose global norm is below max_norm",
    clipped="in the dict you return",
    after="your argument grads after the call: it must be left untouched",
)


def _draw_value(rng):
    inputs = _draw_grads(rng, "g_", scale=0.3)
    clip_value = float(rng.uniform(0.3, 1.5))
    # every array has entries inside the interval and entries beyond it on both sides
    for k in KEYS:
        flat = inputs[f"g_{k}"].reshape(-1)
        flat[:] = np.clip(flat, -0.9 * clip_value, 0.9 * clip_value)
        flat[0] = clip_value + rng.uniform(0.2, 2.0)
        flat[1] = -clip_value - rng.uniform(0.2, 2.0)
        rng.shuffle(flat)
    inputs["clip_value"] = np.array(clip_value)
    return inputs


@check("clip_by_value_hidden", _draw_value, hidden=True,
       outputs=tuple(f"{n}_{k}" for n in ("clipped", "after") for k in KEYS),
       doc="clip_by_value on random shapes and threshold; input untouched")
def clip_by_value_hidden(inputs, clip_by_value):
    grads = _grads_of(inputs, "g_")
    return _hidden_outputs(clip_by_value(grads, float(inputs["clip_value"])), grads)


def _global_norm(arrays):
    return float(np.sqrt(sum(np.sum(v * v) for v in arrays.values())))


def _draw_global(rng):
    """One gradient above the threshold (``big_``), one below (``small_``)."""
    big = _draw_grads(rng, "big_", scale=1.0)
    small = _draw_grads(rng, "small_", scale=1.0)
    # fixed regimes, random values: `small` has a norm below 1 and below max_norm (not
    # clipped), `big` one above 2 and well above max_norm (clipped)
    small_norm, big_norm = rng.uniform(0.3, 0.8), rng.uniform(4.0, 12.0)
    small = {k: v * small_norm / _global_norm(small) for k, v in small.items()}
    big = {k: v * big_norm / _global_norm(big) for k, v in big.items()}
    low, high = max(1.5 * small_norm, 1.2), 0.75 * big_norm
    inputs = {**big, **small}
    inputs["max_norm"] = np.array(rng.uniform(low, high))
    return inputs


@check("clip_by_global_norm_hidden", _draw_global, hidden=True,
       outputs=tuple(f"{label}{n}" for label in ("big_", "small_")
                     for n in (*(f"clipped_{k}" for k in KEYS), "total_norm",
                               *(f"after_{k}" for k in KEYS))),
       doc="clip_by_global_norm above and below the threshold; total_norm; input untouched")
def clip_by_global_norm_hidden(inputs, clip_by_global_norm):
    out = {}
    for label in ("big_", "small_"):
        grads = _grads_of(inputs, label)
        clipped, total = _global_result(clip_by_global_norm(grads, float(inputs["max_norm"])))
        out.update(_hidden_outputs(clipped, grads, label))
        out[f"{label}total_norm"] = np.reshape(np.asarray(total, dtype=np.float64), (1,))
    return out
