"""``TrackedLimitOutput``: nbgrader's ``LimitOutput`` that says whether it cut anything."""

from __future__ import annotations

from nbgrader.preprocessors import LimitOutput


def _size(cell) -> tuple[int, int]:
    lines = tb = 0
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            lines += len(str(out.get("text", "")))
        elif out.get("output_type") == "error":
            tb += len(out.get("traceback", []))
    return lines, tb


class TrackedLimitOutput(LimitOutput):
    """``LimitOutput`` that sets ``resources["rnn_course"]["output_truncated"]`` when it cuts.

    The worker turns that into the ``output_truncated`` flag.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        before = _size(cell) if cell.cell_type == "code" else None
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if before is not None and _size(cell) != before:
            resources.setdefault("rnn_course", {})["output_truncated"] = True
        return cell, resources
