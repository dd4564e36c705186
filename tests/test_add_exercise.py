"""Adding an exercise is one documented path (docs/adding-an-exercise.md).

The test reads that page's blocks and does exactly what it says, in a copy of
this course (every tracked file, ``release/`` included): the ``toy``
assignment's name goes into ``nbgrader_config.py``, its reference function into
``autograder/reference.py``, its checks module into ``rnn_course/checks/``, its
notebook (built cell by cell from the page) into ``source/``, its planted bug
into ``tests/planted.py``, its release notebook into the student guide's list;
nothing else is edited.  Then ``python -m autograder
release toy``; the tests that read the assignment list (points line, drawn
inputs, planted bugs, notebooks and their releases, oracles, the student guide's
list) run in the copy and
pass; and ``python -m autograder grade toy``: a perfect submission gets every
point, an empty one none.  ``python -m`` runs from the copy, so the grader, its
workers, the tests and the notebooks' kernels import the copy's packages.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.commands.demo import fill_solutions, write_submission
from autograder.commands.release import nbgrader_env
from autograder.course import Course

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "adding-an-exercise.md"
TOY = "toy"
BLOCK = re.compile(r"^```(?:python|markdown) (?P<info>[^\n]+)\n(?P<body>.*?)^```\s*$",
                   re.M | re.S)
SCHEMA_VERSION = 3


def guide_blocks() -> list[tuple[dict, str]]:
    """The page's annotated python and markdown blocks: ``(info, body)``; info:
    {"file": ..., "mode": ...} or {"cell": ..., "role": ..., "points": ...}."""
    blocks = []
    for m in BLOCK.finditer(GUIDE.read_text(encoding="utf-8")):
        info = dict(part.split("=", 1) for part in m["info"].split() if "=" in part)
        blocks.append((info, m["body"]))
    return blocks


def toy_notebook(blocks) -> nbformat.NotebookNode:
    """The instructor notebook of the page's ``cell=`` blocks, with their nbgrader roles."""
    cells = []
    for info, body in blocks:
        if "cell" not in info:
            continue
        role = info["role"]
        if role == "markdown":
            cells.append(new_markdown_cell(body.rstrip("\n")))
            continue
        cell = new_code_cell(body.rstrip("\n"))
        cell.metadata.nbgrader = {  # as nbgrader's toolbar writes them: points on grade cells
            "grade": role == "grade", "grade_id": info["cell"], "locked": role != "solution",
            "schema_version": SCHEMA_VERSION, "solution": role == "solution", "task": False,
        }
        if role == "grade":
            cell.metadata.nbgrader["points"] = float(info["points"])
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    return nb


def copy_course(dest: Path) -> Path:
    """This course's tracked files, as they are in the working tree."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in files:
        if not rel:
            continue
        src = REPO / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def add_toy(course: Path) -> None:
    """Steps 1 to 6 of the page, in ``course``."""
    blocks = guide_blocks()
    config = course / "nbgrader_config.py"
    listed = Course(course).assignments
    text = config.read_text()
    old = f"c.RnnCourse.assignments = {listed!r}".replace("'", '"')
    assert old in text, "the page's step 1 edits the one list in nbgrader_config.py"
    config.write_text(text.replace(old, old[:-1] + f', "{TOY}"]'))
    for info, body in blocks:
        if "file" not in info:
            continue
        target = course / info["file"]
        if info.get("mode") == "append":
            target.write_text(target.read_text() + "\n\n" + body)
        elif info.get("mode") == "after-first-line":  # the first line is there: add the rest
            anchor, rest = body.split("\n", 1)
            lines = target.read_text().split("\n")
            assert lines.count(anchor) == 1, f"{info['file']}: no single line {anchor!r}"
            at = lines.index(anchor) + 1
            target.write_text("\n".join(lines[:at] + rest.rstrip("\n").split("\n") + lines[at:]))
        else:
            target.write_text(body)
    source = course / "source" / TOY / f"{TOY}.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(toy_notebook(blocks), source)


def copy_env() -> dict:
    env = nbgrader_env()
    for var in [v for v in env if v.startswith("RNN_COURSE_")]:
        env.pop(var)
    env["RNN_COURSE_SECRET"] = "toy-course-secret"
    return env


def autograder(course: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=course,
                          env=copy_env(), capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        pytest.fail(f"python -m autograder {' '.join(args)} exited {proc.returncode}\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# The tests that read the assignment list and are run in the copy once the page's steps
# are done: those parametrised by assignment or by planted bug, and the release checks.
COURSE_TESTS = ("tests/test_notebook_numbers.py", "tests/test_drawn_visible.py",
                "tests/test_fair_scores.py", "tests/test_notebooks.py", "tests/test_oracles.py",
                "tests/test_student_guide.py")
# Of their slow tests, those that only re-run the other assignments' work are left out:
# executing every notebook (nbgrader validate of every source, each source's run but the
# new one's), grading every other planted bug under 20 student ids, and the browser.
COURSE_TESTS_SELECTION = (f"{TOY} or not (nbgrader_validate_sources or executes_within_budget"
                          " or gets_one_score or jupyter_lab_of_this_venv)")


TOY_TESTS = (
    f"tests/test_notebook_numbers.py::test_the_points_line_matches_the_graded_cells[{TOY}]",
    f"tests/test_fair_scores.py::test_a_planted_bug_costs_its_function_not_the_assignment"
    f"[{TOY}/no_bias]",
    f"tests/test_drawn_visible.py::test_a_planted_bug_is_named_by_a_visible_check_on_every_draw"
    f"[{TOY}/no_bias]",
    f"tests/test_notebooks.py::test_release_has_no_markers_outputs_or_hidden_calls[{TOY}]",
    f"tests/test_notebooks.py::test_source_notebook_executes_within_budget[{TOY}]",
    "tests/test_notebooks.py::test_release_matches_a_rebuild",
    "tests/test_student_guide.py::test_the_guide_names_every_release_and_the_kernel",
)


def course_tests(course: Path) -> subprocess.CompletedProcess:
    """:data:`COURSE_TESTS` run in ``course`` with its own packages first on the path (the
    notebooks' kernels too), as this course's tests run here."""
    env = copy_env()
    env["PYTHONPATH"] = str(course)
    return subprocess.run([sys.executable, "-m", "pytest", *COURSE_TESTS, "-q", "-n", "0",
                           "-p", "no:cacheprovider", "-rA", "-k", COURSE_TESTS_SELECTION],
                          cwd=course, env=env, capture_output=True, text=True, timeout=900)


def test_the_guide_edits_three_files_the_list_the_planted_bugs_and_the_student_guide():
    files = {info["file"] for info, _ in guide_blocks() if "file" in info}
    assert files == {"autograder/reference.py", f"rnn_course/checks/{TOY}.py",
                     "tests/planted.py", "docs/student-guide.md"}
    roles = {info["cell"]: info["role"] for info, _ in guide_blocks() if "cell" in info}
    assert sorted(roles.values()) == ["grade", "grade", "locked", "markdown", "solution"]


def test_a_new_assignment_added_as_the_guide_says_releases_and_grades(tmp_path):
    course = copy_course(tmp_path / "course")
    add_toy(course)
    source = nbformat.read(course / "source" / TOY / f"{TOY}.ipynb", as_version=4)

    # a graded cell without a check is refused, in one line naming it
    extra = new_code_cell("checks.affine_values(affine)")
    extra.metadata.nbgrader = dict(source.cells[-1].metadata.nbgrader, grade_id="affine_more")
    unchecked = nbformat.from_dict(dict(source, cells=[*source.cells, extra]))
    nbformat.write(unchecked, course / "source" / TOY / f"{TOY}.ipynb")
    refused = autograder(course, "release", TOY, check=False)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "affine_more" in lines[0] and "Traceback" not in refused.stderr
    nbformat.write(source, course / "source" / TOY / f"{TOY}.ipynb")

    autograder(course, "release", TOY)
    tests = course_tests(course)
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]
    summary = tests.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
    for test_id in TOY_TESTS:  # the new assignment was picked up, and passed
        assert f"PASSED {test_id}" in tests.stdout, test_id
    release_nb = nbformat.read(course / "release" / TOY / f"{TOY}.ipynb", as_version=4)
    released = "\n".join(c.source for c in release_nb.cells)
    assert "x @ W + b" not in released and "affine_hidden" not in released
    assert "BEGIN SOLUTION" not in released and "HIDDEN TESTS" not in released

    write_submission(course, "perfect", TOY, fill_solutions(release_nb, source))
    write_submission(course, "empty", TOY, release_nb)
    result = autograder(course, "grade", TOY, "--workers", "1")
    with open(course / "grades.csv", newline="", encoding="utf-8") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == TOY}
    assert float(rows["perfect"]["max_score"]) == 3.0, result.stdout
    assert float(rows["perfect"]["score"]) == 3.0, result.stdout
    assert float(rows["empty"]["score"]) == 0.0, result.stdout
    feedback = course / "feedback" / "perfect" / TOY / f"{TOY}.html"
    assert feedback.is_file()
    assert "checks.affine_hidden(affine)" not in feedback.read_text(encoding="utf-8")
