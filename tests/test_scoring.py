"""Scoring (``autograder.pipeline.scoring``): the one place where verdicts become points."""

from __future__ import annotations

from datetime import datetime

import pytest
from nbgrader.plugins import BasePlugin
from traitlets.config import Config

from autograder.pipeline import scoring as S

NB = "hw"
STRUCTURE = S.AssignmentStructure(
    name="hw",
    notebooks={
        NB: {"t_visible": S.GradedCell(1.0), "t_hidden": S.GradedCell(2.0),
             "t_plain": S.GradedCell(1.0),
             "essay": S.GradedCell(3.0, cell_type="markdown", solution=True)},
        "extra": {"x": S.GradedCell(5.0)},
    },
    duedate=datetime(2026, 1, 15),
)
PASS = {"kind": "visible", "passed": True, "message": ""}
FAIL = {"kind": "hidden", "passed": False, "message": "differs from the expected values"}


def run(**verdicts) -> S.NotebookRun:
    return S.NotebookRun(verdicts=dict(verdicts))


def score(runs, **kw):
    kw.setdefault("student", "ann")
    return S.score_submission(STRUCTURE, runs, **kw)


def test_verdicts_decide_the_points():
    got = score({NB: run(t_visible=PASS, t_hidden=FAIL), "extra": run(x=PASS)})
    cells = got.cells[NB]
    assert (cells["t_visible"]["score"], cells["t_visible"]["passed"]) == (1.0, True)
    assert cells["t_hidden"] == {"score": 0.0, "max_score": 2.0, "passed": False,
                                 "kind": "hidden", "message": FAIL["message"]}
    assert got.cells["extra"]["x"]["score"] == 5.0
    # the essay is left to a person: no auto score, not counted
    assert cells["essay"]["score"] is None and cells["essay"]["kind"] == "manual"
    assert (got.score, got.max_score, got.late_penalty) == (6.0, 12.0, 0.0)
    assert got.late_penalties == {NB: None, "extra": None}


def test_a_cell_without_a_verdict_scores_zero():
    unverified = {"kind": "unverified", "passed": None, "message": ""}
    cells = score({NB: run(t_visible=PASS, t_hidden=PASS, t_plain=unverified)}).cells[NB]
    assert cells["t_plain"]["score"] == 0.0 and cells["t_plain"]["passed"] is False
    assert cells["t_plain"]["kind"] == "unverified"
    assert "no check" in cells["t_plain"]["message"]
    # no verdict at all (say the cell is gone from the notebook): 0 as well
    assert score({NB: run()}).cells[NB]["t_visible"]["score"] == 0.0


def test_a_missing_notebook_scores_zero_everywhere():
    got = score({NB: run(t_visible=PASS, t_hidden=PASS, t_plain=PASS), "extra": None})
    assert got.cells["extra"]["x"] == {"score": 0.0, "max_score": 5.0, "passed": False,
                                       "kind": "missing",
                                       "message": "the notebook was not graded "
                                                  "(missing or unusable)"}
    nothing = score({})
    assert nothing.score == 0.0 and nothing.max_score == STRUCTURE.max_score == 12.0
    # a person's cell of a missing notebook is 0 as well, as nbgrader's autograde does
    assert nothing.cells[NB]["essay"]["score"] == 0.0


def test_a_cell_that_never_ran_fails_even_with_a_passing_result():
    stopped = S.NotebookRun(verdicts={"t_visible": PASS, "t_hidden": PASS},
                            not_run={"t_hidden": "kernel_died"})
    cells = score({NB: stopped}).cells[NB]
    assert cells["t_visible"]["score"] == 1.0
    assert cells["t_hidden"]["score"] == 0.0 and cells["t_hidden"]["passed"] is False
    assert "not run" in cells["t_hidden"]["message"] and "kernel_died" in cells["t_hidden"][
        "message"]


def test_an_answer_left_as_released_scores_zero():
    cells = score({NB: S.NotebookRun(unanswered=frozenset({"essay"}))}).cells[NB]
    assert cells["essay"]["score"] == 0.0 and cells["essay"]["message"] == S.NO_RESPONSE


def zero_penalty() -> Config:
    cfg = Config()
    cfg.LateSubmissionPlugin.penalty_method = "zero"
    return cfg


def test_late_penalty_goes_through_nbgraders_configured_plugin():
    runs = {NB: run(t_visible=PASS, t_hidden=PASS), "extra": run(x=PASS)}
    late = datetime(2026, 1, 16)
    on_time = score(runs, timestamp=late, config=Config())  # nbgrader's default: no penalty
    assert on_time.seconds_late == 86400 and on_time.score == 8.0
    zeroed = score(runs, timestamp=late, config=zero_penalty())
    assert zeroed.late_penalties == {NB: 3.0, "extra": 5.0}
    assert (zeroed.score, zeroed.late_penalty, zeroed.max_score) == (0.0, 8.0, 12.0)
    # an extension moves the due date: not late, no penalty
    extended = score(runs, timestamp=late, extension_seconds=2 * 86400, config=zero_penalty())
    assert extended.seconds_late == 0 and extended.score == 8.0
    assert extended.late_penalties == {NB: None, "extra": None}


class Halve(BasePlugin):
    """A late-submission plugin of the instructor's own (nbgrader's plugin interface)."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return None if student_id == "excused" else score / 2 + 100  # clamped to the score


@pytest.mark.parametrize("student, expected", [("ann", 0.0), ("excused", 8.0)])
def test_a_plugins_penalty_is_clamped_or_none(student, expected):
    runs = {NB: run(t_visible=PASS, t_hidden=PASS), "extra": run(x=PASS)}
    got = score(runs, student=student, timestamp=datetime(2026, 2, 1), plugin=Halve())
    assert got.score == expected


def test_the_configured_plugin_class_is_used():
    cfg = Config()
    cfg.AssignLatePenalties.plugin_class = f"{__name__}.Halve"
    assert isinstance(S.late_plugin(cfg), Halve)


def test_times_as_nbgrader_reads_them():
    assert S.parse_timestamp("2026-01-10 12:00:00.000000 UTC") == datetime(2026, 1, 10, 12)
    assert S.parse_timestamp("not a time") is None and S.parse_timestamp(None) is None
    assert S.seconds_late(None, datetime(2026, 1, 1)) == 0.0
    assert S.seconds_late(datetime(2026, 1, 2), None) == 0.0
    assert S.seconds_late(datetime(2026, 1, 1), datetime(2026, 1, 2)) == 0.0


@pytest.mark.parametrize("fraction, points", [
    (None, 0.0), (0.0, 0.0), (0.4, 1.2), (0.8, 2.4), (float("nan"), 0.0), (-1.0, 0.0),
    ("bad", 0.0), (1.0, 3.0 * 0.9999)])
def test_a_failed_check_earns_the_share_of_its_right_outputs(fraction, points):
    """Issue 13: a failed verdict may carry ``fraction``, the share of its right outputs; a
    failed check never earns its full points."""
    cell = S.GradedCell(max_score=3.0)
    verdict = {"kind": "hidden", "passed": False, "message": "dh0 differs", "fraction": fraction}
    scored = S.score_cell(cell, verdict)
    assert scored["score"] == pytest.approx(points) and scored["passed"] is False
    assert S.score_cell(cell, dict(verdict, passed=True))["score"] == 3.0
