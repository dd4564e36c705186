"""Stand-ins (issue 13): a checked function's helpers answered with the grader's values.

* the grader's tables hold exactly the calls a correct function makes, sealed: the
  values are not in the delivered bytes, and only the very arguments open them;
* while a check runs, the helpers in the student's namespace are stand-ins, never the
  checked function itself, and everything is restored afterwards;
* a call the table does not answer reaches the student's own function: stand-ins
  never raise a wrong function's score (its own bugs still show);
* a forward stand-in keeps the student's cache, with the student's wrong outputs in
  it replaced by the right ones (a backward pass reads them from there), and, when
  the forward is wrong, its wrong intermediates too (issue 26): a forward's bug never
  costs a backward check, whatever the cache's layout.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradesim import grade, student_namespace
from planted import BUGS

from autograder import reference as R
from autograder.protocol import standins
from rnn_course import checks, grading
from rnn_course import standins as kernel
from rnn_course.contract import CALLS, CONTRACT, checked_function, helpers_of

CELL = checks.assignment_checks("rnn_cell")
LSTM = checks.assignment_checks("lstm")


def _delivered(check, seed=0):
    inputs = check.draw(np.random.default_rng(seed))
    tables = standins.tables_for(check, inputs, salt=b"s" * 16)
    return inputs, grading.decode_inputs(grading.encode_inputs(
        {**inputs, kernel.INPUT_NAME: tables}))


def test_every_function_with_helpers_is_composed_from_them():
    assert set(standins.COMPOSED) == set(CALLS)
    assert all(h in CONTRACT for hs in CALLS.values() for h in hs)
    assert helpers_of(["lstm_forward"]) == ("lstm_step_forward", "lstm_gates")


@pytest.mark.parametrize("check_id, want", [
    ("rnn_step_forward_values", ()),
    ("rnn_step_backward_bias", ("rnn_step_forward",)),
    ("rnn_forward_hidden", ("rnn_step_forward",)),
    ("lstm_step_forward_hidden", ("lstm_gates",)),
    ("lstm_backward_hidden", ("lstm_forward", "lstm_step_backward", "lstm_step_forward",
                              "lstm_gates")),
])
def test_stand_ins_are_the_helpers_never_the_function_checked(check_id, want):
    check = {**CELL, **LSTM}[check_id]
    assert checked_function(check_id) not in standins.standin_functions(check)
    assert set(standins.standin_functions(check)) == set(want)


def test_the_table_is_sealed_and_answers_only_the_calls_of_a_correct_function():
    check = CELL["rnn_forward_hidden"]
    inputs, delivered = _delivered(check)
    flat = delivered[kernel.INPUT_NAME]
    sealed = b"".join(np.asarray(v).tobytes() for v in flat.values())
    case = {k[len("generic_"):]: v for k, v in inputs.items() if k.startswith("generic_")}
    h, _ = R.rnn_forward(**case)
    assert h[:, 0].tobytes() not in sealed and h[:, -1].tobytes() not in sealed
    tables = kernel.Tables(flat)
    x, h0, Wx, Wh, b = (case[k] for k in ("x", "h0", "Wx", "Wh", "b"))
    first = tables.lookup("rnn_step_forward", (x[:, 0], h0, Wx, Wh, b), {})
    np.testing.assert_array_equal(first[0], R.rnn_step_forward(x[:, 0], h0, Wx, Wh, b)[0])
    second = tables.lookup("rnn_step_forward", (x[:, 1], first[0], Wx, Wh, b), {})
    assert second is not None
    assert tables.lookup("rnn_step_forward", (x[:, 1], h0, Wx, Wh, b), {}) is None
    assert tables.lookup("rnn_step_forward", (x[:, 0], h0 + 1e-12, Wx, Wh, b), {}) is None


def test_helpers_are_stand_ins_only_while_the_check_runs():
    ns = student_namespace("rnn_cell", """
_seen = []
_source = rnn_forward
def rnn_forward(x, h0, Wx, Wh, b):
    _seen.append(rnn_step_forward)
    return _source(x, h0, Wx, Wh, b)
""")
    own = ns["rnn_step_forward"]
    _, delivered = _delivered(CELL["rnn_forward_hidden"])
    CELL["rnn_forward_hidden"].graded_run(delivered, ns["rnn_forward"])
    assert ns["_seen"] and all(isinstance(f, kernel.StandIn) for f in ns["_seen"])
    assert ns["rnn_step_forward"] is own
    assert not any(isinstance(v, kernel.StandIn) for v in ns.values())


def test_a_wrong_function_gains_nothing_from_the_stand_ins():
    """rnn_forward that restarts every step from h0: its calls are not those a correct
    rnn_forward makes, so they reach the student's own rnn_step_forward, and it fails."""
    ns = student_namespace("rnn_cell", """
def rnn_forward(x, h0, Wx, Wh, b):
    h = np.zeros(x.shape[:2] + h0.shape[1:])
    for t in range(x.shape[1]):
        h[:, t], _ = rnn_step_forward(x[:, t], h0, Wx, Wh, b)
    return h, None
""")
    _, _, cells = grade("rnn_cell", ns)
    assert cells["rnn_forward_hidden"][1] is not None
    assert cells["rnn_forward_memory"][0] == 0


def test_a_forward_stand_in_repairs_the_cache_it_returns():
    """rnn_step_forward without the bias caches its wrong next_h: the stand-in returns the
    right next_h, and the right one in the cache, so a right backward passes."""
    ns = student_namespace("rnn_cell", """
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh)
    return next_h, (x, prev_h, Wx, Wh, next_h)
""")
    _, _, cells = grade("rnn_cell", ns)
    for check_id in ("rnn_step_backward_bias", "rnn_step_backward_input",
                     "rnn_step_backward_recurrent", "rnn_step_backward_hidden",
                     "rnn_forward_values", "rnn_forward_hidden"):
        assert cells[check_id][1] is None, (check_id, cells[check_id])
    assert cells["rnn_step_forward_bias"][1] is not None
    _, _, without = grade("rnn_cell", ns, use_standins=False)
    assert without["rnn_step_backward_bias"][1] is not None


def test_a_helper_that_raises_does_not_fail_the_function_built_on_it():
    """lstm_step_forward not written yet (it raises): lstm_forward, which calls it, still
    gets its points, from the right values of the stand-in."""
    ns = student_namespace("lstm", """
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    raise NotImplementedError()
""")
    _, _, cells = grade("lstm", ns)
    for check_id in ("lstm_forward_shapes", "lstm_forward_c0_zero", "lstm_forward_carries_cell",
                     "lstm_forward_matches_steps", "lstm_forward_hidden"):
        assert cells[check_id][1] is None, (check_id, cells[check_id])
    assert cells["lstm_step_forward_hidden"][0] == 0


LAYOUT = "(x, prev_h, Wx, Wh, r, z, n)"  # the notebook's; the reference's differs
GRU_RESET_AFTER = BUGS["gru/reset_after_product"][1]
assert LAYOUT in GRU_RESET_AFTER


@pytest.mark.parametrize("cache, backward", [
    (LAYOUT, ""),  # the notebook's layout, not the reference's
    ("{'n': n, 'z': z, 'r': r, 'inputs': [x, prev_h, Wx, Wh]}", """
_right_step_backward = gru_step_backward
def gru_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh = cache['inputs']
    return _right_step_backward(dnext_h, (x, prev_h, Wx, Wh, cache['r'], cache['z'],
                                          cache['n']))
"""),
])
def test_a_wrong_forward_gives_the_backward_a_right_cache(cache, backward):
    """The reset gate after the product: the cached candidate n is wrong too; the stand-in
    replaces it with a correct forward's, so the right backward keeps all its points."""
    ns = student_namespace("gru", GRU_RESET_AFTER.replace(LAYOUT, cache) + backward)
    _, _, cells = grade("gru", ns)
    for check_id in ("gru_step_backward_gate_blocks", "gru_step_backward_gradcheck",
                     "gru_step_backward_hidden"):
        assert cells[check_id][1] is None, (check_id, cells[check_id])
    assert cells["gru_step_forward_reset_gate"][1] is not None
    _, _, without = grade("gru", ns, use_standins=False)
    assert without["gru_step_backward_gradcheck"][1] is not None


def test_a_right_forward_keeps_its_own_cache():
    """A right forward's cache may hold what the reference's lacks (here r * prev_h where
    the reference keeps n): nothing in it is replaced."""
    rng = np.random.default_rng(3)
    x, h, Wx, Wh, b = (rng.standard_normal(s) for s in ((2, 3), (2, 2), (3, 6), (2, 6), (6,)))
    right_h, right_cache = R.gru_step_forward(x, h, Wx, Wh, b)
    mine = (x, h, Wx, Wh, 0.5 * h)  # not a right forward's value of any name
    tables = kernel.Tables(standins.standins.flatten(b"s" * 16, {"gru_step_forward": [
        standins.standins.seal(b"s" * 16, "gru_step_forward", [x, h, Wx, Wh, b],
                               (right_h, *kernel.cache_arrays(right_cache)))]}))
    stand_in = kernel.StandIn("gru_step_forward", lambda *a: (right_h + 1e-15, mine), tables)
    _, cache = stand_in(x, h, Wx, Wh, b)
    assert cache[4] is mine[4]
    wrong = kernel.StandIn("gru_step_forward", lambda *a: (right_h + 1.0, mine), tables)
    assert wrong(x, h, Wx, Wh, b)[1][4] is not mine[4]  # a wrong forward: repaired
