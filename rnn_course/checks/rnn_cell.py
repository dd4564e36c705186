"""Checks of the ``rnn_cell`` assignment, visible and hidden.

Dimension letters: N batch size, T sequence length, D input dimension,
H hidden dimension.

Each visible check isolates one behaviour and judges it with an oracle that
does not contain the solution:

* **closed forms** on inputs chosen so that the answer can be written down by
  hand: zero weights give ``tanh(b)``; a one-hot row ``s * e_i`` of x picks
  ``s`` times row i of Wx; a permutation matrix Wh shuffles the units;
* **centred finite differences** of a correct forward pass: the check's
  ``oracle`` evaluates the forward at every ``+step`` / ``-step``
  perturbation of every input entry; it runs once, on
  ``autograder.reference``, when the course is released, and the stored
  values are merged in before ``verdict`` turns them into a numeric gradient
  (see :mod:`rnn_course.checks` and :mod:`rnn_course.gradcheck`).  The
  student's kernel only computes the analytic gradients, so nothing it
  reports about itself decides the verdict;
* **properties**: the gradients that are right where tanh is almost linear
  but wrong elsewhere point at the tanh derivative; gradients that are right
  only for a symmetric Wh point at a missing transpose.

The hidden checks (end of the module) draw, for every submission, one case of
each regime: distinct random sizes N, T, D, H in 2..7, and the edge sizes (all
1), with moderate values (pre-activations of order 1, so that tanh is neither linear
nor saturated everywhere).  Backward passes go through the student's own
forward pass.
"""

from __future__ import annotations

import numpy as np

from rnn_course.checks import (
    EDGE,
    GENERIC,
    call,
    check,
    close,
    copies,
    first_wrong_step,
    modified_flags,
    modified_problem,
    per_output,
    regime_sizes,
    shape_problem,
    unpack,
    value_problem,
    wrong_forward,
)
from rnn_course.contract import SEQ_ARGS, STEP_ARGS, STEP_GRADS, returns
from rnn_course.gradcheck import (
    LINEAR_TOL,
    OutputShapeError,
    gradient_matches,
    gradient_problem,
    numeric_gradient,
    perturbed_outputs,
)

STEP_RETURNS = returns("rnn_step_forward")  # next_h, cache
SEQ_RETURNS = returns("rnn_forward")  # h, cache


def _scaled_one_hot(rng, n, d, start=0):
    """Rows ``s_n * e_{i_n}``: a one-hot input picks one row of the weight it multiplies."""
    idx = (np.arange(n) + start) % d
    scale = rng.uniform(0.5, 1.5, size=n) * rng.choice([-1.0, 1.0], size=n)
    rows = np.zeros((n, d))
    rows[np.arange(n), idx] = scale
    return rows, idx, scale


def _picked(rows_scaled: np.ndarray, W: np.ndarray) -> np.ndarray:
    """For one-hot rows ``s * e_i``: the rows ``s * W[i]`` (by indexing, no product)."""
    idx = np.argmax(np.abs(rows_scaled), axis=-1)
    scale = np.take_along_axis(rows_scaled, idx[..., None], axis=-1)
    return scale * W[idx]


# --------------------------------------------------------------------------- #
# rnn_step_forward
# --------------------------------------------------------------------------- #
def _step_dense(rng, N=3, D=4, H=5):
    return dict(x=rng.standard_normal((N, D)), prev_h=0.8 * rng.standard_normal((N, H)),
                Wx=0.5 * rng.standard_normal((D, H)), Wh=0.4 * rng.standard_normal((H, H)),
                b=0.3 * rng.standard_normal(H))


def _run_step(inp, rnn_step_forward):
    args = copies(inp, STEP_ARGS)
    kept = copies(args, STEP_ARGS)
    next_h, _ = unpack(rnn_step_forward(**args), STEP_RETURNS, "rnn_step_forward")
    return {"next_h": next_h, "modified": modified_flags(kept, args)}


@check("rnn_step_forward_shapes", _step_dense,
       doc="next_h has shape (N, H); no argument is modified")
def rnn_step_forward_shapes(inp, rnn_step_forward):
    return _run_step(inp, rnn_step_forward)


@rnn_step_forward_shapes.verdict
def rnn_step_forward_shapes(inp, out):
    N, H = inp["prev_h"].shape
    got = out["next_h"]
    if got.shape == (H, N):
        return (f"next_h has shape {got.shape}, expected (N, H) = {(N, H)}: rows are the "
                "N sequences of the batch; use x @ Wx (N, D)(D, H), not Wx.T @ x.T")
    if got.shape in ((N,), (H,), ()):
        return (f"next_h has shape {got.shape}, expected (N, H) = {(N, H)}: do not sum or "
                "average over an axis")
    return (shape_problem("next_h", got, (N, H))
            or modified_problem(out, "modified", STEP_ARGS, "rnn_step_forward"))


def _step_bias_only(rng):
    inp = _step_dense(rng)
    inp["Wx"][:] = 0.0
    inp["Wh"][:] = 0.0
    # biases of both signs, large enough that tanh(b) and b differ clearly, and two
    # huge ones (+ and -) where a tanh written with exponentials overflows (exp(2a) past
    # |a| = 355, exp(a) past 710)
    b = rng.choice([-1.0, 1.0], size=5) * rng.uniform(0.3, 2.5, size=5)
    b[rng.choice(5, size=2, replace=False)] = [rng.uniform(720, 900), -rng.uniform(720, 900)]
    inp["b"] = b
    return inp


@check("rnn_step_forward_bias", _step_bias_only,
       doc="with Wx = 0 and Wh = 0, every row of next_h is tanh(b), also for |b| > 720")
def rnn_step_forward_bias(inp, rnn_step_forward):
    return _run_step(inp, rnn_step_forward)


@rnn_step_forward_bias.verdict
def rnn_step_forward_bias(inp, out):
    N = inp["x"].shape[0]
    got, b = out["next_h"], inp["b"]
    want = np.tile(np.tanh(b), (N, 1))
    if close(got, np.tile(b, (N, 1))):
        return "with zero weights next_h equals b: you forgot the tanh"
    if got.shape == want.shape and not np.all(np.isfinite(got)):
        return ("next_h is NaN or inf where |b| is large (above 720): use np.tanh; a tanh "
                "written with np.exp overflows (exp(710) is inf, and inf / inf is NaN)")
    if close(got, np.zeros_like(want)):
        return "with zero weights next_h is 0, expected tanh(b): the bias b is not added"
    return value_problem("next_h", got, want,
                         hint="with Wx = 0 and Wh = 0 only the bias is left: tanh(b) per row")


def _step_input_only(rng):
    N, D, H = 4, 4, 5
    x, _, _ = _scaled_one_hot(rng, N, D, start=1)
    return dict(x=x, prev_h=rng.standard_normal((N, H)), Wx=rng.standard_normal((D, H)),
                Wh=np.zeros((H, H)), b=np.zeros(H))


@check("rnn_step_forward_input", _step_input_only,
       doc="input term alone: a one-hot x = s * e_i gives tanh(s * Wx[i])")
def rnn_step_forward_input(inp, rnn_step_forward):
    return _run_step(inp, rnn_step_forward)


@rnn_step_forward_input.verdict
def rnn_step_forward_input(inp, out):
    got = out["next_h"]
    term = _picked(inp["x"], inp["Wx"])  # row n: s_n * Wx[i_n]
    if close(got, term):
        return "next_h equals the input term x @ Wx itself: you forgot the tanh"
    if close(got, np.zeros_like(term)):
        return "with Wh = 0 and b = 0 next_h is 0: the input term x @ Wx is missing"
    return value_problem("next_h", got, np.tanh(term),
                         hint="with Wh = 0 and b = 0, row n of next_h is tanh(x[n] @ Wx); "
                              "x[n] = s * e_i picks s times row i of Wx")


def _step_recurrent_only(rng):
    N = D = H = 4
    x, _, _ = _scaled_one_hot(rng, N, D, start=2)
    prev_h, _, _ = _scaled_one_hot(rng, N, H, start=0)
    Wh = rng.standard_normal((H, H))
    Wh += np.triu(np.full((H, H), 1.5), 1)  # clearly not symmetric
    return dict(x=x, prev_h=prev_h, Wx=np.zeros((D, H)), Wh=Wh, b=np.zeros(H))


@check("rnn_step_forward_recurrent", _step_recurrent_only,
       doc="recurrent term alone: prev_h = s * e_j gives tanh(s * Wh[j])")
def rnn_step_forward_recurrent(inp, rnn_step_forward):
    return _run_step(inp, rnn_step_forward)


@rnn_step_forward_recurrent.verdict
def rnn_step_forward_recurrent(inp, out):
    got = out["next_h"]
    Wh = inp["Wh"]
    term = _picked(inp["prev_h"], Wh)  # s_n * Wh[j_n]: row j of Wh
    if close(got, np.tanh(_picked(inp["prev_h"], Wh.T))):
        return ("next_h uses the columns of Wh instead of its rows: you computed "
                "Wh @ prev_h (or prev_h @ Wh.T); the recurrent term is prev_h @ Wh, "
                "(N, H)(H, H), so unit j of prev_h feeds row j of Wh")
    if close(got, np.tanh(_picked(inp["x"], Wh))):
        return "next_h uses x with Wh: the recurrent term multiplies prev_h (not x) by Wh"
    if close(got, term):
        return "next_h equals the recurrent term prev_h @ Wh itself: you forgot the tanh"
    if close(got, np.zeros_like(term)):
        return "with Wx = 0 and b = 0 next_h is 0: the recurrent term prev_h @ Wh is missing"
    return value_problem("next_h", got, np.tanh(term),
                         hint="with Wx = 0 and b = 0, row n of next_h is tanh(prev_h[n] @ Wh)")


def _step_all_terms(rng):
    N, D, H = 4, 3, 4
    x, _, _ = _scaled_one_hot(rng, N, D, start=0)
    prev_h, _, _ = _scaled_one_hot(rng, N, H, start=1)
    return dict(x=x, prev_h=prev_h, Wx=rng.standard_normal((D, H)),
                Wh=rng.standard_normal((H, H)), b=rng.standard_normal(H))


@check("rnn_step_forward_values", _step_all_terms,
       doc="all three terms together, inside one tanh")
def rnn_step_forward_values(inp, rnn_step_forward):
    return _run_step(inp, rnn_step_forward)


@rnn_step_forward_values.verdict
def rnn_step_forward_values(inp, out):
    got = out["next_h"]
    tx, th, b = _picked(inp["x"], inp["Wx"]), _picked(inp["prev_h"], inp["Wh"]), inp["b"]
    if close(got, np.tanh(tx) + np.tanh(th) + np.tanh(b)):
        return ("you applied tanh to each term separately: tanh is applied once, to the sum "
                "of the three terms")
    if close(got, np.tanh(tx + th) + b):
        return "the bias is added after the tanh: it belongs inside, tanh(x Wx + prev_h Wh + b)"
    return value_problem("next_h", got, np.tanh(tx + th + b),
                         hint="each term passed its own check; is one of them counted twice "
                              "or left out when all three are present?")


# --------------------------------------------------------------------------- #
# rnn_step_backward
# --------------------------------------------------------------------------- #
def _backward_cases(rng):
    """Three cases: 'a' generic, 'l' tanh almost linear (tiny pre-activations), 's' symmetric Wh."""
    a = _step_dense(rng)
    a["Wx"] *= 2.0  # pre-activations of order 1: tanh's derivative well below 1
    N, H = a["prev_h"].shape
    a["dnext_h"] = rng.standard_normal((N, H))
    lin = {k: v.copy() for k, v in a.items()}
    for k in ("x", "prev_h", "b"):
        # |pre-activation| ~ 1e-7: any derivative that is 1 at 0 (1 - h**2, 1 - h, 1)
        # is within LINEAR_TOL there, so only the tanh derivative can tell them apart
        lin[k] *= 1e-7
    sym = {k: v.copy() for k, v in a.items()}
    sym["Wh"] = a["Wh"] + a["Wh"].T
    out = {}
    for tag, case in (("a", a), ("l", lin), ("s", sym)):
        out.update({f"{tag}_{k}": v for k, v in case.items()})
    return out


def _case(inp, tag):
    return {k[2:]: v for k, v in inp.items() if k.startswith(f"{tag}_")}


def _run_step_backward(inp, rnn_step_forward, rnn_step_backward):
    """Analytic gradients of every case (and whether dnext_h was modified)."""
    out = {}
    for tag in ("a", "l", "s"):
        case = _case(inp, tag)
        args = copies(case, STEP_ARGS)
        next_h, cache = unpack(rnn_step_forward(**args), STEP_RETURNS,
                               "rnn_step_forward")
        out[f"{tag}_next_h"] = next_h  # only chooses a message (see _forward_problem)
        dnext_h = np.array(case["dnext_h"], copy=True)
        grads = unpack(call(rnn_step_backward, "rnn_step_backward", dnext_h, cache),
                       STEP_GRADS, "rnn_step_backward")
        out.update({f"{tag}_{g}": v for g, v in zip(STEP_GRADS, grads, strict=True)})
        out[f"{tag}_modified"] = np.array(
            [int(not np.array_equal(dnext_h, case["dnext_h"]))], dtype=np.int64)
    return out


def _step_tables(*names):
    """An ``oracle``: forward values of every case for finite differences of ``names``."""
    def oracle(inp, rnn_step_forward):
        def forward(**kw):
            return unpack(rnn_step_forward(**kw), STEP_RETURNS, "rnn_step_forward")[0]

        out = {}
        for tag in ("a", "l", "s"):
            args = copies(_case(inp, tag), STEP_ARGS)
            out[f"{tag}_next_h_ref"] = forward(**copies(args, STEP_ARGS))
            out.update(perturbed_outputs(forward, args, names, prefix=f"{tag}_"))
        return out
    return oracle


def _forward_problem(out) -> "str | None":
    """:func:`~rnn_course.checks.wrong_forward` for the first case whose next_h is wrong."""
    for tag in ("a", "l", "s"):
        problem = wrong_forward("rnn_step_forward", out.get(f"{tag}_next_h", np.zeros(0)),
                                out[f"{tag}_next_h_ref"])
        if problem:
            return problem
    return None


def _step_numeric(inp, out, tag, name):
    case = _case(inp, tag)
    return numeric_gradient(out, name, case["dnext_h"], case[name].shape, prefix=f"{tag}_")


def _step_gradient_verdict(inp, out, name, grad, extra=None, hint=""):
    """Judge gradient ``grad`` (e.g. 'dWx') of argument ``name``; diagnose the usual bugs.

    ``extra(got, want)`` may name a bug specific to this gradient; ``hint`` is
    appended to the generic message.
    """
    try:
        want = {t: _step_numeric(inp, out, t, name) for t in ("a", "l", "s")}
    except OutputShapeError as exc:
        return f"{exc}: fix rnn_step_forward first"
    got = {t: np.asarray(out[f"{t}_{grad}"]) for t in ("a", "l", "s")}
    problem = shape_problem(grad, got["a"], want["a"].shape)
    if problem:
        return problem + f": a gradient has the shape of what it differentiates ({name})"
    if gradient_matches(got["a"], want["a"]) and gradient_matches(got["s"], want["s"]):
        return None
    forward = _forward_problem(out)
    if forward:
        return forward
    if extra is not None:
        message = extra(got, want)
        if message:
            return message
    if gradient_matches(got["l"], want["l"], LINEAR_TOL):
        return (f"{grad} is right where tanh is almost linear (tiny pre-activations) but wrong "
                "elsewhere: the tanh derivative is missing or wrong. Going back through "
                "next_h = tanh(a) multiplies the upstream gradient by 1 - next_h**2, the "
                "derivative written with the cached output next_h")
    problem = gradient_problem(grad, got["a"], want["a"]) or gradient_problem(
        grad, got["s"], want["s"])
    return f"{problem}; {hint}" if problem and hint else problem


@check("rnn_step_backward_shapes", _backward_cases,
       doc="five gradients, each of the shape of what it differentiates")
def rnn_step_backward_shapes(inp, rnn_step_forward, rnn_step_backward):
    return _run_step_backward(inp, rnn_step_forward, rnn_step_backward)


@rnn_step_backward_shapes.verdict
def rnn_step_backward_shapes(inp, out):
    case = _case(inp, "a")
    N, H = case["prev_h"].shape
    for name, grad in zip(STEP_ARGS, STEP_GRADS, strict=True):
        got, shape = np.asarray(out[f"a_{grad}"]), case[name].shape
        if grad == "db" and got.shape == (N, H):
            return ("db has shape (N, H), expected (H,): b is added to every row of the "
                    "batch, so its gradient sums over the batch (axis 0)")
        if grad in ("dWx", "dWh") and got.shape == shape[::-1] and shape[0] != shape[1]:
            return (f"{grad} has shape {got.shape}, expected {shape}: it is transposed "
                    f"(for Y = X @ W, dW = X.T @ dY has W's shape)")
        problem = shape_problem(grad, got, shape)
        if problem:
            return problem + f" (the shape of {name})"
    if out["a_modified"][0]:
        return "rnn_step_backward modified dnext_h in place; compute into a new array"
    return None


@check("rnn_step_backward_bias", _backward_cases,
       doc="db matches finite differences (the bias term alone)",
       oracle=_step_tables("b"))
def rnn_step_backward_bias(inp, rnn_step_forward, rnn_step_backward):
    return _run_step_backward(inp, rnn_step_forward, rnn_step_backward)


@rnn_step_backward_bias.verdict
def rnn_step_backward_bias(inp, out):
    N = _case(inp, "a")["x"].shape[0]

    def mean_instead_of_sum(got, want):
        if gradient_matches(got["a"] * N, want["a"]):
            return ("db is the mean over the batch, expected the sum: the loss adds up the "
                    "N sequences, so do not divide by N")
        return None

    return _step_gradient_verdict(inp, out, "b", "db", extra=mean_instead_of_sum)


@check("rnn_step_backward_input", _backward_cases,
       doc="dx and dWx match finite differences (the input term)",
       oracle=_step_tables("x", "Wx"))
def rnn_step_backward_input(inp, rnn_step_forward, rnn_step_backward):
    return _run_step_backward(inp, rnn_step_forward, rnn_step_backward)


@rnn_step_backward_input.verdict
def rnn_step_backward_input(inp, out):
    return per_output({
        "dx": _step_gradient_verdict(inp, out, "x", "dx",
                                     hint="x meets Wx in x @ Wx; for Y = X @ W, dX = dY @ W.T"),
        "dWx": _step_gradient_verdict(inp, out, "Wx", "dWx",
                                      hint="for Y = X @ W, dW = X.T @ dY, summed over the "
                                           "batch by the product itself")})


@check("rnn_step_backward_recurrent", _backward_cases,
       doc="dprev_h and dWh match finite differences (the recurrent term)",
       oracle=_step_tables("prev_h", "Wh"))
def rnn_step_backward_recurrent(inp, rnn_step_forward, rnn_step_backward):
    return _run_step_backward(inp, rnn_step_forward, rnn_step_backward)


@rnn_step_backward_recurrent.verdict
def rnn_step_backward_recurrent(inp, out):
    def transposed_wh(got, want):
        # a product with Wh instead of Wh.T is invisible when Wh is symmetric
        if gradient_matches(got["s"], want["s"]) and not gradient_matches(got["a"], want["a"]):
            return ("dprev_h is right when Wh is symmetric and wrong otherwise: a transpose is "
                    "missing (for Y = X @ W, dX = dY @ W.T)")
        return None

    def transposed_dwh(got, want):
        if gradient_matches(got["a"].T, want["a"]):
            return ("dWh is transposed: for Y = X @ W the weight gradient is X.T @ dY "
                    "(here X is prev_h)")
        return None

    return per_output({
        "dprev_h": _step_gradient_verdict(inp, out, "prev_h", "dprev_h", extra=transposed_wh),
        "dWh": _step_gradient_verdict(
            inp, out, "Wh", "dWh", extra=transposed_dwh,
            hint="dWh pairs every unit of prev_h (the state that entered the step, not "
                 "next_h) with the gradient of the pre-activation, summed over the batch")})


# --------------------------------------------------------------------------- #
# rnn_forward
# --------------------------------------------------------------------------- #
def _run_forward(inp, rnn_forward):
    args = copies(inp, SEQ_ARGS)
    kept = copies(args, SEQ_ARGS)
    h, _ = unpack(rnn_forward(**args), SEQ_RETURNS, "rnn_forward")
    return {"h": h, "modified": modified_flags(kept, args)}


def _seq_dense(rng, N=2, T=3, D=4, H=5):
    return dict(x=rng.standard_normal((N, T, D)), h0=0.5 * rng.standard_normal((N, H)),
                Wx=0.5 * rng.standard_normal((D, H)), Wh=0.4 * rng.standard_normal((H, H)),
                b=0.3 * rng.standard_normal(H))


@check("rnn_forward_shapes", _seq_dense,
       doc="h has shape (N, T, H); no argument is modified")
def rnn_forward_shapes(inp, rnn_forward):
    return _run_forward(inp, rnn_forward)


@rnn_forward_shapes.verdict
def rnn_forward_shapes(inp, out):
    N, T, _ = inp["x"].shape
    H = inp["h0"].shape[1]
    got = out["h"]
    if got.shape == (T, N, H):
        return (f"h has shape {got.shape} (T, N, H), expected (N, T, H) = {(N, T, H)}: the "
                "batch comes first; store step t in h[:, t]")
    if got.shape == (N, T + 1, H):
        return (f"h has shape {got.shape}, expected (N, T, H) = {(N, T, H)}: h holds the T "
                "states computed from x, not h0")
    return (shape_problem("h", got, (N, T, H))
            or modified_problem(out, "modified", SEQ_ARGS, "rnn_forward"))


def _seq_no_recurrence(rng):
    N, T, D, H = 2, 4, 4, 3
    x = np.zeros((N, T, D))
    for n in range(N):
        x[n], _, _ = _scaled_one_hot(rng, T, D, start=n)
    return dict(x=x, h0=rng.standard_normal((N, H)), Wx=rng.standard_normal((D, H)),
                Wh=np.zeros((H, H)), b=0.5 * rng.standard_normal(H))


@check("rnn_forward_no_recurrence", _seq_no_recurrence,
       doc="with Wh = 0 every step sees only its own input: h[:, t] = tanh(x[:, t] @ Wx + b)")
def rnn_forward_no_recurrence(inp, rnn_forward):
    return _run_forward(inp, rnn_forward)


@rnn_forward_no_recurrence.verdict
def rnn_forward_no_recurrence(inp, out):
    got = out["h"]
    want = np.tanh(_picked(inp["x"], inp["Wx"]) + inp["b"])
    problem = shape_problem("h", got, want.shape)
    if problem:
        return problem
    if close(got, np.repeat(want[:, :1], want.shape[1], axis=1)):
        return "every step of h is the first step's state: step t must read x[:, t]"
    if close(got[:, 1:], want[:, :-1]):
        return ("h is shifted by one step: h[:, t] is the state after reading x[:, t] "
                "(h0 is not part of h)")
    if close(got, want[:, ::-1]):
        return "h runs backwards in time: step t reads x[:, t], for t = 0, 1, ..., T-1"
    return value_problem("h", got, want,
                         hint="with Wh = 0 the steps do not interact: h[:, t] = "
                              "tanh(x[:, t] @ Wx + b) for every t")


def _seq_memory(rng):
    N, T, D, H = 2, 5, 3, 4
    perm = np.array([2, 0, 3, 1])
    Wh = np.zeros((H, H))
    Wh[np.arange(H), perm] = 1.5  # unit j feeds unit perm[j]: a scaled permutation
    return dict(x=np.zeros((N, T, D)), h0=rng.uniform(-0.9, 0.9, size=(N, H)),
                Wx=rng.standard_normal((D, H)), Wh=Wh, b=np.zeros(H), perm=perm)


def _iterate_permutation(h0, perm, gain, T):
    """States of h_t = tanh(gain * h_{t-1} @ P) for the permutation P (by indexing)."""
    states, h = [], h0
    for _ in range(T):
        moved = np.empty_like(h)
        moved[:, perm] = h  # (h @ P)[:, perm[j]] = h[:, j]
        h = np.tanh(gain * moved)
        states.append(h)
    return np.stack(states, axis=1)


@check("rnn_forward_memory", _seq_memory,
       doc="with x = 0 each step transforms the previous step's state (memory is carried)")
def rnn_forward_memory(inp, rnn_forward):
    return _run_forward(inp, rnn_forward)


@rnn_forward_memory.verdict
def rnn_forward_memory(inp, out):
    got = out["h"]
    N, T, _ = inp["x"].shape
    perm, h0 = inp["perm"], inp["h0"]
    want = _iterate_permutation(h0, perm, 1.5, T)
    problem = shape_problem("h", got, want.shape)
    if problem:
        return problem
    if close(got, np.repeat(want[:, :1], T, axis=1)):
        return ("every step started again from h0: pass the state of step t-1 as prev_h of "
                "step t")
    if close(got[:, 0], h0):
        return "h[:, 0] equals h0: h[:, 0] is the state after the first step"
    if close(got, _iterate_permutation(h0, np.argsort(perm), 1.5, T)):
        return "the state is multiplied by Wh.T instead of Wh (see rnn_step_forward)"
    return value_problem("h", got, want,
                         hint="with x = 0 and b = 0, h[:, t] = tanh(h[:, t-1] @ Wh), starting "
                              "from h0")


def _seq_values(rng):
    return _seq_dense(rng, N=3, T=4, D=2, H=3)


def _reference_h(inp, rnn_forward):
    """An ``oracle``: the states of a correct rnn_forward on the check's inputs."""
    h, _ = unpack(rnn_forward(**copies(inp, SEQ_ARGS)), SEQ_RETURNS, "rnn_forward")
    return {"h_ref": h}


@check("rnn_forward_values", _seq_values,
       doc="every step of rnn_forward is one rnn_step_forward from the previous state",
       oracle=_reference_h)
def rnn_forward_values(inp, rnn_forward, rnn_step_forward):
    out = _run_forward(inp, rnn_forward)
    h = np.asarray(out["h"], dtype=np.float64)
    args = copies(inp, SEQ_ARGS)
    if h.shape != args["x"].shape[:2] + args["h0"].shape[1:]:
        out["steps"] = np.zeros(0)
        return out
    steps = []
    for t in range(h.shape[1]):
        prev = args["h0"] if t == 0 else h[:, t - 1]
        nh, _ = unpack(rnn_step_forward(args["x"][:, t].copy(), prev.copy(), args["Wx"],
                                        args["Wh"], args["b"]), STEP_RETURNS,
                       "rnn_step_forward")
        steps.append(np.asarray(nh, dtype=np.float64))
    out["steps"] = np.stack(steps, axis=1)
    return out


@rnn_forward_values.verdict
def rnn_forward_values(inp, out):
    """Right when h matches a correct forward pass; ``steps`` (your rnn_step_forward applied
    to your own h) only chooses the message."""
    got, want, steps = out["h"], out["h_ref"], out["steps"]
    problem, t = first_wrong_step(got, want)
    if t is None:
        return problem
    if steps.shape == got.shape and close(got[:, t], steps[:, t]):
        return (f"h[:, {t}] is wrong, although it agrees with your rnn_step_forward: "
                "rnn_step_forward is wrong for these inputs; fix it first (see its checks)")
    source = "h0" if t == 0 else f"h[:, {t - 1}]"
    return (f"h[:, {t}] differs from rnn_step_forward(x[:, {t}], {source}, Wx, Wh, b): "
            "step t takes x[:, t] and the previous state, with the same weights at "
            "every step")


# --------------------------------------------------------------------------- #
# Hidden checks: new random sizes and values for every submission
# --------------------------------------------------------------------------- #
def draw_sizes(rng: np.random.Generator, regime: str = GENERIC) -> dict:
    """Sizes N, T, D, H of a regime (:func:`rnn_course.checks.regime_sizes`): all 1, or
    distinct values in 2..7."""
    return regime_sizes(rng, regime)


def draw_weights(rng: np.random.Generator, D: int, H: int) -> dict:
    """Wx (D, H), Wh (H, H), b (H,) scaled so that pre-activations are of order 1."""
    return {"Wx": rng.standard_normal((D, H)) / np.sqrt(D),
            "Wh": rng.uniform(0.5, 1.5) * rng.standard_normal((H, H)) / np.sqrt(H),
            "b": 0.5 * rng.standard_normal(H)}


def _draw_step(rng, regime):
    s = draw_sizes(rng, regime)
    N, D, H = s["N"], s["D"], s["H"]
    inputs = {"x": rng.standard_normal((N, D)), "prev_h": rng.uniform(-1, 1, size=(N, H)),
              **draw_weights(rng, D, H)}
    if regime == EDGE:  # one pre-activation: keep it of order 1, never near 0 where a
        a = inputs["x"] @ inputs["Wx"] + inputs["prev_h"] @ inputs["Wh"] + inputs["b"]
        sign = np.where(a < 0, -1.0, 1.0)  # wrong tanh' (1 - a**2) would pass by luck
        inputs["b"] = inputs["b"] + (sign * np.maximum(0.5 - np.abs(a), 0.0)).ravel()
    return inputs


def _draw_step_backward(rng, regime):
    inp = _draw_step(rng, regime)
    inp["dnext_h"] = rng.standard_normal(inp["prev_h"].shape)
    return inp


def _draw_seq(rng, regime):
    s = draw_sizes(rng, regime)
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    return {"x": rng.standard_normal((N, T, D)), "h0": rng.uniform(-1, 1, size=(N, H)),
            **draw_weights(rng, D, H)}


def sized(draw):
    """Regimes of a hidden check: the generic sizes and the edge sizes (all 1)."""
    return {GENERIC: lambda rng: draw(rng, GENERIC), EDGE: lambda rng: draw(rng, EDGE)}


@check("rnn_step_forward_hidden", sized(_draw_step), hidden=True, outputs=("next_h",),
       doc="rnn_step_forward on random sizes and values")
def rnn_step_forward_hidden(inp, rnn_step_forward):
    next_h, _ = unpack(rnn_step_forward(**copies(inp, STEP_ARGS)), STEP_RETURNS,
                       "rnn_step_forward")
    return {"next_h": next_h}


@check("rnn_step_backward_hidden", sized(_draw_step_backward), hidden=True, outputs=STEP_GRADS,
       doc="rnn_step_backward, through the student's rnn_step_forward, on random sizes")
def rnn_step_backward_hidden(inp, rnn_step_forward, rnn_step_backward):
    _, cache = unpack(rnn_step_forward(**copies(inp, STEP_ARGS)), STEP_RETURNS,
                      "rnn_step_forward")
    grads = unpack(call(rnn_step_backward, "rnn_step_backward", inp["dnext_h"].copy(), cache),
                   STEP_GRADS,
                   "rnn_step_backward")
    return dict(zip(STEP_GRADS, grads, strict=True))


@check("rnn_forward_hidden", sized(_draw_seq), hidden=True, outputs=("h",),
       doc="rnn_forward on random sizes, and on sizes 1")
def rnn_forward_hidden(inp, rnn_forward):
    h, _ = unpack(rnn_forward(**copies(inp, SEQ_ARGS)), SEQ_RETURNS, "rnn_forward")
    return {"h": h}
