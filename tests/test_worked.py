"""rnn_course.worked: the worked examples' stored numbers are right, and their printouts say so.

Oracles: the grader's reference (``autograder.reference``) for the forward and the five
gradients, and centred finite differences of the loss E = h_2[0] for every gradient and
every Jacobian (M_s = dh_s/dh_(s-1) of the RNN and the GRU, J_s = d(h_s, c_s)/d(h_(s-1),
c_(s-1)) of the LSTM), every carried gradient and every pre-activation gradient da_s,
computed from the reference's step forward alone.  Tolerances: ROUNDING (the stored
numbers have 4 decimals) against the oracles, FD_TOL between the reference and the
finite differences.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from autograder import reference
from autograder.reference import rnn_backward, rnn_forward
from rnn_course.gradcheck import eval_numerical_gradient
from rnn_course.worked import (
    EXPECTED,
    GRU_EXPECTED,
    GRU_INPUTS,
    INPUTS,
    LSTM_EXPECTED,
    LSTM_INPUTS,
    TOLERANCE,
    UPSTREAM,
    bptt_by_hand,
    gru_by_hand,
    lstm_by_hand,
)

ROUNDING = 0.5e-4  # stored to 4 decimals
# checked lines of the bptt printout: h per step; g_2, g_1, g_0, dh0; dx per step; the rows
# of dWx and dWh, db
BPTT_LINES = 3 + 4 + 3 + (2 + 2 + 1)
FD_TOL = 1e-8  # centred differences of a smooth function of order-one numbers


def _expected(name):
    return np.asarray(EXPECTED[name], dtype=np.float64)


def _states(**changes):
    args = {**INPUTS, **changes}
    return rnn_forward(args["x"], args["h0"], args["Wx"], args["Wh"], args["b"])[0]


def _loss(**changes) -> float:
    return float(np.sum(_states(**changes) * UPSTREAM))


def test_forward_numbers():
    h = _states()[0]
    assert np.abs(h - _expected("h")).max() <= ROUNDING
    previous = np.vstack([INPUTS["h0"], h[:-1]])
    a = INPUTS["x"][0] @ INPUTS["Wx"] + previous @ INPUTS["Wh"] + INPUTS["b"]
    assert np.abs(a - _expected("a")).max() <= ROUNDING
    assert np.allclose(np.tanh(a), h)


def test_gradients_match_the_reference_and_finite_differences():
    _, cache = rnn_forward(*(INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b")))
    reference = dict(zip(("dx", "dh0", "dWx", "dWh", "db"), rnn_backward(UPSTREAM, cache),
                         strict=True))
    arg = {"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "db": "b"}
    for name, got in reference.items():
        numeric = eval_numerical_gradient(lambda v, k=arg[name]: _loss(**{k: v}), INPUTS[arg[name]])
        assert np.abs(got - numeric).max() <= FD_TOL, name
        assert np.abs(np.squeeze(got) - _expected(name)).max() <= ROUNDING, name


def test_jacobians_carried_gradients_and_deltas():
    h = _states()[0]
    T = h.shape[0]
    previous = [INPUTS["h0"]] + [h[None, s] for s in range(T - 1)]
    for s in range(T):
        # M_s[k, l] = d h_s[k] / d h_(s-1)[l]: one step forward from a perturbed h_(s-1)
        def step(prev, s=s):
            return _states(x=INPUTS["x"][:, s:s + 1], h0=prev)[0, 0]
        M = np.stack([eval_numerical_gradient(step, previous[s], df=np.eye(2)[k])[0]
                      for k in range(2)])
        assert np.abs(M - _expected("M")[s]).max() <= ROUNDING, s

        # g_s = dE/dh_s: the steps after s, run from a perturbed h_s
        def rest(state, s=s):
            if s == T - 1:
                return float(state[0] @ UPSTREAM[0, s])
            return float(np.sum(_states(x=INPUTS["x"][:, s + 1:], h0=state)
                                * UPSTREAM[:, s + 1:]) + state[0] @ UPSTREAM[0, s])
        g = eval_numerical_gradient(rest, h[None, s])[0]
        assert np.abs(g - _expected("g")[s]).max() <= ROUNDING, s
        assert np.abs(g * (1 - h[s] ** 2) - _expected("delta")[s]).max() <= ROUNDING, s
    # the product of Jacobians is the carried gradient (the rounded numbers agree)
    g2 = _expected("g")[2]
    M = _expected("M")
    assert np.abs(g2 @ M[2] @ M[1] @ M[0] - _expected("dh0")).max() <= 4 * ROUNDING


def test_the_printout_marks_right_and_wrong_functions():
    out = io.StringIO()
    assert bptt_by_hand(rnn_forward, rnn_backward, file=out)
    assert "differs" not in out.getvalue() and out.getvalue().count(" ok") == BPTT_LINES

    out = io.StringIO()
    assert not bptt_by_hand(rnn_forward, lambda dh, c: [g * 1.5 for g in rnn_backward(dh, c)],
                            file=out)
    assert out.getvalue().count("<- differs") >= 10
    assert TOLERANCE >= 2 * ROUNDING


def test_the_printout_survives_functions_that_raise():
    def stub(*args):
        raise NotImplementedError

    out = io.StringIO()
    assert not bptt_by_hand(rnn_forward, stub, file=out)
    assert out.getvalue().count("not implemented yet") == 11  # every line of the backward


STORED = [("bptt", EXPECTED), ("lstm", LSTM_EXPECTED), ("gru", GRU_EXPECTED)]


@pytest.mark.parametrize("example,name", [(e, n) for e, table in STORED for n in sorted(table)])
def test_stored_numbers_have_four_decimals(example, name):
    values = np.asarray(dict(STORED)[example][name], dtype=np.float64)
    assert np.allclose(values, np.round(values, 4), atol=0, rtol=0)


# --------------------------------------------------------------------------- #
# the LSTM: the state of step s is (h_s, c_s)
# --------------------------------------------------------------------------- #
T = INPUTS["x"].shape[1]
LSTM_ARGS = tuple(LSTM_INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b"))
GRU_ARGS = tuple(GRU_INPUTS[k] for k in ("x", "h0", "Wx", "Wh", "b"))


def _lstm(start=0, h=None, c=None, bias=None):
    """The reference's steps from (h, c) before step ``start`` on; ``bias``: step -> extra
    bias (a shift of that step's pre-activations). Returns (E, [(a, h, c) of each step])."""
    x, h0, Wx, Wh, b = LSTM_ARGS
    h = h0 if h is None else np.reshape(h, (1, 2))
    c = np.zeros((1, 2)) if c is None else np.reshape(c, (1, 2))
    steps = []
    for s in range(start, T):
        extra = (bias or {}).get(s, 0.0)
        a = x[:, s] @ Wx + h @ Wh + b + extra
        h, c, _ = reference.lstm_step_forward(x[:, s], h, c, Wx, Wh, b + extra)
        steps.append((a[0], h[0], c[0]))
    return float(h[0, 0]), steps


def _near(got, name, table, tol=None):
    expected = np.asarray(table[name], dtype=np.float64)
    assert np.abs(np.asarray(got) - expected).max() <= (tol or ROUNDING), name


def test_lstm_forward_numbers():
    _, steps = _lstm()
    a, h, c = (np.array(v) for v in zip(*steps, strict=True))
    for name, value in zip(("i", "f", "o", "g"), reference.lstm_gates(a), strict=True):
        _near(value, name, LSTM_EXPECTED)
    _near(a, "a", LSTM_EXPECTED)
    _near(c, "c", LSTM_EXPECTED)
    _near(h, "h", LSTM_EXPECTED)
    assert np.allclose(reference.lstm_forward(*LSTM_ARGS)[0][0], h, rtol=0, atol=1e-15)
    f = reference.lstm_gates(a)[1]
    _near(f.prod(axis=0), "cell_path", LSTM_EXPECTED)


def test_lstm_gradients_match_the_reference_and_finite_differences():
    x, h0, Wx, Wh, b = LSTM_ARGS
    got = reference.lstm_backward(UPSTREAM, reference.lstm_forward(*LSTM_ARGS)[1])
    for k, (name, arg) in enumerate((("dx", x), ("dh0", h0), ("dWx", Wx), ("dWh", Wh),
                                     ("db", b))):
        def loss(v, k=k):
            args = list(LSTM_ARGS)
            args[k] = v
            return float(np.sum(reference.lstm_forward(*args)[0] * UPSTREAM))
        assert np.abs(got[k] - eval_numerical_gradient(loss, arg)).max() <= FD_TOL, name
        _near(np.squeeze(got[k]), name, LSTM_EXPECTED)


def test_lstm_jacobians_carried_gradients_and_deltas():
    _, steps = _lstm()
    x, _, Wx, Wh, b = LSTM_ARGS
    states = [np.zeros(4)] + [np.concatenate([h, c]) for _, h, c in steps]  # before step s
    for s in range(T):
        def step(v, s=s):
            h, c, _ = reference.lstm_step_forward(x[:, s], v[None, :2], v[None, 2:], Wx, Wh, b)
            return np.concatenate([h[0], c[0]])
        J = np.stack([eval_numerical_gradient(step, states[s], df=np.eye(4)[k])
                      for k in range(4)])
        _near(J, "J", {"J": LSTM_EXPECTED["J"][s]})
        f = reference.lstm_gates(steps[s][0][None])[1][0]
        assert np.allclose(J[2:, 2:], np.diag(f), atol=FD_TOL)  # the cell path: diag(f_s)

        # what E sees of the state after step s: gh_s, gc_s (dnext_c: h_s held fixed)
        g = eval_numerical_gradient(lambda v, s=s: _lstm(s + 1, v[:2], v[2:])[0],
                                    states[s + 1])
        _near(g[:2], "gh", {"gh": LSTM_EXPECTED["gh"][s]})
        _near(g[2:], "gc", {"gc": LSTM_EXPECTED["gc"][s]})

        # the total gradient of c_s: h_s = o_s tanh(c_s) moves with it
        o = reference.lstm_gates(steps[s][0][None])[2][0]
        dc = eval_numerical_gradient(lambda c, s=s, o=o: _lstm(s + 1, o * np.tanh(c), c)[0],
                                     steps[s][2])
        _near(dc, "dc", {"dc": LSTM_EXPECTED["dc"][s]})
        da = eval_numerical_gradient(lambda d, s=s: _lstm(bias={s: d})[0], np.zeros(8))
        _near(da, "da", {"da": LSTM_EXPECTED["da"][s]})
    g = eval_numerical_gradient(lambda v: _lstm(0, v[:2], v[2:])[0], np.zeros(4))
    _near(g[:2], "dh0", LSTM_EXPECTED)
    _near(g[2:], "dc0", LSTM_EXPECTED)
    # the product of the rounded Jacobians is the carried gradient
    J = np.asarray(LSTM_EXPECTED["J"])
    g2 = np.concatenate([LSTM_EXPECTED["gh"][2], LSTM_EXPECTED["gc"][2]])
    product = g2 @ J[2] @ J[1] @ J[0]
    assert np.abs(product - np.concatenate([LSTM_EXPECTED["dh0"], LSTM_EXPECTED["dc0"]])).max() \
        <= 4 * ROUNDING


# --------------------------------------------------------------------------- #
# the GRU
# --------------------------------------------------------------------------- #
def _gru(start=0, h=None, bias=None):
    """The reference's steps from h before step ``start`` on (see _lstm)."""
    x, h0, Wx, Wh, b = GRU_ARGS
    h = h0 if h is None else np.reshape(h, (1, 2))
    states = []
    for s in range(start, T):
        h, _ = reference.gru_step_forward(x[:, s], h, Wx, Wh, b + (bias or {}).get(s, 0.0))
        states.append(h[0])
    return float(h[0, 0]), states


def test_gru_forward_numbers():
    x, h0, Wx, Wh, b = GRU_ARGS
    _, h = _gru()
    previous = np.vstack([h0, h[:-1]])
    a_rz = x[0] @ Wx[:, :4] + previous @ Wh[:, :4] + b[:4]
    r, z = reference.sigmoid(a_rz[:, :2]), reference.sigmoid(a_rz[:, 2:])
    a_n = x[0] @ Wx[:, 4:] + (r * previous) @ Wh[:, 4:] + b[4:]
    n = np.tanh(a_n)
    for name, value in (("a", np.hstack([a_rz, a_n])), ("r", r), ("z", z), ("n", n),
                        ("h", h), ("copy_path", z.prod(axis=0))):
        _near(value, name, GRU_EXPECTED)
    assert np.allclose((1 - z) * n + z * previous, h, rtol=0, atol=1e-15)
    assert np.allclose(reference.gru_forward(*GRU_ARGS)[0][0], h, rtol=0, atol=1e-15)


def test_gru_gradients_match_the_reference_and_finite_differences():
    got = reference.gru_backward(UPSTREAM, reference.gru_forward(*GRU_ARGS)[1])
    for k, name in enumerate(("dx", "dh0", "dWx", "dWh", "db")):
        def loss(v, k=k):
            args = list(GRU_ARGS)
            args[k] = v
            return float(np.sum(reference.gru_forward(*args)[0] * UPSTREAM))
        assert np.abs(got[k] - eval_numerical_gradient(loss, GRU_ARGS[k])).max() <= FD_TOL, name
        _near(np.squeeze(got[k]), name, GRU_EXPECTED)


def test_gru_jacobians_carried_gradients_and_deltas():
    x, h0, Wx, Wh, b = GRU_ARGS
    _, h = _gru()
    previous = [h0[0], *h[:-1]]
    for s in range(T):
        def step(v, s=s):
            return reference.gru_step_forward(x[:, s], v[None], Wx, Wh, b)[0][0]
        M = np.stack([eval_numerical_gradient(step, previous[s], df=np.eye(2)[k])
                      for k in range(2)])
        _near(M, "M", {"M": GRU_EXPECTED["M"][s]})
        g = eval_numerical_gradient(lambda v, s=s: _gru(s + 1, v)[0], h[s])
        _near(g, "g", {"g": GRU_EXPECTED["g"][s]})
        da = eval_numerical_gradient(lambda d, s=s: _gru(bias={s: d})[0], np.zeros(6))
        _near(da, "da", {"da": GRU_EXPECTED["da"][s]})
    _near(eval_numerical_gradient(lambda v: _gru(0, v)[0], h0[0]), "dh0", GRU_EXPECTED)
    M = np.asarray(GRU_EXPECTED["M"])
    assert np.abs(np.asarray(GRU_EXPECTED["g"][2]) @ M[2] @ M[1] @ M[0]
                  - GRU_EXPECTED["dh0"]).max() <= 4 * ROUNDING


# --------------------------------------------------------------------------- #
# the printouts: every line ok with the reference, the planted bug's lines differ
# --------------------------------------------------------------------------- #
# checked lines: per step i, f, o, g, c, h; the carried gh, gc per step; dh0; dx per step;
# dWx and dWh per row and gate block, db per gate block
LSTM_LINES = 3 * 6 + 3 * 2 + 1 + 3 + (2 * 4 + 2 * 4 + 4)
# h per step, from the step and from the sequence; the carried g per step; dh0; dx; weights
GRU_LINES = 3 * 2 + 3 + 1 + 3 + (2 * 3 + 2 * 3 + 3)


def _lstm_printout(**bugs):
    functions = {name: getattr(reference, name) for name in (
        "lstm_gates", "lstm_step_forward", "lstm_step_backward", "lstm_forward",
        "lstm_backward")}
    out = io.StringIO()
    all_ok = lstm_by_hand(**{**functions, **bugs}, file=out)
    return all_ok, out.getvalue()


def _gru_printout(**bugs):
    functions = {name: getattr(reference, name) for name in (
        "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward")}
    out = io.StringIO()
    all_ok = gru_by_hand(**{**functions, **bugs}, file=out)
    return all_ok, out.getvalue()


def _differing(text):
    return [line.split("  ")[1].strip() for line in text.splitlines() if line.endswith("differs")]


def test_the_gated_printouts_say_ok_with_the_reference():
    for printout, lines in ((_lstm_printout, LSTM_LINES), (_gru_printout, GRU_LINES)):
        all_ok, text = printout()
        assert all_ok and "differs" not in text and text.count(" ok\n") == lines, text
        assert max(len(line) for line in text.splitlines()) <= 96  # no sideways scrolling


def test_the_lstm_printout_names_the_planted_bug():
    def torch_order(a):  # blocks read in PyTorch's order i, f, g, o
        i, f, g, o = np.split(a, 4, axis=1)
        return reference.sigmoid(i), reference.sigmoid(f), reference.sigmoid(o), np.tanh(g)
    all_ok, text = _lstm_printout(lstm_gates=torch_order)
    assert not all_ok and _differing(text)[:2] == ["o_0 = sigmoid(a_0[o])", "g_0 = tanh(a_0[g])"]

    def no_forget(dnext_h, dnext_c, cache):  # dprev_c = delta c, the forget gate left out
        grads = list(reference.lstm_step_backward(dnext_h, dnext_c, cache))
        grads[2] = grads[2] / cache[6]  # the reference's cache: f at index 6
        return tuple(grads)
    all_ok, text = _lstm_printout(lstm_step_backward=no_forget)
    assert not all_ok and _differing(text) == ["gc_1 = (g_2 J_2)[c]", "gc_0 = (g_1 J_1)[c]",
                                               "dc0 = (g_0 J_0)[c]"]

    def stub(*args):
        raise NotImplementedError
    all_ok, text = _lstm_printout(lstm_backward=stub)
    assert not all_ok and text.count("not implemented yet") == 1 + 3 + 4 * 2 * 2 + 4


def test_the_gru_printout_names_the_planted_bug():
    def keras_z(x, prev_h, Wx, Wh, b):  # next_h = z * n + (1 - z) * prev_h
        h, cache = reference.gru_step_forward(x, prev_h, Wx, Wh, b)
        z, n = cache[4][:, 2:4], cache[4][:, 4:]  # the reference's cache: activations r, z, n
        return z * n + (1 - z) * prev_h, cache
    all_ok, text = _gru_printout(gru_step_forward=keras_z)
    assert not all_ok and _differing(text)[0] == "h_0 = (1 - z_0) n_0 + z_0 h_(-1)"

    def direct_only(dnext_h, cache):  # dprev_h = dnext_h * z: the gate paths left out
        grads = list(reference.gru_step_backward(dnext_h, cache))
        grads[1] = dnext_h * cache[4][:, 2:4]
        return tuple(grads)
    all_ok, text = _gru_printout(gru_step_backward=direct_only)
    assert not all_ok and _differing(text) == ["g_1 = g_2 M_2", "g_0 = g_1 M_1", "dh0 = g_0 M_0"]


@pytest.mark.parametrize("assignment,printout,lines", [
    ("bptt", bptt_by_hand, BPTT_LINES), ("lstm", lstm_by_hand, LSTM_LINES),
    ("gru", gru_by_hand, GRU_LINES)])
def test_the_notebooks_solutions_say_ok_on_every_line(assignment, printout, lines):
    """The functions of the source notebook (not the reference), as its worked example
    cell passes them (the cell's own call, run in their namespace)."""
    from gradesim import notebook_cells, student_namespace

    ns = student_namespace(assignment)
    calls = [source for kind, source, meta in notebook_cells(assignment)
             if meta.get("grade_id", "").endswith("worked_example_run")]
    assert len(calls) == 1 and f"worked.{printout.__name__}(" in calls[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(calls[0], ns)  # noqa: S102 - the course's own notebook cell
    assert ns["all_match"] is True
    assert "differs" not in out.getvalue() and out.getvalue().count(" ok\n") == lines
