"""Grading on a dask.distributed cluster whose workers share no folder with the grader.

A ``dask scheduler`` and two ``dask worker`` processes run, each in a mount namespace of
its own (:mod:`dask_namespaces`: a private ``/tmp``, the repository and the courses
hidden, only the Python environment and the grader's code bound back, read-only), with
bubblewrap sandboxing each student kernel inside.  A small class of real ``rnn_cell``
submissions (the solutions, two planted bugs of ``tests/planted.py``, the solutions with
a last cell that runs ``sleep``) is graded through it, and:

* a task run on each worker looks for a marker file in the course folder, and for the
  repository's own course files, and finds neither;
* the grading service (``serve --scheduler``) records the same scores, cell by cell, as
  the local process pool does;
* a worker SIGKILLed mid-job loses nothing and grades nothing twice: dask runs the job
  again on the other worker, and each submission is recorded once, with its score;
* the scheduler SIGKILLed mid-grading: the service says so in one line, does not crash,
  keeps the submissions in its queue (no attempt counted), and once a new scheduler (and
  workers) answer at the same address, grades each of them once.

Root only (mount namespaces), as in CI; never skipped there.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dask_namespaces as dn  # noqa: E402
import exchange_hub as eh  # noqa: E402
import nbfixtures as fx  # noqa: E402
from planted import BUGS  # noqa: E402
from test_serve import Served, journal, states, submission_rows  # noqa: E402

from autograder.commands.demo import fill_solutions  # noqa: E402
from autograder.commands.release import nbgrader_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask")]

A = "rnn_cell"
SECRET = "dask-test-secret"
SLEEP = "3.25"  # seconds a slow submission's last cell runs `sleep` for: its mark in ps
# (kind of submission) -> planted bug of tests/planted.py ("" : the solutions)
KINDS = {"right": "", "no_bias": "rnn_cell/no_bias", "dx": "rnn_cell/dx_no_transpose"}
MARKER = "worker-must-not-see-this"


def _nb(template: Path, kind: str, *, slow: bool = False):
    """A student's ``rnn_cell`` notebook: the solutions, with the bug of ``kind`` planted in
    the answer cell of the function it breaks; ``slow``: a last cell that runs ``sleep``."""
    release = nbformat.read(template / "release" / A / f"{A}.ipynb", 4)
    source = nbformat.read(template / "source" / A / f"{A}.ipynb", 4)
    nb = fill_solutions(release, source)
    if KINDS.get(kind):
        code = BUGS[KINDS[kind]][1]
        name = re.findall(r"^def (\w+)\(", code, flags=re.M)[-1]
        cell = next(c for c in nb.cells
                    if c.cell_type == "code" and f"def {name}(" in c.source
                    and c.metadata.get("nbgrader", {}).get("solution"))
        cell.source += "\n\n" + code
    if slow:
        nb.cells.append(nbformat.v4.new_code_cell(
            f"import subprocess\nsubprocess.run(['sleep', '{SLEEP}'])"))
    return nb


CLASS = {  # student -> (kind, slow)
    "ada": ("right", False), "bob": ("no_bias", False), "cyd": ("dx", False),
    "sly": ("right", True),
}


def kind_of(student: str) -> str:
    return CLASS[student][0]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The real ``rnn_cell``, released into a course of its own (its gradebook made)."""
    root = tmp_path_factory.mktemp("dask") / "course"
    (root / "source").mkdir(parents=True)
    shutil.copy2(dn.REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(dn.REPO / "source" / A, root / "source" / A)
    env = {k: v for k, v in nbgrader_env().items() if not k.startswith("RNN_COURSE_")}
    env["RNN_COURSE_ID"] = eh.COURSE_ID
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", A,
                           "--force", "--log-level=ERROR"], cwd=root, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("dask-logs")
    c = dn.Cluster([], logs)
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RNN_COURSE_SECRET", SECRET)
    monkeypatch.setenv("RNN_COURSE_ID", eh.COURSE_ID)  # the template's, and every hub's


@pytest.fixture
def hub(template):
    h = eh.make_hub(lambda path: shutil.copytree(template, path))
    h["instructor_env"]["RNN_COURSE_SECRET"] = SECRET
    eh.inbound(h).mkdir(parents=True)
    eh.inbound(h).chmod(0o2733)
    yield h
    shutil.rmtree(h["base"], ignore_errors=True)


@pytest.fixture(scope="module")
def local_scores(template, tmp_path_factory):
    """Each kind of submission graded by the local process pool: kind ->
    (score, per-cell scores, flags)."""
    from autograder.pipeline.coordinator.assignment import grade_assignment

    course = tmp_path_factory.mktemp("local") / "course"
    shutil.copytree(template, course)
    students = {}
    for student, (kind, slow) in CLASS.items():
        if not slow and kind not in students.values():
            fx.submit(course, student, _nb(template, kind))
            students[student] = kind
    with pytest.MonkeyPatch.context() as mp:  # module scope: before the autouse _env
        mp.setenv("RNN_COURSE_ID", eh.COURSE_ID)
        mp.setenv("RNN_COURSE_SECRET", SECRET)
        report = grade_assignment(course, A, workers=2, progress=False)
        assert "local" in report.workers
        recorded = _recorded(course)
    return {students[s]: v for s, v in recorded.items()}


def _recorded(course: Path) -> dict:
    """student -> (score, per-cell scores, flags) in the course's gradebook."""
    scores = fx.gradebook_scores(course)
    return {s: (v["score"], v["cells"], fx.flags_of(course, s)) for s, v in scores.items()}


def _drop_class(hub, template, students) -> dict:
    entries = {}
    for student in students:
        kind, slow = CLASS[student]
        entries[student] = eh.drop_submission(hub, student, _nb(template, kind, slow=slow))
    return entries


def _serve(hub, scheduler, *args):
    return DaskServed(hub, "--scheduler", scheduler, *args)


class DaskServed(Served):
    """``python -m autograder serve`` with nothing test-only registered: the workers could
    not have it."""

    @staticmethod
    def program() -> list[str]:
        return [sys.executable, "-m", "autograder"]


def _graded_lines(log: str) -> dict:
    out: dict = {}
    for student in re.findall(r"^\S+Z graded +(\S+) ", log, re.M):
        out[student] = out.get(student, 0) + 1
    return out


# --------------------------------------------------------------------------- #
def test_workers_see_no_course_and_grade_as_the_local_pool(local_scores, cluster, hub,
                                                           template):
    # (local_scores first: its process pool forks before any dask client thread runs here)
    course = hub["course"]
    (course / MARKER).write_text("the course folder")
    paths = [str(course / MARKER), str(course / "gradebook.db"),
             str(course / "source" / A / f"{A}.ipynb"), str(dn.REPO / "nbgrader_config.py"),
             str(dn.REPO / "source" / A / f"{A}.ipynb"), str(dn.REPO / "autograder" / "cli.py")]
    assert all(os.path.lexists(p) for p in paths)  # here, all of them
    with cluster.client() as client:  # os.path.lexists run on each worker, for each path
        seen = {p: client.run(os.path.lexists, p) for p in paths}
    # on each of the two workers: the grader's code, and nothing of a course
    assert {p: sorted(on.values()) for p, on in seen.items()} == {
        p: [p.endswith("cli.py")] * 2 for p in paths}, seen

    students = ["ada", "bob", "cyd"]
    _drop_class(hub, template, students)
    served = _serve(hub, cluster.address)
    served.wait_for(lambda: sorted(s for s, st in states(course).items()
                                   if st == ["released"]) == students, 240, "the releases")
    assert served.stop() == 0
    log = served.log()
    assert f"dask {cluster.address}" in log and "Traceback" not in log
    assert _graded_lines(log) == dict.fromkeys(students, 1)
    recorded = _recorded(course)
    assert {s: recorded[s] for s in students} == \
        {s: local_scores[kind_of(s)] for s in students}
    right = local_scores["right"]
    assert right[0] == sum(right[1].values()) > local_scores["no_bias"][0] > 0
    assert 0 < local_scores["dx"][0] < right[0]
    # results came back as bytes: the service wrote them into its own course folder
    for s in students:
        assert (course / "feedback" / s / A / f"{A}.html").is_file()


def test_a_worker_killed_mid_job_loses_nothing_and_grades_nothing_twice(
        local_scores, cluster, hub, template, monkeypatch):
    from autograder.pipeline.coordinator import assignment as coordinator

    course = hub["course"]
    students = ["ada", "bob", "sly"]
    for student in students:
        kind, slow = CLASS[student]
        fx.submit(course, student, _nb(template, kind, slow=slow))
    killed = []

    def kill_the_slow_ones_worker():
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not killed:
            for pid in dn.processes_running(["sleep", SLEEP]):
                name = cluster.worker_of(pid)
                if name is not None:
                    cluster.kill(cluster.workers[name])
                    killed.append(name)
                    return
            time.sleep(0.1)

    watcher = threading.Thread(target=kill_the_slow_ones_worker, daemon=True)
    watcher.start()
    calls: dict = {}
    graded_by: dict = {}  # student -> the workers ("host:pid") of the results recorded
    record_batch = coordinator.record_batch

    def spy(items, **kw):
        for result, _ in items:
            graded_by.setdefault(result.student, []).append(result.worker)
        return record_batch(items, **kw)

    def on_result(item):
        calls[item.student] = calls.get(item.student, 0) + 1

    monkeypatch.setattr(coordinator, "record_batch", spy)
    report = coordinator.grade_assignment(course, A, scheduler=cluster.address,
                                          progress=False, on_result=on_result)
    watcher.join(5)
    try:
        assert len(killed) == 1, "the slow submission's sleep was never seen on a worker"
        assert cluster.workers[killed[0]].poll() is not None
        assert calls == dict.fromkeys(students, 1)
        # the killed job was run again, on the other worker, and recorded once
        [survivor] = [n for n in cluster.names if n != killed[0]]
        assert graded_by["sly"] == [f"{socket.gethostname()}:{cluster.workers[survivor].pid}"]
        assert {s: len(w) for s, w in graded_by.items()} == dict.fromkeys(students, 1)
        assert [r.status for r in report.results] == ["graded"] * len(students)
        assert submission_rows(course) == dict.fromkeys(students, 1)
        recorded = _recorded(course)
        assert recorded == {s: local_scores[kind_of(s)] for s in students}
    finally:
        for name in killed:  # the next test wants two workers again
            cluster.start_worker(name)
        cluster.wait_for_workers(2)


def test_the_scheduler_gone_mid_grading_keeps_the_queue_and_grades_each_once(
        cluster, hub, template, local_scores):
    course = hub["course"]
    students = ["sly", "ada"]
    _drop_class(hub, template, students)
    served = _serve(hub, cluster.address)
    served.wait_for(lambda: dn.processes_running(["sleep", SLEEP]), 180, "the slow job")
    cluster.kill_scheduler()
    served.wait_for(lambda: " scheduler " in served.log(), 120, "the scheduler's line")
    log = served.log()
    assert len(re.findall(r"^\S+Z scheduler ", log, re.M)) == 1, log
    assert "Traceback" not in log and " crashed " not in log and " error " not in log, log
    rows = journal(course)
    pending = [s for s, r in rows.items() if r[0][0] in ("queued", "collected")]
    assert "sly" in pending, rows
    assert all(r[0][2] == 0 for s, r in rows.items() if s in pending), rows  # no attempt
    assert served.proc.poll() is None

    # a new scheduler at the same address; the workers, which stop when their scheduler
    # goes, come back (as a Deployment's pods are restarted)
    cluster.start_scheduler()
    cluster.restart_workers()
    served.wait_for(lambda: sorted(s for s, st in states(course).items()
                                   if st == ["released"]) == sorted(students), 240,
                    "every release")
    assert served.stop() == 0
    log = served.log()
    assert _graded_lines(log) == dict.fromkeys(students, 1), log
    assert len(re.findall(r"^\S+Z scheduler ", log, re.M)) == 1, log
    assert "Traceback" not in log and " crashed " not in log and " error " not in log, log
    assert submission_rows(course) == dict.fromkeys(students, 1)
    recorded = _recorded(course)
    assert recorded == {s: local_scores[kind_of(s)] for s in students}
