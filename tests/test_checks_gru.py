"""Checks, visible and hidden, of the ``gru`` assignment.

* every visible check passes on the reference solutions and catches planted
  bugs with a message that names the bug, and a bug in one place does not
  fail the checks of another;
* every hidden check accepts the reference's outputs and rejects perturbed
  ones, and its draws cover edge sizes and saturated gates;
* the notebook's graded cells and the checks agree (ids, calls);
* grading mode only writes results, which the grader-side judges decide
  correctly; forged oracle values never pass.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import reference
from autograder.commands.release import protected_lines
from autograder.protocol.secrets import seed_for
from rnn_course import grading
from rnn_course.checks import Check, functions_named
from rnn_course.checks import gru as gru_checks
from rnn_course.contract import GRU_GATES
from rnn_course.grading import load_result

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "gru" / "gru.ipynb"


def _checks(hidden=False):
    return {c.id: c for c in vars(gru_checks).values()
            if isinstance(c, Check) and c.hidden is hidden}


CHECKS = _checks()
SPECS = _checks(hidden=True)


def functions_for(check_id, impl):
    """The functions a check is called with in the notebook (its ``run``'s parameters),
    taken from ``impl``."""
    return tuple(functions_named({**CHECKS, **SPECS}[check_id].run, impl))


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


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_reference_passes(check_id, capsys):
    CHECKS[check_id](*functions_for(check_id, reference))
    assert f"{check_id}: passed" in capsys.readouterr().out


def test_the_checks():
    assert sorted(CHECKS) == sorted([
        "gru_step_forward_shapes", "gru_step_forward_gate_order",
        "gru_step_forward_interpolation", "gru_step_forward_reset_gate",
        "gru_step_forward_values", "gru_step_backward_shapes",
        "gru_step_backward_gate_blocks", "gru_step_backward_gradcheck",
        "gru_forward_shapes", "gru_forward_first_step", "gru_forward_matches_steps",
        "gru_backward_shapes", "gru_backward_through_update", "gru_backward_gradcheck"])
    assert sorted(SPECS) == sorted(["gru_step_forward_hidden", "gru_step_backward_hidden",
                                    "gru_forward_hidden", "gru_backward_hidden"])


# --------------------------------------------------------------------------- #
# Planted bugs: one GRU step forward
# --------------------------------------------------------------------------- #
def _sig(a):
    return reference.sigmoid(a)


def step_with(order=GRU_GATES, reset="before", swap=False, bias=True, z_reads_h=True,
              shape=None):
    """gru_step_forward with one bug: blocks read in ``order``, the reset gate applied
    ``reset`` ("before", "after" or "none") Wh_n, z and 1 - z swapped, no bias, ..."""
    def forward(x, prev_h, Wx, Wh, b):
        H = prev_h.shape[1]
        cols = {name: slice(k * H, (k + 1) * H) for k, name in enumerate(order)}
        bb = b if bias else np.zeros_like(b)
        r = _sig(x @ Wx[:, cols["r"]] + prev_h @ Wh[:, cols["r"]] + bb[cols["r"]])
        z_h = prev_h @ Wh[:, cols["z"]] if z_reads_h else 0.0
        z = _sig(x @ Wx[:, cols["z"]] + z_h + bb[cols["z"]])
        Whn = Wh[:, cols["n"]]
        rec = {"before": (r * prev_h) @ Whn, "after": r * (prev_h @ Whn),
               "none": prev_h @ Whn}[reset]
        n = np.tanh(x @ Wx[:, cols["n"]] + rec + bb[cols["n"]])
        next_h = z * n + (1 - z) * prev_h if swap else (1 - z) * n + z * prev_h
        if shape == "3H":
            next_h = np.concatenate([next_h, r, z], axis=1)
        return next_h, None
    return forward


# --------------------------------------------------------------------------- #
# Planted bugs: one GRU step backward (works from the reference's cache)
# --------------------------------------------------------------------------- #
def step_backward_with(bug=None):
    def backward(dnext_h, cache):
        x, prev_h, Wx, Wh, a, rh = cache
        H = prev_h.shape[1]
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        dn = dnext_h if bug == "n_without_1_minus_z" else dnext_h * (1 - z)
        dn_pre = dn * (1 - n ** 2)
        drh = dn_pre @ Wh[:, 2 * H:].T
        dz = dnext_h * ((n - prev_h) if bug == "z_sign" else (prev_h - n))
        dr_pre = np.zeros_like(r) if bug == "no_reset_path" else drh * prev_h * r * (1 - r)
        da = np.concatenate([dr_pre, dz * z * (1 - z), dn_pre], axis=1)
        dprev_h = drh * r + da[:, :2 * H] @ Wh[:, :2 * H].T
        if bug != "no_direct_path":
            dprev_h = dprev_h + dnext_h * z
        dWh_n = (prev_h if bug == "dWh_n_from_h" else rh).T @ dn_pre
        dWh = np.concatenate([prev_h.T @ da[:, :2 * H], dWh_n], axis=1)
        return da @ Wx.T, dprev_h, x.T @ da, dWh, da.sum(axis=0)
    return backward


# --------------------------------------------------------------------------- #
# Planted bugs: sequences
# --------------------------------------------------------------------------- #
def forward_with(start="h0", carry=True):
    def forward(x, h0, Wx, Wh, b):
        h = np.zeros_like(h0) if start == "zero" else h0
        out = []
        for t in range(x.shape[1]):
            h, _ = reference.gru_step_forward(x[:, t], h if carry else h0, Wx, Wh, b)
            out.append(h)
        return np.stack(out, axis=1), None
    return forward


def _step_forward_cache(x, h0, Wx, Wh, b):
    h, out, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = reference.gru_step_forward(x[:, t], h, Wx, Wh, b)
        out.append(h)
        caches.append(cache)
    return np.stack(out, axis=1), caches


def backward_with(carry_h=True, sum_weights=True):
    def backward(dh, caches):
        N, T, H = dh.shape
        dx = np.zeros((N, T, caches[0][0].shape[1]))
        dWx = dWh = db = 0.0
        dnh = np.zeros((N, H))
        for t in reversed(range(T)):
            dx[:, t], dph, a, bb, cc = reference.gru_step_backward(dh[:, t] + dnh, caches[t])
            dnh = dph if carry_h else np.zeros_like(dph)
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


GRU_BUGS = [
    ("gru_step_forward_shapes", Impl(gru_step_forward=step_with(shape="3H")),
     "one block of H for each of r, z, n"),
    ("gru_step_forward_gate_order", Impl(gru_step_forward=step_with(order=("z", "r", "n"))),
     "as if it were the update gate z"),
    ("gru_step_forward_gate_order", Impl(gru_step_forward=step_with(order=("n", "z", "r"))),
     "block order is r, z, n"),
    ("gru_step_forward_interpolation", Impl(gru_step_forward=step_with(swap=True)),
     "swapped"),
    ("gru_step_forward_reset_gate", Impl(gru_step_forward=step_with(reset="after")),
     "applies r after the product"),
    ("gru_step_forward_reset_gate", Impl(gru_step_forward=step_with(reset="none")),
     "without the reset gate"),
    ("gru_step_forward_values", Impl(gru_step_forward=step_with(bias=False)), "add b"),
    ("gru_step_forward_values", Impl(gru_step_forward=step_with(z_reads_h=False)),
     "update gate z ignores prev_h"),
    ("gru_step_backward_gate_blocks", Impl(gru_step_backward=step_backward_with("z_sign")),
     "update gate z block"),
    ("gru_step_backward_gate_blocks",
     Impl(gru_step_backward=step_backward_with("n_without_1_minus_z")), "candidate n block"),
    ("gru_step_backward_gate_blocks",
     Impl(gru_step_backward=step_backward_with("no_reset_path")), "reset gate r block"),
    ("gru_step_backward_gradcheck", Impl(gru_step_backward=step_backward_with("no_direct_path")),
     "dprev_h disagrees"),
    ("gru_step_backward_gradcheck", Impl(gru_step_backward=step_backward_with("dWh_n_from_h")),
     "dWh_n is (r * prev_h).T"),
    ("gru_step_backward_gradcheck",
     Impl(gru_step_forward=lambda x, prev_h, Wx, Wh, b:
          reference.gru_step_forward(x, prev_h, Wx, Wh, 2.0 * b)),
     "fix gru_step_forward first"),
    ("gru_forward_first_step", Impl(gru_forward=forward_with(start="zero")), "ignores h0"),
    ("gru_forward_matches_steps", Impl(gru_forward=forward_with(carry=False)),
     "h[:, 1] differs"),
    ("gru_backward_through_update",
     Impl(gru_forward=_step_forward_cache, gru_backward=backward_with(carry_h=False)),
     "Carry dprev_h"),
    ("gru_backward_gradcheck",
     Impl(gru_forward=_step_forward_cache, gru_backward=backward_with(carry_h=False)),
     "carried back from step"),
    ("gru_backward_gradcheck",
     Impl(gru_forward=_step_forward_cache, gru_backward=backward_with(sum_weights=False)),
     "dWx disagrees"),
]


@pytest.mark.parametrize("check_id, impl, phrase", GRU_BUGS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(GRU_BUGS)])
def test_check_names_the_bug(check_id, impl, phrase):
    message = verdict_of(CHECKS[check_id], *functions_for(check_id, impl))
    assert message is not None and phrase in message, message


def test_planted_bugs_pass_their_unrelated_checks():
    """Isolation: a bug in one place does not fail the check of another."""
    swapped, after = step_with(swap=True), step_with(reset="after")
    order = step_with(order=("z", "r", "n"))
    assert verdict_of(CHECKS["gru_step_forward_reset_gate"], order) is not None  # sanity
    assert verdict_of(CHECKS["gru_step_forward_interpolation"], after) is None
    assert verdict_of(CHECKS["gru_step_forward_interpolation"], step_with(bias=True)) is None
    assert verdict_of(CHECKS["gru_step_forward_shapes"], swapped) is None
    assert verdict_of(CHECKS["gru_step_backward_gate_blocks"], reference.gru_step_forward,
                      step_backward_with("no_direct_path")) is None
    assert verdict_of(CHECKS["gru_step_backward_gate_blocks"], reference.gru_step_forward,
                      step_backward_with("dWh_n_from_h")) is None
    fwd = _step_forward_cache
    assert verdict_of(CHECKS["gru_backward_gradcheck"], fwd, backward_with()) is None
    assert verdict_of(CHECKS["gru_backward_through_update"], fwd,
                      backward_with(sum_weights=False)) is None


def test_wrong_return_types_are_clear_errors():
    with pytest.raises(TypeError, match=r"gru_step_forward must return a tuple"):
        CHECKS["gru_step_forward_shapes"](lambda **kw: reference.gru_step_forward(**kw)[0])


# --------------------------------------------------------------------------- #
# Hidden checks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("spec_id", sorted(SPECS))
def test_spec_accepts_reference_rejects_perturbed(spec_id):
    spec = SPECS[spec_id]
    for seed in range(8):
        inputs = spec.draw(np.random.default_rng(seed))
        want = {k: np.array(v, dtype=np.float64)
                for k, v in spec.expected_outputs(inputs, reference).items()}
        ran = grading.as_plain_arrays(spec.run(inputs, *functions_for(spec_id, reference)))
        assert sorted(ran) == sorted(spec.outputs)
        assert spec.judge(ran, inputs, reference) is None
        assert spec.judge(want, inputs, reference) is None
        for name, value in want.items():
            bad = dict(want)
            bad[name] = value.copy()
            flat = bad[name].reshape(-1)
            j = int(np.argmax(np.abs(flat)))
            flat[j] += 1e-3 * max(1.0, abs(flat[j]))
            assert spec.judge(bad, inputs, reference) is not None, (seed, name)
        name = next(iter(want))
        wrong_shape = {**want, name: want[name][..., None]}
        assert "shape" in spec.judge(wrong_shape, inputs, reference).message


def test_specs_draw_edge_sizes_and_saturated_gates():
    """Every draw holds the edge sizes (all 1) and distinct generic sizes whose r and z
    biases saturate in both directions."""
    steps = [SPECS["gru_step_forward_hidden"].draw(np.random.default_rng(s)) for s in range(40)]
    for d in steps:
        assert d["edge_prev_h"].shape == (1, 1) and min(d["generic_prev_h"].shape) >= 2
        H = d["generic_prev_h"].shape[1]
        rz = d["generic_b"][: 2 * H]
        assert rz.max() > 700 and rz.min() < -700
    seqs = [SPECS["gru_backward_hidden"].draw(np.random.default_rng(s)) for s in range(40)]
    assert all(d["edge_x"].shape == (1, 1, 1) for d in seqs)
    assert all(np.abs(d["generic_b"]).max() > 700 for d in seqs)
    assert len({d["generic_x"].shape for d in seqs}) > 10


def test_hidden_specs_reject_planted_bugs():
    """Each hidden check fails a wrong implementation on every draw tried."""
    wrong = {
        "gru_step_forward_hidden": Impl(gru_step_forward=step_with(swap=True)),
        "gru_step_backward_hidden": Impl(gru_step_backward=step_backward_with("z_sign")),
        "gru_forward_hidden": Impl(gru_forward=forward_with(carry=False)),
        "gru_backward_hidden": Impl(gru_forward=_step_forward_cache,
                                    gru_backward=backward_with(sum_weights=False)),
    }
    for spec_id, impl in wrong.items():
        spec = SPECS[spec_id]
        caught = 0
        for seed in range(10):
            inputs = spec.draw(np.random.default_rng(seed))
            out = grading.as_plain_arrays(spec.run(inputs, *functions_for(spec_id, impl)))
            caught += spec.judge(out, inputs, reference) is not None
        assert caught >= 7, (spec_id, caught)


# --------------------------------------------------------------------------- #
# The notebook agrees with the checks
# --------------------------------------------------------------------------- #
def _graded_cells():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]


def test_notebook_cells_match_checks():
    cells = _graded_cells()
    ids = [c.metadata.nbgrader["grade_id"] for c in cells]
    every = {**CHECKS, **SPECS}
    assert sorted(ids) == sorted(every)  # every check used exactly once
    for cell in cells:
        grade_id = cell.metadata.nbgrader["grade_id"]
        assert cell.metadata.nbgrader["points"] > 0
        assert cell.source.startswith('"""')  # a first-line docstring says what it tests
        call = f"checks.{grade_id}({', '.join(every[grade_id].functions)})"
        if not every[grade_id].hidden:
            assert call in cell.source
        else:
            visible_part, hidden_part = cell.source.split("### BEGIN HIDDEN TESTS")
            assert hidden_part.split("### END HIDDEN TESTS")[0].strip() == call
            assert "checks." in visible_part


def test_no_solution_line_in_check_or_demo_modules():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    protected = set(protected_lines(nb))
    for path in (ROOT / "rnn_course" / "checks" / "gru.py",
                 ROOT / "rnn_course" / "demos" / "gru.py"):
        lines = {raw.strip() for raw in path.read_text().splitlines()}
        assert not protected & lines, (path, protected & lines)


def _hidden_cells():
    return {c.metadata.nbgrader["grade_id"]: c.source for c in _graded_cells()
            if "### BEGIN HIDDEN TESTS" in c.source}


def _namespace(impl):
    ns = {"np": np, "checks": gru_checks}
    ns.update({k: getattr(impl, k) for k in reference.__all__})
    return ns


@pytest.mark.parametrize("grade_id", sorted(SPECS))
def test_hidden_cell_instructor_mode(grade_id, capsys):
    exec(_hidden_cells()[grade_id], _namespace(reference))
    assert f"{grade_id}: passed" in capsys.readouterr().out


@pytest.fixture
def grading_dir(tmp_path, monkeypatch):
    folder = tmp_path / "grading"
    (folder / "inputs").mkdir(parents=True)
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(folder))
    monkeypatch.setattr(grading, "_grading_dir", None)
    return folder


def test_grading_mode_visible_check_only_writes_results(grading_dir, capsys):
    check = CHECKS["gru_step_forward_interpolation"]
    check(step_with(swap=True))  # no AssertionError in the kernel
    message = check.judge(load_result(grading_dir / "results" / f"{check.id}.npz", 1 << 26)).message
    assert "swapped" in message
    assert "passed" not in capsys.readouterr().out


@pytest.mark.parametrize("grade_id", sorted(SPECS))
def test_grading_mode_hidden_cells(grade_id, grading_dir):
    spec = SPECS[grade_id]
    seed = seed_for(b"test-secret", "gru", "student", grade_id)
    grading.deliver(grading_dir, grade_id, spec.draw(np.random.default_rng(seed)))
    source = _hidden_cells()[grade_id]
    result = grading.result_path(grading_dir, grade_id)
    exec(source, _namespace(reference))
    regenerated = spec.draw(np.random.default_rng(seed))
    assert spec.judge(load_result(result), regenerated, reference) is None


@pytest.mark.parametrize("check_id", sorted(c for c in CHECKS if CHECKS[c].oracle))
def test_submitted_oracle_values_are_ignored(check_id):
    """Forged finite-difference tables never pass: the stored oracle values replace
    whatever the kernel submitted under their names."""
    check = CHECKS[check_id]
    honest = grading.as_plain_arrays(check.run(check.inputs(),
                                               *functions_for(check_id, reference)))
    forged = {k: np.zeros_like(v) for k, v in {**honest, **check.oracle_values()}.items()}
    assert check.judge(honest) is None
    assert check.judge(forged) is not None
