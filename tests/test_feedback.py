"""Feedback HTML (``autograder.pipeline.feedback``): the scores, the notes, hidden tests hidden."""

from __future__ import annotations

import re
from html import unescape

import nbfixtures as fx
from nbformat.v4 import new_output

from autograder.pipeline import flags as F
from autograder.pipeline.feedback import feedback_resources, notes_cell, render_feedback
from autograder.pipeline.scoring import NO_RESPONSE, Scores

A = fx.ASSIGNMENT
HIDDEN_MESSAGE = "s differs from the expected values"


def graded_notebook():
    """The fixture notebook as the worker leaves it: instructor's cells, verdicts as outputs."""
    nb = fx.fixture_source()
    outputs = {
        "add_impl": [new_output("stream", name="stdout", text="my inputs: 0.123456789\n")],
        fx.PLAIN_ID: [new_output("stream", name="stdout", text=f"{fx.PLAIN_ID}: passed\n")],
        fx.VISIBLE_ID: [new_output("stream", name="stdout", text=f"{fx.VISIBLE_ID}: passed\n")],
        fx.HIDDEN_ID: [new_output("error", ename="CheckFailed",
                                  evalue=f"{fx.HIDDEN_ID}: {HIDDEN_MESSAGE}",
                                  traceback=[f"CheckFailed: {fx.HIDDEN_ID}: {HIDDEN_MESSAGE}"])],
    }
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and gid in outputs:
            cell.outputs = outputs[gid]
    return nb


def scores(late_penalty=None) -> Scores:
    def cell(score, points, passed, kind, message=""):
        return {"score": score, "max_score": points, "passed": passed, "kind": kind,
                "message": message}

    return Scores(cells={A: {
        fx.PLAIN_ID: cell(1.0, 1.0, True, "visible"),
        fx.VISIBLE_ID: cell(1.0, 1.0, True, "visible"),
        fx.HIDDEN_ID: cell(0.0, 2.0, False, "hidden", HIDDEN_MESSAGE),
    }}, late_penalties={A: late_penalty})


def render(flags=(), late_penalty=None, comments=None):
    res = feedback_resources("ann", A, A, scores(late_penalty), comments or {"add_impl": None})
    return render_feedback(graded_notebook(), res, list(flags))


def text_of(html: str) -> str:
    """What a reader sees: no styles, no tags (code is highlighted span by span)."""
    body = re.sub(r"<(style|script).*?</\1>", "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", body))


def test_the_feedback_shows_the_workers_scores():
    html = render()
    assert f"{A} (Score: 2.0 / 4.0)" in html
    assert "(Score: 0.0 / 2.0)" in html and html.count("(Score: 1.0 / 1.0)") == 2
    assert "Late submission penalty" not in html
    late = render(late_penalty=1.5)
    assert f"{A} (Score: 0.5 / 4.0)" in late and "Late submission penalty (Score: -1.5)" in late


def test_notes_list_flags_in_the_students_words_and_failed_checks():
    reason = "Copy of rnn_cell.ipynb <b>x</b>"
    html = render(flags=[(F.RENAMED_NOTEBOOK, reason), (F.LATE, "")])
    body = text_of(html)
    assert "Grader notes" in body
    assert F.VOCABULARY[F.RENAMED_NOTEBOOK].text in body
    assert F.VOCABULARY[F.LATE].text in body
    assert "<b>x</b>" not in html and reason in body  # a reason is text, never markup
    assert f"hidden check {fx.HIDDEN_ID} failed: {HIDDEN_MESSAGE}" in body
    assert HIDDEN_MESSAGE in body


def test_no_notes_for_a_clean_submission():
    assert notes_cell([], scores().cells[A] | {fx.HIDDEN_ID: {"passed": True}}) is None
    assert notes_cell([], {"essay": {"passed": False, "kind": "manual"}}) is None


def test_hidden_tests_are_hidden_and_the_verdict_shown():
    body = text_of(render())
    for leak in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "grading.inputs(", '_in["a"]'):
        assert leak not in body, leak
    assert f"CheckFailed: {fx.HIDDEN_ID}: {HIDDEN_MESSAGE}" in body
    assert f"{fx.VISIBLE_ID}: passed" in body  # a visible check's code and verdict are shown
    assert "assert add(2, 2) == 4" in body  # the visible part of the hidden cell stays


def test_an_answer_left_as_released_says_no_response():
    assert NO_RESPONSE in render(comments={"add_impl": NO_RESPONSE})
    assert NO_RESPONSE not in render()
