"""Recording (``autograder.pipeline.coordinator.record``): the gradebook first, then the files.

Results are made here (no kernel runs) except where the whole coordinator
runs: there the worker is replaced by :func:`stub_grade`, which passes every
check, so a run takes about a second.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import nbfixtures as fx
import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from autograder import cli
from autograder.course import Course
from autograder.pipeline import flags as F
from autograder.pipeline.coordinator import gradebook as G
from autograder.pipeline.coordinator import record as R
from autograder.pipeline.coordinator.assignment import grade_assignment
from autograder.pipeline.coordinator.jobs import JobMaker
from autograder.pipeline.scoring import NotebookRun, score_submission
from autograder.pipeline.types import STAGES, GradeResult
from autograder.pipeline.worker.precheck import Precheck

A = fx.ASSIGNMENT
PASS = {"kind": "visible", "passed": True, "message": ""}
FAIL = {"kind": "hidden", "passed": False, "message": "differs from the expected values"}


def make_result(job, verdict=PASS, *, flags=(), feedback="<html>feedback</html>"):
    """A worker's result for ``job`` with one verdict for every graded cell (prechecked
    as the worker does)."""
    sub = Precheck().finished(job.submission, job.structure.cell_ids)
    result = GradeResult(student=job.student, assignment=job.assignment,
                         flags=list(sub.flags), worker="test", files=sorted(sub.files))
    for name, reason in flags:
        result.flag(name, reason)
    runs = {name: NotebookRun(verdicts={gid: verdict for gid in cells})
            for name, cells in job.structure.notebooks.items() if sub.notebooks.get(name)}
    result.scores = score_submission(job.structure, runs, student=job.student, config=job.config)
    result.notebooks = {name: js for name, js in sub.notebooks.items() if js is not None}
    result.comments = {name: {"add_impl": None} for name in result.notebooks}
    result.feedback = {name: feedback for name in result.notebooks}
    return result


def stub_grade(job):
    """Stands in for ``worker.grade_submission`` in coordinator runs: every check passes."""
    return make_result(job)


def context(course: Path) -> dict:
    """What the coordinator hands :func:`record.record`."""
    c = Course(course)
    coursedir = CourseDirectory(config=c.config)
    coursedir.root = str(c.root)
    book = G.CourseGradebook(c.db_url, c.course_id, c.config)
    maker = JobMaker(c, coursedir, book, A, True, book.structure(A))
    return dict(book=book, coursedir=coursedir, assignment=A,
                stage=dict.fromkeys(STAGES, 0.0), maker=maker)


def state(course: Path, student: str) -> G.RecordedState:
    return context(course)["book"].recorded(A)[student]


def db_rows(course: Path, sql: str) -> list:
    with sqlite3.connect(course / "gradebook.db") as db:
        return db.execute(sql).fetchall()


# --------------------------------------------------------------------------- #
def test_the_gradebook_holds_exactly_what_the_worker_computed(course):
    fx.submit(course, "ann", fx.student_notebook(course), files={"data.txt": b"x"})
    job, sub = fx.job_for(course, "ann")
    result = make_result(job, FAIL, flags=[(F.RENAMED_NOTEBOOK, "graded x as y")])
    ctx = context(course)
    got = R.record(result, sub, **ctx)
    assert (got.score, got.max_score, got.flags, got.status) == (
        0.0, 4.0, [F.RENAMED_NOTEBOOK], "graded")
    cells = fx.gradebook_scores(course)["ann"]["cells"]
    assert cells == {gid: c["score"] for gid, c in result.scores.cells[A].items()}
    st = state(course, "ann")
    assert st.complete and st.digest == sub.digest and st.flags == result.flags
    with Gradebook(Course(course).db_url) as gb:
        snb = gb.find_submission_notebook(A, A, "ann")
        assert snb.flagged  # the formgrader shows it
    # the files, as nbgrader's autograde and generate_feedback leave them
    auto = course / "autograded" / "ann" / A
    assert (auto / f"{A}.ipynb").read_text() == result.notebooks[A]
    assert (auto / "data.txt").read_bytes() == b"x"
    assert (auto / "timestamp.txt").read_text() == sub.timestamp
    fb = course / "feedback" / "ann" / A
    assert (fb / f"{A}.html").read_text() == "<html>feedback</html>"
    assert sorted(p.name for p in fb.iterdir()) == sorted([f"{A}.html", "data.txt",
                                                           "timestamp.txt"])
    assert ctx["stage"]["gradebook"] > 0


def test_a_failure_while_writing_files_keeps_the_grade_and_a_rerun_writes_them(
        course, capsys):
    fx.submit(course, "bob", fx.student_notebook(course))
    job, sub = fx.job_for(course, "bob")
    blocker = course / "autograded" / "bob"
    blocker.parent.mkdir()
    blocker.write_text("not a folder")  # autograded/bob/rnn_cell cannot be made
    got = R.record(make_result(job), sub, **context(course))
    assert (got.score, got.status, got.flags) == (4.0, "graded", [F.FILES_NOT_WRITTEN])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "grade recorded, files not written" in err, err
    assert fx.gradebook_scores(course)["bob"]["score"] == 4.0  # the grade is kept
    st = state(course, "bob")
    assert not st.complete and F.FILES_NOT_WRITTEN in F.flag_names(st.flags)
    assert not R.is_recorded(st, sub.digest)  # so the next run grades it again
    assert fx.flags_of(course, "bob") == [F.FILES_NOT_WRITTEN]

    blocker.unlink()
    again = R.record(make_result(job), sub, **context(course))
    assert (again.score, again.flags) == (4.0, [])
    assert R.is_recorded(state(course, "bob"), sub.digest)
    assert (course / "autograded" / "bob" / A / f"{A}.ipynb").is_file()
    assert fx.flags_of(course, "bob") == []
    with Gradebook(Course(course).db_url) as gb:
        assert not gb.find_submission_notebook(A, A, "bob").flagged


def test_results_recorded_together_share_one_transaction_and_one_refused_fails_alone(
        course, capsys):
    students = ["amy", "ben", "cat"]
    items = []
    for student in students:
        fx.submit(course, student, fx.student_notebook(course))
        job, sub = fx.job_for(course, student)
        items.append((make_result(job), sub))
    ctx = context(course)
    got = R.record_batch(items, **ctx)
    assert [(g.student, g.score, g.status) for g in got] == [(s, 4.0, "graded")
                                                           for s in students]
    # complete once marked: with the next batch's transaction, or when the book is closed
    assert not any(state(course, s).complete for s in students)
    assert ctx["book"].writing  # one connection for the run, closed by its owner
    ctx["book"].close()
    assert all(state(course, s).complete for s in students)

    # a result the gradebook refuses (its assignment is unknown) fails alone
    for result, _sub in items:
        result.feedback = {A: "<p>again</p>"}
    items[1][0].assignment = "no_such_assignment"
    ctx = context(course)
    got = R.record_batch(items, **ctx)
    ctx["book"].close()
    assert [(g.student, g.status) for g in got] == [
        ("amy", "graded"), ("ben", "error"), ("cat", "graded")]
    assert got[1].flags == [F.GRADER_ERROR]
    assert "could not record ben" in capsys.readouterr().err
    for student in ("amy", "cat"):
        assert (course / "feedback" / student / A / f"{A}.html").read_text() == "<p>again</p>"
    assert (course / "feedback" / "ben" / A / f"{A}.html").read_text() != "<p>again</p>"

    # the next batch's transaction marks the one before it complete
    items[1][0].assignment = A
    ctx = context(course)
    R.record_batch(items[:1], **ctx)
    assert not state(course, "amy").complete
    R.record_batch(items[1:2], **ctx)
    assert state(course, "amy").complete and not state(course, "ben").complete
    ctx["book"].close()
    assert state(course, "ben").complete


def test_text_that_is_not_utf8_is_recorded(course):
    nb = fx.student_notebook(course)
    nb.cells.insert(0, fx.markdown("caf\udce9"))
    fx.submit(course, "eve", raw=json.dumps(nb).encode(),
              files={"notes-\udce9.txt": b"\xe9t\xe9"})
    job, sub = fx.job_for(course, "eve")
    result = make_result(job, flags=[(F.SHADOWING_MODULE, "numpy-\udce9 would shadow")],
                         feedback="<p>caf\udce9</p>")
    assert "caf\udce9" in result.notebooks[A]
    got = R.record(result, sub, **context(course))
    assert (got.score, got.status, got.flags) == (4.0, "graded", [F.SHADOWING_MODULE])
    assert state(course, "eve").complete
    auto = course / "autograded" / "eve" / A
    assert b"notes-\xe9.txt" in os.listdir(os.fsencode(auto))
    # the notebook is valid UTF-8 JSON, and its string reads back unchanged
    back = nbformat.reads((auto / f"{A}.ipynb").read_bytes().decode("utf-8"), as_version=4)
    assert back.cells[0].source == "caf\udce9"
    assert "caf\\udce9" in (course / "feedback" / "eve" / A / f"{A}.html").read_text()
    assert db_rows(course, "SELECT reason FROM rnn_course_flag") == [
        ("numpy-\\udce9 would shadow",)]


def test_a_regrade_updates_the_same_rows_and_keeps_an_instructors_work(course):
    fx.submit(course, "cid", fx.student_notebook(course))
    job, sub = fx.job_for(course, "cid")
    R.record(make_result(job, flags=[(F.LATE, "1d")]), sub, **context(course))
    db_url = Course(course).db_url
    with Gradebook(db_url) as gb:
        gb.grant_extension(A, "cid", days=2)
        grade = gb.find_grade(fx.PLAIN_ID, A, A, "cid")
        grade.manual_score = 0.5
        gb.db.commit()
    R.record(make_result(job, FAIL), sub, **context(course))
    with Gradebook(db_url) as gb:
        submission = gb.find_submission(A, "cid")
        assert submission.extension.days == 2
        grade = gb.find_grade(fx.PLAIN_ID, A, A, "cid")
        assert (grade.auto_score, grade.manual_score, grade.needs_manual_grade) == (
            0.0, 0.5, True)
    assert db_rows(course, "SELECT count(*) FROM submitted_assignment") == [(1,)]
    assert db_rows(course, "SELECT count(*) FROM grade") == [(3,)]
    assert db_rows(course, "SELECT count(*) FROM rnn_course_grading") == [(1,)]
    assert db_rows(course, "SELECT name FROM rnn_course_flag") == []  # the late flag is gone


def test_a_grader_error_is_recorded_for_review(course):
    fx.submit(course, "dan", fx.student_notebook(course))
    job, sub = fx.job_for(course, "dan")
    crashed = GradeResult(student="dan", assignment=A, status="error", worker="test")
    crashed.flag(F.GRADER_ERROR, "RuntimeError: boom")
    got = R.record(crashed, sub, **context(course))
    assert (got.status, got.flags) == ("error", [F.GRADER_ERROR])
    st = state(course, "dan")
    assert st.status == "error" and not R.is_recorded(st, sub.digest)
    with Gradebook(Course(course).db_url) as gb:
        grades = gb.find_submission_notebook(A, A, "dan").grades
        assert all(g.needs_manual_grade and g.auto_score is None for g in grades)


def test_our_tables_are_plain_sql_for_sqlite_and_postgresql():
    for table in (G.GRADING, G.FLAG):
        ddl = str(CreateTable(table).compile(dialect=postgresql.dialect()))
        assert f"CREATE TABLE {table.name}" in ddl and "REFERENCES" not in ddl


# --------------------------------------------------------------------------- #
# through the coordinator: skip, resubmission, --force, files written later
# --------------------------------------------------------------------------- #
@pytest.fixture
def stub_worker(monkeypatch):
    from autograder.pipeline.worker import submission as worker

    monkeypatch.setattr(worker, "grade_submission", stub_grade)


def run(course, **kw):
    return {r.student: (r.status, r.score, r.flags) for r in grade_assignment(
        course, A, workers=1, unsafe_no_sandbox=True, progress=False, **kw).results}


@pytest.mark.slow  # whole gradings, each with its kernels
def test_rerun_skips_what_is_recorded_and_force_regrades_without_duplicates(
        course, stub_worker):
    fx.submit(course, "ann", fx.student_notebook(course))
    fx.submit(course, "bob", fx.student_notebook(course), files={"numpy.py": b""})
    shadow = [F.SHADOWING_MODULE]
    assert run(course) == {"ann": ("graded", 4.0, []), "bob": ("graded", 4.0, shadow)}
    assert run(course) == {"ann": ("skipped", 4.0, []), "bob": ("skipped", 4.0, shadow)}
    fx.submit(course, "bob", fx.student_notebook(course))  # resubmitted, without numpy.py
    assert run(course) == {"ann": ("skipped", 4.0, []), "bob": ("graded", 4.0, [])}
    assert run(course, force=True) == {"ann": ("graded", 4.0, []), "bob": ("graded", 4.0, [])}
    for table in ("submitted_assignment", "rnn_course_grading"):
        assert db_rows(course, f"SELECT count(*) FROM {table}") == [(2,)], table


def test_files_not_written_exit_1_in_one_line_and_the_next_run_writes_them(
        course, stub_worker, capsys):
    fx.submit(course, "ann", fx.student_notebook(course))
    fx.submit(course, "bob", fx.student_notebook(course))
    blocker = course / "feedback" / "bob"
    blocker.parent.mkdir()
    blocker.write_text("not a folder")
    argv = ["grade", A, "--course-dir", str(course), "--workers", "1", "--unsafe-no-sandbox"]
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert "bob" in out and F.FILES_NOT_WRITTEN in out
    problems = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(problems) == 2 and "run again to write them" in problems[-1], err
    assert "Traceback" not in err
    assert fx.gradebook_scores(course)["bob"]["score"] == 4.0

    blocker.unlink()
    assert cli.main(argv) == 0
    out, _ = capsys.readouterr()
    assert [line.split()[:3] for line in out.splitlines()[2:4]] == [
        ["ann", "4/4", "skipped"], ["bob", "4/4", "graded"]]
    assert (course / "feedback" / "bob" / A / f"{A}.html").is_file()
    assert fx.flags_of(course, "bob") == []


@pytest.mark.slow  # whole gradings, each with its kernels
def test_a_submission_that_is_not_utf8_is_graded_and_recorded_end_to_end(course):
    """Once a grader_error on every run: a lone surrogate in the JSON and a file name."""
    nb = fx.student_notebook(course)
    nb.cells.insert(0, fx.markdown("caf\udce9"))
    fx.submit(course, "eve", raw=json.dumps(nb).encode(), files={"r\udce9sum\udce9.txt": b"x"})
    fx.submit(course, "ann", fx.student_notebook(course))
    assert run(course) == {"ann": ("graded", 4.0, []), "eve": ("graded", 4.0, [])}
    assert R.is_recorded(state(course, "eve"), fx.job_for(course, "eve")[1].digest)
    auto = course / "autograded" / "eve" / A
    assert b"r\xe9sum\xe9.txt" in os.listdir(os.fsencode(auto))
    assert (course / "feedback" / "eve" / A / f"{A}.html").is_file()
    assert run(course) == {"ann": ("skipped", 4.0, []), "eve": ("skipped", 4.0, [])}
