"""Visible checks judged on inputs the grader draws (issue 11: no replay of public inputs).

While grading, a visible check runs on inputs drawn for the submission with its own
``make_inputs`` (the same structure as its fixed, public inputs: one-hot rows, zero
weights, a symmetric Wh...), and an oracle is computed on the reference for them.
Every verdict must still hold on such draws: the reference passes every visible
check on every draw, and a planted bug per assignment fails its check on every draw.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from autograder import reference as R
from autograder.course import Course
from autograder.pipeline.worker import verify
from autograder.protocol.secrets import submission_secret
from rnn_course import checks, grading
from rnn_course.checks.bptt import reference_gradient_norms

REPO = Path(__file__).resolve().parents[1]
COURSE = Course(REPO)
VISIBLE = {cid: c for cid, c in checks.registry(COURSE.assignments).items() if not c.hidden}
ASSIGNMENT_OF = {cid: a for a in COURSE.assignments for cid in checks.assignment_checks(a)}
DRAWS = [f"digest-{i}" for i in range(3)]


def drawn(check, digest: str) -> dict:
    """The inputs the grader draws for ``check`` in a submission with ``digest``."""
    secret = submission_secret(b"course-secret", ASSIGNMENT_OF[check.id], "student", digest)
    return verify.drawn_inputs(check, secret, ASSIGNMENT_OF[check.id], "student")


def judged(check, impl, inputs) -> "str | None":
    """Run ``check`` on ``impl``'s functions and judge as the grader does."""
    outputs = grading.as_plain_arrays(
        check.run(checks.fresh_copies(inputs), *checks.functions_named(check.run, impl)))
    return check.judge(outputs, inputs, R)


def test_every_visible_check_is_drawn_from_a_seed_not_from_its_fixed_inputs():
    check = VISIBLE["rnn_step_forward_bias"]
    a, b = drawn(check, DRAWS[0]), drawn(check, DRAWS[1])
    fixed = grading.as_plain_arrays(check.inputs())
    assert any(not np.array_equal(a[k], fixed[k]) for k in fixed)
    assert any(not np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("check_id", sorted(VISIBLE))
def test_every_visible_checks_grading_inputs_depend_on_the_seed(check_id):
    """No visible check is judged on inputs a student can know: two submissions' draws
    differ from each other and from the public inputs (issue 13: the clipping checks,
    lstm_gates_stable and rnn_step_forward_bias's b used to ignore the seed)."""
    check = VISIBLE[check_id]
    a, b = drawn(check, DRAWS[0]), drawn(check, DRAWS[1])
    fixed = grading.encode_inputs(check.inputs())
    a, b = grading.encode_inputs(a), grading.encode_inputs(b)
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], fixed[k]) for k in a)


@pytest.mark.parametrize("check_id", sorted(VISIBLE))
def test_the_reference_passes_every_visible_check_on_grader_draws(check_id):
    check = VISIBLE[check_id]
    for digest in DRAWS:
        message = judged(check, _impl(), drawn(check, digest))
        assert message is None, (digest, message)


def _norms(dact, Wh, dlast):
    """A correct gradient_norms_through_time (the reference has none)."""
    return reference_gradient_norms(R.rnn_step_backward, dact, Wh, dlast)


def _impl(**overrides):
    """The reference (and a correct gradient_norms_through_time), some functions replaced."""
    return types.SimpleNamespace(**{**{n: getattr(R, n) for n in R.__all__},
                                    "gradient_norms_through_time": _norms, **overrides})


def _no_bias(x, prev_h, Wx, Wh, b):
    return R.rnn_step_forward(x, prev_h, Wx, Wh, 0 * b)


def _dwh_off(dh, cache, truncate=None):
    dx, dh0, dWx, dWh, db = R.rnn_backward(dh, cache, truncate)
    return dx, dh0, dWx, dWh + 0.01, db


def _never_clips(grads, clip_value):
    return {k: np.array(v, copy=True) for k, v in grads.items()}


def _gates_fiog(a):
    i, f, o, g = R.lstm_gates(a)
    return f, i, o, g


def _gru_swapped_blend(x, prev_h, Wx, Wh, b):
    """next_h = z * n + (1 - z) * h: the update gate's two sides swapped."""
    H = prev_h.shape[1]
    a = x @ Wx + b
    r = R.sigmoid(a[:, :H] + prev_h @ Wh[:, :H])
    z = R.sigmoid(a[:, H:2 * H] + prev_h @ Wh[:, H:2 * H])
    n = np.tanh(a[:, 2 * H:] + (r * prev_h) @ Wh[:, 2 * H:])
    return z * n + (1 - z) * prev_h, None


PLANTED = {  # one bug per assignment, and the visible check that names it
    "rnn_cell": ("rnn_step_forward_bias", _impl(rnn_step_forward=_no_bias)),
    "bptt": ("rnn_backward_weights", _impl(rnn_backward=_dwh_off)),
    "clipping": ("clip_by_value_values", _impl(clip_by_value=_never_clips)),
    "lstm": ("lstm_gates_order", _impl(lstm_gates=_gates_fiog)),
    "gru": ("gru_step_forward_interpolation", _impl(gru_step_forward=_gru_swapped_blend)),
}


def test_every_assignment_has_a_planted_bug():
    assert sorted(PLANTED) == sorted(COURSE.assignments)


@pytest.mark.parametrize("assignment", sorted(PLANTED))
def test_a_planted_bug_fails_its_visible_check_on_every_draw(assignment):
    check_id, impl = PLANTED[assignment]
    check = VISIBLE[check_id]
    assert ASSIGNMENT_OF[check_id] == assignment
    for digest in DRAWS:
        assert judged(check, impl, drawn(check, digest)) is not None, digest


def test_replaying_the_public_answers_fails_on_drawn_inputs():
    """A kernel that recognises the fixed inputs and replays the reference's answer for
    them (a lookup table) gets no verdict from the grader's draws."""
    for check_id in ("rnn_step_forward_values", "lstm_gates_values", "rnn_backward_weights"):
        check = VISIBLE[check_id]
        replay = grading.as_plain_arrays(
            check.run(check.inputs(), *checks.functions_named(check.run, R)))
        assert check.judge(replay) is None  # right on the public inputs
        assert check.judge(replay, drawn(check, DRAWS[0]), R) is not None
