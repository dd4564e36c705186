"""Checks of the ``bptt`` assignment, visible and hidden.

Dimension letters: N batch size, T sequence length, D input dimension,
H hidden dimension.

``rnn_backward`` is judged against centred finite differences of a correct
``rnn_forward`` (the notebook provides one).  The loss is
``L = sum_t <dh[:, t], h_t>``.  The forward evaluations come from each check's
``oracle``, run once on ``autograder.reference`` when the course is released
(see :mod:`rnn_course.checks`); the student's kernel only computes gradients.

* Full BPTT: the oracle evaluates the forward pass at every perturbation of
  every input entry; ``verdict`` forms the numeric gradient of L.
* Truncated BPTT with ``truncate=k``: the gradient of the loss at step t
  flows back through the k cells t, t-1, ..., t-k+1 only.  That is exactly
  the gradient of ``<dh[:, t], h_t>`` when the forward pass of loss t starts
  at cell ``max(0, t-k+1)`` from a *constant* state (the unperturbed
  ``h[:, t-k]``, or ``h0`` itself when the window reaches the start).  So
  the oracle evaluates, for every loss t, that windowed forward pass at every
  perturbation, and ``verdict`` differentiates numerically.  Windows of
  other lengths, and fixed blocks, name the usual off-by-one and blocking
  bugs.

``gradient_norms_through_time`` is judged by a hand-computable scalar case
and by finite differences of the forward pass with respect to each earlier
hidden state.
"""

from __future__ import annotations

import functools

import numpy as np

from rnn_course.checks import (
    EDGE,
    GENERIC,
    Verdict,
    call,
    case_words,
    check,
    copies,
    modified_flags,
    modified_problem,
    shape_problem,
    unpack,
)
from rnn_course.checks.rnn_cell import draw_sizes, draw_weights
from rnn_course.contract import SEQ_ARGS, SEQ_GRADS, STEP_GRADS, returns
from rnn_course.gradcheck import (
    EXACT_RTOL,
    FD_VALUE_ATOL,
    FD_VALUE_RTOL,
    OutputShapeError,
    gradient_matches,
    gradient_problem,
    numeric_gradient,
    perturbed_outputs,
)

SEQ_RETURNS = returns("rnn_forward")  # h, cache
GRAD_OF = dict(zip(SEQ_ARGS, SEQ_GRADS, strict=True))


# --------------------------------------------------------------------------- #
# rnn_backward: kernel side
# --------------------------------------------------------------------------- #
def _seq_inputs(rng, N, T, D, H):
    return dict(x=rng.standard_normal((N, T, D)), h0=0.6 * rng.standard_normal((N, H)),
                Wx=0.6 * rng.standard_normal((D, H)),
                Wh=1.1 * rng.standard_normal((H, H)) / np.sqrt(H),
                b=0.3 * rng.standard_normal(H), dh=rng.standard_normal((N, T, H)))


def window_starts(kind: str, k, T: int) -> list:
    """First cell whose gradient the loss at step t reaches, for every t.

    - ``("window", k)``: per-loss truncation, ``max(0, t-k+1)`` (k None: 0, full BPTT)
    - ``("blocks_start", k)``: fixed blocks of k steps counted from the start
    - ``("blocks_end", k)``: fixed blocks of k steps counted from the end
    """
    if kind == "window":
        return [0 if k is None else max(0, t - k + 1) for t in range(T)]
    if kind == "blocks_start":
        return [(t // k) * k for t in range(T)]
    if kind == "blocks_end":
        return [max(0, T - k * ((T - 1 - t) // k + 1)) for t in range(T)]
    raise ValueError(kind)


def window_states(forward, args: dict, h_base: np.ndarray, starts) -> np.ndarray:
    """h_t as computed by loss t's forward pass, for every t: array (N, T, H).

    Loss t's pass starts at cell ``starts[t]`` from a constant state: h0 (an
    input, so it may be perturbed) when the start is 0, else the unperturbed
    state ``h_base[:, starts[t] - 1]``.
    """
    if all(s == 0 for s in starts):
        h, _ = unpack(forward(**args), SEQ_RETURNS, "rnn_forward")
        return np.asarray(h, dtype=np.float64)
    out = np.empty(h_base.shape)
    for t, s0 in enumerate(starts):
        start = args["h0"] if s0 == 0 else h_base[:, s0 - 1]
        h, _ = unpack(forward(args["x"][:, s0:t + 1], start, args["Wx"], args["Wh"], args["b"]),
                      SEQ_RETURNS, "rnn_forward")
        out[:, t] = np.asarray(h, dtype=np.float64)[:, -1]
    return out


def _run_backward(inp, rnn_backward, rnn_forward, truncates: dict):
    """The student's gradients for each ``truncate`` (label -> k), on the notebook's forward."""
    out = {}
    for label, k in truncates.items():
        args = copies(inp, SEQ_ARGS)
        _, cache = unpack(rnn_forward(**args), SEQ_RETURNS, "rnn_forward")
        dh = np.array(inp["dh"], copy=True)
        result = (call(rnn_backward, "rnn_backward", dh, cache) if k is None
                  else call(rnn_backward, "rnn_backward", dh, cache, truncate=k))
        grads = unpack(result, SEQ_GRADS, "rnn_backward")
        out.update({f"{label}_{g}": v for g, v in zip(SEQ_GRADS, grads, strict=True)})
        out[f"{label}_modified"] = np.array([int(not np.array_equal(dh, inp["dh"]))])
    return out


def _tables(schemes: dict):
    """An ``oracle``: finite-difference tables of a correct forward, per scheme.

    ``schemes`` maps a label to ``(kind, k)`` (see :func:`window_starts`).
    """
    def oracle(inp, rnn_forward):
        args = copies(inp, SEQ_ARGS)
        h_base, _ = unpack(rnn_forward(**copies(inp, SEQ_ARGS)), SEQ_RETURNS, "rnn_forward")
        h_base = np.asarray(h_base, dtype=np.float64)
        T = args["x"].shape[1]
        out = {}
        for label, (kind, k) in schemes.items():
            starts = window_starts(kind, k, T)

            def f(starts=starts, **a):
                return window_states(rnn_forward, a, h_base, starts)

            out.update(perturbed_outputs(f, args, SEQ_ARGS, prefix=f"{label}_"))
        return out
    return oracle


# --------------------------------------------------------------------------- #
# rnn_backward: grader side
# --------------------------------------------------------------------------- #
def _numeric(inp, out, scheme):
    """Numeric gradients (dict grad name -> array) of the loss under one scheme."""
    return {GRAD_OF[n]: numeric_gradient(out, n, inp["dh"], inp[n].shape, prefix=f"{scheme}_")
            for n in SEQ_ARGS}


def _got(out, label):
    return {g: np.asarray(out[f"{label}_{g}"]) for g in SEQ_GRADS}


def _all_match(got, want, names=SEQ_GRADS) -> bool:
    return all(gradient_matches(got[g], want[g]) for g in names)


def _first_problem(got, want, names=SEQ_GRADS, hints=None):
    hints = hints or {}
    for g in names:
        problem = gradient_problem(g, got[g], want[g])
        if problem:
            return problem + (f"; {hints[g]}" if g in hints else "")
    return None


def _shape_problems(inp, got):
    for name, g in GRAD_OF.items():
        problem = shape_problem(g, got[g], inp[name].shape)
        if problem:
            return problem + f" (the shape of {name})"
    return None


def _safe(verdict):
    """Turn a forward pass of the wrong shape into a message instead of an exception."""
    def wrapped(inp, out):
        try:
            return verdict(inp, out)
        except OutputShapeError as exc:
            return f"{exc}: check the provided rnn_forward cell is unchanged"
    return wrapped


def _shares(scheme: str, labels=("f",), names=SEQ_GRADS):
    """Each gradient ``names`` of each run ``labels`` is worth the same share of the
    check's points: a failing verdict earns the share of those that match the
    finite differences of ``scheme`` (one wrong gradient costs its own share)."""
    def wrap(verdict):
        @functools.wraps(verdict)
        def wrapped(inp, out):
            message = verdict(inp, out)
            if message is None or isinstance(message, Verdict):
                return message
            try:
                want = _numeric(inp, out, scheme)
            except (OutputShapeError, KeyError):
                return message
            pairs = [(_got(out, label)[g], want[g]) for label in labels for g in names]
            right = sum(gradient_matches(got, w) for got, w in pairs)
            return Verdict(message, right / len(pairs)) if right else message
        return wrapped
    return wrap


LOCAL_HINTS = {
    "dx": "dx[:, t] is the pre-activation gradient of step t times Wx.T",
    "dh0": "dh0 is what flows from cell 0 back into h0: its pre-activation gradient times Wh.T",
    "dWx": "dWx sums x_t.T @ da_t over every step t",
    "dWh": "dWh sums h_{t-1}.T @ da_t over every step t (h_{t-1} entered step t: hs[:, t])",
    "db": "db sums da_t over the batch and over every step",
}


@check("rnn_backward_shapes", lambda rng: _seq_inputs(rng, 2, 3, 3, 4),
       doc="five gradients of the right shapes; dh is not modified")
def rnn_backward_shapes(inp, rnn_backward, rnn_forward):
    return _run_backward(inp, rnn_backward, rnn_forward, {"f": None})


@rnn_backward_shapes.verdict
def rnn_backward_shapes(inp, out):
    got = _got(out, "f")
    N, T, H = inp["dh"].shape
    if got["dx"].shape == (T, N, inp["x"].shape[2]):
        return "dx is time-major (T, N, D); expected batch first (N, T, D) like x"
    if got["db"].shape in ((T, H), (N, H), (N, T, H)):
        return f"db has shape {got['db'].shape}, expected (H,): sum over the batch and over time"
    problem = _shape_problems(inp, got)
    if problem:
        return problem
    if out["f_modified"][0]:
        return "rnn_backward modified dh in place; copy it (or add into a new array) first"
    return None


@check("rnn_backward_single_step", lambda rng: _seq_inputs(rng, 3, 1, 3, 4),
       doc="with T = 1 (nothing to carry) all five gradients match finite differences",
       oracle=_tables({"full": ("window", None)}))
def rnn_backward_single_step(inp, rnn_backward, rnn_forward):
    return _run_backward(inp, rnn_backward, rnn_forward, {"f": None})


@rnn_backward_single_step.verdict
@_shares("full")
@_safe
def rnn_backward_single_step(inp, out):
    got, want = _got(out, "f"), _numeric(inp, out, "full")
    problem = _shape_problems(inp, got)
    if problem:
        return problem
    problem = _first_problem(got, want, hints=LOCAL_HINTS)
    if problem:
        return ("with a single step there is nothing to carry, so the bug is in the "
                f"per-step part: {problem}")
    return None


def _bptt_inputs(rng):
    return _seq_inputs(rng, 2, 5, 3, 4)


@check("rnn_backward_dx_dh0", _bptt_inputs,
       doc="full BPTT: dx and dh0 match finite differences over T = 5 steps",
       oracle=_tables({"full": ("window", None), "w1": ("window", 1)}))
def rnn_backward_dx_dh0(inp, rnn_backward, rnn_forward):
    return _run_backward(inp, rnn_backward, rnn_forward, {"f": None})


@rnn_backward_dx_dh0.verdict
@_shares("full", names=("dx", "dh0"))
@_safe
def rnn_backward_dx_dh0(inp, out):
    got, want, local = _got(out, "f"), _numeric(inp, out, "full"), _numeric(inp, out, "w1")
    problem = _shape_problems(inp, got)
    if problem:
        return problem
    if _all_match(got, want, ("dx", "dh0")):
        return None
    if _all_match(got, local, ("dx",)):
        return ("dx only holds each step's local gradient: add the gradient carried back "
                "from step t+1 (dh[:, t] + the carry) before going through step t's tanh")
    if np.allclose(got["dh0"], inp["dh"][:, 0]):
        return ("dh0 equals dh[:, 0]: dh0 is the gradient that flows from cell 0 back into "
                "the initial state h0, through tanh' and Wh.T")
    if np.allclose(got["dh0"], 0.0):
        return "dh0 is zero: return the gradient carried back past the first step"
    if gradient_matches(got["dx"][:, ::-1], want["dx"]):
        return "dx is reversed in time: dx[:, t] belongs to x[:, t]"
    if gradient_matches(got["dx"], want["dx"]) and not gradient_matches(got["dh0"], want["dh0"]):
        return gradient_problem("dh0", got["dh0"], want["dh0"]) + "; " + LOCAL_HINTS["dh0"]
    return _first_problem(got, want, ("dx", "dh0")) + (
        "; loop from t = T-1 down to 0: the gradient reaching h_t is dh[:, t] plus what "
        "step t+1 sends back (its pre-activation gradient times Wh.T)")


@check("rnn_backward_weights", _bptt_inputs,
       doc="full BPTT: dWx, dWh and db match finite differences over T = 5 steps",
       oracle=_tables({"full": ("window", None), "w1": ("window", 1)}))
def rnn_backward_weights(inp, rnn_backward, rnn_forward):
    return _run_backward(inp, rnn_backward, rnn_forward, {"f": None})


@rnn_backward_weights.verdict
@_shares("full", names=("dWx", "dWh", "db"))
@_safe
def rnn_backward_weights(inp, out):
    got, want = _got(out, "f"), _numeric(inp, out, "full")
    names = ("dWx", "dWh", "db")
    problem = _shape_problems(inp, got)
    if problem:
        return problem
    if _all_match(got, want, names):
        return None
    if gradient_matches(got["dWh"].T, want["dWh"]):
        return "dWh is transposed: it sums h_{t-1}.T @ da_t, of Wh's shape (H, H)"
    if _all_match(got, want, ("dx",)):
        wrong = ", ".join(g for g in names if not gradient_matches(got[g], want[g]))
        return (f"dx is right but {wrong} is not: the weights are shared by every step, so "
                "their gradients are sums over all T steps (accumulate with +=, do not "
                "overwrite)")
    return _first_problem(got, want, names, hints=LOCAL_HINTS)


@check("rnn_backward_truncate_one", _bptt_inputs,
       doc="truncate=1: the loss at step t reaches cell t only",
       oracle=_tables({"w1": ("window", 1), "w2": ("window", 2),
                       "full": ("window", None)}))
def rnn_backward_truncate_one(inp, rnn_backward, rnn_forward):
    return _run_backward(inp, rnn_backward, rnn_forward, {"k": 1})


@rnn_backward_truncate_one.verdict
@_shares("w1", labels=("k",))
@_safe
def rnn_backward_truncate_one(inp, out):
    got, want, full = _got(out, "k"), _numeric(inp, out, "w1"), _numeric(inp, out, "full")
    problem = _shape_problems(inp, got)
    if problem:
        return problem
    if _all_match(got, want):
        return None
    if _all_match(got, full):
        return "truncate=1 returned the full BPTT gradient: the truncate argument is ignored"
    if _all_match(got, _numeric(inp, out, "w2")):
        return ("off by one: the loss at step t reaches 2 cells (t and t-1); truncate=1 "
                "means cell t only")
    return _first_problem(got, want) + (
        "; with truncate=1 nothing is carried between steps: each step's pre-activation "
        "gradient is dh[:, t] times tanh' (dh0 still gets cell 0's gradient times Wh.T)")


TRUNC_T, TRUNC_K = 6, 3


@check("rnn_backward_truncate_k", lambda rng: _seq_inputs(rng, 2, TRUNC_T, 2, 3),
       doc=f"truncate={TRUNC_K} over T = {TRUNC_T}: each loss flows back through "
           f"{TRUNC_K} cells",
       oracle=_tables({"wk": ("window", TRUNC_K), "wless": ("window", TRUNC_K - 1),
                       "wmore": ("window", TRUNC_K + 1), "full": ("window", None),
                       "bstart": ("blocks_start", TRUNC_K), "bend": ("blocks_end", TRUNC_K)}))
def rnn_backward_truncate_k(inp, rnn_backward, rnn_forward):
    return _run_backward(inp, rnn_backward, rnn_forward, {"k": TRUNC_K})


@rnn_backward_truncate_k.verdict
@_shares("wk", labels=("k",))
@_safe
def rnn_backward_truncate_k(inp, out):
    k = TRUNC_K
    got = _got(out, "k")
    problem = _shape_problems(inp, got)
    if problem:
        return problem
    want = _numeric(inp, out, "wk")
    if _all_match(got, want):
        return None
    if _all_match(got, _numeric(inp, out, "full")):
        return f"truncate={k} returned the full BPTT gradient: the truncate argument is ignored"
    if _all_match(got, _numeric(inp, out, "wmore")):
        return (f"off by one: the loss at step t reaches {k + 1} cells (t, ..., t-{k}); "
                f"truncate={k} means {k} cells: t, t-1, ..., t-{k - 1}")
    if _all_match(got, _numeric(inp, out, "wless")):
        return (f"off by one: the loss at step t reaches only {k - 1} cells (t, ..., "
                f"t-{k - 2}); truncate={k} means {k} cells: t, t-1, ..., t-{k - 1}")
    if (_all_match(got, _numeric(inp, out, "bstart"))
            or _all_match(got, _numeric(inp, out, "bend"))):
        return (f"you cut the sequence into fixed blocks of {k} steps (resetting the carried "
                "gradient every k steps), so a loss near a block boundary reaches fewer "
                f"cells. Here each loss has its own window: the loss at step t reaches the "
                f"{k} cells t, ..., t-{k - 1}, whatever t is")
    return _first_problem(got, want) + (
        f"; with truncate={k} the loss at step t reaches cells t, ..., t-{k - 1} (and h0 "
        "only if that window includes cell 0)")


@check("rnn_backward_truncate_long", _bptt_inputs,
       doc="truncate >= T is full BPTT",
       oracle=_tables({"full": ("window", None)}))
def rnn_backward_truncate_long(inp, rnn_backward, rnn_forward):
    T = inp["x"].shape[1]
    return _run_backward(inp, rnn_backward, rnn_forward, {"kT": T, "kmore": T + 2})


@rnn_backward_truncate_long.verdict
@_shares("full", labels=("kT", "kmore"))
@_safe
def rnn_backward_truncate_long(inp, out):
    T = inp["x"].shape[1]
    want = _numeric(inp, out, "full")
    for label, k in (("kT", T), ("kmore", T + 2)):
        got = _got(out, label)
        problem = _shape_problems(inp, got) or _first_problem(got, want)
        if problem:
            return (f"with truncate={k} >= T = {T} every window covers the whole sequence, "
                    f"so the result must equal full BPTT: {problem}")
    return None


# --------------------------------------------------------------------------- #
# gradient_norms_through_time
# --------------------------------------------------------------------------- #
NORM_ARGS = ("dact", "Wh", "dlast")


def _run_norms(inp, gradient_norms_through_time):
    args = copies(inp, NORM_ARGS)
    kept = copies(args, NORM_ARGS)
    norms = gradient_norms_through_time(**args)
    return {"norms": norms, "modified": modified_flags(kept, args)}


def _norm_inputs(rng):
    N, T, H = 2, 5, 3
    return dict(dact=rng.uniform(0.2, 1.0, size=(N, T, H)),
                Wh=1.2 * rng.standard_normal((H, H)) / np.sqrt(H),
                dlast=rng.standard_normal((N, H)))


@check("gradient_norms_shapes", _norm_inputs,
       doc="norms has shape (T+1,), norms[0] = ||dlast||; no argument is modified")
def gradient_norms_shapes(inp, gradient_norms_through_time):
    return _run_norms(inp, gradient_norms_through_time)


@gradient_norms_shapes.verdict
def gradient_norms_shapes(inp, out):
    T = inp["dact"].shape[1]
    got = np.asarray(out["norms"])
    if got.shape == (T,):
        return (f"norms has shape ({T},), expected (T+1,) = ({T + 1},): include the gradient "
                "reaching h0, T steps back")
    if got.shape == (T + 1, 1) or got.ndim > 1:
        return (f"norms has shape {got.shape}, expected ({T + 1},): one norm per distance, "
                "over the whole (N, H) gradient (np.linalg.norm of the 2-D array)")
    problem = shape_problem("norms", got, (T + 1,))
    if problem:
        return problem
    if not np.isclose(got[0], np.linalg.norm(inp["dlast"])):
        return ("norms[0] must be the norm of dlast itself, the gradient at distance 0, over "
                "the whole batch (the Frobenius norm of the (N, H) array)")
    return modified_problem(out, "modified", NORM_ARGS, "gradient_norms_through_time")


def _scalar_inputs(rng):
    T = 6
    return dict(dact=rng.uniform(0.3, 1.0, size=(1, T, 1)), Wh=np.array([[-1.7]]),
                dlast=np.array([[-0.8]]))


def _scalar_products(g, dact, w):
    """|g| * prod_{t=T-d}^{T-1} |dact_t * w| for d = 0..T (one unit, one sequence)."""
    factors = np.abs(dact[::-1] * w)  # the Jacobian of step t, for t = T-1 down to 0
    return abs(g) * np.concatenate([[1.0], np.cumprod(factors)])


@check("gradient_norms_scalar", _scalar_inputs,
       doc="one unit (H = 1): norms[d] = |dlast| * prod over the last d steps of |dact_t * w|")
def gradient_norms_scalar(inp, gradient_norms_through_time):
    return _run_norms(inp, gradient_norms_through_time)


@gradient_norms_scalar.verdict
def gradient_norms_scalar(inp, out):
    dact, w, g = inp["dact"][0, :, 0], inp["Wh"][0, 0], inp["dlast"][0, 0]
    T = dact.size
    want = _scalar_products(g, dact, w)
    got = np.asarray(out["norms"])
    problem = shape_problem("norms", got, want.shape)
    if problem:
        return problem
    if np.allclose(got, want, rtol=EXACT_RTOL, atol=0):
        return None
    if np.allclose(got[::-1], want, rtol=EXACT_RTOL, atol=0):
        return "norms is reversed: norms[0] is the last state (distance 0), norms[T] is h0"
    if np.allclose(got, _scalar_products(g, np.ones(T), w), rtol=EXACT_RTOL, atol=0):
        return ("the nonlinearity's derivative is missing: each step back multiplies by "
                "dact[:, t] as well as by Wh.T")
    shifted = np.concatenate([dact[1:], [1.0]])  # dact of step t+1 used for step t
    if np.allclose(got, _scalar_products(g, shifted, w), rtol=EXACT_RTOL, atol=0):
        return ("off by one in time: going back from h_t to h_{t-1} crosses step t, so it "
                "multiplies by dact[:, t], not dact[:, t+1]")
    shifted = np.concatenate([[1.0], dact[:-1]])
    if np.allclose(got, _scalar_products(g, shifted, w), rtol=EXACT_RTOL, atol=0):
        return ("off by one in time: going back from h_t to h_{t-1} crosses step t, so it "
                "multiplies by dact[:, t], not dact[:, t-1]")
    err = float(np.max(np.abs(got - want) / want))
    return (f"norms is wrong (max relative error {err:.2g}): with one unit, norms[d] = |dlast| "
            "* |dact_{T-1} w| * ... * |dact_{T-d} w|")


def _values_inputs(rng):
    N, T, D, H = 2, 5, 2, 3
    return dict(x=rng.standard_normal((N, T, D)), h0=0.5 * rng.standard_normal((N, H)),
                Wx=0.5 * rng.standard_normal((D, H)),
                Wh=1.3 * rng.standard_normal((H, H)) / np.sqrt(H),
                b=0.2 * rng.standard_normal(H), dlast=rng.standard_normal((N, H)))


def _state_tables(inp, rnn_forward):
    """An ``oracle``: finite-difference tables of h_{T-1} w.r.t. each earlier state."""
    args = copies(inp, SEQ_ARGS)
    h, _ = unpack(rnn_forward(**args), SEQ_RETURNS, "rnn_forward")
    h = np.asarray(h, dtype=np.float64)
    T = h.shape[1]
    out = {}
    states = [args["h0"]] + [h[:, t] for t in range(T)]  # states[j]: j steps in
    for d in range(T + 1):
        j = T - d

        def last_state(state, j=j):
            if j == T:
                return state
            hj, _ = rnn_forward(args["x"][:, j:], state, args["Wx"], args["Wh"], args["b"])
            return np.asarray(hj)[:, -1]

        out.update(perturbed_outputs(last_state, {"state": states[j]}, ("state",),
                                     prefix=f"d{d}_"))
    return out


@check("gradient_norms_values", _values_inputs,
       doc="for a tanh RNN, norms[d] matches finite differences of h_{T-1} w.r.t. h_{T-1-d}",
       oracle=_state_tables)
def gradient_norms_values(inp, gradient_norms_through_time, rnn_forward):
    args = copies(inp, SEQ_ARGS)
    h, _ = unpack(rnn_forward(**args), SEQ_RETURNS, "rnn_forward")
    h = np.asarray(h, dtype=np.float64)
    return {"norms": gradient_norms_through_time(1.0 - h ** 2, args["Wh"], inp["dlast"].copy())}


@gradient_norms_values.verdict
@_safe
def gradient_norms_values(inp, out):
    T = inp["x"].shape[1]
    dlast = inp["dlast"]
    want = np.array([np.linalg.norm(numeric_gradient(out, "state", dlast, dlast.shape,
                                                     prefix=f"d{d}_"))
                     for d in range(T + 1)])
    got = np.asarray(out["norms"])
    problem = shape_problem("norms", got, want.shape)
    if problem:
        return problem
    close = dict(rtol=FD_VALUE_RTOL, atol=FD_VALUE_ATOL * want[0])
    if np.allclose(got, want, **close):
        return None
    if np.allclose(got[::-1], want, **close):
        return "norms is reversed: norms[0] is the last state (distance 0), norms[T] is h0"
    d = int(np.argmax(~np.isclose(got, want, **close)))
    return (f"norms[{d}] = {got[d]:.6g} but the gradient reaching h_{{T-1-{d}}} has norm "
            f"{want[d]:.6g}: one step back from h_t to h_{{t-1}} multiplies the gradient by "
            "dact[:, t] elementwise, then by Wh.T (the transpose of the step's Jacobian)")


# --------------------------------------------------------------------------- #
# Hidden checks: new random sizes for every submission
# --------------------------------------------------------------------------- #
# N in 1..5, T in 1..8, D and H in 1..7 and, for truncated BPTT, a random
# ``truncate`` in 1..T+1 (so k = 1, 1 < k < T and k >= T all occur).
# ``rnn_backward`` is called on the cache of the notebook's own (provided,
# locked) ``rnn_forward``; the reference's cache differs, its gradients agree.
def _draw_backward(rng, regime=GENERIC, truncate=None):
    """Inputs of one BPTT case; ``truncate`` (a function of T) adds a truncate."""
    s = draw_sizes(rng, regime)
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    if truncate is not None:
        T = int(rng.integers(4, 8))  # room for 1 < k < T
    inp = {"x": rng.standard_normal((N, T, D)), "h0": rng.uniform(-1, 1, size=(N, H)),
           **draw_weights(rng, D, H), "dh": rng.standard_normal((N, T, H))}
    if truncate is not None:
        inp["truncate"] = np.array(int(truncate(rng, T)))
    return inp


TRUNCATE_REGIMES = {  # every side of the truncation: k = 1, 1 < k < T, k = T, k > T
    "k1": lambda rng, T: 1,
    "kmid": lambda rng, T: rng.integers(2, T),
    "kT": lambda rng, T: T,
    "kover": lambda rng, T: T + rng.integers(1, 4),
}
case_words(
    k1="a sequence of 4 to 7 steps with truncate = 1",
    kmid="a long sequence with truncate = k in the middle, 1 < k < T",
    kT="a sequence of T steps with truncate = T",
    kover="a sequence with truncate larger than its length T",
    tanh="derivatives dact between 0 and 1",
    linear="a linear RNN, dact = 1 everywhere",
)


def _hidden_backward(inp, rnn_backward, rnn_forward):
    _, cache = unpack(rnn_forward(**copies(inp, SEQ_ARGS)), SEQ_RETURNS, "rnn_forward")
    dh = np.array(inp["dh"], dtype=np.float64, copy=True)
    if "truncate" in inp:
        result = call(rnn_backward, "rnn_backward", dh, cache, truncate=int(inp["truncate"]))
    else:
        result = call(rnn_backward, "rnn_backward", dh, cache)
    return dict(zip(SEQ_GRADS, unpack(result, SEQ_GRADS, "rnn_backward"), strict=True))


@check("rnn_backward_hidden", {GENERIC: _draw_backward,
                               EDGE: lambda rng: _draw_backward(rng, EDGE)},
       hidden=True, outputs=SEQ_GRADS,
       doc="full BPTT on random sizes, after the notebook's rnn_forward")
def rnn_backward_hidden(inp, rnn_backward, rnn_forward):
    return _hidden_backward(inp, rnn_backward, rnn_forward)


@check("rnn_backward_truncated_hidden",
       {tag: (lambda rng, k=k: _draw_backward(rng, truncate=k))
        for tag, k in TRUNCATE_REGIMES.items()},
       hidden=True, outputs=SEQ_GRADS,
       doc="truncated BPTT with truncate = 1, between 1 and T, T, and above T")
def rnn_backward_truncated_hidden(inp, rnn_backward, rnn_forward):
    return _hidden_backward(inp, rnn_backward, rnn_forward)


def reference_gradient_norms(rnn_step_backward, dact, Wh, dlast) -> np.ndarray:
    """Norms of the gradient reaching h_{T-1-d}, d = 0..T, built from a correct
    ``rnn_step_backward`` (the reference's; ``gradient_norms_through_time`` is not in
    the contract).

    One step back with upstream gradient g and nonlinearity derivative ``dact_t``
    is the step backward's ``dprev_h`` for a cache whose ``next_h`` satisfies
    ``1 - next_h**2 = dact_t``, i.e. ``next_h = sqrt(1 - dact_t)`` (the cache
    layout ``(x, prev_h, Wx, Wh, next_h)`` is the reference's).

    Inputs:
    - rnn_step_backward: the reference's
    - dact: derivative of the nonlinearity at every step, of shape (N, T, H), in [0, 1]
    - Wh: hidden-to-hidden weights, of shape (H, H)
    - dlast: gradient of the loss with respect to the last hidden state, of shape (N, H)

    Returns:
    - norms: array of shape (T + 1,)
    """
    N, T, H = dact.shape
    g = np.array(dlast, dtype=np.float64)
    norms = [np.linalg.norm(g)]
    zeros_x, zeros_Wx, zeros_h = np.zeros((N, 1)), np.zeros((1, H)), np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        next_h = np.sqrt(np.clip(1.0 - dact[:, t], 0.0, None))  # 1 - next_h**2 == dact_t
        g = rnn_step_backward(g, (zeros_x, zeros_h, zeros_Wx, Wh, next_h))[
            STEP_GRADS.index("dprev_h")]
        norms.append(np.linalg.norm(g))
    return np.array(norms)


def _draw_norms(rng, linear):
    s = draw_sizes(rng)
    N, T, H = s["N"], s["T"], s["H"]
    if linear:
        dact = np.ones((N, T, H))  # a linear RNN
    else:
        dact = rng.uniform(0.0, 1.0, size=(N, T, H))
    return {"dact": dact, "Wh": rng.uniform(0.5, 1.5) * rng.standard_normal((H, H)) / np.sqrt(H),
            "dlast": rng.standard_normal((N, H))}


def _reference_norms(inp, rnn_step_backward):
    """The hidden check's ``expected`` outputs: the norms, from the reference's step
    backward."""
    return {"norms": reference_gradient_norms(rnn_step_backward, inp["dact"], inp["Wh"],
                                              inp["dlast"])}


@check("gradient_norms_hidden", {"tanh": lambda rng: _draw_norms(rng, linear=False),
                                 "linear": lambda rng: _draw_norms(rng, linear=True)},
       hidden=True, outputs=("norms",),
       expected=_reference_norms,
       doc="gradient_norms_through_time on random sizes, tanh-like and linear")
def gradient_norms_hidden(inp, gradient_norms_through_time):
    return {"norms": gradient_norms_through_time(**copies(inp, NORM_ARGS))}
