"""``RestoreCells``: nbgrader's ``OverwriteCells``, hardened and reporting what it restored."""

from __future__ import annotations

import json

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells
from traitlets import Bool


class _NotebookCells:
    """The gradebook, with one notebook's source and graded cells read in two queries.

    nbgrader's ``OverwriteCells`` asks the gradebook for each cell on its own
    (two joined queries per cell, on a fresh connection): about half of the
    worker's sanitize step.  Lookups of other notebooks, and everything else,
    go to the gradebook itself.
    """

    def __init__(self, gradebook, notebook: str, assignment: str):
        self._gb, self._key = gradebook, (notebook, assignment)
        source_nb = gradebook.find_notebook(notebook, assignment)
        self.notebook = source_nb
        self._source = {c.name: c for c in source_nb.source_cells}
        # as nbgrader's lookup: a grade cell before a task cell of the same name
        self._graded = {c.name: c for c in [*source_nb.task_cells, *source_nb.grade_cells]}

    def find_notebook(self, name, assignment):
        if (name, assignment) == self._key:
            return self.notebook
        return self._gb.find_notebook(name, assignment)

    def _find(self, cells: dict, kind: str, name, notebook, assignment):
        if (notebook, assignment) != self._key:
            return getattr(self._gb, f"find_{kind}_cell")(name, notebook, assignment)
        if name not in cells:
            raise MissingEntry(f"No such {kind} cell: {assignment}/{notebook}/{name}")
        return cells[name]

    def find_source_cell(self, name, notebook, assignment):
        return self._find(self._source, "source", name, notebook, assignment)

    def find_graded_cell(self, name, notebook, assignment):
        return self._find(self._graded, "graded", name, notebook, assignment)

    def __getattr__(self, name):
        return getattr(self._gb, name)


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


class RestoreCells(OverwriteCells):
    """``OverwriteCells`` that records every change it makes (``resources["rnn_course"]``).

    On top of nbgrader's checks (cell type, locked, points, locked source) it

    * restores a known cell's *kind* (grade / solution / task), which
      ``OverwriteCells`` leaves alone: a test cell whose ``grade`` flag was
      switched off would otherwise not be graded at all;
    * re-adds missing grade cells after the nearest earlier instructor cell
      still present (``OverwriteCells.add_missing_grade_cells`` raises
      ``KeyError`` when that neighbour is a locked cell or was deleted too);
    * does not count as a change the one difference every submission has: a
      test cell whose release version had its hidden tests stripped.

    The list of changes ends up in ``resources["rnn_course"]["restored_cells"]``;
    the worker turns a non-empty list into the ``tampered_cells_restored`` flag.
    """

    add_missing_cells = Bool(
        True, help="Add graded cells missing from a submission back (nbgrader's default: no)."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict):
        self.changes: list[str] = []
        self._kinds: dict[str, set[str]] | None = None
        self._student_source = ""
        nb, resources = super().preprocess(nb, resources)
        resources.setdefault("rnn_course", {})["restored_cells"] = list(self.changes)
        return nb, resources

    # ------------------------------------------------------------------ #
    def _cell_kinds(self) -> dict[str, set[str]]:
        """Names of the instructor's cells by kind (read once per notebook)."""
        if self._kinds is None:
            source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
            self._kinds = {
                "source": {c.name for c in source_nb.source_cells},
                "grade": {c.name for c in source_nb.grade_cells},
                "solution": {c.name for c in source_nb.solution_cells},
                "task": {c.name for c in source_nb.task_cells},
            }
        return self._kinds

    def preprocess_cell(self, cell, resources, cell_index):
        if not isinstance(self.gradebook, _NotebookCells):  # the first cell: read them all
            try:
                self.gradebook = _NotebookCells(self.gradebook, self.notebook_id,
                                                self.assignment_id)
            except MissingEntry:  # an unknown notebook: nbgrader's own lookups say so
                pass
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if grade_id and grade_id in self._cell_kinds()["source"]:
            kinds = self._cell_kinds()
            for key in ("grade", "solution", "task"):
                want = grade_id in kinds[key]
                if bool(meta.get(key, False)) != want:
                    self.report_change(grade_id, key, want, meta.get(key, False))
                    meta[key] = want
            if meta.get("grade") and "points" not in meta:
                meta["points"] = 0.0  # OverwriteCells then restores (and reports) the points
        self._student_source = cell.get("source", "")
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new) -> None:
        if attr == "checksum" and self._is_release_version(name):
            return
        super().report_change(name, attr, old, new)
        self.changes.append(f"{name}: {attr} restored")

    def _is_release_version(self, name: str) -> bool:
        """Whether the submitted source is the instructor's minus its hidden tests."""
        try:
            source = self.gradebook.find_source_cell(
                name, self.notebook_id, self.assignment_id).source
            cell = NotebookNode(cell_type="code", metadata={}, source=source)
            ClearHiddenTests(parent=self)._remove_hidden_test_region(cell)
        except Exception:  # malformed instructor markers: treat as a change
            return False
        return _normal(cell.source) == _normal(self._student_source)

    def missing_cell_transform(self, source_cell, max_score, is_solution=False, is_task=False):
        """nbgrader's re-added cell, as a real notebook node all the way down.

        ``OverwriteCells`` wraps a plain dict in ``NotebookNode``, which leaves
        ``cell.metadata`` a plain dict: ``cell.metadata.nbgrader`` then fails
        in every later step that reads it.
        """
        cell = super().missing_cell_transform(source_cell, max_score, is_solution=is_solution,
                                              is_task=is_task)
        return nbformat.from_dict(json.loads(json.dumps(cell)))

    # ------------------------------------------------------------------ #
    def add_missing_grade_cells(self, nb, resources):
        """Put every missing grade cell back, after the nearest earlier cell still present."""
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        source_ids = [c.name for c in source_cells]
        grade_cells = {c.name: c for c in source_nb.grade_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}

        def position(grade_id):
            for index, cell in enumerate(nb.cells):
                if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                    return index
            return None

        for index, grade_id in enumerate(source_ids):
            if grade_id not in grade_cells or position(grade_id) is not None:
                continue
            insert_at = 0
            for previous in reversed(source_ids[:index]):
                found = position(previous)
                if found is not None:
                    insert_at = found + 1
                    break
            self.log.warning("Missing grade cell %s encountered, adding to notebook", grade_id)
            nb.cells.insert(insert_at, self.missing_cell_transform(
                source_cells[index], grade_cells[grade_id].max_score,
                is_solution=grade_id in solution_ids))
            self.changes.append(f"{grade_id}: missing cell restored")
        return nb, resources

    def add_missing_task_cells(self, nb, resources):
        before = len(nb.cells)
        nb, resources = super().add_missing_task_cells(nb, resources)
        if len(nb.cells) > before:
            self.changes.append(f"{len(nb.cells) - before} missing task cell(s) restored")
        return nb, resources
