"""``grades.csv`` (``autograder.pipeline.coordinator.export``): nbgrader's columns, then
``submitted`` and ``flags``, both from the database."""

from __future__ import annotations

import csv
from pathlib import Path

from nbgrader.api import Base, Gradebook
from nbgrader.plugins import CsvExportPlugin
from sqlalchemy import create_engine, insert
from traitlets.config import Config

from autograder.pipeline import flags as F
from autograder.pipeline.coordinator.export import (
    CANVAS_COLUMNS,
    CANVAS_POINTS_ROW,
    FLAGS_COLUMN,
    NOT_SUBMITTED,
    SUBMITTED,
    SUBMITTED_COLUMN,
    CanvasCsvExportPlugin,
    FlagsCsvExportPlugin,
    canvas_csv,
    export_grades,
)
from autograder.pipeline.coordinator.gradebook import FLAG, CourseGradebook, ensure_tables
from autograder.pipeline.coordinator.record import save_grades
from autograder.pipeline.scoring import NotebookRun, score_submission
from autograder.pipeline.types import GradeResult
from autograder.pipeline.worker.precheck import Submission

COURSE = "export-test"
# (assignment, student) -> flags; s3 has no submission of a1
FLAGGED = {
    ("a1", "s1"): [F.LATE],
    ("a1", "s2"): [],
    ("a2", "s1"): [],
    ("a2", "s2"): [F.INVALID_NOTEBOOK, F.RENAMED_NOTEBOOK],
    ("a2", "s3"): [F.TIMEOUT],
}


def gradebook(url: str) -> str:
    """Two assignments of one notebook each, in the empty database at ``url``; students
    added in an order of their own."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)  # nbgrader's tables (no alembic run needed)
    engine.dispose()
    with Gradebook(url, COURSE) as gb:
        for name in ("a1", "a2"):
            gb.add_assignment(name)
            gb.add_notebook(name, name)
            gb.add_grade_cell("check", name, name, max_score=2, cell_type="code")
        # nbgrader orders its rows by last name: the reverse of the ids here
        for sid, last in (("s3", "Adams"), ("s1", "Young"), ("s2", "Moore")):
            gb.add_student(sid, last_name=last)
    return url


def record_all(url: str) -> None:
    book = CourseGradebook(url, COURSE)
    for (assignment, student), names in FLAGGED.items():
        structure = book.structure(assignment)
        result = GradeResult(student=student, assignment=assignment)
        for name in names:
            result.flag(name, f"{name} of {student}")
        result.scores = score_submission(
            structure, {assignment: NotebookRun(verdicts={"check": {
                "kind": "visible", "passed": student != "s2", "message": ""}})},
            student=student)
        save_grades(book, result, Submission(student, assignment, path=None, digest="d"))
    book.close()


def rows(path: Path) -> dict:
    with open(path, newline="") as fh:
        return {(r["assignment"], r["student_id"]): r for r in csv.DictReader(fh)}


def test_the_flags_column_is_read_by_student_and_assignment(tmp_path, database):
    url = gradebook(database)
    record_all(url)
    with Gradebook(url, COURSE) as gb:  # a stale row (its submission is gone) is never shown
        ensure_tables(gb.engine)
        gb.db.execute(insert(FLAG).values(submission_id="gone", position=0,
                                          name=F.GRADER_ERROR, reason=""))
        gb.db.commit()
    got = rows(export_grades(url, COURSE, tmp_path / "grades.csv"))
    assert list(next(iter(got.values())))[-1] == "flags"
    assert len(got) == 6  # every student for every assignment, as nbgrader exports
    for key, row in got.items():
        assert row["flags"] == ";".join(FLAGGED.get(key, [])), key
    assert float(got[("a2", "s3")]["score"]) == 2.0 and float(got[("a2", "s2")]["score"]) == 0.0
    assert got[("a1", "s3")]["flags"] == ""  # no submission, no flags


def test_nbgraders_filters_still_apply(tmp_path, database):
    url = gradebook(database)
    record_all(url)
    dest = tmp_path / "a2.csv"
    plugin = FlagsCsvExportPlugin(to=str(dest), assignment=["a2"], student=["s2", "s3"])
    with Gradebook(url, COURSE) as gb:
        plugin.export(gb)
    got = rows(dest)
    assert {k: r["flags"] for k, r in got.items()} == {
        ("a2", "s2"): f"{F.INVALID_NOTEBOOK};{F.RENAMED_NOTEBOOK}", ("a2", "s3"): F.TIMEOUT}


def test_a_gradebook_never_graded_by_us_exports_empty_flags(tmp_path, database):
    url = gradebook(database)
    got = rows(export_grades(url, COURSE, tmp_path / "grades.csv"))
    assert len(got) == 6 and {r["flags"] for r in got.values()} == {""}
    assert {r[SUBMITTED_COLUMN] for r in got.values()} == {NOT_SUBMITTED}


def test_not_submitted_is_told_from_a_zero(tmp_path, database):
    url = gradebook(database)
    record_all(url)
    got = rows(export_grades(url, COURSE, tmp_path / "grades.csv"))
    for key, row in got.items():
        assert row[SUBMITTED_COLUMN] == (SUBMITTED if key in FLAGGED else NOT_SUBMITTED), key
    # s2 submitted a1 and scored 0; s3 never submitted a1: nbgrader writes 0.0 for both
    real_zero, absent = got[("a1", "s2")], got[("a1", "s3")]
    assert float(real_zero["score"]) == float(absent["score"]) == 0.0
    assert (real_zero[SUBMITTED_COLUMN], absent[SUBMITTED_COLUMN]) == (SUBMITTED, NOT_SUBMITTED)


def test_nbgraders_columns_come_first_as_nbgrader_writes_them(tmp_path, database):
    url = gradebook(database)
    record_all(url)
    plain = tmp_path / "nbgrader.csv"
    with Gradebook(url, COURSE) as gb:
        CsvExportPlugin(to=str(plain)).export(gb)
    ours = export_grades(url, COURSE, tmp_path / "grades.csv")
    theirs = plain.read_text().splitlines()
    lines = ours.read_text().splitlines()
    assert lines[0] == f"{theirs[0]},{SUBMITTED_COLUMN},{FLAGS_COLUMN}"
    assert sorted(line.rsplit(",", 2)[0] for line in lines[1:]) == sorted(theirs[1:])


def canvas_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_the_canvas_file_is_what_canvass_gradebook_import_reads(tmp_path, database):
    url = gradebook(database)
    record_all(url)
    with Gradebook(url, COURSE) as gb:
        gb.update_or_create_student("s1", first_name="Ann", last_name="Young, Jr",
                                    lms_user_id="SIS-001")
    config = Config()
    config.CanvasCsvExportPlugin.canvas_assignment_ids = {"a2": 4711}
    grades = export_grades(url, COURSE, tmp_path / "grades.csv", config)
    header, points, *students = canvas_rows(canvas_csv(grades))
    assert canvas_csv(grades) == tmp_path / "grades-canvas.csv"
    assert header == [*CANVAS_COLUMNS, "a1", "a2 (4711)"]
    assert points == [CANVAS_POINTS_ROW, "", "", "", "", "2", "2"]
    assert students == [
        ["Young, Jr, Ann", "", "SIS-001", "s1", "", "2", "2"],
        ["Moore", "", "", "s2", "", "0", "0"],
        ["Adams", "", "", "s3", "", "", "2"],  # no submission of a1: left alone in Canvas
    ]


def test_the_canvas_export_runs_from_nbgraders_command_line_filters_included(tmp_path, database):
    url = gradebook(database)
    record_all(url)
    dest = tmp_path / "a2.csv"
    plugin = CanvasCsvExportPlugin(to=str(dest), assignment=["a2"], student=["s2", "s3"])
    with Gradebook(url, COURSE) as gb:
        plugin.export(gb)
    assert canvas_rows(dest) == [[*CANVAS_COLUMNS, "a2"], [CANVAS_POINTS_ROW, "", "", "", "", "2"],
                                 ["Moore", "", "", "s2", "", "0"], ["Adams", "", "", "s3", "", "2"]]


HOSTILE_NAMES = ("=1+2", "+X()", "@SUM(1;2)", "-2+3", "\tTAB", "\rCR")


def test_cells_that_start_like_formulas_are_neutralised_in_both_exports(tmp_path):
    """Names that reached the gradebook some other way (nbgrader db student add): every cell
    starting with = + - @ tab or CR gets a leading ' in grades.csv and the Canvas CSV;
    numbers stay numbers."""
    url = gradebook(f"sqlite:///{tmp_path / 'gb.db'}")
    with Gradebook(url, COURSE) as gb:
        for k, name in enumerate(HOSTILE_NAMES):
            gb.add_student(f"h{k}", last_name=name, first_name=name, email=name)
    dest = export_grades(url, COURSE, tmp_path / "grades.csv")
    for path in (dest, canvas_csv(dest)):
        with open(path, newline="", encoding="utf-8") as fh:
            cells = [cell for row in csv.reader(fh) for cell in row]
        risky = [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
        assert risky == [], f"{path.name}: {risky}"
        for name in HOSTILE_NAMES:  # each planted name is there, neutralised
            assert any(c.startswith("'" + name) for c in cells), (path.name, name)


def test_names_with_commas_and_newlines_keep_every_row_in_its_columns(tmp_path):
    """A roster's "Smith, Jo" or a name with a line break is one quoted cell: each row has
    its columns, its scores where they belong, in grades.csv and the Canvas CSV."""
    url = gradebook(f"sqlite:///{tmp_path / 'gb.db'}")
    with Gradebook(url, COURSE) as gb:
        gb.add_student("c1", last_name="Smith, Jo", first_name="A,B", email="x@y, z")
        gb.add_student("c2", last_name="two\nlines", first_name="cr\rhere", email="e")
    record_all(url)
    dest = export_grades(url, COURSE, tmp_path / "grades.csv")
    got = rows(dest)
    with open(dest, newline="") as fh:
        header = next(csv.reader(fh))
    for key, row in got.items():
        assert None not in row and len(row) == len(header), (key, row)
        assert float(row["max_score"]) == 2.0, (key, row)
    assert got[("a1", "c1")]["last_name"] == "Smith, Jo"
    assert got[("a1", "c2")]["last_name"] == "two\nlines"
    assert got[("a1", "c1")]["submitted"] == "no" and got[("a1", "c1")]["score"] == "0.0"
    with open(canvas_csv(dest), newline="", encoding="utf-8") as fh:
        canvas = list(csv.reader(fh))
    assert len({len(r) for r in canvas}) == 1, canvas  # every row as wide as the header


def test_safe_cell_leaves_numbers_and_plain_text_alone():
    from autograder.pipeline.coordinator.export import safe_cell

    assert [safe_cell(v) for v in ("-0.5", "+1e5", "3", "ann", " =x", "-inf", "=A1")] == \
        ["-0.5", "+1e5", "3", "ann", " =x", "'-inf", "'=A1"]


def test_every_total_is_the_one_total_rounded_the_same_way(tmp_path, database):
    """Points that sum to float noise (1.1 + 2.2 = 3.3000000000000003 in the database) read
    3.3 in the report's total, grades.csv (raw_score and score) and the Canvas file."""
    engine = create_engine(database)
    Base.metadata.create_all(engine)
    engine.dispose()
    with Gradebook(database, COURSE) as gb:
        gb.add_assignment("a1")
        gb.add_notebook("a1", "a1")
        for cell, points in (("c1", 1.1), ("c2", 2.2)):
            gb.add_grade_cell(cell, "a1", "a1", max_score=points, cell_type="code")
        gb.add_student("s1")
    book = CourseGradebook(database, COURSE)
    result = GradeResult(student="s1", assignment="a1")
    passed = {"kind": "visible", "passed": True, "message": ""}
    result.scores = score_submission(book.structure("a1"), {"a1": NotebookRun(
        verdicts={"c1": passed, "c2": passed})}, student="s1")
    saved = save_grades(book, result, Submission("s1", "a1", path=None, digest="d"))
    book.close()
    with Gradebook(database, COURSE) as gb:
        assert gb.find_submission("a1", "s1").score == 1.1 + 2.2 != 3.3  # the noise is there
    assert result.scores.score == saved.score == 3.3
    grades = tmp_path / "grades.csv"
    row = rows(export_grades(database, COURSE, grades))[("a1", "s1")]
    assert (row["raw_score"], row["score"], row["max_score"]) == ("3.3", "3.3", "3.3")
    _header, points_row, student = canvas_rows(canvas_csv(grades))
    assert (points_row[-1], student[-1]) == ("3.3", "3.3")
