"""Checks, visible and hidden, of the ``clipping`` and ``lstm`` assignments.

* every visible check passes on the reference solutions and catches planted
  bugs with a message that names the bug;
* every hidden check accepts the reference's outputs and rejects perturbed ones;
* the notebooks' graded cells and the checks agree (ids, calls);
* interactive mode raises ``AssertionError``; grading mode only writes results,
  which the grader-side judges decide correctly.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import reference
from autograder.commands.release import protected_lines
from autograder.protocol.secrets import seed_for
from rnn_course import checks, grading
from rnn_course.checks import Check
from rnn_course.checks import clipping as clip_checks
from rnn_course.checks import lstm as lstm_checks
from rnn_course.grading import load_result

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {name: ROOT / "source" / name / f"{name}.ipynb" for name in ("clipping", "lstm")}
MODULES = {"clipping": clip_checks, "lstm": lstm_checks}


def _checks(module, hidden=False):
    return {c.id: c for c in vars(module).values() if isinstance(c, Check) and c.hidden is hidden}


CLIP_CHECKS = _checks(clip_checks)
LSTM_CHECKS = _checks(lstm_checks)
ALL_CHECKS = {**CLIP_CHECKS, **LSTM_CHECKS}
SPECS = {**_checks(clip_checks, hidden=True), **_checks(lstm_checks, hidden=True)}


def functions_for(check_id, impl):
    """The functions a check is called with in the notebook, taken from ``impl``."""
    if check_id.startswith("clip_by_value"):
        return (impl.clip_by_value,)
    if check_id.startswith("clip_by_global_norm"):
        return (impl.clip_by_global_norm,)
    if check_id.startswith("lstm_gates"):
        return (impl.lstm_gates,)
    if check_id.startswith("lstm_step_forward"):
        return (impl.lstm_step_forward,)
    if check_id.startswith("lstm_step_backward"):
        return (impl.lstm_step_forward, impl.lstm_step_backward)
    if check_id == "lstm_forward_matches_steps":
        return (impl.lstm_forward, impl.lstm_step_forward)
    if check_id.startswith("lstm_forward"):
        return (impl.lstm_forward,)
    if check_id.startswith("lstm_backward"):
        return (impl.lstm_forward, impl.lstm_backward)
    raise KeyError(check_id)


@pytest.fixture(autouse=True)
def interactive(monkeypatch):
    """Every test starts in interactive mode, whatever the environment says."""
    monkeypatch.delenv(grading.GRADING_DIR_ENV, raising=False)
    monkeypatch.setattr(grading, "_grading_dir", None)


def verdict_of(check, *functions):
    """Run a check the way the grader would: run (kernel side), then judge; the verdict's
    message (None when it passed)."""
    outputs = grading.as_plain_arrays(check.run(check.inputs(), *functions))
    verdict = check.judge(outputs)
    return None if verdict is None else verdict.message


# --------------------------------------------------------------------------- #
# The reference passes every visible check
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("check_id", sorted(ALL_CHECKS))
def test_reference_passes(check_id, capsys):
    ALL_CHECKS[check_id](*functions_for(check_id, reference))
    assert f"{check_id}: passed" in capsys.readouterr().out


def test_every_check_module_is_registered():
    assert len(CLIP_CHECKS) == 7
    assert len(LSTM_CHECKS) == 19


# --------------------------------------------------------------------------- #
# Planted bugs: clipping
# --------------------------------------------------------------------------- #
def clip_value_in_place(grads, clip_value):
    for v in grads.values():
        np.clip(v, -clip_value, clip_value, out=v)
    return dict(grads)


def clip_value_same_dict(grads, clip_value):
    for k, v in grads.items():
        grads[k] = np.clip(v, -clip_value, clip_value)
    return grads


def clip_value_edits_dict(grads, clip_value):
    for k, v in grads.items():
        grads[k] = np.clip(v, -clip_value, clip_value)
    return dict(grads)


def clip_value_upper_only(grads, clip_value):
    return {k: np.minimum(v, clip_value) for k, v in grads.items()}


def clip_value_rescales(grads, clip_value):
    return {k: v * min(1.0, clip_value / np.abs(v).max()) for k, v in grads.items()}


def clip_value_drops_key(grads, clip_value):
    return {k: np.clip(v, -clip_value, clip_value) for k, v in grads.items() if k != "b"}


def _norm(grads):
    return float(np.sqrt(sum(np.sum(v * v) for v in grads.values())))


def global_per_array(grads, max_norm):
    out = {}
    for k, v in grads.items():
        n = np.linalg.norm(v)
        out[k] = v * (max_norm / n if n > max_norm else 1.0)
    return out, _norm(grads)


def global_sum_of_norms(grads, max_norm):
    total = float(sum(np.linalg.norm(v) for v in grads.values()))
    return reference.clip_by_global_norm(grads, max_norm)[0], total


def global_no_sqrt(grads, max_norm):
    return reference.clip_by_global_norm(grads, max_norm)[0], _norm(grads) ** 2


def global_norm_after(grads, max_norm):
    clipped, _ = reference.clip_by_global_norm(grads, max_norm)
    return clipped, _norm(clipped)


def global_always_rescales(grads, max_norm):
    total = _norm(grads)
    return {k: v * (max_norm / total) for k, v in grads.items()}, total


def global_upside_down(grads, max_norm):
    total = _norm(grads)
    scale = total / max_norm if total > max_norm else 1.0
    return {k: v * scale for k, v in grads.items()}, total


def global_in_place(grads, max_norm):
    total = _norm(grads)
    if total > max_norm:
        for v in grads.values():
            v *= max_norm / total
    return dict(grads), total


def global_noop_same_arrays(grads, max_norm):
    total = _norm(grads)
    if total <= max_norm:
        return dict(grads), total
    return {k: v * (max_norm / total) for k, v in grads.items()}, total


def global_by_value(grads, max_norm):
    return reference.clip_by_value(grads, max_norm / 10), _norm(grads)


def global_returns_dict_only(grads, max_norm):
    return reference.clip_by_global_norm(grads, max_norm)[0]


CLIP_BUGS = [
    ("clip_by_value_untouched", clip_value_in_place, "changed grads['Wx'] in place"),
    ("clip_by_value_untouched", clip_value_same_dict, "returned the very dict"),
    ("clip_by_value_untouched", clip_value_edits_dict, "replaced grads['Wx'] in the dict"),
    ("clip_by_value_values", clip_value_upper_only, "clip from both sides"),
    ("clip_by_value_values", clip_value_rescales, "already inside"),
    ("clip_by_value_shapes", clip_value_drops_key, "no key 'b'"),
    ("clip_by_global_norm_scaling", global_per_array, "clipped by its own norm"),
    ("clip_by_global_norm_scaling", global_upside_down, "upside down"),
    ("clip_by_global_norm_scaling", global_by_value, "never changes its direction"),
    ("clip_by_global_norm_total_norm", global_sum_of_norms, "sum of the three arrays' norms"),
    ("clip_by_global_norm_total_norm", global_no_sqrt, "without the final square root"),
    ("clip_by_global_norm_total_norm", global_norm_after, "*after* clipping"),
    ("clip_by_global_norm_noop", global_always_rescales, "scaled *up*"),
    ("clip_by_global_norm_untouched", global_in_place, "changed grads['Wx'] in place"),
    ("clip_by_global_norm_untouched", global_noop_same_arrays, "below max_norm"),
    ("clip_by_global_norm_untouched", global_noop_same_arrays, "is (a view of) the array"),
]


@pytest.mark.parametrize("check_id, bug, phrase", CLIP_BUGS,
                         ids=[f"{c}-{b.__name__}" for c, b, _ in CLIP_BUGS])
def test_clipping_check_names_the_bug(check_id, bug, phrase):
    message = verdict_of(ALL_CHECKS[check_id], bug)
    assert message is not None and phrase in message, message


def test_wrong_return_types_are_clear_errors():
    with pytest.raises(TypeError, match=r"tuple \(clipped, total_norm\)"):
        ALL_CHECKS["clip_by_global_norm_scaling"](global_returns_dict_only)
    with pytest.raises(ValueError, match="gates of different shapes"):
        ALL_CHECKS["lstm_gates_order"](gates_wrong_width)
    with pytest.raises(TypeError, match=r"lstm_step_forward must return a tuple"):
        ALL_CHECKS["lstm_step_forward_shapes"](lambda **kw: reference.lstm_step_forward(**kw)[:2])


# --------------------------------------------------------------------------- #
# Planted bugs: LSTM (each a small edit of the reference)
# --------------------------------------------------------------------------- #
def _sig(a):
    return reference.sigmoid(a)


def gates_ifgo(a):
    i, f, o, g = reference.lstm_gates(a)
    H = a.shape[1] // 4
    return i, f, _sig(a[:, 3 * H:]), np.tanh(a[:, 2 * H:3 * H])


def gates_fiog(a):
    i, f, o, g = reference.lstm_gates(a)
    return f, i, o, g


def gates_naive_sigmoid(a):
    H = a.shape[1] // 4
    s = 1.0 / (1.0 + np.exp(-a[:, :3 * H]))
    return s[:, :H], s[:, H:2 * H], s[:, 2 * H:], np.tanh(a[:, 3 * H:])


def gates_nan_sigmoid(a):
    H = a.shape[1] // 4
    e = np.exp(a[:, :3 * H])
    s = e / (1.0 + e)
    return s[:, :H], s[:, H:2 * H], s[:, 2 * H:], np.tanh(a[:, 3 * H:])


def gates_sigmoid_g(a):
    i, f, o, _ = reference.lstm_gates(a)
    return i, f, o, _sig(a[:, 3 * (a.shape[1] // 4):])


def gates_wrong_width(a):
    i, f, o, g = reference.lstm_gates(a)
    return i, f, o, np.concatenate([g, g], axis=1)


def _step_with(cell=None, hidden_fn=None, preact=None):
    """An LSTM step whose cell update / output / pre-activation can be replaced."""
    def step(x, prev_h, prev_c, Wx, Wh, b):
        a = preact(x, prev_h, Wx, Wh, b) if preact else x @ Wx + prev_h @ Wh + b
        i, f, o, g = reference.lstm_gates(a)
        c = cell(i, f, g, prev_c, prev_h) if cell else f * prev_c + i * g
        h = hidden_fn(o, c) if hidden_fn else o * np.tanh(c)
        return h, c, None
    return step


step_ignores_prev_c = _step_with(cell=lambda i, f, g, c, h: i * g)
step_forgets_prev_h = _step_with(cell=lambda i, f, g, c, h: f * h + i * g)
step_one_minus_f = _step_with(cell=lambda i, f, g, c, h: (1 - f) * c + i * g)
step_no_forget_gate = _step_with(cell=lambda i, f, g, c, h: c + i * g)
step_no_tanh = _step_with(hidden_fn=lambda o, c: o * c)
step_no_bias = _step_with(preact=lambda x, h, Wx, Wh, b: x @ Wx + h @ Wh)
step_no_recurrence = _step_with(preact=lambda x, h, Wx, Wh, b: x @ Wx + b)


def _step_backward_with(dc_fn=None, dprev_c_fn=None, block=None, block_fn=None,
                        dx_fn=None):
    """lstm_step_backward with one piece replaced (needs the reference cache)."""
    def backward(dnext_h, dnext_c, cache):
        x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc = cache
        if dc_fn:
            dc = dc_fn(dnext_h, dnext_c, o, tc)
        else:
            dc = dnext_c + dnext_h * o * (1 - tc ** 2)
        blocks = {"i": dc * g * i * (1 - i), "f": dc * prev_c * f * (1 - f),
                  "o": dnext_h * tc * o * (1 - o), "g": dc * i * (1 - g ** 2)}
        if block:
            blocks[block] = block_fn(dc, dnext_h, x, prev_h, prev_c, i, f, o, g, tc)
        da = np.concatenate([blocks[k] for k in "ifog"], axis=1)
        dprev_c = dprev_c_fn(dc, f) if dprev_c_fn else dc * f
        dx = dx_fn(da, Wx, Wh) if dx_fn else da @ Wx.T
        return dx, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)
    return backward


back_missing_h_path = _step_backward_with(dc_fn=lambda dh, dc, o, tc: dc)
back_missing_tanh_prime = _step_backward_with(dc_fn=lambda dh, dc, o, tc: dc + dh * o)
back_no_f = _step_backward_with(dprev_c_fn=lambda dc, f: dc)
back_forget_uses_h = _step_backward_with(
    block="f", block_fn=lambda dc, dh, x, ph, pc, i, f, o, g, tc: dc * ph * f * (1 - f))
back_output_uses_c = _step_backward_with(
    block="o", block_fn=lambda dc, dh, x, ph, pc, i, f, o, g, tc: dh * np.arctanh(tc) * o * (1 - o))
back_candidate_sigmoid_prime = _step_backward_with(
    block="g", block_fn=lambda dc, dh, x, ph, pc, i, f, o, g, tc: dc * i * g * (1 - g))
back_dx_transposed = _step_backward_with(dx_fn=lambda da, Wx, Wh: 0.5 * da @ Wx.T)


def forward_c0_is_h0(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h, c, out = h0, h0, []
    for t in range(T):
        h, c, _ = reference.lstm_step_forward(x[:, t], h, c, Wx, Wh, b)
        out.append(h)
    return np.stack(out, axis=1), None


def forward_resets_c(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h, out = h0, []
    for t in range(T):
        h, _, _ = reference.lstm_step_forward(x[:, t], h, np.zeros_like(h0), Wx, Wh, b)
        out.append(h)
    return np.stack(out, axis=1), None


def forward_always_h0(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    c, out = np.zeros_like(h0), []
    for t in range(T):
        h, c, _ = reference.lstm_step_forward(x[:, t], h0, c, Wx, Wh, b)
        out.append(h)
    return np.stack(out, axis=1), None


def _step_forward_cache(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h, c, out, caches = h0, np.zeros_like(h0), [], []
    for t in range(T):
        h, c, cache = reference.lstm_step_forward(x[:, t], h, c, Wx, Wh, b)
        out.append(h)
        caches.append(cache)
    return np.stack(out, axis=1), caches


def _backward_with(carry_c=True, carry_h=True, sum_weights=True):
    def backward(dh, caches):
        N, T, H = dh.shape
        dx = np.zeros((N, T, caches[0][0].shape[1]))
        dWx = dWh = db = 0.0
        dnh, dnc = np.zeros((N, H)), np.zeros((N, H))
        for t in reversed(range(T)):
            dx[:, t], dph, dpc, a, bb, cc = reference.lstm_step_backward(
                dh[:, t] + dnh, dnc, caches[t])
            dnh = dph if carry_h else np.zeros_like(dph)
            dnc = dpc if carry_c else np.zeros_like(dpc)
            if sum_weights:
                dWx, dWh, db = dWx + a, dWh + bb, db + cc
            elif t == T - 1:
                dWx, dWh, db = a, bb, cc
        return dx, dnh, dWx, dWh, db
    return backward


class Impl:
    """The reference with some functions replaced."""

    def __init__(self, **replaced):
        self.__dict__.update({k: getattr(reference, k) for k in reference.__all__})
        self.__dict__.update(replaced)


LSTM_BUGS = [
    ("lstm_gates_order", Impl(lstm_gates=gates_ifgo), "gate order is i, f, o, g"),
    ("lstm_gates_order", Impl(lstm_gates=gates_fiog), "gate order is i, f, o, g"),
    ("lstm_gates_stable", Impl(lstm_gates=gates_naive_sigmoid), "overflow warning"),
    ("lstm_gates_stable", Impl(lstm_gates=gates_nan_sigmoid), "NaN or inf"),
    ("lstm_gates_values", Impl(lstm_gates=gates_sigmoid_g), "candidate g is a tanh"),
    ("lstm_gates_shapes", Impl(lstm_gates=gates_wrong_width), "g has shape"),
    ("lstm_step_forward_cell_state", Impl(lstm_step_forward=step_ignores_prev_c),
     "ignores prev_c"),
    ("lstm_step_forward_cell_state", Impl(lstm_step_forward=step_forgets_prev_h),
     "multiplies prev_h instead of prev_c"),
    ("lstm_step_forward_cell_state", Impl(lstm_step_forward=step_one_minus_f), "(1 - f)"),
    ("lstm_step_forward_cell_state", Impl(lstm_step_forward=step_no_forget_gate),
     "without the forget gate"),
    ("lstm_step_forward_hidden_state", Impl(lstm_step_forward=step_no_tanh),
     "without the tanh"),
    ("lstm_step_forward_preactivation", Impl(lstm_step_forward=step_no_bias),
     "check the + b"),
    ("lstm_step_forward_preactivation", Impl(lstm_step_forward=step_no_recurrence),
     "prev_h @ Wh term"),
    ("lstm_step_backward_dprev_c", Impl(lstm_step_backward=back_missing_h_path),
     "path through next_h is missing"),
    ("lstm_step_backward_dprev_c", Impl(lstm_step_backward=back_missing_tanh_prime),
     "tanh derivative"),
    ("lstm_step_backward_dprev_c", Impl(lstm_step_backward=back_no_f), "factor f"),
    ("lstm_step_backward_gate_blocks", Impl(lstm_step_backward=back_forget_uses_h),
     "forget gate f block"),
    ("lstm_step_backward_gate_blocks", Impl(lstm_step_backward=back_output_uses_c),
     "output gate o block"),
    ("lstm_step_backward_gate_blocks", Impl(lstm_step_backward=back_candidate_sigmoid_prime),
     "candidate g block"),
    ("lstm_step_backward_gate_blocks", Impl(lstm_step_backward=back_missing_h_path),
     "i, f and g blocks"),
    ("lstm_step_backward_gradcheck", Impl(lstm_step_backward=back_dx_transposed), "dx disagrees"),
    ("lstm_step_backward_gradcheck", Impl(lstm_step_backward=back_missing_h_path),
     "dprev_c disagrees"),
    ("lstm_forward_c0_zero", Impl(lstm_forward=forward_c0_is_h0), "from h0"),
    ("lstm_forward_carries_cell", Impl(lstm_forward=forward_resets_c), "reset"),
    ("lstm_forward_matches_steps", Impl(lstm_forward=forward_always_h0), "h[:, 1] differs"),
    ("lstm_backward_through_cell",
     Impl(lstm_forward=_step_forward_cache, lstm_backward=_backward_with(carry_c=False)),
     "Carry dprev_c"),
    ("lstm_backward_gradcheck",
     Impl(lstm_forward=_step_forward_cache, lstm_backward=_backward_with(carry_h=False)),
     "the h gradient from step t + 1"),
    ("lstm_backward_gradcheck",
     Impl(lstm_forward=_step_forward_cache, lstm_backward=_backward_with(sum_weights=False)),
     "dWx disagrees"),
]


@pytest.mark.parametrize("check_id, impl, phrase", LSTM_BUGS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(LSTM_BUGS)])
def test_lstm_check_names_the_bug(check_id, impl, phrase):
    message = verdict_of(ALL_CHECKS[check_id], *functions_for(check_id, impl))
    assert message is not None and phrase in message, message


def test_lstm_planted_bugs_pass_their_unrelated_checks():
    """Isolation: a bug in the cell update does not fail the pre-activation check, etc."""
    assert verdict_of(ALL_CHECKS["lstm_step_forward_preactivation"], step_ignores_prev_c) is None
    assert verdict_of(ALL_CHECKS["lstm_step_forward_cell_state"], step_no_tanh) is None
    assert verdict_of(ALL_CHECKS["lstm_gates_order"], gates_naive_sigmoid) is None
    assert verdict_of(ALL_CHECKS["lstm_gates_order"], gates_sigmoid_g) is None
    fwd = _step_forward_cache
    assert verdict_of(ALL_CHECKS["lstm_backward_through_cell"], fwd,
                      _backward_with(carry_h=False)) is None
    assert verdict_of(ALL_CHECKS["lstm_backward_gradcheck"], fwd, _backward_with()) is None


# --------------------------------------------------------------------------- #
# Hidden checks
# --------------------------------------------------------------------------- #
def test_specs_are_registered():
    assert sorted(SPECS) == sorted([
        "clip_by_value_hidden", "clip_by_global_norm_hidden", "lstm_gates_hidden",
        "lstm_step_forward_hidden", "lstm_step_backward_hidden", "lstm_forward_hidden",
        "lstm_backward_hidden"])


@pytest.mark.parametrize("spec_id", sorted(SPECS))
def test_spec_accepts_reference_rejects_perturbed(spec_id):
    spec = SPECS[spec_id]
    for seed in range(8):
        inputs = spec.draw(np.random.default_rng(seed))
        want = {k: np.array(v, dtype=np.float64)
                for k, v in spec.expected_outputs(inputs, reference).items()}
        ran = grading.as_plain_arrays(spec.run(inputs, *functions_for(spec_id, reference)))
        assert sorted(ran) == sorted(spec.outputs)  # run returns the declared outputs
        assert spec.judge(ran, inputs, reference) is None
        assert spec.judge(want, inputs, reference) is None
        for name, value in want.items():
            if value.size == 0:
                continue
            bad = dict(want)
            bad[name] = value.copy()
            flat = bad[name].reshape(-1)
            j = int(np.argmax(np.abs(flat)))
            flat[j] += 1e-3 * max(1.0, abs(flat[j]))
            assert spec.judge(bad, inputs, reference) is not None, (seed, name)
        name = next(iter(want))
        wrong_shape = {**want, name: want[name][..., None]}
        assert "shape" in spec.judge(wrong_shape, inputs, reference).message
        missing = {k: v for k, v in want.items() if k != name}
        assert "no value" in spec.judge(missing, inputs, reference).message


def test_specs_draw_edge_sizes_and_huge_preactivations():
    """Every draw holds the edge sizes (all 1) and distinct generic sizes with huge
    pre-activations of both signs; the generic shapes vary from draw to draw."""
    gates = SPECS["lstm_gates_hidden"]
    for s in range(40):
        draw = gates.draw(np.random.default_rng(s))
        assert draw["edge_a"].shape == (1, 4)
        a = draw["generic_a"]
        assert min(a.shape[0], a.shape[1] // 4) >= 2
        assert a.max() > 700 and a.min() < -700
    seqs = [SPECS["lstm_backward_hidden"].draw(np.random.default_rng(s)) for s in range(40)]
    assert all(d["edge_x"].shape == (1, 1, 1) for d in seqs)
    assert len({d["generic_x"].shape for d in seqs}) > 10  # shapes vary from draw to draw


def test_clip_specs_detect_mutated_inputs_and_cover_both_branches():
    spec = SPECS["clip_by_global_norm_hidden"]
    for seed in range(20):
        inputs = spec.draw(np.random.default_rng(seed))
        max_norm = float(inputs["max_norm"])
        big = {k: inputs["big_" + k] for k in ("Wx", "Wh", "b")}
        assert all(v.size >= 2 for v in big.values())
        small = {k: inputs["small_" + k] for k in ("Wx", "Wh", "b")}
        assert reference.clip_by_global_norm(big, max_norm)[1] > max_norm
        assert reference.clip_by_global_norm(small, max_norm)[1] < max_norm
        want = spec.expected_outputs(inputs, reference)
        mutated = dict(want, big_after_Wx=want["big_clipped_Wx"])
        assert checks.plain_output("big_after_Wx") in spec.judge(mutated, inputs,
                                                                 reference).message
    value_spec = SPECS["clip_by_value_hidden"]
    inputs = value_spec.draw(np.random.default_rng(0))
    want = value_spec.expected_outputs(inputs, reference)
    verdict = value_spec.judge(dict(want, after_Wx=want["clipped_Wx"]), inputs, reference)
    assert checks.plain_output("after_Wx") in verdict.message
    assert "after_" not in verdict.message and "must be left untouched" in verdict.message
    assert not verdict.general  # an argument modified in place: an edge case


# --------------------------------------------------------------------------- #
# Notebooks agree with the checks and specs
# --------------------------------------------------------------------------- #
def _graded_cells(assignment):
    nb = nbformat.read(NOTEBOOKS[assignment], as_version=4)
    return [c for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_notebook_cells_match_checks_and_specs(assignment):
    cells = _graded_cells(assignment)
    ids = [c.metadata.nbgrader["grade_id"] for c in cells]
    module_checks = {**_checks(MODULES[assignment]), **_checks(MODULES[assignment], True)}
    assert sorted(ids) == sorted(module_checks)  # every check used exactly once
    for cell in cells:
        grade_id = cell.metadata.nbgrader["grade_id"]
        assert cell.metadata.nbgrader["points"] > 0
        call = f"checks.{grade_id}({', '.join(module_checks[grade_id].functions)})"
        if not module_checks[grade_id].hidden:
            assert call in cell.source
        else:
            visible_part, hidden_part = cell.source.split("### BEGIN HIDDEN TESTS")
            assert hidden_part.split("### END HIDDEN TESTS")[0].strip() == call
            assert "checks." in visible_part  # fails on the stub in the release


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_no_solution_line_in_check_or_demo_modules(assignment):
    nb = nbformat.read(NOTEBOOKS[assignment], as_version=4)
    protected = set(protected_lines(nb))
    files = [ROOT / "rnn_course" / "checks" / f"{assignment}.py",
             ROOT / "rnn_course" / "demos" / f"{assignment}.py"]
    for path in files:
        if path.exists():
            lines = {raw.strip() for raw in path.read_text().splitlines()}
            assert not protected & lines, (path, protected & lines)


def _hidden_cells(assignment):
    return {c.metadata.nbgrader["grade_id"]: c.source for c in _graded_cells(assignment)
            if "### BEGIN HIDDEN TESTS" in c.source}


def _namespace(impl, assignment):
    ns = {"np": np, "checks": MODULES[assignment]}
    ns.update({k: getattr(impl, k) for k in reference.__all__})
    return ns


HIDDEN_CELLS = [(a, i) for a in sorted(NOTEBOOKS) for i in sorted(_hidden_cells(a))]


@pytest.mark.parametrize("assignment, grade_id", HIDDEN_CELLS)
def test_hidden_cell_instructor_mode(assignment, grade_id, capsys):
    """In the instructor's notebook a hidden cell judges right away: reference passes."""
    exec(_hidden_cells(assignment)[grade_id], _namespace(reference, assignment))
    assert f"{grade_id}: passed" in capsys.readouterr().out


# --------------------------------------------------------------------------- #
# Interactive and grading modes
# --------------------------------------------------------------------------- #
def test_interactive_mode_raises_assertion_error():
    with pytest.raises(AssertionError, match="lstm_gates_order: .*gate order"):
        ALL_CHECKS["lstm_gates_order"](gates_fiog)
    with pytest.raises(AssertionError, match="clip_by_global_norm_scaling: "):
        ALL_CHECKS["clip_by_global_norm_scaling"](global_per_array)
    bad = Impl(lstm_step_forward=step_one_minus_f)  # wrong on every draw, saturated f too
    with pytest.raises(AssertionError, match=r"lstm_step_forward_hidden: next_[hc] \(random sizes"):
        exec(_hidden_cells("lstm")["lstm_step_forward_hidden"].replace(
            "checks.lstm_step_forward_shapes(lstm_step_forward)", ""), _namespace(bad, "lstm"))


@pytest.fixture
def grading_dir(tmp_path, monkeypatch):
    folder = tmp_path / "grading"
    (folder / "inputs").mkdir(parents=True)
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(folder))
    monkeypatch.setattr(grading, "_grading_dir", None)
    return folder


def test_grading_mode_visible_checks_only_write_results(grading_dir, capsys):
    for check_id in ("lstm_gates_order", "clip_by_global_norm_untouched",
                     "lstm_backward_through_cell"):
        check = ALL_CHECKS[check_id]
        check(*functions_for(check_id, reference))
        assert check.judge(load_result(grading_dir / "results" / f"{check_id}.npz",
                                       1 << 26)) is None
    ALL_CHECKS["lstm_gates_order"](gates_fiog)  # no AssertionError in the kernel
    message = ALL_CHECKS["lstm_gates_order"].judge(
        load_result(grading_dir / "results" / "lstm_gates_order.npz", 1 << 26)).message
    assert "gate order" in message
    assert "passed" not in capsys.readouterr().out


@pytest.mark.parametrize("assignment, grade_id", HIDDEN_CELLS)
def test_grading_mode_hidden_cells(assignment, grade_id, grading_dir):
    spec = SPECS[grade_id]
    seed = seed_for(b"test-secret", assignment, "student", grade_id)
    grading.deliver(grading_dir, grade_id, spec.draw(np.random.default_rng(seed)))
    source = _hidden_cells(assignment)[grade_id]
    result = grading.result_path(grading_dir, grade_id)

    exec(source, _namespace(reference, assignment))
    regenerated = spec.draw(np.random.default_rng(seed))
    assert spec.judge(load_result(result), regenerated, reference) is None

    wrong = {
        "clip_by_value_hidden": Impl(clip_by_value=clip_value_rescales),
        "clip_by_global_norm_hidden": Impl(clip_by_global_norm=global_per_array),
        "lstm_gates_hidden": Impl(lstm_gates=gates_fiog),
        "lstm_step_forward_hidden": Impl(lstm_step_forward=step_one_minus_f),
        "lstm_step_backward_hidden": Impl(lstm_step_backward=back_forget_uses_h),
        "lstm_forward_hidden": Impl(lstm_forward=forward_resets_c),
        "lstm_backward_hidden": Impl(lstm_forward=_step_forward_cache,
                                     lstm_backward=_backward_with(carry_c=False)),
    }[grade_id]
    result.unlink()
    exec(source.split("### BEGIN HIDDEN TESTS")[1], _namespace(wrong, assignment))
    assert spec.judge(load_result(result), regenerated, reference) is not None


@pytest.mark.parametrize("check_id", sorted(c for c in ALL_CHECKS if ALL_CHECKS[c].oracle))
def test_submitted_oracle_values_are_ignored(check_id):
    """Forged finite-difference tables (zeros everywhere) never pass: the stored oracle
    values replace whatever the kernel submitted under their names."""
    check = ALL_CHECKS[check_id]
    honest = grading.as_plain_arrays(check.run(check.inputs(),
                                               *functions_for(check_id, reference)))
    forged = {k: np.zeros_like(v) for k, v in {**honest, **check.oracle_values()}.items()}
    assert check.judge(honest) is None
    assert check.judge(forged) is not None


def test_lstm_backward_of_a_wrong_forward_fails_and_says_so():
    """A backward pass consistent with a wrong forward is judged against a correct one."""
    def doubled_bias(x, prev_h, prev_c, Wx, Wh, b):  # wrong, with a cache its backward uses
        return reference.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, 2.0 * b)

    message = verdict_of(ALL_CHECKS["lstm_step_backward_gradcheck"], doubled_bias,
                         reference.lstm_step_backward)
    assert message is not None and "fix lstm_step_forward first" in message
