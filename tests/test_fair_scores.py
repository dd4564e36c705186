"""Fair grades (issue 13): what one planted bug costs, and that it costs the same for everyone.

Every notebook is graded in-process as the grader scores it (``gradesim``: the
grading plan's inputs and stand-in tables, the kernel's ``Check.graded_run``,
the grader's judge and ``scoring``'s share of a failed check):

* the notebook's own solutions score full marks, with and without stand-ins;
* a single planted bug (``planted.BUGS``) costs some points, no more than those of
  the cells whose checks run the function it is in and, in an assignment that grades
  several functions, at most 40% of its points (an assignment of one function, like
  the guide's ``toy``, loses that function's points); the first failing check's
  message names it;
* the same buggy notebook graded under 20 student ids gets one score;
* without stand-ins the four bugs the issue measured cost what they used to
  (more than 40%): the stand-ins are what changed;
* (issue 26) a planted bug costs its own function's points only, never another's
  (a forward's bug never costs a backward check: the forward's stand-in gives the
  backward a correct forward's cache), and a bug wrong on general inputs leaves its
  function at most half of its points (one that shows only in an edge regime,
  ``planted.EDGE_ONLY``, costs that regime's share).
"""

from __future__ import annotations

import ast
import textwrap
import warnings

import gradesim
import pytest
from planted import BUGS, CORRECT, EDGE_ONLY

from autograder.course import Course
from rnn_course import checks

ASSIGNMENTS = Course(gradesim.REPO).assignments
MAX_COST = 0.40
MAX_KEPT = checks.MAX_KEPT_WHEN_WRONG  # of its function's points, when wrong in general

OTHER_FUNCTIONS_MAY_PAY: dict[str, str] = {
    # bug -> why a function other than the one it is in loses points (none so far)
}
KEEPS_MORE: dict[str, str] = {
    # bug -> why it keeps more than MAX_KEPT of its function although wrong in general
    "bptt/truncate_ignored": "rnn_backward's truncation checks hold 5 of its 11 points: "
                             "full BPTT (6 points) is right, and k >= T is right too",
    "bptt/fixed_block_truncation": "as truncate_ignored: full BPTT, k = 1 and k >= T are "
                                   "right; every check with 1 < k < T fails",
}


def _graded(name: str, **kwargs):
    assignment, code, _ = BUGS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # some bugs overflow on purpose
        return gradesim.grade(assignment, gradesim.student_namespace(assignment, code),
                              **kwargs)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("use_standins", [True, False])
def test_the_solutions_score_full_marks(assignment, use_standins):
    score, maximum, cells = gradesim.grade(assignment, gradesim.student_namespace(assignment),
                                           use_standins=use_standins)
    assert score == maximum > 0, {k: m for k, (_, m) in cells.items() if m}


def test_every_assignment_has_planted_bugs():
    planted = {a for a, _, _ in BUGS.values()}
    missing = [a for a in ASSIGNMENTS if a not in planted]
    assert missing == [], (f"no planted bug for {missing} in tests/planted.py: "
                           "docs/adding-an-exercise.md, step 5")
    assert planted <= set(ASSIGNMENTS), "a planted bug of an assignment the course lacks"


def bugged_functions(code: str) -> set[str]:
    """The functions a planted bug (re)defines: the wrong versions it plants."""
    return {node.name for node in ast.parse(textwrap.dedent(code)).body
            if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_planted_bug_costs_its_function_not_the_assignment(name):
    assignment, code, _ = BUGS[name]
    bugged = bugged_functions(code)
    registered = checks.assignment_checks(assignment)
    graded = gradesim.graded_cells(assignment)
    assert bugged and bugged <= {f for gid, _ in graded for f in registered[gid].functions}
    # the most it may cost: the cells whose checks run a bugged function (a step's
    # backward check runs the student's own step forward for its cache)
    exposed = sum(p for gid, p in graded if bugged & set(registered[gid].functions))
    score, maximum, cells = _graded(name)
    cost = 1.0 - score / maximum
    failed = {k: str(m)[:100] for k, (_, m) in cells.items() if m}
    assert 0 < cost <= exposed / maximum + 1e-9, (cost, exposed / maximum, failed)
    if len(gradesim.points_by_function(assignment)) > 1:  # stand-ins keep the others' points
        assert cost <= MAX_COST, (cost, failed)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_the_first_failing_message_names_the_bug(name):
    _, _, phrase = BUGS[name]
    _, _, cells = _graded(name)
    first = next(str(m) for _, m in cells.values() if m)
    assert phrase in first, first
    assert len(first) <= 320 and "\n" not in first  # at most two lines of a notebook


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUGS))
def test_one_buggy_notebook_gets_one_score_whoever_submits_it(name):
    scores = {round(_graded(name, student=f"student{i:02d}")[0], 6) for i in range(20)}
    assert len(scores) == 1, scores


@pytest.mark.parametrize("name", ["rnn_cell/no_bias", "lstm/gate_order", "lstm/sigmoid_on_g",
                                  "bptt/dh0_zero"])
def test_before_stand_ins_and_shares_these_bugs_cost_more(name):
    """The issue's measurements (68%, 87%, 74%, 56%): without stand-ins, and with every
    check all-or-nothing, each of these bugs cost more than 40% of its assignment."""
    _, _, cells = _graded(name, use_standins=False)
    points = dict(gradesim.graded_cells(BUGS[name][0]))
    all_or_nothing = sum(points[k] for k, (_, m) in cells.items() if m is None)
    assert 1.0 - all_or_nothing / sum(points.values()) > MAX_COST
    score, maximum, _ = _graded(name)
    assert 1.0 - score / maximum <= MAX_COST


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_right_code_written_differently_scores_full_marks(name):
    """A usual numerical guard (max_norm / (total_norm + 1e-6)), another sigmoid, a stacked
    product the stand-ins' tables do not answer, another cache layout: full marks."""
    assignment, code = CORRECT[name]
    score, maximum, cells = gradesim.grade(assignment,
                                           gradesim.student_namespace(assignment, code))
    assert score == maximum, {k: str(m)[:120] for k, (_, m) in cells.items() if m}


def _planted_function(name: str) -> str:
    """The notebook function a planted bug is in: the last one its code defines."""
    import re
    assignment, code, _ = BUGS[name]
    defined = [n for n in re.findall(r"^def (\w+)\(", code, flags=re.M)
               if n in gradesim.graded_functions(assignment)]
    assert defined, name
    return defined[-1]


@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_planted_bug_costs_no_other_function_anything(name):
    """A forward's bug never costs a backward check, a helper's bug never its caller's."""
    _, _, cells = _graded(name)
    mine = _planted_function(name)
    paid = {f: p - e for f, (e, p) in gradesim.by_function(BUGS[name][0], cells).items()
            if f != mine and e < p}
    if name in OTHER_FUNCTIONS_MAY_PAY:
        assert paid, f"{name} is listed as an exception but costs no other function"
        return
    assert not paid, (paid, {k: str(m)[:100] for k, (_, m) in cells.items() if m})


@pytest.mark.parametrize("name", sorted(set(BUGS) - EDGE_ONLY))
def test_a_bug_wrong_in_general_leaves_its_function_at_most_half(name):
    _, _, cells = _graded(name)
    earned, points = gradesim.by_function(BUGS[name][0], cells)[_planted_function(name)]
    if name in KEEPS_MORE:
        assert earned / points > MAX_KEPT, f"{name} is listed as an exception but keeps less"
        return
    assert earned / points <= MAX_KEPT + 1e-9, (
        earned, points, {k: str(m)[:100] for k, (_, m) in cells.items() if m})


@pytest.mark.parametrize("name", sorted(EDGE_ONLY))
def test_an_edge_regime_bug_costs_its_function_less_than_half(name):
    """Overflow for huge inputs, an argument modified in place: that regime's share."""
    _, _, cells = _graded(name)
    earned, points = gradesim.by_function(BUGS[name][0], cells)[_planted_function(name)]
    assert MAX_KEPT < earned / points < 1.0, (earned, points)


@pytest.mark.parametrize("name", ["rnn_cell/dprev_h_no_transpose", "gru/reset_after_product"])
def test_the_grader_scores_as_gradesim_does(name, tmp_path, monkeypatch):
    """The pipeline's judge (``verify.grading_plan``, the kernel's checks, ``VerifyChecks``
    with its cap per function) gives each cell what gradesim gives it."""
    import nbformat
    from test_protocol import run_graded_cells

    from autograder.pipeline.scoring import earned_fraction
    from autograder.pipeline.worker import verify

    assignment, code, _ = BUGS[name]
    nb = nbformat.read(gradesim.REPO / "source" / assignment / f"{assignment}.ipynb", 4)
    ns = gradesim.student_namespace(assignment, code)
    secret = gradesim.submission_secret(b"course-secret", assignment, "student", "digest")
    plan = verify.grading_plan(nb, secret, assignment, "student")
    registered = checks.assignment_checks(assignment)
    calls = {gid: (lambda c=registered[gid]: c(*(ns.get(f) for f in c.functions)))
             for gid in plan}
    gdir = tmp_path / "scratch" / ".grading"
    verify.prepare_grading_dir(gdir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run_graded_cells(plan, gdir, tmp_path / "collected", calls, monkeypatch)
    _, res = verify.VerifyChecks(grading_dir=str(tmp_path / "collected"), secret=secret) \
        .preprocess(nb, {"nbgrader": {"assignment": assignment, "student": "student"}})
    points = dict(gradesim.graded_cells(assignment))
    graded = {gid: points[gid] * (1.0 if v["passed"] else earned_fraction(v))
              for gid, v in res["rnn_course"]["checks"].items()}
    _, _, cells = _graded(name)
    assert graded == pytest.approx({gid: earned for gid, (earned, _) in cells.items()})
    mine = _planted_function(name)
    kept = sum(e for gid, e in graded.items() if gradesim.function_of(assignment, gid) == mine)
    total = sum(p for gid, p in points.items() if gradesim.function_of(assignment, gid) == mine)
    assert kept <= MAX_KEPT * total + 1e-9  # the grader's cap, not only gradesim's
