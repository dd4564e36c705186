"""``RestoreCells`` (``autograder.pipeline.worker.preprocessors``): the instructor's cells are
graded."""

from __future__ import annotations

import nbfixtures as fx
import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from autograder.course import Course
from autograder.pipeline.worker.preprocessors import RestoreCells

A = fx.ASSIGNMENT
GRADED = ["add_plain", fx.VISIBLE_ID, fx.HIDDEN_ID]


def restore(course, nb):
    resources = {"nbgrader": {"student": "ann", "assignment": A, "notebook": A,
                              "db_url": Course(course).db_url}}
    nb, resources = RestoreCells().preprocess(nb, resources)
    return nb, resources["rnn_course"]["restored_cells"]


def cells_by_id(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if "nbgrader" in c.metadata}


def graded_ids(nb) -> list[str]:
    return [gid for gid, c in cells_by_id(nb).items() if c.metadata.nbgrader.get("grade")]


def test_an_untouched_submission_changes_nothing_and_gets_its_hidden_tests_back(course):
    nb, changes = restore(course, fx.student_notebook(course))
    assert changes == []  # the stripped hidden tests do not count as a change
    assert "BEGIN HIDDEN TESTS" in cells_by_id(nb)[fx.HIDDEN_ID].source
    assert "return a + b" in cells_by_id(nb)["add_impl"].source  # the answer is the student's


def test_changed_locked_and_graded_cells_are_restored_and_reported(course):
    nb = fx.student_notebook(course)
    cells = cells_by_id(nb)
    cells["setup"].source = "import numpy as np\nfrom rnn_course import grading\nadd = max"
    cells[fx.VISIBLE_ID].source = "pass  # nothing to check"
    cells[fx.VISIBLE_ID].metadata.nbgrader["points"] = 50.0
    cells[fx.PLAIN_ID].metadata.nbgrader["grade"] = False  # "not a test any more"
    nb, changes = restore(course, nb)
    cells = cells_by_id(nb)
    source = fx.fixture_source()
    want = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
            if "nbgrader" in c.metadata}
    assert cells["setup"].source == want["setup"]
    assert cells[fx.VISIBLE_ID].source == want[fx.VISIBLE_ID]
    assert cells[fx.VISIBLE_ID].metadata.nbgrader["points"] == 1.0
    assert cells[fx.PLAIN_ID].metadata.nbgrader["grade"] is True
    assert changes == ["setup: checksum restored", f"{fx.PLAIN_ID}: grade restored",
                       f"{fx.VISIBLE_ID}: points restored", f"{fx.VISIBLE_ID}: checksum restored"]


def test_deleted_graded_cells_come_back_in_place(course):
    nb = fx.student_notebook(course)
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    nb, changes = restore(course, nb)
    assert graded_ids(nb) == GRADED
    assert changes == [f"{gid}: missing cell restored" for gid in GRADED]
    # re-added cells are real notebook nodes all the way down, as every later step reads them
    hidden = cells_by_id(nb)[fx.HIDDEN_ID]
    assert isinstance(hidden.metadata.nbgrader, nbformat.NotebookNode)
    assert hidden.metadata.nbgrader.points == 2.0


def test_a_test_cell_turned_into_markdown_is_code_again(course):
    nb = fx.student_notebook(course)
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == fx.HIDDEN_ID:
            md = new_markdown_cell(cell.source)
            md.metadata = cell.metadata
            nb.cells[i] = md
    nb, changes = restore(course, nb)
    assert cells_by_id(nb)[fx.HIDDEN_ID].cell_type == "code"
    assert f"{fx.HIDDEN_ID}: cell_type restored" in changes


def test_the_notebooks_cells_read_at_once_are_the_gradebooks_own(course):
    """RestoreCells reads a notebook's cells in two queries: the same answers as nbgrader's."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.pipeline.worker.preprocessors.restore_cells import _NotebookCells

    with Gradebook(Course(course).db_url) as gb:
        cells = _NotebookCells(gb, fx.ASSIGNMENT, fx.ASSIGNMENT)
        names = [c.name for c in cells.notebook.source_cells]
        assert fx.HIDDEN_ID in names
        for name in names:
            assert cells.find_source_cell(name, fx.ASSIGNMENT, fx.ASSIGNMENT) is \
                gb.find_source_cell(name, fx.ASSIGNMENT, fx.ASSIGNMENT)
            try:
                theirs = gb.find_graded_cell(name, fx.ASSIGNMENT, fx.ASSIGNMENT)
            except MissingEntry:
                with pytest.raises(MissingEntry):
                    cells.find_graded_cell(name, fx.ASSIGNMENT, fx.ASSIGNMENT)
            else:
                assert cells.find_graded_cell(name, fx.ASSIGNMENT, fx.ASSIGNMENT) is theirs
        with pytest.raises(MissingEntry):
            cells.find_source_cell("no_such_cell", fx.ASSIGNMENT, fx.ASSIGNMENT)
