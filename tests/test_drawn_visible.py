"""Visible checks judged on inputs the grader draws (issue 11: no replay of public inputs).

While grading, a visible check runs on inputs drawn for the submission with its own
``make_inputs`` (the same structure as its fixed, public inputs: one-hot rows, zero
weights, a symmetric Wh...), and an oracle is computed on the reference for them.
Every verdict must still hold on such draws: the reference passes every visible
check on every draw, and every planted bug (``planted.BUGS``, at least one per
assignment: ``test_fair_scores``) is named by a visible check on every draw.
"""

from __future__ import annotations

import types
import warnings
from pathlib import Path

import gradesim
import numpy as np
import pytest
from planted import BUGS

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


def _impl():
    """The reference's functions (and a correct gradient_norms_through_time)."""
    public = {n: f for n, f in vars(R).items() if callable(f) and not n.startswith("_")}
    return types.SimpleNamespace(**public, gradient_norms_through_time=_norms)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_planted_bug_is_named_by_a_visible_check_on_every_draw(name):
    """Each planted bug (tests/planted.py, the notebook's own functions with the bug
    run after them): on every draw, a visible check of its assignment fails with a
    message that names it."""
    assignment, code, phrase = BUGS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # some bugs overflow on purpose
        impl = types.SimpleNamespace(**gradesim.student_namespace(assignment, code))
        for digest in DRAWS:
            messages = []
            for check_id in checks.assignment_checks(assignment):
                if check_id in VISIBLE:
                    try:
                        message = judged(VISIBLE[check_id], impl,
                                         drawn(VISIBLE[check_id], digest))
                    except Exception as exc:  # noqa: BLE001 - a crashing cell: its error
                        message = f"{type(exc).__name__}: {exc}"
                    if message is not None:
                        messages.append(str(message))
                        if phrase in messages[-1]:
                            break
            assert any(phrase in m for m in messages), (digest, messages)


def test_replaying_the_public_answers_fails_on_drawn_inputs():
    """A kernel that recognises the fixed inputs and replays the reference's answer for
    them (a lookup table) gets no verdict from the grader's draws."""
    for check_id in ("rnn_step_forward_values", "lstm_gates_values", "rnn_backward_weights"):
        check = VISIBLE[check_id]
        replay = grading.as_plain_arrays(
            check.run(check.inputs(), *checks.functions_named(check.run, R)))
        assert check.judge(replay) is None  # right on the public inputs
        assert check.judge(replay, drawn(check, DRAWS[0]), R) is not None
