"""Checks, visible and hidden, of the ``rnn_cell`` and ``bptt`` assignments.

* every visible check passes on the reference functions, and names the bug
  of a planted mistake (forgot the bias, transposed Wh, missing tanh
  derivative, truncation off by one, ...);
* every hidden check's judge accepts the reference's outputs and rejects a
  perturbed or missing one; nothing mutates its inputs;
* interactive mode raises ``AssertionError``; grading mode only writes results,
  which :class:`autograder.pipeline.worker.verify.VerifyChecks` then judges in its own process.
"""

from __future__ import annotations

import numpy as np
import pytest
from nbfixtures import grade_cell, notebook

from autograder import reference
from autograder.pipeline.worker import verify
from rnn_course import checks, grading
from rnn_course.checks import bptt as checks_bptt
from rnn_course.checks import rnn_cell as checks_rnn_cell
from rnn_course.checks.bptt import reference_gradient_norms
from rnn_course.contract import SEQ_GRADS, STEP_GRADS

R = reference


def ref_norms(dact, Wh, dlast):
    """A correct gradient_norms_through_time, composed from the reference."""
    return reference_gradient_norms(R.rnn_step_backward, dact, Wh, dlast)


# the functions each check is called with in the notebooks, correct versions
def _correct_args(check_id: str) -> tuple:
    if check_id.startswith("rnn_step_forward_"):
        return (R.rnn_step_forward,)
    if check_id.startswith("rnn_step_backward_"):
        return (R.rnn_step_forward, R.rnn_step_backward)
    if check_id == "rnn_forward_values":
        return (R.rnn_forward, R.rnn_step_forward)
    if check_id.startswith("rnn_forward_"):
        return (R.rnn_forward,)
    if check_id.startswith("rnn_backward_"):
        return (R.rnn_backward, R.rnn_forward)
    if check_id == "gradient_norms_values":
        return (ref_norms, R.rnn_forward)
    if check_id.startswith("gradient_norms_"):
        return (ref_norms,)
    raise KeyError(check_id)


def _module_checks(module, hidden):
    return {v.id: v for v in vars(module).values()
            if isinstance(v, checks.Check) and v.hidden is hidden}


ALL_CHECKS = {**_module_checks(checks_rnn_cell, False), **_module_checks(checks_bptt, False)}
ALL_SPECS = {**_module_checks(checks_rnn_cell, True), **_module_checks(checks_bptt, True)}


@pytest.fixture
def interactive_mode(monkeypatch):
    monkeypatch.delenv(grading.GRADING_DIR_ENV, raising=False)
    monkeypatch.setattr(grading, "_grading_dir", None)


@pytest.fixture
def grading_mode(tmp_path, monkeypatch):
    folder = tmp_path / "grading"
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(folder))
    monkeypatch.setattr(grading, "_grading_dir", None)
    yield folder
    grading._grading_dir = None


# --------------------------------------------------------------------------- #
# visible checks: correct code passes, inputs and outputs are never mutated
# --------------------------------------------------------------------------- #
def test_registry_holds_every_check_of_both_modules():
    registered = checks.registry(["rnn_cell", "bptt"])
    for check_id, check in {**ALL_CHECKS, **ALL_SPECS}.items():
        assert registered[check_id] is check
    assert len(ALL_CHECKS) == 23 and len(ALL_SPECS) == 6
    assert len(registered) == 29


@pytest.mark.parametrize("check_id", sorted(ALL_CHECKS))
def test_visible_check_passes_on_reference(check_id, interactive_mode, capsys):
    ALL_CHECKS[check_id](*_correct_args(check_id))
    assert f"{check_id}: passed" in capsys.readouterr().out


@pytest.mark.parametrize("check_id", sorted(ALL_CHECKS))
def test_visible_check_is_deterministic_and_pure(check_id):
    check = ALL_CHECKS[check_id]
    inputs = check.inputs()
    again = check.inputs()
    assert inputs.keys() == again.keys()
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], again[k])
    outputs = grading.as_plain_arrays(check.run(check.inputs(), *_correct_args(check_id)))
    outputs.update(check.oracle_values())
    kept = {k: v.copy() for k, v in outputs.items()}
    fresh = check.inputs()
    assert check.verdict(fresh, outputs) is None
    for k in outputs:  # the verdict reads the outputs and inputs, it does not write them
        np.testing.assert_array_equal(outputs[k], kept[k])
    for k in fresh:
        np.testing.assert_array_equal(fresh[k], inputs[k])


def test_check_reports_missing_outputs_instead_of_crashing():
    check = ALL_CHECKS["rnn_step_backward_bias"]
    assert "missing output" in check.judge({}).message


# --------------------------------------------------------------------------- #
# planted bugs: rnn_step_forward
# --------------------------------------------------------------------------- #
def fwd_no_bias(x, prev_h, Wx, Wh, b):
    return R.rnn_step_forward(x, prev_h, Wx, Wh, np.zeros_like(b))


def fwd_no_tanh(x, prev_h, Wx, Wh, b):
    a = x @ Wx + prev_h @ Wh + b
    return a, None


def fwd_wh_transposed(x, prev_h, Wx, Wh, b):
    return R.rnn_step_forward(x, prev_h, Wx, Wh.T, b)


def fwd_x_with_wh(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + x @ Wh + b), None


def fwd_tanh_per_term(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx) + np.tanh(prev_h @ Wh) + np.tanh(b), None


def fwd_bias_outside(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + prev_h @ Wh) + b, None


def fwd_transposed_output(x, prev_h, Wx, Wh, b):
    return R.rnn_step_forward(x, prev_h, Wx, Wh, b)[0].T, None


def fwd_in_place(x, prev_h, Wx, Wh, b):
    out = prev_h
    out += x @ Wx + prev_h @ Wh + b - prev_h  # right value, written into prev_h
    return np.tanh(out), None


def fwd_no_input(x, prev_h, Wx, Wh, b):
    return R.rnn_step_forward(np.zeros_like(x), prev_h, Wx, Wh, b)


def fwd_returns_array(x, prev_h, Wx, Wh, b):
    return R.rnn_step_forward(x, prev_h, Wx, Wh, b)[0]


STEP_FORWARD_BUGS = [
    ("rnn_step_forward_bias", fwd_no_bias, "bias b is not added"),
    ("rnn_step_forward_bias", fwd_no_tanh, "forgot the tanh"),
    ("rnn_step_forward_input", fwd_no_tanh, "forgot the tanh"),
    ("rnn_step_forward_input", fwd_no_input, "input term x @ Wx is missing"),
    ("rnn_step_forward_recurrent", fwd_wh_transposed, "columns of Wh"),
    ("rnn_step_forward_recurrent", fwd_x_with_wh, "uses x with Wh"),
    ("rnn_step_forward_values", fwd_tanh_per_term, "each term separately"),
    ("rnn_step_forward_values", fwd_bias_outside, "added after the tanh"),
    ("rnn_step_forward_shapes", fwd_transposed_output, "Wx.T @ x.T"),
    ("rnn_step_forward_shapes", fwd_in_place, "modified its argument(s) prev_h in place"),
]


@pytest.mark.parametrize("check_id, bug, words", STEP_FORWARD_BUGS,
                         ids=[f"{c}-{b.__name__}" for c, b, _ in STEP_FORWARD_BUGS])
def test_step_forward_checks_name_the_bug(check_id, bug, words, interactive_mode):
    with pytest.raises(AssertionError) as e:
        ALL_CHECKS[check_id](bug)
    assert words in str(e.value)


def test_a_wrong_return_type_is_a_clear_type_error(interactive_mode):
    """One unpacking helper for every check: a TypeError naming the expected tuple."""
    with pytest.raises(TypeError, match=r"must return a tuple \(next_h, cache\), got a ndarray"):
        ALL_CHECKS["rnn_step_forward_shapes"](fwd_returns_array)


# --------------------------------------------------------------------------- #
# planted bugs: rnn_step_backward (all go through the reference forward)
# --------------------------------------------------------------------------- #
def _step_backward(dnext_h, cache, *, deriv="ok", dprev_wh_t=True, dwh_t=False,
                   db_mode="sum", dwh_state="prev", in_place=False):
    x, prev_h, Wx, Wh, next_h = cache
    if deriv == "ok":
        da = dnext_h * (1.0 - next_h ** 2)
    elif deriv == "missing":
        da = dnext_h
    else:  # tanh applied twice
        da = dnext_h * (1.0 - np.tanh(next_h) ** 2)
    if in_place:
        dnext_h *= 1.0 - next_h ** 2
    dprev_h = da @ (Wh.T if dprev_wh_t else Wh)
    dWh = (prev_h if dwh_state == "prev" else next_h).T @ da
    db = {"sum": da.sum(axis=0), "mean": da.mean(axis=0), "none": da}[db_mode]
    return da @ Wx.T, dprev_h, x.T @ da, dWh.T if dwh_t else dWh, db


def _bwd(**kw):
    def f(dnext_h, cache):
        return _step_backward(dnext_h, cache, **kw)
    f.__name__ = "_".join(f"{k}={v}" for k, v in kw.items())
    return f


STEP_BACKWARD_BUGS = [
    ("rnn_step_backward_bias", _bwd(deriv="missing"), "tanh derivative is missing or wrong"),
    ("rnn_step_backward_input", _bwd(deriv="missing"), "tanh derivative is missing or wrong"),
    ("rnn_step_backward_recurrent", _bwd(deriv="missing"), "tanh derivative"),
    ("rnn_step_backward_input", _bwd(deriv="twice"), "tanh derivative is missing or wrong"),
    ("rnn_step_backward_recurrent", _bwd(dprev_wh_t=False), "a transpose is missing"),
    ("rnn_step_backward_recurrent", _bwd(dwh_t=True), "dWh is transposed"),
    ("rnn_step_backward_recurrent", _bwd(dwh_state="next"), "not next_h"),
    ("rnn_step_backward_bias", _bwd(db_mode="mean"), "mean over the batch"),
    ("rnn_step_backward_shapes", _bwd(db_mode="none"), "sums over the batch"),
    ("rnn_step_backward_shapes", _bwd(in_place=True), "modified dnext_h in place"),
]


@pytest.mark.parametrize("check_id, bug, words", STEP_BACKWARD_BUGS,
                         ids=[f"{c}-{b.__name__}" for c, b, _ in STEP_BACKWARD_BUGS])
def test_step_backward_checks_name_the_bug(check_id, bug, words, interactive_mode):
    with pytest.raises(AssertionError) as e:
        ALL_CHECKS[check_id](R.rnn_step_forward, bug)
    assert str(e.value).startswith(check_id)
    assert words in str(e.value)


def test_step_backward_checks_judge_against_a_correct_forward(interactive_mode):
    """A backward that only agrees with its own wrong forward fails: the finite
    differences come from the stored oracle (a correct forward), never from the
    student's kernel, so forging them is pointless."""
    def fwd_scaled(x, prev_h, Wx, Wh, b):  # a different (wrong) forward ...
        return R.rnn_step_forward(x, prev_h, Wx, Wh, 2.0 * b)

    def bwd_scaled(dnext_h, cache):  # ... with its matching backward
        dx, dprev_h, dWx, dWh, db = R.rnn_step_backward(dnext_h, cache)
        return dx, dprev_h, dWx, dWh, 2.0 * db

    with pytest.raises(AssertionError, match="fix rnn_step_forward first"):
        ALL_CHECKS["rnn_step_backward_bias"](fwd_scaled, bwd_scaled)
    ALL_CHECKS["rnn_step_backward_bias"](R.rnn_step_forward, R.rnn_step_backward)


@pytest.mark.parametrize("check_id", sorted(c for c in ALL_CHECKS if ALL_CHECKS[c].oracle))
def test_submitted_oracle_values_are_ignored(check_id):
    """Zeros everywhere, including forged finite-difference tables, never pass a check
    with an oracle: the stored values replace whatever was submitted under their names."""
    check = ALL_CHECKS[check_id]
    honest = grading.as_plain_arrays(check.run(check.inputs(), *_correct_args(check_id)))
    forged = {k: np.zeros_like(v) for k, v in {**honest, **check.oracle_values()}.items()}
    assert check.judge(honest) is None
    assert check.judge(forged) is not None


# --------------------------------------------------------------------------- #
# planted bugs: rnn_forward
# --------------------------------------------------------------------------- #
def _forward(x, h0, Wx, Wh, b, *, mode="ok"):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    prev = h0
    for t in range(T):
        xt = x[:, 0] if mode == "first_input" else x[:, t]
        start = h0 if mode == "from_h0" else prev
        nxt = np.tanh(xt @ Wx + start @ Wh + b)
        h[:, t] = prev if mode == "shifted" else nxt
        prev = nxt
    if mode == "time_major":
        return h.transpose(1, 0, 2), None
    if mode == "with_h0":
        return np.concatenate([h0[:, None], h], axis=1), None
    return h, None


def _fwd(mode):
    def f(x, h0, Wx, Wh, b):
        return _forward(x, h0, Wx, Wh, b, mode=mode)
    f.__name__ = mode
    return f


FORWARD_BUGS = [
    ("rnn_forward_shapes", _fwd("time_major"), "the batch comes first"),
    ("rnn_forward_shapes", _fwd("with_h0"), "not h0"),
    ("rnn_forward_no_recurrence", _fwd("first_input"), "must read x[:, t]"),
    ("rnn_forward_no_recurrence", _fwd("shifted"), "shifted by one step"),
    ("rnn_forward_memory", _fwd("from_h0"), "started again from h0"),
    ("rnn_forward_memory", _fwd("shifted"), "h[:, 0] equals h0"),
]


@pytest.mark.parametrize("check_id, bug, words", FORWARD_BUGS,
                         ids=[f"{c}-{b.__name__}" for c, b, _ in FORWARD_BUGS])
def test_forward_checks_name_the_bug(check_id, bug, words, interactive_mode):
    with pytest.raises(AssertionError) as e:
        ALL_CHECKS[check_id](bug)
    assert words in str(e.value)


def test_forward_values_compares_with_the_students_step(interactive_mode):
    with pytest.raises(AssertionError, match=r"h\[:, 1\] differs from rnn_step_forward"):
        ALL_CHECKS["rnn_forward_values"](_fwd("from_h0"), R.rnn_step_forward)
    _fwd("ok")  # the test-local forward is itself right
    ALL_CHECKS["rnn_forward_values"](_fwd("ok"), R.rnn_step_forward)


# --------------------------------------------------------------------------- #
# planted bugs: rnn_backward (reference forward, test-local BPTT variants)
# --------------------------------------------------------------------------- #
def _bptt(dh, cache, truncate=None, *, carry=True, dh0_mode="ok", accumulate=True,
          dwh_t=False, shift=0, blocks=False, long_bug=False, in_place=False):
    """Per-loss BPTT written independently of the reference (windows of k + shift cells)."""
    xt, hs, Wx, Wh = cache  # reference cache: time-major x (T, N, D), hs (T+1, N, H)
    T = xt.shape[0]
    k = T if truncate is None else truncate
    if long_bug and truncate is not None and truncate >= T:
        k = T - 1
    k = max(1, k + shift) if truncate is not None else k
    if not carry:
        k = 1
    d = 1.0 - hs[1:] ** 2
    if in_place:
        dh *= 1.0
        dh[:, 0] += 1.0
    da = np.zeros_like(d)
    for t in range(T):
        g = dh[:, t]
        first = (t // k) * k if blocks else max(0, t - k + 1)
        for s in range(t, first - 1, -1):
            g = g * d[s]
            da[s] += g
            g = g @ Wh.T
    dx = np.einsum("tnh,dh->ntd", da, Wx)
    dh0 = {"ok": da[0] @ Wh.T, "upstream": dh[:, 0].copy(), "zero": np.zeros_like(dh[:, 0])}
    if accumulate:
        dWx = np.einsum("tnd,tnh->dh", xt, da)
        dWh = np.einsum("tni,tnj->ij", hs[:-1], da)
        db = da.sum(axis=(0, 1))
    else:  # overwritten at every step of a backward loop: only step 0 is left
        dWx, dWh, db = xt[0].T @ da[0], hs[0].T @ da[0], da[0].sum(axis=0)
    return dx, dh0[dh0_mode], dWx, dWh.T if dwh_t else dWh, db


def _bt(**kw):
    def f(dh, cache, truncate=None):
        return _bptt(dh, cache, truncate, **kw)
    f.__name__ = "_".join(f"{k}={v}" for k, v in kw.items()) or "ok"
    return f


def test_independent_bptt_matches_reference():
    rng = np.random.default_rng(5)
    x, h0 = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 4))
    Wx, Wh, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)
    dh = rng.standard_normal((2, 6, 4))
    _, cache = R.rnn_forward(x, h0, Wx, Wh, b)
    for k in (None, 1, 2, 3, 5, 6, 9):
        for got, want in zip(_bptt(dh, cache, k), R.rnn_backward(dh, cache, k), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_bptt_checks_pass_on_independent_implementation(interactive_mode):
    for check_id in ALL_CHECKS:
        if check_id.startswith("rnn_backward_"):
            ALL_CHECKS[check_id](_bt(), R.rnn_forward)


BACKWARD_BUGS = [
    ("rnn_backward_dx_dh0", _bt(carry=False), "add the gradient carried back"),
    ("rnn_backward_dx_dh0", _bt(dh0_mode="upstream"), "dh0 equals dh[:, 0]"),
    ("rnn_backward_dx_dh0", _bt(dh0_mode="zero"), "dh0 is zero"),
    ("rnn_backward_weights", _bt(accumulate=False), "accumulate with +="),
    ("rnn_backward_weights", _bt(dwh_t=True), "dWh is transposed"),
    ("rnn_backward_single_step", _bt(dwh_t=True), "per-step part"),
    ("rnn_backward_truncate_one", _bt(shift=1), "off by one"),
    ("rnn_backward_truncate_k", _bt(shift=1), "off by one: the loss at step t reaches 4 cells"),
    ("rnn_backward_truncate_k", _bt(shift=-1), "off by one: the loss at step t reaches only 2"),
    ("rnn_backward_truncate_k", _bt(blocks=True), "fixed blocks"),
    ("rnn_backward_truncate_long", _bt(long_bug=True), "must equal full BPTT"),
    ("rnn_backward_shapes", _bt(in_place=True), "modified dh in place"),
]


def ignores_truncate(dh, cache, truncate=None):
    return R.rnn_backward(dh, cache)


BACKWARD_BUGS += [
    ("rnn_backward_truncate_one", ignores_truncate, "truncate argument is ignored"),
    ("rnn_backward_truncate_k", ignores_truncate, "truncate argument is ignored"),
]


@pytest.mark.parametrize("check_id, bug, words", BACKWARD_BUGS,
                         ids=[f"{c}-{b.__name__}" for c, b, _ in BACKWARD_BUGS])
def test_backward_checks_name_the_bug(check_id, bug, words, interactive_mode):
    with pytest.raises(AssertionError) as e:
        ALL_CHECKS[check_id](bug, R.rnn_forward)
    assert words in str(e.value)


def test_blocks_from_the_end_are_named_too(interactive_mode):
    def blocks_from_end(dh, cache, truncate=None):
        xt, hs, Wx, Wh = cache
        T = xt.shape[0]
        k = truncate or T
        d = 1.0 - hs[1:] ** 2
        da, carry = np.zeros_like(d), np.zeros_like(hs[0])
        for t in range(T - 1, -1, -1):
            if (T - 1 - t) % k == 0:
                carry = np.zeros_like(carry)  # "detach" every k steps, counted from the end
            da[t] = (dh[:, t] + carry) * d[t]
            carry = da[t] @ Wh.T
        return (np.einsum("tnh,dh->ntd", da, Wx), da[0] @ Wh.T,
                np.einsum("tnd,tnh->dh", xt, da), np.einsum("tni,tnj->ij", hs[:-1], da),
                da.sum(axis=(0, 1)))

    with pytest.raises(AssertionError, match="fixed blocks"):
        ALL_CHECKS["rnn_backward_truncate_k"](blocks_from_end, R.rnn_forward)


# --------------------------------------------------------------------------- #
# planted bugs: gradient_norms_through_time
# --------------------------------------------------------------------------- #
def _norms(dact, Wh, dlast, *, mode="ok"):
    T = dact.shape[1]
    g = dlast.copy()
    out = [np.linalg.norm(g)]
    for d in range(1, T + 1):
        t = T - d + (1 if mode == "shift_next" else 0)  # the bug: step t+1's derivative
        factor = 1.0 if mode == "no_dact" or t >= T else dact[:, t]
        g = (g * factor) @ (Wh if mode == "wh" else Wh.T)
        out.append(np.linalg.norm(g))
    out = np.array(out)
    if mode == "reversed":
        return out[::-1]
    if mode == "no_h0":
        return out[:-1]
    if mode == "per_sample":
        return np.tile(out, (dact.shape[0], 1))
    return out


def _nm(mode):
    def f(dact, Wh, dlast):
        return _norms(dact, Wh, dlast, mode=mode)
    f.__name__ = mode
    return f


NORM_BUGS = [
    ("gradient_norms_scalar", _nm("reversed"), "norms is reversed"),
    ("gradient_norms_scalar", _nm("no_dact"), "derivative is missing"),
    ("gradient_norms_scalar", _nm("shift_next"), "off by one in time"),
    ("gradient_norms_shapes", _nm("no_h0"), "include the gradient reaching h0"),
    ("gradient_norms_shapes", _nm("per_sample"), "one norm per distance"),
]


@pytest.mark.parametrize("check_id, bug, words", NORM_BUGS,
                         ids=[f"{c}-{b.__name__}" for c, b, _ in NORM_BUGS])
def test_norm_checks_name_the_bug(check_id, bug, words, interactive_mode):
    with pytest.raises(AssertionError) as e:
        ALL_CHECKS[check_id](bug)
    assert words in str(e.value)


def test_norm_values_check_catches_a_transpose(interactive_mode):
    _nm("ok")  # the test-local version is right
    ALL_CHECKS["gradient_norms_values"](_nm("ok"), R.rnn_forward)
    with pytest.raises(AssertionError, match="then by Wh.T"):
        ALL_CHECKS["gradient_norms_values"](_nm("wh"), R.rnn_forward)


def test_norm_checks_detect_mutation(interactive_mode):
    def mutating(dact, Wh, dlast):
        dact *= 1.0
        dact[0, 0, 0] = 0.5
        return ref_norms(dact, Wh, dlast)

    with pytest.raises(AssertionError, match="modified its argument"):
        ALL_CHECKS["gradient_norms_shapes"](mutating)


# --------------------------------------------------------------------------- #
# hidden checks
# --------------------------------------------------------------------------- #
def student_functions(check):
    """Correct functions for a hidden check's ``run``: the reference's, and a test-local
    gradient_norms_through_time (the reference has none; the check's oracle composes it)."""
    local = {"gradient_norms_through_time": _nm("ok")}
    return [local.get(name) or getattr(R, name) for name in check.functions]


def test_hidden_checks_are_every_graded_functions_hidden_test():
    assert set(ALL_SPECS) == {
        "rnn_step_forward_hidden", "rnn_step_backward_hidden", "rnn_forward_hidden",
        "rnn_backward_hidden", "rnn_backward_truncated_hidden", "gradient_norms_hidden"}
    def unprefixed(check):  # every regime (<tag>_<output>) has the same outputs
        tags = check.make_inputs.tags
        names = [o.split("_", 1)[1] for o in check.outputs]
        assert [o.split("_", 1)[0] for o in check.outputs] == [
            t for t in tags for _ in range(len(names) // len(tags))]
        return tuple(names[:len(names) // len(tags)])

    assert {unprefixed(c) for c in ALL_SPECS.values()} == {
        ("next_h",), STEP_GRADS, ("h",), SEQ_GRADS, ("norms",)}


@pytest.mark.parametrize("spec_id", sorted(ALL_SPECS))
def test_hidden_check_accepts_reference_and_rejects_perturbed(spec_id):
    spec = ALL_SPECS[spec_id]
    for seed in range(12):
        inputs = spec.draw(np.random.default_rng(seed))
        kept = {k: v.copy() for k, v in inputs.items()}
        outputs = grading.as_plain_arrays(spec.run(inputs, *student_functions(spec)))
        assert sorted(outputs) == sorted(spec.outputs)  # run returns the declared outputs
        assert spec.judge(outputs, inputs, R) is None, (seed, spec.judge(outputs, inputs, R))
        for k in inputs:  # neither run nor the judge mutates the inputs
            np.testing.assert_array_equal(inputs[k], kept[k])
        name = sorted(outputs)[seed % len(outputs)]
        wrong = dict(outputs)
        wrong[name] = outputs[name] + 1e-3 * (1.0 + np.abs(outputs[name]))
        assert "differs from the expected" in spec.judge(wrong, inputs, R).message
        missing = {k: v for k, v in outputs.items() if k != name}
        assert checks.plain_output(name) in spec.judge(missing, inputs, R).message
        wrong_shape = dict(outputs, **{name: np.zeros(outputs[name].shape + (1,))})
        assert "shape" in spec.judge(wrong_shape, inputs, R).message


def test_hidden_draws_cover_edge_sizes_and_truncations():
    """Every draw holds every regime: the edge sizes (all 1) and distinct generic sizes;
    truncate = 1, 1 < k < T, k = T and k > T; a tanh-like and a linear RNN."""
    for seed in range(50):
        rng = np.random.default_rng(seed)
        inp = ALL_SPECS["rnn_backward_hidden"].draw(rng)
        assert inp["edge_x"].shape == (1, 1, 1) and inp["edge_h0"].shape == (1, 1)
        N, T, D = inp["generic_x"].shape
        H = inp["generic_h0"].shape[1]
        assert len({N, T, D, H}) == 4 and min(N, T, D, H) >= 2
        inp = ALL_SPECS["rnn_backward_truncated_hidden"].draw(rng)
        ks = {tag: (int(inp[f"{tag}_truncate"]), inp[f"{tag}_x"].shape[1])
              for tag in ("k1", "kmid", "kT", "kover")}
        assert ks["k1"][0] == 1 and 1 < ks["kmid"][0] < ks["kmid"][1]
        assert ks["kT"][0] == ks["kT"][1] and ks["kover"][0] > ks["kover"][1]
        inp = ALL_SPECS["gradient_norms_hidden"].draw(rng)
        assert np.all(inp["linear_dact"] == 1.0) and np.all(inp["tanh_dact"] < 1.0)


def test_hidden_norm_spec_is_composed_from_the_reference():
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((3, 7, 2)), rng.standard_normal((3, 4))
    Wx, Wh, b = rng.standard_normal((2, 4)), rng.standard_normal((4, 4)), np.zeros(4)
    h, _ = R.rnn_forward(x, h0, Wx, Wh, b)
    dlast = rng.standard_normal((3, 4))
    norms = reference_gradient_norms(R.rnn_step_backward, 1.0 - h ** 2, Wh, dlast)
    # independently: dE/dh_s as the dh0 of BPTT over the rest of the sequence
    for d in range(1, 8):
        s = 7 - d  # the state entering step s: h0 if s == 0, else h[:, s-1]
        start = h0 if s == 0 else h[:, s - 1]
        _, cache = R.rnn_forward(x[:, s:], start, Wx, Wh, b)
        dh = np.zeros((3, d, 4))
        dh[:, -1] = dlast
        np.testing.assert_allclose(norms[d], np.linalg.norm(R.rnn_backward(dh, cache)[1]),
                                   rtol=1e-10)


# --------------------------------------------------------------------------- #
# grading mode: the kernel writes numbers, the grader judges them
# --------------------------------------------------------------------------- #
def test_grading_mode_writes_results_instead_of_judging(grading_mode, capsys):
    check = ALL_CHECKS["rnn_step_forward_bias"]
    check(fwd_no_bias)  # a wrong function: no AssertionError while grading
    assert (grading_mode / "results" / "rnn_step_forward_bias.npz").is_file()
    assert "passed" not in capsys.readouterr().out


def bwd_wrong_dwh(dh, cache, truncate=None):
    dx, dh0, dWx, dWh, db = R.rnn_backward(dh, cache, truncate)
    return dx, dh0, dWx, dWh + 0.01, db


def test_verify_checks_end_to_end(grading_mode):
    """A tiny bptt notebook: two visible checks (one right, one wrong), two hidden ones
    (one right, one wrong) and a check of another assignment (not this notebook's)."""
    secret = b"s3cret"
    ids = ["rnn_backward_single_step", "rnn_backward_truncate_k", "rnn_backward_hidden",
           "rnn_backward_truncated_hidden", "rnn_forward_hidden"]
    nb = notebook([grade_cell("pass", i, 1) for i in ids])
    plan = verify.grading_plan(nb, secret, "bptt", "alice")
    assert sorted(plan) == sorted(ids[:4])  # rnn_forward_hidden is no bptt check
    assert [gid for gid in ids[:4] if plan[gid].hidden_code] == ids[2:4]

    # what the kernel does: every cell calls its check on the student's functions, with
    # the inputs the grader delivers only while that cell runs
    calls = {
        "rnn_backward_single_step": lambda: ALL_CHECKS["rnn_backward_single_step"](
            R.rnn_backward, R.rnn_forward),
        "rnn_backward_truncate_k": lambda: ALL_CHECKS["rnn_backward_truncate_k"](
            _bt(shift=1), R.rnn_forward),
        "rnn_backward_hidden": lambda: ALL_SPECS["rnn_backward_hidden"](
            R.rnn_backward, R.rnn_forward),
        "rnn_backward_truncated_hidden": lambda: ALL_SPECS["rnn_backward_truncated_hidden"](
            bwd_wrong_dwh, R.rnn_forward),
    }
    collected = grading_mode.parent / "collected"
    collected.mkdir()
    for gid, cell in plan.items():
        grading.deliver(grading_mode, gid, cell.inputs)
        calls[gid]()
        grading.collect(grading_mode, gid, collected / f"{gid}.npz")
    assert sorted(p.name for p in collected.iterdir()) == sorted(f"{i}.npz" for i in ids[:4])

    pp = verify.VerifyChecks(grading_dir=str(collected))
    pp.secret = secret
    nb, resources = pp.preprocess(nb, {"nbgrader": {"assignment": "bptt",
                                                    "student": "alice"}})
    verdicts = resources["rnn_course"]["checks"]
    assert verdicts["rnn_backward_single_step"]["passed"] is True
    assert verdicts["rnn_backward_hidden"] == {"kind": "hidden", "passed": True, "message": "",
                                               "fraction": 1.0}
    assert verdicts["rnn_backward_truncate_k"]["passed"] is False
    assert "off by one" in verdicts["rnn_backward_truncate_k"]["message"]
    assert verdicts["rnn_backward_truncated_hidden"]["passed"] is False
    assert "dWh" in verdicts["rnn_backward_truncated_hidden"]["message"]
    assert verdicts["rnn_forward_hidden"]["kind"] == "unregistered"  # an rnn_cell check
    assert verdicts["rnn_forward_hidden"]["passed"] is False
    outputs = {c.metadata.nbgrader["grade_id"]: c.outputs[0] for c in nb.cells}
    assert outputs["rnn_backward_hidden"].output_type == "stream"
    assert outputs["rnn_backward_truncate_k"].output_type == "error"


def test_a_forged_forward_value_changes_the_message_never_the_verdict():
    """The student's next_h (reported by the kernel) only picks the message: claiming the
    forward is right does not make a wrong gradient pass, claiming it is wrong does not
    fail a right one."""
    check = ALL_CHECKS["rnn_step_backward_bias"]
    honest = grading.as_plain_arrays(check.run(check.inputs(), *_correct_args(check.id)))
    lying = {**honest, **{k: v + 1.0 for k, v in honest.items() if k.endswith("_next_h")}}
    assert check.judge(lying) is None
    wrong = {**honest, **{k: 2.0 * v for k, v in honest.items() if k.endswith("_db")}}
    assert check.judge(wrong) is not None
    assert "fix rnn_step_forward first" in check.judge(
        {**wrong, **{k: v + 1.0 for k, v in honest.items() if k.endswith("_next_h")}}).message
