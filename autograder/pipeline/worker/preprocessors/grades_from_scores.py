"""``GradesFromScores``: nbgrader's ``GetGrades`` reading the worker's scores, not a gradebook."""

from __future__ import annotations

from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution, is_task


class GradesFromScores(NbGraderPreprocessor):
    """Put each cell's score, points and comment where nbgrader's feedback template reads them.

    ``GetGrades`` reads them from the gradebook; in the worker they come from
    :mod:`autograder.pipeline.scoring` through the resources:
    ``resources["rnn_course"]["scores"]`` (grade id -> ``{"score", "max_score", ...}``)
    and ``resources["rnn_course"]["comments"]`` (answer cell id -> comment).
    The notebook's totals (``resources["nbgrader"]["score"]``, ``max_score``,
    ``late_penalty``) are the caller's, as ``GetGrades`` leaves them.
    """

    # configurable as in GetGrades (the HTML exporter configures it for every preprocessor)
    display_data_priority = GetGrades.display_data_priority

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.get("metadata", {}).get("nbgrader")
        if not meta:
            return cell, resources
        grade_id = meta.get("grade_id")
        info = resources.get("rnn_course", {})
        if is_solution(cell) or is_task(cell):
            meta["comment"] = info.get("comments", {}).get(grade_id)
        if is_grade(cell) or is_task(cell):
            scored = info.get("scores", {}).get(grade_id)
            if scored is not None:
                meta["score"] = scored["score"]
                meta["points"] = scored["max_score"]
        return cell, resources
