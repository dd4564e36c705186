"""The grading pipeline end to end: ``python -m autograder grade`` on small fixture classes.

Each test grades a copy of a released fixture course (see ``nbfixtures``):
tiny notebooks, 3 to 8 students, in the sandbox when this machine has one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbfixtures as fx  # noqa: E402

from autograder import cli  # noqa: E402
from autograder.commands.release import nbgrader_env  # noqa: E402
from autograder.pipeline.coordinator.assignment import grade_assignment  # noqa: E402
from autograder.protocol.secrets import submission_secret  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline")]

A = fx.ASSIGNMENT
SECRET = "pipeline-test-secret"
CORRECT = "def add(a, b):\n    return a + b"
WRONG = "def add(a, b):\n    return a - b"
# right on scalars and on the visible check's 3-vectors, wrong on the hidden 4-vectors;
# it prints its inputs, which must never reach the feedback
HIDDEN_WRONG = ("import numpy as np\n"
                "def add(a, b):\n"
                "    print('my inputs:', a, b)\n"
                "    if np.size(a) == 4:\n"
                "        return a - b\n"
                "    return a + b")
LOOP = "while True:\n    pass"


def _sandboxed() -> bool:
    try:
        from autograder.sandbox import sandbox_available
    except ImportError:
        return False
    return sandbox_available()[0]


UNSAFE = not _sandboxed()


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RNN_COURSE_SECRET", SECRET)


@pytest.fixture(scope="module")
def fixture_checks():
    fx.install_fixture_checks()  # before any pool forks: workers inherit the registration
    yield
    fx.uninstall_fixture_checks()


def _released(root: Path, source=None) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
            mp.delenv(var)
        course = fx.make_course(root, source, config_extra="c.Execute.timeout = 5\n")
    fx.set_duedate(course, "2026-01-15 00:00:00 UTC")
    return course


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """The fixture assignment, released once (session scope: xdist may interleave modules)."""
    return _released(tmp_path_factory.mktemp("template") / "course")


def copy_course(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def grade(course, **kw):
    kw.setdefault("unsafe_no_sandbox", UNSAFE)
    kw.setdefault("progress", False)
    return grade_assignment(course, A, **kw)


def by_student(report) -> dict:
    return {r.student: r for r in report.results}


# --------------------------------------------------------------------------- #
# classes of students
# --------------------------------------------------------------------------- #
def small_class(course: Path) -> None:
    fx.submit(course, "good", fx.student_notebook(course))
    fx.submit(course, "hidden_fail", fx.student_notebook(course, {"add_impl": HIDDEN_WRONG}))
    nb = fx.student_notebook(course)
    nb.cells.append(fx.grade_cell("assert add(1, 1) == 2", "add_plain", 1))
    fx.submit(course, "dup", nb)
    fx.submit(course, "late", fx.student_notebook(course),
              timestamp="2026-01-20 09:00:00.000000 UTC")


def hostile_class(course: Path) -> None:
    # nbgrader submit leaves a submission_secret.txt; release_feedback needs it back
    fx.submit(course, "good", fx.student_notebook(course),
              files={"submission_secret.txt": b"0123abcd"})
    fx.submit(course, "wrong", fx.student_notebook(course, {"add_impl": WRONG}))
    fx.submit(course, "broken", raw=b'{"cells": [')
    nb = fx.student_notebook(course)  # "duplicate cell" in Jupyter: an identical copy below
    index = next(i for i, c in enumerate(nb.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == fx.HIDDEN_ID)
    copy = nbformat.from_dict(json.loads(json.dumps(nb.cells[index])))
    copy["id"] = "copy-of-hidden"
    nb.cells.insert(index + 1, copy)
    fx.submit(course, "dup", nb)
    fx.submit(course, "loop", fx.student_notebook(course, {"add_impl": LOOP}))
    tampered = fx.student_notebook(course)
    for cell in tampered.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == fx.VISIBLE_ID:
            cell.source = "pass  # nothing to check here"
            cell.metadata.nbgrader["points"] = 50
    fx.submit(course, "tampered", tampered)
    fx.submit(course, "missing", None)
    deleted = fx.student_notebook(course)  # every graded test cell deleted
    deleted.cells = [c for c in deleted.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    fx.submit(course, "deleted", deleted)
    to_markdown = fx.student_notebook(course)  # every test cell turned into markdown
    for i, cell in enumerate(to_markdown.cells):
        if cell.metadata.get("nbgrader", {}).get("grade"):
            md = nbformat.v4.new_markdown_cell(cell.source)
            md.metadata = cell.metadata
            to_markdown.cells[i] = md
    fx.submit(course, "to_markdown", to_markdown)
    fx.submit(course, "renamed", fx.student_notebook(course), name="Copy of rnn_cell.ipynb")


def recorded(course: Path) -> dict:
    """student -> (score, per-cell scores, flags): everything that must be reproducible."""
    scores = fx.gradebook_scores(course)
    return {s: (v["score"], v["penalty"], v["cells"], fx.flags_of(course, s))
            for s, v in scores.items()}


# --------------------------------------------------------------------------- #
# tests
# --------------------------------------------------------------------------- #
def test_one_two_workers_and_a_dask_cluster_agree(template, tmp_path, fixture_checks):
    from distributed import LocalCluster

    courses = {}
    for name in ("one", "two", "dask"):
        courses[name] = copy_course(template, tmp_path / name)
        small_class(courses[name])

    one = grade(courses["one"], workers=1)
    two = grade(courses["two"], workers=2)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None, preload=[fx.__file__]) as cluster:
        on_dask = grade(courses["dask"], scheduler=cluster.scheduler_address)

    results = by_student(one)
    assert results["good"].score == results["good"].max_score == 4
    assert results["hidden_fail"].score == 2
    assert results["dup"].score == 4 and results["dup"].flags == ["duplicate_grade_id"]
    assert results["late"].score == 4 and results["late"].flags == ["late"]
    assert all(r.status == "graded" for r in one.results)

    expected = recorded(courses["one"])
    assert len(expected) == 4
    assert recorded(courses["two"]) == expected
    assert recorded(courses["dask"]) == expected
    assert [(r.student, r.score, r.flags) for r in two.results] == \
        [(r.student, r.score, r.flags) for r in one.results]
    assert [(r.student, r.score, r.flags) for r in on_dask.results] == \
        [(r.student, r.score, r.flags) for r in one.results]
    assert "dask" in on_dask.workers
    for stage in ("intake", "precheck", "sandbox_start", "execute", "verify", "gradebook",
                  "feedback"):
        assert two.stage_seconds[stage] > 0, stage

    # the feedback of a failed hidden check names it and hides its code and inputs
    html = (courses["two"] / "feedback" / "hidden_fail" / A / f"{A}.html").read_text()
    assert fx.HIDDEN_ID in html and "differs from the expected values" in html
    for leak in ("grading.inputs(", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", '_in["a"]',
                 "grading.submit(\"" + fx.HIDDEN_ID, "my inputs: ["):
        assert leak not in html, leak
    from autograder.course import Course
    from autograder.pipeline.coordinator.gradebook import CourseGradebook
    from autograder.protocol.secrets import seed_for

    course_two = Course(courses["two"])
    digest = CourseGradebook(course_two.db_url, course_two.course_id).recorded(A)[
        "hidden_fail"].digest  # the submission's bytes seed its inputs too (issue 11)
    seed = seed_for(submission_secret(SECRET.encode(), A, "hidden_fail", digest), A,
                    "hidden_fail", fx.HIDDEN_ID)
    inputs = fx._fixture_module().hidden.draw(np.random.default_rng(seed))
    body = re.sub(r"<style.*?</style>", "", html, flags=re.S)
    for value in np.concatenate([inputs["a"], inputs["b"]]):
        assert repr(float(abs(value)))[:7] not in body, value


@pytest.mark.skipif(UNSAFE, reason="kernels are started ahead only in the sandbox")
def test_kernels_started_ahead_are_all_gone_when_the_run_ends(template, tmp_path, fixture_checks,
                                                               monkeypatch):
    """Local workers start their next job's kernel ahead (autograder.pipeline.worker.warm); when
    the run is over, none is left running, and neither are their folders."""
    import tempfile

    private = Path(tempfile.mkdtemp(prefix="rnn-warm-test-"))
    private.chmod(0o755)  # the runtime folders are made here too: kernels must reach them
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # forked workers inherit it
    try:
        course = copy_course(template, tmp_path / "c")
        small_class(course)
        grade(course, workers=2, students=["dup", "good"])
        # the runner counts 4 jobs; 2 are skipped (recorded): the kernels both workers
        # start for a next job are never used, and must end with the workers
        report = grade(course, workers=2)
        assert [r.status for r in report.results] == ["skipped", "skipped", "graded", "graded"]
        assert by_student(report)["late"].score == 4
        left = sorted(p.name for p in private.iterdir()
                      if p.name.startswith(("rnn-warm-", "rnn-sbx-")))
        assert left == []
        needle = str(private).encode()
        for entry in os.listdir("/proc"):
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            assert needle not in cmdline, cmdline
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_a_hostile_batch_is_graded_completely(template, tmp_path, fixture_checks):
    course = copy_course(template, tmp_path / "course")
    hostile_class(course)
    report = grade(course, workers=2)
    got = by_student(report)
    assert sorted(got) == ["broken", "deleted", "dup", "good", "loop", "missing", "renamed",
                           "tampered", "to_markdown", "wrong"]
    assert all(r.status == "graded" for r in report.results), report.table()
    assert (got["good"].score, got["good"].max_score, got["good"].flags) == (4, 4, [])
    assert (got["wrong"].score, got["wrong"].flags) == (0, [])
    assert (got["broken"].score, got["broken"].flags) == (0, ["invalid_notebook"])
    assert (got["dup"].score, got["dup"].flags) == (4, ["duplicate_grade_id"])
    assert got["loop"].score == 0 and "timeout" in got["loop"].flags
    assert (got["tampered"].score, got["tampered"].flags) == (4, ["tampered_cells_restored"])
    assert got["tampered"].max_score == 4  # the 50 points it claimed are not the instructor's
    assert (got["missing"].score, got["missing"].flags) == (0, ["missing_notebook"])
    assert (got["renamed"].score, got["renamed"].flags) == (4, ["renamed_notebook"])
    assert (got["deleted"].score, got["deleted"].flags) == (4, ["tampered_cells_restored"])
    assert (got["to_markdown"].score, got["to_markdown"].flags) == (
        4, ["tampered_cells_restored"])

    # every student has a submission in nbgrader's gradebook, with every cell scored
    scores = fx.gradebook_scores(course)
    assert sorted(scores) == sorted(got)
    for student, entry in scores.items():
        assert entry["score"] == got[student].score
        assert all(v is not None for v in entry["cells"].values()), (student, entry)
    # autograded notebooks as nbgrader writes them, feedback for those that ran
    auto = course / "autograded"
    assert (auto / "good" / A / f"{A}.ipynb").is_file()
    assert (auto / "good" / A / "timestamp.txt").is_file()
    assert (auto / "renamed" / A / f"{A}.ipynb").is_file()
    assert not (auto / "broken" / A / f"{A}.ipynb").exists()
    assert (course / "feedback" / "loop" / A / f"{A}.html").is_file()
    # what nbgrader's release_feedback reads next to the feedback, as generate_feedback leaves it
    fb = course / "feedback" / "good" / A
    assert (fb / "submission_secret.txt").read_bytes() == b"0123abcd"
    assert (fb / "timestamp.txt").is_file()
    assert sorted(p.name for p in fb.iterdir()) == sorted(
        [f"{A}.html", "submission_secret.txt", "timestamp.txt"])
    reasons = _flag_reasons(course, "loop")
    assert any(name == "timeout" and reason for name, reason in reasons), reasons

    # grades.csv: nbgrader's columns plus flags, every student
    lines = report.csv_path.read_text().splitlines()
    header = lines[0].split(",")
    assert header[-1] == "flags" and "student_id" in header and "score" in header
    rows = {row.split(",")[header.index("student_id")]: row.split(",") for row in lines[1:]}
    assert sorted(rows) == sorted(got)
    assert rows["loop"][-1] == "timeout"
    assert rows["good"][-1] == ""
    assert float(rows["dup"][header.index("score")]) == 4.0

    # feedback shows a failed visible check with its message
    wrong_html = (course / "feedback" / "wrong" / A / f"{A}.html").read_text()
    assert fx.VISIBLE_ID in wrong_html and "is wrong" in wrong_html

    table = report.table()
    for student in got:
        assert student in table


def test_rerun_student_filter_resubmission_and_force(template, tmp_path, fixture_checks,
                                                     gradebook_db):
    course = copy_course(template, tmp_path / "course")
    gradebook_db(course)
    good = fx.student_notebook(course)
    fx.submit(course, "ann", good)
    fx.submit(course, "bob", fx.student_notebook(course, {"add_impl": WRONG}))
    fx.submit(course, "cid", good)

    only = grade(course, students=["bob"], workers=1)
    assert [(r.student, r.status) for r in only.results] == [("bob", "graded")]
    assert sorted(fx.gradebook_scores(course)) == ["bob"]

    rest = grade(course, workers=2)
    assert {r.student: r.status for r in rest.results} == {
        "ann": "graded", "bob": "skipped", "cid": "graded"}
    first = recorded(course)
    assert first["ann"][0] == 4 and first["bob"][0] == 0

    again = grade(course, workers=2)
    assert {r.status for r in again.results} == {"skipped"}
    assert recorded(course) == first
    assert [(r.student, r.score) for r in again.results] == [
        (r.student, r.score) for r in rest.results]

    fx.submit(course, "bob", good, timestamp="2026-01-11 08:00:00.000000 UTC")  # resubmits
    resubmitted = grade(course, workers=2)
    assert {r.student: r.status for r in resubmitted.results} == {
        "ann": "skipped", "bob": "graded", "cid": "skipped"}
    assert by_student(resubmitted)["bob"].score == 4

    forced = grade(course, workers=2, force=True)
    assert {r.status for r in forced.results} == {"graded"}
    assert _submission_rows(course) == {"ann": 1, "bob": 1, "cid": 1}


def _flag_reasons(course: Path, student: str) -> list[tuple[str, str]]:
    """(flag, reason) recorded for ``student`` in the gradebook's database."""
    return fx.query(course, "SELECT f.name, f.reason FROM rnn_course_flag f JOIN "
                    "submitted_assignment s ON s.id = f.submission_id "
                    "WHERE s.student_id = :student ORDER BY f.position", student=student)


def _completed(course: Path) -> set[str]:
    """Students whose grading is fully recorded (gradebook and files), read while a run goes on."""
    rows = fx.query(course, "SELECT student_id FROM rnn_course_grading WHERE files_written")
    return {student for (student,) in rows}


def _submission_rows(course: Path) -> dict:
    return dict(fx.query(course, "SELECT student_id, count(*) FROM submitted_assignment "
                                 "GROUP BY student_id"))


# ``python -m autograder grade`` with the fixture checks registered first
CLI = ("import sys; sys.path.insert(0, sys.argv[1]); import nbfixtures; "
       "nbfixtures.install_fixture_checks(); from autograder.cli import main; "
       "sys.exit(main(sys.argv[2:]))")


def _cli(course: Path, *args):
    env = nbgrader_env()
    for var in [v for v in env if v.startswith("RNN_COURSE_")]:
        env.pop(var)
    env["RNN_COURSE_SECRET"] = SECRET
    cmd = [sys.executable, "-c", CLI, str(Path(fx.__file__).parent), "grade", A,
           "--course-dir", str(course), *args]
    if UNSAFE:
        cmd.append("--unsafe-no-sandbox")
    return cmd, env


def test_killed_run_resumes_without_losing_or_duplicating(template, tmp_path, fixture_checks,
                                                          gradebook_db):
    course = copy_course(template, tmp_path / "course")
    gradebook_db(course)
    students = [f"s{i}" for i in range(5)]
    for s in students:
        answer = WRONG if s == "s3" else CORRECT
        fx.submit(course, s, fx.student_notebook(course, {"add_impl": answer}))

    cmd, env = _cli(course, "--workers", "1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while len(_completed(course)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no result recorded in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    done = _completed(course)
    assert 2 <= len(done) < len(students)

    cmd, env = _cli(course, "--workers", "2")
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    statuses = dict(re.findall(r"^(s\d)\s+\S+\s+(graded|skipped)", rerun.stdout, re.M))
    assert sorted(statuses) == students
    assert {s for s, st in statuses.items() if st == "skipped"} == done
    assert _submission_rows(course) == dict.fromkeys(students, 1)
    scores = fx.gradebook_scores(course)
    for s in students:
        assert scores[s]["score"] == (0 if s == "s3" else 4), (s, scores[s])
    assert _completed(course) == set(students)


@pytest.mark.parametrize("case", ["unknown assignment", "no course", "no submissions",
                                  "unknown student", "no sandbox", "bad workers",
                                  "no oracles"])
def test_usage_errors_are_one_line_exit_2(template, tmp_path, capsys, monkeypatch, case):
    course = copy_course(template, tmp_path / "course")
    argv = ["grade", A, "--course-dir", str(course)]
    if case == "unknown assignment":
        argv[1] = "no_such_assignment"
    elif case == "no course":
        argv[3] = str(tmp_path / "nowhere")
    elif case == "unknown student":
        fx.submit(course, "ann", fx.student_notebook(course))
        argv += ["--student", "zed"]
    elif case == "no sandbox":
        import autograder.sandbox

        fx.submit(course, "ann", fx.student_notebook(course))
        monkeypatch.setattr(autograder.sandbox, "sandbox_available",
                            lambda: (False, "bwrap is not installed"))
    elif case == "bad workers":
        fx.submit(course, "ann", fx.student_notebook(course))
        argv += ["--workers", "0", "--unsafe-no-sandbox"]
    elif case == "no oracles":
        from rnn_course import checks

        fx.submit(course, "ann", fx.student_notebook(course))
        monkeypatch.setattr(checks, "ORACLE_DIR", tmp_path / "no_oracles")
    if case not in ("no sandbox", "bad workers"):
        argv.append("--unsafe-no-sandbox")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    if case == "no sandbox":
        assert err == ("error: no sandbox: bwrap is not installed; install bubblewrap "
                       "(make setup) or pass --unsafe-no-sandbox")
    if case == "no oracles":
        assert "python -m autograder release" in err
    assert not (course / "autograded").exists()


def _raise_for_crash(original):
    def run(grading):
        if grading.job.student == "crash":
            raise RuntimeError("simulated grader bug")
        return original(grading)
    return run


def _kill_for_crash(job):
    """A worker function whose process dies on student 'crash' (as if OOM-killed)."""
    from autograder.pipeline.worker import submission as worker

    if job.student == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    return worker.__dict__["_original_grade_submission"](job)


@pytest.mark.parametrize("how", ["exception", "killed worker"])
def test_a_grader_crash_is_recorded_and_exits_1(template, tmp_path, monkeypatch,
                                                 capsys, fixture_checks, how):
    from autograder.pipeline.worker import submission as worker

    course = copy_course(template, tmp_path / "course")
    for s in ("ann", "crash", "cid"):
        fx.submit(course, s, fx.student_notebook(course))
    argv = ["grade", A, "--course-dir", str(course), "--workers", "2"]
    if UNSAFE:
        argv.append("--unsafe-no-sandbox")
    with monkeypatch.context() as mp:
        if how == "exception":
            mp.setattr(worker._Grading, "run", _raise_for_crash(worker._Grading.run))
        else:
            mp.setitem(worker.__dict__, "_original_grade_submission", worker.grade_submission)
            mp.setattr(worker, "grade_submission", _kill_for_crash)
        assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert "grader_error" in out and "crash" in err
    assert re.search(r"^crash\s+\S+\s+error\s+grader_error", out, re.M), out
    scores = fx.gradebook_scores(course)
    assert sorted(scores) == ["ann", "cid", "crash"]  # recorded, not dropped
    assert scores["ann"]["score"] == scores["cid"]["score"] == 4
    assert fx.flags_of(course, "ann") == [] and fx.flags_of(course, "cid") == []
    assert fx.flags_of(course, "crash") == ["grader_error"]
    # a later run retries what failed, and only that
    assert cli.main(argv) == 0
    out, _ = capsys.readouterr()
    assert re.search(r"^crash\s+4/4\s+graded", out, re.M), out
    assert re.search(r"^ann\s+4/4\s+skipped", out, re.M), out
