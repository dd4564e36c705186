"""``grades.csv``: nbgrader's CSV export plus a ``submitted`` and a ``flags`` column.

:class:`FlagsCsvExportPlugin` is an nbgrader export plugin, so it also works
from nbgrader's own command line, run in the course directory::

    nbgrader export --exporter=autograder.pipeline.export.FlagsCsvExportPlugin

It lets nbgrader's ``CsvExportPlugin`` write the file (its columns, as they
are), then appends to each row

* ``submitted``: ``yes`` when the gradebook holds a submission of that
  assignment by that student, ``no`` when it does not; nbgrader writes a score
  of 0 for both, so this column tells a student who never submitted from a
  real 0;
* ``flags``: the flags recorded for that row's student and assignment
  (``;``-separated: nbgrader's CSV is not quoted), read from the gradebook's
  own database (:func:`autograder.pipeline.gradebook.recorded_flags`).

Each row is matched by its ``assignment`` and ``student_id`` columns, never by
its position.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbgrader.api import Assignment, Gradebook, SubmittedAssignment
from nbgrader.plugins import CsvExportPlugin
from traitlets import Unicode

from autograder.pipeline.gradebook import recorded_flags

FLAGS_COLUMN = "flags"
SUBMITTED_COLUMN = "submitted"
SUBMITTED, NOT_SUBMITTED = "yes", "no"
"""The values of :data:`SUBMITTED_COLUMN`."""
# the columns of nbgrader's CSV that name a row; they come before any free-text column
KEY_COLUMNS = ("assignment", "student_id")


class FlagsCsvExportPlugin(CsvExportPlugin):
    """nbgrader's CSV export with one more column, ``flags``."""

    separator = Unicode(";", help="Separator between flags within the flags column.").tag(
        config=True)

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        tmp = f"{dest}.tmp"
        to = self.to
        self.to = tmp
        try:
            super().export(gradebook)
        finally:
            self.to = to
        assignments = [str(a) for a in self.assignment] or None
        flags = recorded_flags(gradebook, assignments)
        submitted = submitted_pairs(gradebook)
        with open(tmp, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        header = lines[0].split(",")
        try:
            where = [header.index(column) for column in KEY_COLUMNS]
        except ValueError:  # never expected; keep nbgrader's file rather than guess
            self.log.warning("grades.csv has no %s columns; no flags column",
                             " and ".join(KEY_COLUMNS))
            os.replace(tmp, dest)
            return
        out = [f"{lines[0]},{SUBMITTED_COLUMN},{FLAGS_COLUMN}"]
        for line in lines[1:]:
            fields = line.split(",")
            key = tuple(fields[i] for i in where)
            handed_in = SUBMITTED if key in submitted else NOT_SUBMITTED
            out.append(f"{line},{handed_in},{self.separator.join(flags.get(key, []))}")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(out) + "\n")
        os.replace(tmp, dest)


def submitted_pairs(gradebook: Gradebook) -> set[tuple[str, str]]:
    """``(assignment, student_id)`` of every submission the gradebook holds (one query)."""
    rows = (gradebook.db.query(Assignment.name, SubmittedAssignment.student_id)
            .join(SubmittedAssignment, SubmittedAssignment.assignment_id == Assignment.id))
    return {(str(name), str(student)) for name, student in rows}


def export_grades(db_url: str, course_id: str, dest: Path, config=None) -> Path:
    """Write ``dest`` (every assignment and student of the gradebook), with our two columns."""
    plugin = FlagsCsvExportPlugin(config=config, to=str(dest))
    with Gradebook(db_url, course_id) as gb:
        plugin.export(gb)
    return Path(dest)
