"""The worker (``autograder.pipeline.worker.submission.grade_submission``) on the tiny fixture
notebook.

Unsandboxed (``sandbox=False``): these tests are about what the worker makes
of a run (verdicts, points, flags, artifacts), not about the sandbox.
"""

from __future__ import annotations

import json

import nbfixtures as fx
import nbformat
from nbgrader.utils import is_grade
from traitlets.config import Config

from autograder.pipeline import flags as F
from autograder.pipeline.types import WORKER_STAGES
from autograder.pipeline.worker.submission import grade_submission
from autograder.sandbox import STOPPED_ENAME

A = fx.ASSIGNMENT
IDS = (fx.PLAIN_ID, fx.VISIBLE_ID, fx.HIDDEN_ID)
WRONG = "def add(a, b):\n    return a - b"


def graded_outputs(nb_json: str) -> dict[str, list]:
    nb = nbformat.reads(nb_json, as_version=4)
    return {c.metadata.nbgrader["grade_id"]: c.outputs for c in nb.cells
            if c.cell_type == "code" and is_grade(c)}


def test_a_correct_submission_gets_every_point(course):
    fx.submit(course, "ann", fx.student_notebook(course))
    job, _ = fx.job_for(course, "ann")
    result = grade_submission(job)
    assert result.status == "graded" and result.flags == [], result.error
    cells = result.scores.cells[A]
    assert list(cells) == list(IDS)
    assert all(c["passed"] is True and c["score"] == c["max_score"] for c in cells.values())
    assert cells[fx.HIDDEN_ID]["kind"] == "hidden" and cells[fx.VISIBLE_ID]["kind"] == "visible"
    assert (result.score, result.max_score, result.late_penalty) == (4.0, 4.0, 0.0)
    assert result.comments[A] == {"add_impl": None}  # answered: no "No response."
    assert set(WORKER_STAGES) <= set(result.timings)
    assert "Score: 4.0 / 4.0" in result.feedback[A]
    assert not any(o.get("output_type") == "error"
                   for outs in graded_outputs(result.notebooks[A]).values() for o in outs)


def test_wrong_answers_score_zero_and_say_why(course):
    fx.submit(course, "bob", fx.student_notebook(course, {"add_impl": WRONG}))
    result = grade_submission(fx.job_for(course, "bob")[0])
    assert result.status == "graded" and result.score == 0.0 and result.max_score == 4.0
    cells = result.scores.cells[A]
    assert all(c["passed"] is False and c["score"] == 0.0 for c in cells.values())
    assert "add(1, 2) is wrong" in cells[fx.PLAIN_ID]["message"]
    assert "Score: 0.0 / 4.0" in result.feedback[A] and "Grader notes" in result.feedback[A]
    # the autograded notebook shows every failure as an error output (as nbgrader reads it)
    for gid, outs in graded_outputs(result.notebooks[A]).items():
        assert [o["output_type"] for o in outs] == ["error"], gid


def test_a_cell_that_never_ran_fails_even_if_its_results_were_handed_in(course):
    # the answer cell hands in correct results for every check, then kills its kernel
    cheat = (
        "import os\n"
        "def add(a, b):\n    return a + b\n"
        f"grading.submit('{fx.PLAIN_ID}', s=add(1, 2))\n"
        f"grading.submit('{fx.VISIBLE_ID}', s=add(np.arange(3.0), np.ones(3)))\n"
        # the hidden inputs exist only while their graded cell runs (issue 11)
        f"try:\n    _in = grading.inputs('{fx.HIDDEN_ID}')\n"
        "except RuntimeError:\n    _in = {'a': np.zeros(2), 'b': np.zeros(2)}\n"
        f"grading.submit('{fx.HIDDEN_ID}', s=add(_in['a'], _in['b']))\n"
        "os._exit(0)"
    )
    fx.submit(course, "cid", fx.student_notebook(course, {"add_impl": cheat}))
    result = grade_submission(fx.job_for(course, "cid")[0])
    assert result.status == "graded" and F.KERNEL_DIED in result.flag_names
    cells = result.scores.cells[A]
    for gid in IDS:
        assert cells[gid]["score"] == 0.0 and "not run" in cells[gid]["message"], gid
        outs = graded_outputs(result.notebooks[A])[gid]
        assert [o.get("ename") for o in outs] == [STOPPED_ENAME], gid


def test_a_late_submission_pays_the_configured_penalty(course):
    fx.set_duedate(course, "2026-01-15 00:00:00 UTC")
    fx.submit(course, "dan", fx.student_notebook(course),
              timestamp="2026-01-16 00:00:00.000000 UTC")
    job, _ = fx.job_for(course, "dan")
    job.config = Config(job.config)
    job.config.LateSubmissionPlugin.penalty_method = "zero"
    result = grade_submission(job)
    assert result.flag_names == [F.LATE] and "1d 0h after the due date" in result.flags[0][1]
    assert result.scores.seconds_late == 86400
    assert (result.late_penalty, result.score, result.max_score) == (4.0, 0.0, 4.0)
    assert "Late submission penalty" in result.feedback[A]
    # an extension granted by the instructor moves the due date
    job.extension_seconds = 2 * 86400
    again = grade_submission(job)
    assert again.flags == [] and again.score == 4.0


def test_text_that_is_not_utf8_is_graded(course):
    nb = fx.student_notebook(course)
    nb.cells.insert(0, fx.markdown("caf\udce9: a lone surrogate, as a broken editor saves it"))
    raw = json.dumps(nb).encode()  # valid JSON: the string holds the escape "\udce9"
    fx.submit(course, "eve", raw=raw, files={"notes-\udce9.txt": b"\xe9t\xe9"})
    job, sub = fx.job_for(course, "eve")
    assert "notes-\udce9.txt" in sub.raw
    result = grade_submission(job)
    assert result.status == "graded" and result.score == 4.0, result.error
    assert "notes-\udce9.txt" in result.files
    assert "caf\udce9" in "".join(json.loads(result.notebooks[A])["cells"][0]["source"])


def test_a_missing_notebook_scores_zero_without_running_anything(course):
    fx.submit(course, "fay", None)
    job, _ = fx.job_for(course, "fay")
    result = grade_submission(job)
    assert result.status == "graded" and result.flag_names == [F.MISSING_NOTEBOOK]
    assert result.notebooks == {} and result.feedback == {}
    assert {c["kind"] for c in result.scores.cells[A].values()} == {"missing"}
    assert (result.score, result.max_score) == (0.0, 4.0)
    assert "execute" not in result.timings


def test_a_grader_failure_comes_back_as_data(course, monkeypatch):
    from autograder.pipeline.worker import submission as worker

    fx.submit(course, "gus", fx.student_notebook(course))
    job, _ = fx.job_for(course, "gus")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated grader bug\nsecond line")

    monkeypatch.setattr(worker, "score_submission", broken)
    result = grade_submission(job)
    assert result.status == "error" and result.flags == [
        (F.GRADER_ERROR, "RuntimeError: simulated grader bug")]
    assert "Traceback" in result.error
    assert result.notebooks == {} and result.scores.cells == {}


def _slow(seconds):
    import time

    def wait_then(fn):
        def slow(*args, **kwargs):
            time.sleep(seconds)
            return fn(*args, **kwargs)
        return slow
    return wait_then


def test_feedback_over_its_time_limit_keeps_the_grade(course, monkeypatch):
    from autograder.pipeline.worker import feedback
    from autograder.pipeline.worker import submission as worker

    fx.submit(course, "hal", fx.student_notebook(course))
    job, _ = fx.job_for(course, "hal")
    job.config.WorkerLimits.feedback_seconds = 0.3
    monkeypatch.setattr(worker.feedback_mod, "render_feedback",
                        _slow(30)(feedback.render_feedback))
    result = grade_submission(job)
    assert result.status == "graded" and result.score == 4.0
    assert result.flag_names == [F.GRADER_LIMIT]
    assert "feedback stage took more than 0.3 s" in result.flags[0][1]
    assert "Score: 4 / 4" in result.feedback[A] and "grader_limit" in result.feedback[A]
    assert result.timings["feedback"] < 5


def test_verify_over_its_time_limit_scores_zero_and_keeps_no_output(course, monkeypatch):
    from autograder.pipeline.worker import submission as worker

    fx.submit(course, "ida", fx.student_notebook(course))
    job, _ = fx.job_for(course, "ida")
    job.config.WorkerLimits.verify_seconds = 0.3
    monkeypatch.setattr(worker._Grading, "verify", _slow(30)(worker._Grading.verify))
    result = grade_submission(job)
    assert result.status == "graded" and result.flag_names == [F.GRADER_LIMIT]
    assert (result.score, result.max_score) == (0.0, 4.0)
    for cell in result.scores.cells[A].values():
        assert cell["score"] == 0.0 and "grader_limit" in cell["message"]
    nb = nbformat.reads(result.notebooks[A], as_version=4)
    # only the grader's own verdicts are shown (show_scores): nothing the kernel output
    kept = [o.output_type for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert kept and set(kept) == {"error"}


def test_sanitize_over_its_time_limit_grades_the_notebook_as_unusable(course, monkeypatch):
    from autograder.pipeline.worker import submission as worker

    fx.submit(course, "jon", fx.student_notebook(course))
    job, _ = fx.job_for(course, "jon")
    job.config.WorkerLimits.sanitize_seconds = 0.3
    monkeypatch.setattr(worker.RestoreCells, "preprocess",
                        _slow(30)(worker.RestoreCells.preprocess))
    result = grade_submission(job)
    assert result.status == "graded" and result.flag_names == [F.GRADER_LIMIT]
    assert (result.score, result.max_score) == (0.0, 4.0) and result.notebooks == {}


def test_the_worker_reports_what_it_spent(course):
    fx.submit(course, "kim", fx.student_notebook(course))
    result = grade_submission(fx.job_for(course, "kim")[0])
    usage = result.usage
    assert set(usage) == {"cpu_seconds", "peak_rss_mib", "wall_seconds"}
    assert 0 < usage["cpu_seconds"] and 50 < usage["peak_rss_mib"] < 4096
    assert usage["wall_seconds"] >= result.timings["execute"]


def test_a_jobs_folders_are_named_after_its_worker(course, monkeypatch):
    import os

    from autograder.pipeline.worker import folders
    from autograder.pipeline.worker import submission as worker

    fx.submit(course, "hal", fx.student_notebook(course))
    job, _ = fx.job_for(course, "hal")
    seen = []
    monkeypatch.setattr(worker._Grading, "run", lambda grading: seen.extend(
        [grading.tmp.name, grading.db_dir.name]))
    grade_submission(job)
    assert [name.startswith(f"{prefix}{os.getpid()}-") for name, prefix in
            zip(seen, (folders.SCRATCH_PREFIX, folders.GRADEBOOK_PREFIX), strict=True)] == [
        True, True]


def test_folders_of_jobs_whose_worker_died_are_swept(tmp_path, monkeypatch):
    """A worker killed outright leaves its job's folders (a copy of the submission) and
    its kernel started ahead's: the next run's warm-up removes them, and only them."""
    import os
    import tempfile

    from autograder.pipeline.worker import folders as worker
    from autograder.pipeline.worker import warm

    tmp, shm = tmp_path / "tmp", tmp_path / "shm"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(worker, "memory_dir", lambda: str(shm))
    gone = fx.dead_pid()
    dead = [tmp / f"{worker.SCRATCH_PREFIX}{gone}-a1", shm / f"{worker.GRADEBOOK_PREFIX}{gone}-b2",
            tmp / f"{warm.PREFIX}{gone}-d4"]  # its kernel started ahead
    kept = [tmp / f"{worker.SCRATCH_PREFIX}{os.getppid()}-c3",  # its worker is alive
            tmp / f"{worker.SCRATCH_PREFIX}x7k2", tmp / "other-folder"]
    for folder in dead + kept:
        (folder / "submission").mkdir(parents=True)
        (folder / "submission" / "answer.py").write_text("a student's file")
    assert sorted(worker.sweep_stale()) == sorted(str(p) for p in dead)
    assert [p.exists() for p in dead] == [False, False, False]
    assert all(p.exists() for p in kept)


def test_the_sweep_checks_type_and_owner_first_and_survives_any_name(tmp_path, monkeypatch):
    """Issue 23: a local account plants names for the stale-folder sweep.  A folder it owns
    (``rnn-grade-99999999999999999999-x`` made `grade` exit 1 with OverflowError), a link,
    a file: none is touched, no process is signalled for it, the sweep goes on; a folder
    of ours named after a pid no process can have is ours to remove."""
    import os
    import tempfile

    from autograder.pipeline.worker import folders
    from autograder.sandbox import stale

    tmp, shm = tmp_path / "tmp", tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(folders, "memory_dir", lambda: str(shm))
    signalled = []

    def kill(pid, sig):  # records what the sweep asks about; every such process is gone
        signalled.append(pid)
        raise ProcessLookupError(pid)

    monkeypatch.setattr(stale.os, "kill", kill)
    gone = fx.dead_pid()
    huge = "99999999999999999999"
    target = tmp_path / "elsewhere"
    (target / "keep").mkdir(parents=True)
    tmp.mkdir()
    theirs = [tmp / f"{folders.SCRATCH_PREFIX}{huge}-x", tmp / f"{folders.SCRATCH_PREFIX}{gone}-y"]
    odd = {
        "link": tmp / f"{folders.SCRATCH_PREFIX}{gone}-link",
        "file": tmp / f"{folders.SCRATCH_PREFIX}{gone}-file",
        "fifo": shm / f"{folders.GRADEBOOK_PREFIX}{gone}-fifo",
    }
    odd["link"].symlink_to(target)
    odd["file"].write_text("not a folder")
    os.mkfifo(odd["fifo"])
    ours = [tmp / f"{folders.SCRATCH_PREFIX}{huge}-z",  # no process has such a pid
            shm / f"{folders.GRADEBOOK_PREFIX}{gone}-w"]
    unknown = tmp / f"{folders.SCRATCH_PREFIX}\u0663\u0663-u"  # digits, not ASCII: not ours
    for folder in [*ours, unknown]:
        folder.mkdir()
    if os.geteuid() == 0:  # another account's folders (root can make them)
        for folder in theirs:
            folder.mkdir()
            os.chown(folder, 65534, 65534)
    removed = folders.sweep_stale()
    assert sorted(removed) == sorted(str(p) for p in ours)
    assert not any(p.exists() for p in ours)
    assert all(p.is_dir() and not p.is_symlink() for p in theirs if os.geteuid() == 0)
    assert odd["link"].is_symlink() and (target / "keep").is_dir() and unknown.is_dir()
    assert odd["file"].read_text() == "not a folder" and odd["fifo"].exists()
    # a signal (even 0) was sent only for our own folders, and only for a possible pid
    assert signalled == [gone]


def test_one_bad_entry_never_stops_the_sweep(tmp_path, monkeypatch):
    from autograder.sandbox import stale

    gone = fx.dead_pid()
    for name in ("a", "b", "c"):
        (tmp_path / f"rnn-grade-{gone}-{name}").mkdir()
    real = stale.os.lstat

    def lstat(path, *args, **kwargs):
        if str(path).endswith("-b"):
            raise ValueError("an entry the sweep cannot even look at")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(stale.os, "lstat", lstat)
    import re

    found = stale.remove_stale_folders(str(tmp_path), re.compile(r"rnn-grade-(\d+)-"))
    assert sorted(found) == [str(tmp_path / f"rnn-grade-{gone}-{n}") for n in ("a", "c")]
    assert (tmp_path / f"rnn-grade-{gone}-b").exists()
