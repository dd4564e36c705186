"""``grades.csv``: nbgrader's CSV export plus a ``submitted`` and a ``flags`` column;
``grades-canvas.csv`` for Canvas.

:class:`FlagsCsvExportPlugin` is an nbgrader export plugin, so it also works
from nbgrader's own command line, run in the course directory::

    nbgrader export --exporter=autograder.pipeline.coordinator.export.FlagsCsvExportPlugin

It lets nbgrader's ``CsvExportPlugin`` write the file (its columns, as they
are), then appends to each row

* ``submitted``: ``yes`` when the gradebook holds a submission of that
  assignment by that student, ``no`` when it does not; nbgrader writes a score
  of 0 for both, so this column tells a student who never submitted from a
  real 0;
* ``flags``: the flags recorded for that row's student and assignment
  (``;``-separated: nbgrader's CSV is not quoted), read from the gradebook's
  own database (:func:`autograder.pipeline.coordinator.gradebook.recorded_flags`).

Each row is matched by its ``assignment`` and ``student_id`` columns, never by
its position.

:class:`CanvasCsvExportPlugin` writes the same grades in the CSV that Canvas's
gradebook import reads (Grades > Import): the columns ``Student`` ("Last,
First"), ``ID`` (Canvas's own user id: left empty), ``SIS User ID`` (nbgrader's
``lms_user_id``, when the roster has it), ``SIS Login ID`` (the nbgrader /
hub user name), ``Section`` (empty), then one column per assignment, then a
``Points Possible`` row as Canvas's own export writes it.  Canvas matches each
row by one of ``ID``, ``SIS User ID`` or ``SIS Login ID``.  An assignment's
column is its name, which makes Canvas create the assignment, or
``name (12345)`` when ``c.CanvasCsvExportPlugin.canvas_assignment_ids =
{"rnn_cell": 12345}`` (nbgrader_config.py) names the Canvas assignment it goes
to.  A score is the total after the late penalty; a student with no submission
gets an empty cell (Canvas leaves that grade alone).  ``export_grades`` writes
it beside ``grades.csv``; alone::

    nbgrader export --exporter=autograder.pipeline.coordinator.export.CanvasCsvExportPlugin
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from nbgrader.api import Assignment, Gradebook, MissingEntry, SubmittedAssignment
from nbgrader.plugins import CsvExportPlugin, ExportPlugin
from traitlets import Dict, Unicode

from autograder.pipeline.coordinator.gradebook import recorded_flags
from autograder.pipeline.scoring import points, points_text, total

FLAGS_COLUMN = "flags"
SUBMITTED_COLUMN = "submitted"
SUBMITTED, NOT_SUBMITTED = "yes", "no"
"""The values of :data:`SUBMITTED_COLUMN`."""
# nbgrader's CSV columns, in its order; the numbers in scoring.points, the score its one total
NBGRADER_COLUMNS = ("assignment", "duedate", "timestamp", "student_id", "last_name",
                    "first_name", "email", "raw_score", "late_submission_penalty", "score",
                    "max_score")
# the columns Canvas's gradebook import reads before the assignments, in its order
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # the first cell of Canvas's points row
CANVAS_FILE = "grades-canvas.csv"


class FlagsCsvExportPlugin(CsvExportPlugin):
    """nbgrader's CSV export (its columns, its rows: every student of every assignment, 0
    for no submission) with two more columns, ``submitted`` and ``flags``.

    The rows are built from the gradebook here, not re-read from nbgrader's file: its
    writer joins values with "," unquoted, so a name with a comma or a newline (from
    whatever authenticator or roster a site uses) would shift or split a row.  Every cell
    goes through :func:`csv.writer` (quoted where needed) and :func:`safe_cell`.
    """

    separator = Unicode(";", help="Separator between flags within the flags column.").tag(
        config=True)

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        wanted_assignments = {str(a) for a in self.assignment}
        wanted_students = {str(s) for s in self.student}
        flags = recorded_flags(gradebook, sorted(wanted_assignments) or None)
        submitted = submitted_pairs(gradebook)
        rows = [[*NBGRADER_COLUMNS, SUBMITTED_COLUMN, FLAGS_COLUMN]]
        for assignment in gradebook.assignments:
            if wanted_assignments and assignment.name not in wanted_assignments:
                continue
            for student in gradebook.students:
                if wanted_students and student.id not in wanted_students:
                    continue
                key = (assignment.name, student.id)
                if key in submitted:
                    sub = gradebook.find_submission(*key)
                    timestamp, raw = sub.timestamp, sub.score
                    penalty = sub.late_submission_penalty
                else:
                    timestamp, raw, penalty = None, 0.0, 0.0
                rows.append([
                    assignment.name, assignment.duedate, timestamp, student.id,
                    student.last_name, student.first_name, student.email,
                    points(raw), points(penalty), total(raw, penalty), points(assignment.max_score),
                    SUBMITTED if key in submitted else NOT_SUBMITTED,
                    self.separator.join(flags.get(key, [])),
                ])
        tmp = f"{dest}.tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            for row in rows:
                buf = io.StringIO()  # csv's own "\r\n": a cell with a CR or LF is quoted
                csv.writer(buf).writerow(["" if c is None else safe_cell(c) for c in row])
                fh.write(buf.getvalue()[:-2] + "\n")  # grades.csv's lines end in "\n"
        os.replace(tmp, dest)


# What a spreadsheet (Excel, LibreOffice, Google Sheets) may read as the start of a
# formula when a CSV cell begins with it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def safe_cell(value) -> str:
    """``value`` as a CSV cell no spreadsheet runs: a leading ``'`` when it starts like a
    formula (``=1+2``, ``@SUM(1;2)``, a tab...), numbers (``-0.5``) left as they are."""
    text = str(value)
    if not text.startswith(FORMULA_STARTS) or NUMBER.fullmatch(text):
        return text
    return "'" + text


def submitted_pairs(gradebook: Gradebook) -> set[tuple[str, str]]:
    """``(assignment, student_id)`` of every submission the gradebook holds (one query)."""
    rows = (gradebook.db.query(Assignment.name, SubmittedAssignment.student_id)
            .join(SubmittedAssignment, SubmittedAssignment.assignment_id == Assignment.id))
    return {(str(name), str(student)) for name, student in rows}


class CanvasCsvExportPlugin(ExportPlugin):
    """The gradebook as Canvas's gradebook import reads it (see the module docstring)."""

    canvas_assignment_ids = Dict(
        {}, help="assignment -> the id of its Canvas assignment (the column becomes "
                 "'name (id)'); an assignment not named here gets a column of its own name.",
    ).tag(config=True)

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or CANVAS_FILE
        assignments = [a for a in gradebook.assignments
                       if not self.assignment or a.name in self.assignment]
        students = sorted((s for s in gradebook.students
                           if not self.student or s.id in self.student), key=lambda s: s.id)
        header = list(CANVAS_COLUMNS) + [self.column(a.name) for a in assignments]
        points = [CANVAS_POINTS_ROW, "", "", "", ""] + [points_text(a.max_score)
                                                         for a in assignments]
        rows = []
        for student in students:
            name = ", ".join(p for p in (student.last_name, student.first_name) if p)
            row = [name or student.id, "", student.lms_user_id or "", student.id, ""]
            for a in assignments:
                try:
                    sub = gradebook.find_submission(a.name, student.id)
                except MissingEntry:
                    row.append("")
                    continue
                row.append(points_text(total(sub.score, sub.late_submission_penalty)))
            rows.append(row)
        tmp = f"{dest}.tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            for row in (header, points, *rows):
                writer.writerow([safe_cell(cell) for cell in row])
        os.replace(tmp, dest)

    def column(self, assignment: str) -> str:
        canvas_id = self.canvas_assignment_ids.get(assignment)
        return f"{assignment} ({canvas_id})" if canvas_id not in (None, "") else assignment


def canvas_csv(csv_path: Path) -> Path:
    """Where ``export_grades`` writes the Canvas file: beside ``grades.csv``."""
    return Path(csv_path).with_name(CANVAS_FILE)


def export_grades(db_url: str, course_id: str, dest: Path, config=None) -> Path:
    """Write ``dest`` (every assignment and student of the gradebook) with our two columns,
    and Canvas's import file beside it (:func:`canvas_csv`)."""
    plugin = FlagsCsvExportPlugin(config=config, to=str(dest))
    canvas = CanvasCsvExportPlugin(config=config, to=str(canvas_csv(dest)))
    with Gradebook(db_url, course_id) as gb:
        plugin.export(gb)
        canvas.export(gb)
    return Path(dest)
