"""The numbers the notebooks quote are read from the code they describe (issue 13).

* each notebook's points line (near the top) matches its graded cells' points, per
  function (the function a cell's check is named after: ``gradesim.graded_function``);
* the LSTM notebook's experiment budget (steps, gaps) is the notebook preset's;
* the gated notebooks' gradient threshold is the tolerance their checks use;
* the BPTT notebook's check sizes (T, truncate) are those of its checks' inputs.
"""

from __future__ import annotations

import re

import pytest
from gradesim import REPO, notebook_cells, points_by_function

from autograder.course import Course
from rnn_course import checks
from rnn_course.checks.bptt import TRUNC_K, TRUNC_T
from rnn_course.experiments import PRESETS
from rnn_course.gradcheck import GATED_GRAD_TOL

REPO_ASSIGNMENTS = Course(REPO).assignments


def _markdown(assignment: str) -> str:
    return "\n".join(source for kind, source, _ in notebook_cells(assignment)
                     if kind == "markdown")


def _all(pattern: str, text: str) -> list[str]:
    found = re.findall(pattern, text)
    assert found, f"the notebook no longer says {pattern!r}: update this test"
    return found


@pytest.mark.parametrize("assignment", REPO_ASSIGNMENTS)
def test_the_points_line_matches_the_graded_cells(assignment):
    points = points_by_function(assignment)
    line = _all(r"\*\*Points \((\d+)\)\*\*: ([^.]+)\.", _markdown(assignment))[0]
    assert float(line[0]) == sum(points.values())
    quoted = {name: float(p) for name, p in re.findall(r"`(\w+)` (\d+)", line[1])}
    assert quoted == dict(points)


def test_the_lstm_notebook_quotes_the_notebook_preset():
    text = " ".join(_markdown("lstm").split())
    steps = PRESETS["notebook"]["country"]["steps"]
    for pattern in (r"(\d+) training steps per model", r"short budget \((\d+) steps\)",
                    r"single seed with (\d+) steps per model"):
        assert {int(n) for n in _all(pattern, text)} == {steps}, pattern
    assert {int(n) for n in _all(r"time budget: (\d+) gaps", text)} == {
        len(PRESETS["notebook"]["country"]["lags"])}


@pytest.mark.parametrize("assignment", ["lstm", "gru"])
def test_the_gated_notebooks_quote_their_checks_tolerance(assignment):
    exponents = _all(r"fail anything above \$10\^\{-(\d+)\}\$", _markdown(assignment))
    assert {10.0 ** -int(e) for e in exponents} == {GATED_GRAD_TOL}


def test_the_bptt_notebook_quotes_its_checks_sizes():
    text = " ".join(_markdown("bptt").split())
    bptt = checks.assignment_checks("bptt")
    T = bptt["rnn_backward_dx_dh0"].inputs()["x"].shape[1]
    assert {int(n) for n in _all(r"full BPTT over (\d+) steps", text)} == {T}
    code = "\n".join(s for kind, s, _ in notebook_cells("bptt") if kind == "code")
    assert _all(r"truncate=(\d+) over (\d+) steps", code) == [(str(TRUNC_K), str(TRUNC_T))]
    assert bptt["rnn_backward_truncate_k"].inputs()["x"].shape[1] == TRUNC_T
