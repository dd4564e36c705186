"""``grades.csv``: nbgrader's CSV export plus a ``flags`` column.

:class:`FlagsCsvExportPlugin` is an nbgrader export plugin, so it also works
from nbgrader's own command line, run in the course directory::

    nbgrader export --exporter=autograder.pipeline.export.FlagsCsvExportPlugin

It lets nbgrader's ``CsvExportPlugin`` write the file, then appends to each
row the submission's flags (``;``-separated: nbgrader's CSV is not quoted),
read from the sidecar files that grading leaves in
``autograded/<student>/<assignment>/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.plugins import CsvExportPlugin
from traitlets import Unicode

from autograder.pipeline.gradebook import read_sidecar


class FlagsCsvExportPlugin(CsvExportPlugin):
    """nbgrader's CSV export with one more column, ``flags``."""

    autograded_dir = Unicode(
        "autograded",
        help="Folder holding autograded/<student>/<assignment>/rnn_course_flags.json "
             "(relative paths are relative to the current directory).",
    ).tag(config=True)
    separator = Unicode(";", help="Separator between flags within the flags column.").tag(
        config=True)

    def flags_of(self, student: str, assignment: str) -> str:
        """The flags column of one row: the sidecar's flags, or empty."""
        data = read_sidecar(Path(self.autograded_dir) / student / assignment) or {}
        flags = data.get("flags") or []
        return self.separator.join(str(f).replace(",", " ") for f in flags)

    def _row_keys(self, gradebook: Gradebook) -> list[tuple[str, str]]:
        """(assignment, student) of each row, in CsvExportPlugin's order and with its filters."""
        students = [str(s) for s in self.student]
        assignments = [str(a) for a in self.assignment]
        keys = []
        for assignment in gradebook.assignments:
            if assignments and assignment.name not in assignments:
                continue
            for student in gradebook.students:
                if students and student.id not in students:
                    continue
                keys.append((assignment.name, student.id))
        return keys

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        tmp = f"{dest}.tmp"
        keys = self._row_keys(gradebook)
        to = self.to
        self.to = tmp
        try:
            super().export(gradebook)
        finally:
            self.to = to
        with open(tmp, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        if len(lines) != len(keys) + 1:  # never expected; keep nbgrader's file rather than lie
            self.log.warning("grades.csv rows do not match the gradebook; no flags column")
            os.replace(tmp, dest)
            return
        out = [lines[0] + ",flags"]
        for line, (assignment, student) in zip(lines[1:], keys, strict=True):
            out.append(f"{line},{self.flags_of(student, assignment)}")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(out) + "\n")
        os.replace(tmp, dest)


def export_grades(db_url: str, course_id: str, dest: Path, autograded_dir: Path,
                  config=None) -> Path:
    """Write ``dest`` (every assignment and student of the gradebook) with a flags column."""
    plugin = FlagsCsvExportPlugin(config=config, to=str(dest), autograded_dir=str(autograded_dir))
    with Gradebook(db_url, course_id) as gb:
        plugin.export(gb)
    return Path(dest)
