"""Numerical gradient checking, and the course's one tolerance policy.

Three tools, from the smallest to the one you will use most:

* ``eval_numerical_gradient(f, x, df)`` -- centred finite differences of a
  function of one array;
* ``rel_error(x, y)`` / ``rel_error_norm(x, y)`` -- how far apart two gradients are;
* ``check_layer_gradients(forward, backward, inputs)`` -- checks every gradient
  of a layer at once and prints a small table::

      report = check_layer_gradients(
          rnn_step_forward, rnn_step_backward,
          dict(x=x, prev_h=prev_h, Wx=Wx, Wh=Wh, b=b))
      print(report)
      assert report.ok(1e-7), report

How accurate should a correct gradient be?  With the step ``h = 1e-5`` the
centred difference has a truncation error of order ``h**2 = 1e-10`` and a
rounding error of order ``1e-16 / h = 1e-11`` (relative to the size of the
function).  A correct float64 backward pass therefore shows relative errors
around 1e-9 or below; anything above 1e-7 is a bug, not noise.

The course's checks (:mod:`rnn_course.checks`) use the same finite
differences, split in two halves so that the grader never relies on numbers a
student's kernel computed: :func:`perturbed_outputs` evaluates a correct
forward pass at every perturbed point (once, when the course is released),
:func:`numeric_gradient` turns those values into a gradient, and
:func:`gradient_matches` / :func:`gradient_problem` judge an analytic gradient
against it.  The step and every tolerance of the course are defined here,
once (see "Tolerances" below).

This module contains no solutions: it only compares what your backward pass
returns with what the forward pass implies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "eval_numerical_gradient",
    "rel_error",
    "rel_error_norm",
    "check_layer_gradients",
    "GradientCheck",
    "GradientReport",
]

# --------------------------------------------------------------------------- #
# Tolerances: the course's one policy (checks, hidden comparisons, this module)
# --------------------------------------------------------------------------- #
FD_STEP = 1e-5
"""Centred-difference step: truncation error ~1e-10, rounding error ~1e-11."""
GRAD_TOL = 1e-7
"""Largest normwise relative error (``rel_error_norm``) of a correct gradient."""
GATED_GRAD_TOL = 1e-6
"""The same for the gated cells (LSTM): their finite differences go through products
of sigmoids and tanh and come out about ten times less accurate (a correct float64
backward pass still scores ~1e-9)."""
LINEAR_TOL = 1e-5
"""Gradient tolerance of a diagnosis only ("right where tanh is almost linear")."""
VALUE_RTOL, VALUE_ATOL = 1e-6, 1e-8
"""A function's outputs vs their expected values (``np.allclose``), visible and hidden
checks alike: a closed form, a correct forward's values, the reference's outputs on the
same inputs.  Loose enough for the usual numerical guards (``max_norm / (total_norm +
1e-6)`` is off by about 1e-7 relative), far tighter than any bug's error."""
EXACT_RTOL = 1e-9
"""Closed forms of a few operations (a product of scalars, a sigmoid of one number)."""
FD_VALUE_RTOL, FD_VALUE_ATOL = 1e-6, 1e-8
"""Values computed from finite differences (norms of numeric gradients), entrywise; the
absolute part is relative to the scale of the values."""
HIDDEN_RTOL, HIDDEN_ATOL = VALUE_RTOL, VALUE_ATOL
"""A hidden check's outputs vs the reference's on the same inputs: the same policy."""

# Below this, |x| + |y| is treated as zero in the elementwise error (CS231n's value).
_ELEMENT_FLOOR = 1e-8


def _as_float_array(f_value, what):
    """The value of ``f`` as a fresh float64 array, with a helpful error for tuples."""
    if isinstance(f_value, tuple):
        raise TypeError(
            f"{what} returned a tuple of {len(f_value)} items; the function to "
            "differentiate must return one array or number. If it is a forward pass "
            "returning (out, cache), wrap it: lambda v: forward(v, ...)[0]"
        )
    # copy=True: f may return (a view of) its argument or an internal buffer
    # that the next evaluation overwrites.
    return np.array(f_value, dtype=np.float64, copy=True)


# --------------------------------------------------------------------------- #
# Finite differences, in two halves: evaluations, then the gradient
# --------------------------------------------------------------------------- #
def perturbed_outputs(f, args: dict, names, step: float = FD_STEP, prefix: str = "") -> dict:
    """Values of ``f(**args')`` for every centred perturbation of the named arguments.

    For each name and each entry ``idx`` of ``args[name]`` (in C order), ``f``
    is called on fresh float64 copies of ``args`` with that one entry moved by
    ``+step`` and by ``-step``.  :func:`numeric_gradient` turns the values into
    a gradient.

    Inputs:
    - f: function of keyword arrays returning one array (of any shape S)
    - args: dict name -> array
    - names: the arguments to perturb
    - step: the finite-difference step
    - prefix: prepended to the keys of the result

    Returns:
    - dict with, for each name, ``<prefix>plus_<name>`` and
      ``<prefix>minus_<name>``, arrays of shape (size of args[name],) + S
    """
    out = {}
    for name in names:
        plus, minus = [], []
        for idx in np.ndindex(np.shape(args[name])):
            for sign, store in ((1.0, plus), (-1.0, minus)):
                moved = {k: np.array(v, dtype=np.float64, copy=True) for k, v in args.items()}
                moved[name][idx] += sign * step
                store.append(_as_float_array(f(**moved), "f"))
        out[f"{prefix}plus_{name}"] = np.array(plus)
        out[f"{prefix}minus_{name}"] = np.array(minus)
    return out


class OutputShapeError(ValueError):
    """The values in a finite-difference table do not match the upstream gradient."""


def numeric_gradient(tables: dict, name: str, dout, shape, step: float = FD_STEP,
                     prefix: str = "") -> np.ndarray:
    """Centred-difference gradient of ``sum(f * dout)`` with respect to argument ``name``.

    Inputs:
    - tables: holds the tables of :func:`perturbed_outputs`
    - name: the argument
    - dout: upstream gradient, of the shape of one value of f
    - shape: the shape of the argument
    - step: the step used by :func:`perturbed_outputs`

    Returns:
    - array of shape ``shape``

    Raises OutputShapeError when the values of f do not have ``dout``'s shape.
    """
    plus = np.asarray(tables[f"{prefix}plus_{name}"], dtype=np.float64)
    minus = np.asarray(tables[f"{prefix}minus_{name}"], dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    size = int(np.prod(shape))
    if plus.shape != (size,) + dout.shape or minus.shape != plus.shape:
        raise OutputShapeError(
            f"the forward pass returned values of shape {plus.shape[1:]} when {name} is "
            f"perturbed, expected {dout.shape}")
    # subtract first, then weight: keeps the rounding error of the difference
    # independent of the size of sum(f * dout)
    diff = (plus - minus).reshape(size, -1) @ dout.reshape(-1)
    return (diff / (2.0 * step)).reshape(shape)


def eval_numerical_gradient(f, x, df=None, h=FD_STEP):
    """Centred finite-difference gradient of a function of one array.

    For every entry ``x[idx]`` it builds two perturbed *copies* of ``x``,
    ``x_plus`` (entry + h) and ``x_minus`` (entry - h), and calls ``f(x_plus)``
    and ``f(x_minus)``.  The caller's ``x`` is never modified, so ``f`` must
    compute its value from its argument: a function that ignores its argument
    and reads a captured array instead gets a gradient of zero.

    Inputs:
    - f: function taking an array of the shape of ``x`` and returning either a
      number (then ``df`` is None) or an array of any shape (then ``df`` is required)
    - x: the point at which to differentiate, array-like of any shape
      (converted to float64; not modified)
    - df: None if ``f`` returns a number; otherwise the upstream gradient, an
      array of the same shape as ``f(x)``
    - h: the finite-difference step, a positive float

    Returns:
    - grad: array of the same shape as ``x`` (float64).  If ``f`` returns a
      number, ``grad = df/dx``; if it returns an array, ``grad`` is the gradient
      of ``sum(f(x) * df)`` with respect to ``x``.
    """
    if not h > 0:
        raise ValueError(f"h must be a positive step, got {h!r}")
    x = np.array(x, dtype=np.float64, copy=True)  # our own copy: the caller's array is safe
    if x.size == 0:
        return np.zeros_like(x)
    tables = perturbed_outputs(lambda v: f(v), {"v": x}, ("v",), step=h)
    value_shape = tables["plus_v"].shape[1:]
    if df is None:
        if value_shape != ():
            raise ValueError(
                f"f returned an array of shape {value_shape}; pass df, the upstream "
                "gradient of the same shape (or make f return a number)"
            )
        df = np.array(1.0)
    else:
        df = np.asarray(df, dtype=np.float64)
        if value_shape != df.shape:
            raise ValueError(
                f"df has shape {df.shape} but f returned shape {value_shape}; "
                "they must be equal"
            )
    return numeric_gradient(tables, "v", df, x.shape, step=h)


def _pair(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        # broadcasting would hide a gradient of the wrong shape, e.g. (1, H) vs (H,)
        raise ValueError(f"cannot compare arrays of shapes {x.shape} and {y.shape}")
    return x, y


def rel_error(x, y):
    """Maximum elementwise relative error (the CS231n definition).

    ``max(|x - y| / max(1e-8, |x| + |y|))`` over all entries: 0 for equal
    arrays, at most 1, NaN if either contains NaN.  It is strict: an entry
    whose true value is about zero, computed as 1e-12 by one method and 0 by
    the other, already scores 1e-4.  Use ``rel_error_norm`` to judge a whole
    gradient.

    Inputs:
    - x, y: arrays (or numbers) of the same shape

    Returns:
    - float, the largest relative error of any entry (0.0 for empty arrays)
    """
    x, y = _pair(x, y)
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(_ELEMENT_FLOOR, np.abs(x) + np.abs(y))))


def rel_error_norm(x, y):
    """Normwise relative error ``||x - y|| / (||x|| + ||y||)`` (Frobenius norms).

    Why a second measure: the finite-difference estimate of every entry has an
    absolute error of about 1e-11 times the size of the function, so entries
    whose true gradient is tiny (a saturated tanh, a nearly closed gate) have
    large *elementwise* relative errors although the gradient is right.  The
    normwise error measures the error against the size of the whole gradient,
    so it stays around 1e-10 for a correct backward pass and is well above 1e-7
    for a wrong one.  It is 0 when both arrays are zero, at most 1, NaN if
    either contains NaN.

    Inputs:
    - x, y: arrays (or numbers) of the same shape

    Returns:
    - float, the normwise relative error
    """
    x, y = _pair(x, y)
    denom = np.linalg.norm(x) + np.linalg.norm(y)
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(x - y) / denom)


def gradient_matches(got, want, tol: float = GRAD_TOL) -> bool:
    """True when ``got`` has ``want``'s shape, is finite and within ``tol`` (normwise)."""
    got = np.asarray(got)
    return (got.shape == np.shape(want) and got.dtype.kind in "fiub"
            and bool(np.all(np.isfinite(got)))
            and rel_error_norm(got.astype(np.float64), want) <= tol)


def gradient_problem(name: str, got, want, tol: float = GRAD_TOL) -> "str | None":
    """Shape, then finiteness, then normwise relative error of a gradient: None or a message.

    ``want`` is the finite-difference gradient of a correct forward pass.
    """
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{name} has shape {got.shape}, expected {want.shape}"
    if got.dtype.kind not in "fiub" or not np.all(np.isfinite(got)):
        return f"{name} contains NaN or inf"
    err = rel_error_norm(got.astype(np.float64), want)
    if err > tol:
        return (f"{name} disagrees with the finite-difference gradient of a correct forward "
                f"pass (relative error {err:.1e}, should be below {tol:.0e})")
    return None


# --------------------------------------------------------------------------- #
# Checking a whole layer
# --------------------------------------------------------------------------- #
def _fmt_index(idx):
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


@dataclass(frozen=True)
class GradientCheck:
    """The comparison of one gradient (one row of a ``GradientReport``).

    Attributes:
    - name: name of the gradient, "d" + the input's name (e.g. "dWh")
    - analytic: what the backward pass returned (float64 array, or None if it
      returned None)
    - numeric: the finite-difference gradient, of the input's shape
    - rel_error: normwise relative error (``rel_error_norm``); inf if the
      analytic gradient is missing or has the wrong shape
    - max_rel_error: largest elementwise relative error (``rel_error``)
    - worst_index: index of the entry with the largest absolute difference,
      or None if there is nothing to compare
    - note: why the row failed without a comparison ("" if it did not)
    """

    name: str
    analytic: np.ndarray | None
    numeric: np.ndarray
    rel_error: float
    max_rel_error: float
    worst_index: tuple | None
    note: str = ""

    def ok(self, tol):
        """True if the normwise relative error is at most ``tol`` (NaN fails)."""
        return bool(self.rel_error <= tol)

    def worst_entry(self):
        """One line on the worst entry.

        E.g. "dWh[2, 3]: analytic 0.12, numeric 0.31, rel error 4.4e-01", or the
        note if there was nothing to compare.
        """
        if self.worst_index is None:
            return f"{self.name}: {self.note}"
        a = float(self.analytic[self.worst_index])
        n = float(self.numeric[self.worst_index])
        r = rel_error(a, n)
        return (
            f"{self.name}{_fmt_index(self.worst_index)}: analytic {a:.6g}, "
            f"numeric {n:.6g}, rel error {r:.1e}"
        )


class GradientReport:
    """The result of ``check_layer_gradients``: one ``GradientCheck`` per input.

    ``print(report)`` shows a table; ``report.ok(tol)`` says whether every
    gradient is within ``tol`` (normwise relative error) and no input was
    modified in place; ``report["dWh"]`` (or ``report["Wh"]``) is one row;
    ``report.worst`` is the row with the largest error.
    """

    def __init__(self, checks, tol=GRAD_TOL, notes=()):
        self.checks = tuple(checks)
        self.tol = tol
        self.notes = tuple(notes)

    def __getitem__(self, name):
        for c in self.checks:
            if c.name in (name, "d" + name):
                return c
        raise KeyError(f"no gradient named {name!r}; have {[c.name for c in self.checks]}")

    def __iter__(self):
        return iter(self.checks)

    def __len__(self):
        return len(self.checks)

    @property
    def errors(self):
        """dict gradient name -> normwise relative error."""
        return {c.name: c.rel_error for c in self.checks}

    @property
    def worst(self):
        """The row with the largest normwise relative error (NaN counts as largest)."""
        return max(self.checks, key=lambda c: np.inf if np.isnan(c.rel_error) else c.rel_error)

    def failed(self, tol=None):
        """Names of the gradients whose error is above ``tol`` (default: ``self.tol``)."""
        tol = self.tol if tol is None else tol
        return [c.name for c in self.checks if not c.ok(tol)]

    def ok(self, tol=None):
        """True if every gradient is within ``tol`` and no argument was modified in place.

        Inputs:
        - tol: largest acceptable normwise relative error (default: ``self.tol``)
        """
        return not self.failed(tol) and not self.notes

    def assert_ok(self, tol=None):
        """Raise AssertionError showing the table unless ``self.ok(tol)``."""
        if not self.ok(tol):
            raise AssertionError("gradient check failed\n" + str(self))

    def __str__(self):
        rows = [("gradient", "shape", "rel error", "max elem", "status")]
        for c in self.checks:
            rows.append((
                c.name,
                str(tuple(c.numeric.shape)),
                f"{c.rel_error:.1e}",
                f"{c.max_rel_error:.1e}",
                "ok" if c.ok(self.tol) else "FAIL",
            ))
        widths = [max(len(r[j]) for r in rows) for j in range(5)]
        lines = ["  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows]
        if self.checks and self.worst.worst_index is not None:
            lines.append("worst: " + self.worst.worst_entry())
        for c in self.checks:
            if c.note:
                lines.append(f"{c.name}: {c.note}")
        lines.extend("warning: " + n for n in self.notes)
        bad = self.failed()
        if bad:
            lines.append(f"FAILED (rel error > {self.tol:.0e}): {', '.join(bad)}")
        elif not self.notes:
            lines.append(f"all {len(self.checks)} gradients within {self.tol:.0e}")
        return "\n".join(lines)

    __repr__ = __str__


def _copy_args(inputs):
    # fresh copies for every call, so a forward pass that writes into an
    # argument can neither corrupt the next evaluation nor the caller's data
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}


def _split_forward(result):
    if not isinstance(result, tuple) or len(result) < 2:
        raise ValueError(
            "forward must return a tuple (output, ..., cache) whose last item is the "
            f"cache, got {type(result).__name__}"
        )
    return result[:-1]


def _compare(name, analytic, numeric):
    if analytic is None:
        return GradientCheck(name, None, numeric, np.inf, np.inf, None,
                             "backward returned None (not implemented yet?)")
    analytic = np.array(analytic, dtype=np.float64, copy=True)
    if analytic.shape != numeric.shape:
        return GradientCheck(name, analytic, numeric, np.inf, np.inf, None,
                             f"has shape {analytic.shape}, expected {numeric.shape}")
    diff = np.abs(analytic - numeric)
    # largest absolute difference: the entry that matters most for the gradient,
    # unlike the largest relative one, which is often a harmless near-zero entry
    # a NaN entry counts as the worst
    worst = None
    if diff.size:
        flat = int(np.argmax(np.where(np.isnan(diff), np.inf, diff)))
        worst = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    return GradientCheck(name, analytic, numeric, rel_error_norm(analytic, numeric),
                         rel_error(analytic, numeric), worst)


def check_layer_gradients(forward, backward, inputs, upstream=None, argnames=None,
                          h=FD_STEP, seed=0, tol=GRAD_TOL):
    """Check every gradient of a layer against centred finite differences.

    The layer is a pair of functions following the course contract:
    ``forward(**inputs)`` returns ``(out_1, ..., out_K, cache)`` and
    ``backward(dout_1, ..., dout_K, cache)`` returns one gradient per input, in
    the order ``argnames``.  The scalar being differentiated is
    ``L = sum_k sum(out_k * dout_k)``.

    Examples::

        check_layer_gradients(rnn_step_forward, rnn_step_backward,
                              dict(x=x, prev_h=h, Wx=Wx, Wh=Wh, b=b))
        # two outputs, two upstream gradients
        check_layer_gradients(lstm_step_forward, lstm_step_backward,
                              dict(x=x, prev_h=h, prev_c=c, Wx=Wx, Wh=Wh, b=b))
        # extra arguments of backward: bind them first
        check_layer_gradients(rnn_forward, lambda dh, cache: rnn_backward(dh, cache),
                              dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b))

    Inputs:
    - forward: function called as ``forward(**inputs)``
    - backward: function called as ``backward(*upstream, cache)``
    - inputs: dict argument name -> value.  The arguments named in ``argnames``
      are arrays (converted to float64); any other value is passed unchanged.
      Nothing in it is modified.
    - upstream: the upstream gradients: None (random normal arrays of the
      outputs' shapes, from ``seed``), one array if forward has one output, or a
      tuple/list with one array per output
    - argnames: the input names, in the order in which ``backward`` returns their
      gradients (default: the keys of ``inputs``, in order); an entry None skips
      that returned value
    - h: finite-difference step
    - seed: seed of the random upstream gradients
    - tol: default tolerance of ``report.ok()`` and of the table's ok/FAIL column

    Returns:
    - report: a ``GradientReport`` with one row per checked input
    """
    if argnames is None:
        argnames = list(inputs)
    argnames = list(argnames)
    unknown = [a for a in argnames if a is not None and a not in inputs]
    if unknown:
        raise ValueError(f"argnames {unknown} are not keys of inputs {list(inputs)}")
    args = dict(inputs)
    for a in argnames:
        if a is not None:
            args[a] = np.array(inputs[a], dtype=np.float64, copy=True)

    # analytic pass, on copies so that in-place writes can be detected
    fwd_args = _copy_args(args)
    result = forward(**fwd_args)
    outs = [np.asarray(o) for o in _split_forward(result)]
    cache = result[-1]
    notes = [f"forward modified its argument {k!r} in place" for k, v in args.items()
             if isinstance(v, np.ndarray) and not np.array_equal(v, fwd_args[k], equal_nan=True)]

    if upstream is None:
        rng = np.random.default_rng(seed)
        douts = [rng.standard_normal(o.shape) for o in outs]
    else:
        douts = list(upstream) if isinstance(upstream, (tuple, list)) else [upstream]
        douts = [np.array(d, dtype=np.float64, copy=True) for d in douts]
        if len(douts) != len(outs):
            raise ValueError(f"forward returned {len(outs)} output(s) but {len(douts)} "
                             "upstream gradient(s) were given")
        for k, (d, o) in enumerate(zip(douts, outs, strict=True)):
            if d.shape != o.shape:
                raise ValueError(f"upstream gradient #{k} has shape {d.shape}, "
                                 f"output #{k} has shape {o.shape}")
    bwd_douts = [d.copy() for d in douts]
    grads = backward(*bwd_douts, cache)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(argnames):
        raise ValueError(f"backward returned {len(grads)} gradient(s) but argnames lists "
                         f"{len(argnames)}: {argnames}")
    for k, (d, d0) in enumerate(zip(bwd_douts, douts, strict=True)):
        if not np.array_equal(d, d0, equal_nan=True):
            label = "dout" if len(douts) == 1 else f"dout #{k}"
            notes.append(f"backward modified its upstream gradient {label} in place")

    # numeric pass: one output vector and one upstream vector, so that the
    # finite difference of all outputs is a single call
    dflat = np.concatenate([d.ravel() for d in douts])

    def outputs_of(name):
        def f(v):
            call_args = _copy_args(args)
            call_args[name] = v
            outs_v = _split_forward(forward(**call_args))
            return np.concatenate([np.asarray(o, dtype=np.float64).ravel() for o in outs_v])
        return f

    checks = []
    for name, g in zip(argnames, grads, strict=True):
        if name is None:
            continue
        numeric = eval_numerical_gradient(outputs_of(name), args[name], df=dflat, h=h)
        checks.append(_compare("d" + name, g, numeric))
    return GradientReport(checks, tol=tol, notes=notes)
