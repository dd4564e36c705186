"""``python -m autograder demo``: what ``make demo`` shows a newcomer, end to end.

Runs the demo as a subprocess on this repository (its class goes to a
temporary folder) and checks the grades it recorded, from the ``grades.csv``
it exported: for every assignment the perfect submission gets full marks, the
untouched release 0, the partial one something strictly in between, the broken
file 0 with ``invalid_notebook``, and the cheater (the partial submission plus
an attack cell) no more than the partial one.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.commands.release import nbgrader_env
from autograder.course import Course

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo")]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "class"
    env = nbgrader_env()
    env["RNN_COURSE_DB_URL"] = "sqlite:////nonexistent/must-not-be-used.db"  # the demo drops it
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "demo", "--course-dir", str(REPO), "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    rows = {}
    if (out / "grades.csv").exists():
        with open(out / "grades.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                rows[(row["assignment"], row["student_id"])] = row
    return proc, out, rows


def test_demo_exits_cleanly_and_explains_itself(demo):
    proc, out, _ = demo
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    for words in ("perfect", "partial", "untouched", "broken", "cheater", "grades.csv",
                  "feedback", "loopback listener on 127.0.0.1: 0",
                  "every grade is the expected one"):
        assert words in text
    assert (out / ".rnn-course-demo").is_file()


@pytest.mark.parametrize("assignment", Course(REPO).assignments)
def test_demo_grades(demo, assignment):
    _, _, rows = demo

    def grade(student):
        row = rows[(assignment, student)]
        return float(row["score"]), float(row["max_score"]), row["flags"].split(";")

    perfect, top, _ = grade("perfect")
    partial, _, partial_flags = grade("partial")
    untouched, _, _ = grade("untouched")
    broken, _, broken_flags = grade("broken")
    cheater, _, _ = grade("cheater")
    assert top > 0 and perfect == top
    assert untouched == 0
    assert 0 < partial < top
    assert broken == 0 and "invalid_notebook" in broken_flags
    assert cheater <= partial


def test_demo_refuses_to_delete_a_folder_it_did_not_make(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "demo", "--course-dir", str(REPO),
         "--out", str(precious)],
        cwd=REPO, env=nbgrader_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "not made by the demo" in proc.stderr
    assert (precious / "thesis.tex").read_text() == "do not delete"


@pytest.mark.parametrize("assignment", Course(REPO).assignments)
def test_perfect_graded_copy_and_feedback_show_each_widget_drawing(demo, assignment):
    """One PNG per widget cell in the perfect submission's graded copy and feedback (issue
    26). Grading skips these cells (issue 28): what shows is the drawing the student's own
    run left there (the demo's perfect student ran the notebook before submitting)."""
    import nbformat
    from test_notebook_claims import WIDGET_CALL

    _, out, _ = demo
    graded = [p for p in out.rglob(f"{assignment}.ipynb")
              if "autograded" in p.parts and "perfect" in p.parts]
    feedback = [p for p in out.rglob(f"{assignment}.html")
                if "feedback" in p.parts and "perfect" in p.parts]
    assert len(graded) == 1 and len(feedback) == 1, (graded, feedback)
    nb = nbformat.read(graded[0], as_version=4)
    widget_cells = [c for c in nb.cells if c.cell_type == "code" and WIDGET_CALL.search(c.source)]
    for cell in widget_cells:
        assert sum("image/png" in o.get("data", {}) for o in cell.outputs) == 1, cell.source
    # every image of the graded copy (the widgets' and the other figures the student's run
    # left in the cells that grading skips) is in the feedback, as an inert data: image
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)
    assert images >= len(widget_cells)
    assert feedback[0].read_text().count("data:image/png;base64,") == images
