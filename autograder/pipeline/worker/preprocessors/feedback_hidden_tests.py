"""``FeedbackHiddenTests``: nbgrader's ``ClearHiddenTests`` for the copy a student gets back."""

from __future__ import annotations

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool, Integer, List, Unicode


class FeedbackHiddenTests(ClearHiddenTests):
    """Remove hidden tests from a graded notebook before it becomes feedback.

    Differs from ``ClearHiddenTests`` (which prepares a release) in three ways:

    * a cell's markers are the student's text as much as the instructor's: a
      stray or unbalanced ``BEGIN HIDDEN TESTS`` never raises, the cell's
      source is replaced by :attr:`hidden_source` instead;
    * hidden regions are allowed in any cell (``enforce_metadata`` off);
    * the outputs of a cell that had a hidden region could show its code (an
      IPython traceback quotes source lines) or its inputs (whatever the
      student's function printed).  Outputs written by the grader's verdict
      (``VerifyChecks``) are kept as they are; of any other output only the
      error's name and a short message remain.
    """

    enforce_metadata = Bool(
        False, help="Complain about hidden tests outside grade cells (never, for feedback)."
    ).tag(config=True)
    hidden_source = Unicode(
        "# (hidden test: the grader ran it, its code is not shown)",
        help="Source shown for a cell whose hidden-test markers could not be parsed.",
    ).tag(config=True)
    display_data_priority = List(
        ["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png",
         "image/jpeg", "text/plain"],
        help="Output formats by priority (configurable, as in nbgrader's GetGrades).",
    ).tag(config=True)
    max_message_chars = Integer(
        200, help="Characters kept of an error message in a cell that had hidden tests."
    ).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        try:
            removed = self._remove_hidden_test_region(cell)
        except RuntimeError:  # nested or unterminated markers
            cell.source = self.hidden_source
            removed = True
        if removed and cell.cell_type == "code":
            self._scrub_outputs(cell, resources)
        return cell, resources

    def _scrub_outputs(self, cell, resources) -> None:
        checks = resources.get("rnn_course", {}).get("checks", {})
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if utils.is_grade(cell) and checks.get(grade_id, {}).get("kind") in ("hidden", "visible"):
            return  # the grader's own verdict: one line, no code, no inputs
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            ename = str(out.get("ename", "Error"))[:80]
            evalue = str(out.get("evalue", ""))[: self.max_message_chars]
            out["ename"], out["evalue"] = ename, evalue
            out["traceback"] = [f"{ename}: {evalue}" if evalue else ename]
            kept.append(out)
        cell.outputs = kept
