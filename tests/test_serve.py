"""The grading service (``python -m autograder serve``) on a real nbgrader exchange.

Each test builds a one-machine hub in temporary folders (:mod:`exchange_hub`)
around the fixture course of :mod:`nbfixtures` (a tiny notebook, 4 points),
runs the service as its own process (the fixture checks registered first,
as ``test_pipeline`` runs ``grade``), hands in submissions through the
exchange and watches the journal, the gradebook, the exchange's feedback
folder and ``api/status``.
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
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exchange_hub as eh  # noqa: E402
import nbfixtures as fx  # noqa: E402

from autograder import cli  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

A = fx.ASSIGNMENT
SECRET = "serve-test-secret"
WRONG = "def add(a, b):\n    return a - b"
LOOP = "while True:\n    pass"
# the service with the fixture checks registered (round processes are forked: they inherit
# them); ``crash`` in a round's students kills that round's process, as an OOM kill would
CLI = ("import sys; sys.path.insert(0, sys.argv[1]); import nbfixtures; "
       "nbfixtures.install_fixture_checks()\n"
       "import os, signal\n"
       "from autograder.pipeline.coordinator import assignment as coordinator\n"
       "_grade = coordinator.grade_assignment\n"
       "def grade(*a, **kw):\n"
       "    if 'crash' in (kw.get('students') or ()):\n"
       "        os.kill(os.getpid(), signal.SIGKILL)\n"
       "    return _grade(*a, **kw)\n"
       "coordinator.grade_assignment = grade\n"
       "from autograder.cli import main; sys.exit(main(sys.argv[2:]))")


def _sandboxed() -> bool:
    try:
        from autograder.sandbox import sandbox_available
    except ImportError:
        return False
    return sandbox_available()[0]


UNSAFE = not _sandboxed()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The fixture course, released once for the module (copied into each hub)."""
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
            mp.delenv(var)
        return fx.make_course(tmp_path_factory.mktemp("serve") / "course",
                              config_extra="c.Execute.timeout = 5\n")


@pytest.fixture
def hub(template):
    h = eh.make_hub(lambda path: shutil.copytree(template, path))
    h["instructor_env"]["RNN_COURSE_SECRET"] = SECRET
    inbound = eh.inbound(h)  # as nbgrader release_assignment leaves it
    inbound.mkdir(parents=True)
    inbound.chmod(0o2733)
    yield h
    shutil.rmtree(h["base"], ignore_errors=True)


class Served:
    """``python -m autograder serve`` on a hub, as its own process (and process group)."""

    def __init__(self, hub, *args):
        self.hub = hub
        self.log_path = hub["base"] / f"serve-{time.monotonic_ns()}.log"
        cmd = [*self.program(), "serve", "--course-dir", str(hub["course"]),
               "--bind", "127.0.0.1:0", "--poll", "0.3", *args]
        if UNSAFE:
            cmd.append("--unsafe-no-sandbox")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=hub["course"], env=hub["instructor_env"],
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.port = None
        self.wait_for(lambda: self._port() is not None, 60, "the status page")

    @staticmethod
    def program() -> list[str]:
        """``python -m autograder``, with the fixture checks registered."""
        return [sys.executable, "-c", CLI, str(Path(fx.__file__).parent)]

    def log(self) -> str:
        return self.log_path.read_text()

    def _port(self):
        m = re.search(r" status +http://127\.0\.0\.1:(\d+)/", self.log())
        if m:
            self.port = int(m.group(1))
        return self.port

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.proc.poll() is None, f"the service exited waiting for {what}:\n{self.log()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.log()}"
            time.sleep(0.2)

    def api(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/status", timeout=30) as r:
            return json.load(r)

    def page(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=30) as r:
            return r.read().decode()

    def stop(self, sig=signal.SIGTERM, timeout=90) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_file.close()

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.log_file.close()


def journal(course: Path) -> dict:
    """student -> [(state, timestamp, attempts, score, flags)] from the journal, in row order."""
    out: dict = {}
    for student, *rest in fx.query(course, "SELECT student_id, state, timestamp, attempts, "
                                           "score, flags FROM rnn_course_inbound ORDER BY id"):
        out.setdefault(student, []).append(tuple(rest))
    return out


def states(course: Path) -> dict:
    return {s: [r[0] for r in rows] for s, rows in journal(course).items()}


def graded_at(course: Path) -> dict:
    return dict(fx.query(course, "SELECT student_id, graded_at FROM rnn_course_grading"))


def submission_rows(course: Path) -> dict:
    return dict(fx.query(course, "SELECT student_id, count(*) FROM submitted_assignment "
                                 "GROUP BY student_id"))


def released(hub, entry: Path) -> bool:
    return (eh.feedback_folder(hub) / eh.feedback_name(entry)).is_file()


# --------------------------------------------------------------------------- #
# tests
# --------------------------------------------------------------------------- #
def test_submissions_are_graded_and_feedback_fetched(hub):
    course, home = hub["course"], hub["home"]
    ienv, senv = hub["instructor_env"], hub["student_env"]
    shutil.rmtree(eh.inbound(hub).parent)  # the real thing: release_assignment makes it
    eh.run(eh.nbgrader("release_assignment", A), course, ienv)
    served = Served(hub, "--workers", "2")

    # a student with an account: fetch, answer, nbgrader submit
    eh.run(eh.nbgrader("fetch_assignment", A), home, senv, as_student=True)
    fetched = home / A / f"{A}.ipynb"
    fx.nbformat.write(fx.student_notebook(course), fetched)
    eh.run(eh.nbgrader("submit", A), home, senv, as_student=True)
    student = hub["student"]
    # two more, as nbgrader submit leaves them
    wrong = eh.drop_submission(hub, "bob", fx.student_notebook(course, {"add_impl": WRONG}))
    eh.drop_submission(hub, "cid", fx.student_notebook(course))

    served.wait_for(lambda: states(course) == {student: ["released"], "bob": ["released"],
                                               "cid": ["released"]}, 240, "three releases")
    assert released(hub, wrong)
    eh.run(eh.nbgrader("fetch_feedback", A), home, senv, as_student=True)
    html = list((home / A / "feedback").rglob(f"{A}.html"))
    assert len(html) == 1 and "4 / 4" in html[0].read_text().replace(".0", "")

    scores = fx.gradebook_scores(course)
    assert {s: v["score"] for s, v in scores.items()} == {student: 4, "bob": 0, "cid": 4}
    data = served.api()
    assert {r["student"]: (r["score"], r["max_score"], r["state"]) for r in data["students"]} == {
        student: (4, 4, "released"), "bob": (0, 4, "released"), "cid": (4, 4, "released")}
    assert data["queue"] == [] and data["running"]["submissions"] == [] and not data["failures"]
    assert data["throughput"]["graded"] == 3 and data["counts"] == {"released": 3}
    assert data["throughput"]["submit_to_graded_s"]["max"] > 0
    assert "bob" in served.page()

    assert served.stop() == 0
    log = served.log()
    for event in ("started", "queued", "collected", "graded", "released", "stopping",
                  "stopped"):
        assert re.search(rf"^\S+Z {event} ", log, re.M), (event, log)
    assert "no authentication" in log and "Traceback" not in log
    assert len(re.findall(r"^\S+Z graded ", log, re.M)) == 3


def test_sigkill_mid_grading_then_restart_grades_each_exactly_once(hub, gradebook_db):
    course = hub["course"]
    gradebook_db(course)  # the journal and the gradebook on SQLite, then on PostgreSQL
    students = [f"s{i}" for i in range(5)]
    entries = {}
    for i, s in enumerate(students):
        answer = {"add_impl": WRONG} if s == "s3" else None
        entries[s] = eh.drop_submission(hub, s, fx.student_notebook(course, answer),
                                        when=datetime.now(timezone.utc) + timedelta(seconds=i))
    served = Served(hub, "--workers", "1")
    served.wait_for(lambda: sum(st == ["released"] for st in states(course).values()) >= 2,
                    240, "two releases")
    served.kill()  # SIGKILL, its whole process group; the round dies with its parent
    before = graded_at(course)
    done = {s for s, st in states(course).items() if st == ["released"]}
    assert 2 <= len(done) < len(students), states(course)

    # a late submission arrives while the service is down
    entries["s9"] = eh.drop_submission(hub, "s9", fx.student_notebook(course))
    students.append("s9")
    again = Served(hub, "--workers", "2")
    again.wait_for(lambda: all(st == ["released"] for st in states(course).values())
                   and len(states(course)) == len(students), 240, "every release")
    assert again.stop() == 0

    rows = journal(course)
    assert sorted(rows) == students and all(len(r) == 1 for r in rows.values())  # one row each
    assert submission_rows(course) == dict.fromkeys(students, 1)
    after = graded_at(course)
    for s in done:  # graded before the kill, never again after it
        assert after[s] == before[s], s
    log = again.log()
    for s in done:
        assert not re.search(rf"graded +{s} ", log), log
    scores = fx.gradebook_scores(course)
    for s in students:
        assert scores[s]["score"] == (0 if s == "s3" else 4), (s, scores[s])
        assert released(hub, entries[s])


def test_sigint_mid_round_stops_cleanly_and_a_restart_finishes(hub):
    course = hub["course"]
    for s in ("a", "b", "c"):  # each runs into the 5 s cell timeout
        eh.drop_submission(hub, s, fx.student_notebook(course, {"add_impl": LOOP}))
    served = Served(hub, "--workers", "1", "--grace", "20")
    served.wait_for(lambda: " grading " in served.log(), 120, "a round")
    t0 = time.monotonic()
    assert served.stop(signal.SIGINT) == 0
    assert time.monotonic() - t0 < 40
    log = served.log()
    assert re.search(r"^\S+Z stopping +SIGINT", log, re.M), log
    assert re.search(r"^\S+Z stopped ", log, re.M) and "Traceback" not in log, log
    assert "crashed" not in log  # a stop is not a crash: no attempt is counted
    assert all(r[2] == 0 for rows in journal(course).values() for r in rows)
    again = Served(hub, "--workers", "2")
    again.wait_for(lambda: states(course) == dict.fromkeys("abc", ["released"]), 240,
                   "every release")
    assert again.stop() == 0
    assert submission_rows(course) == dict.fromkeys("abc", 1)


def test_an_interrupt_swallowed_by_a_finalizer_is_asked_again(monkeypatch):
    """Python ignores an exception raised in a __del__ (it prints "Exception ignored"): a
    SIGTERM landing there once left a round grading until the service killed it (CI under
    load). The round asks itself again every INTERRUPT_AGAIN s and says nothing of it."""
    import multiprocessing

    from autograder.service import app

    class Slow:
        def __del__(self):
            time.sleep(3)  # the signal arrives here

    def run_round(*args, **kwargs):
        Slow()
        while True:
            time.sleep(0.05)

    monkeypatch.setattr(app, "run_round", run_round)
    read, write = os.pipe()
    ctx = multiprocessing.get_context("fork")

    def child():
        os.dup2(write, 2)
        app._round_main(app.Options(course_dir="."), "a", (), (), False)

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    os.close(write)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGTERM)
    proc.join(10 + app.INTERRUPT_AGAIN)
    alive = proc.is_alive()
    if alive:
        proc.kill()
        proc.join(5)
    os.set_blocking(read, False)
    try:
        err = os.read(read, 65536).decode()
    except BlockingIOError:
        err = ""
    os.close(read)
    assert not alive and proc.exitcode == 3, (proc.exitcode, err)
    assert "Exception ignored" not in err and "Traceback" not in err, err


def test_a_submission_that_arrives_during_a_round_joins_it(hub):
    course = hub["course"]
    eh.drop_submission(hub, "early", fx.student_notebook(course))
    served = Served(hub, "--workers", "1")
    served.wait_for(lambda: re.search(r" grading +rnn_cell: 1 submission\(s\): early",
                                      served.log()), 120, "the first round")
    late = eh.drop_submission(hub, "late", fx.student_notebook(course))
    served.wait_for(lambda: states(course).get("late") == ["released"], 120, "the late one")
    assert released(hub, late)
    assert re.search(r" grading +rnn_cell: 1 more: late", served.log()), served.log()
    assert served.api()["throughput"]["rounds"] == 1
    assert served.stop() == 0


def test_an_entry_is_taken_once_nbgrader_submit_has_finished_it(hub, monkeypatch):
    """nbgrader submit copies into the inbound folder itself, then writes timestamp.txt and
    submission_secret.txt: an entry without them is part of a submission and waits; one
    left so for UNFINISHED_GRACE (a submit that died) is taken as it is, not lost."""
    from autograder.service import app

    for var in ("RNN_COURSE_EXCHANGE", "RNN_COURSE_ID"):
        monkeypatch.setenv(var, hub["instructor_env"][var])
    course = hub["course"]
    service = app.Service(app.Options(course_dir=str(course)))
    copying = eh.drop_submission(hub, "ann", fx.student_notebook(course))
    stamp, secret = ((copying / f).read_bytes() for f in app.WRITTEN_LAST)
    for f in app.WRITTEN_LAST:
        (copying / f).unlink()
    assert service.scan() == 0 and states(course) == {}
    (copying / app.WRITTEN_LAST[0]).write_bytes(stamp)
    assert service.scan() == 0, "timestamp.txt alone: submit is still writing"
    (copying / app.WRITTEN_LAST[1]).write_bytes(secret)
    assert service.scan() == 1 and states(course) == {"ann": ["queued"]}

    died = eh.drop_submission(hub, "bob", fx.student_notebook(course))
    for f in app.WRITTEN_LAST:
        (died / f).unlink()
    assert service.scan() == 0
    old = time.time() - app.UNFINISHED_GRACE - 1
    os.utime(died, (old, old))
    assert service.scan() == 1 and states(course)["bob"] == ["queued"]


def test_a_hostile_submission_does_not_stop_the_service(hub):
    course = hub["course"]
    t = datetime.now(timezone.utc)
    honest = eh.drop_submission(hub, "ann", fx.student_notebook(course), when=t)
    eh.drop_submission(hub, "broken", None, when=t, files={f"{A}.ipynb": b'{"cells": ['})
    eh.drop_submission(hub, "loop", fx.student_notebook(course, {"add_impl": LOOP}), when=t)
    eh.drop_submission(hub, "crash", fx.student_notebook(course), when=t)  # kills its round
    eh.drop_submission(hub, "eve", fx.student_notebook(course), name=f"eve+{A}+not a time+x")
    eh.drop_submission(hub, "zed", fx.student_notebook(course), assignment="no_such")
    (eh.inbound(hub) / "garbage").mkdir()
    served = Served(hub, "--workers", "2", "--max-attempts", "2")
    finals = {"released", "graded", "failed", "rejected"}
    served.wait_for(lambda: len(states(course)) == 6 and all(
        st[-1] in finals for st in states(course).values()), 300, "every submission settled")
    got = states(course)
    assert got["ann"] == ["released"] and released(hub, honest), served.log()
    assert got["loop"] == ["released"], served.log()
    assert got["broken"] == ["graded"]  # an unreadable notebook has no feedback to hand back
    assert got["crash"] == ["failed"]
    assert got["eve"] == ["rejected"] and got["zed"] == ["rejected"]
    assert fx.flags_of(course, "broken") == ["invalid_notebook"]
    assert "timeout" in fx.flags_of(course, "loop")
    data = served.api()
    failures = {r["student"]: r for r in data["failures"]}
    assert sorted(failures) == ["crash", "eve", "zed"]
    assert "crashed" in failures["crash"]["note"] and failures["crash"]["attempts"] == 2
    assert data["throughput"]["crashed_rounds"] >= 2
    students = {r["student"]: r for r in data["students"]}
    assert students["broken"]["flags"] == ["invalid_notebook"]
    assert students["ann"]["score"] == 4
    log = served.log()
    assert re.search(r"^\S+Z crashed +rnn_cell: the grading round ended with signal 9", log, re.M)
    assert re.search(r"^\S+Z ignored +'garbage'", log, re.M)
    assert served.stop() == 0


def test_feedback_waits_for_the_due_date_when_the_policy_says_so(hub):
    course = hub["course"]
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write('\nc.RnnCourse.feedback_release = '
                 '{"default": "on_grade", "rnn_cell": "after_due"}\n')
    fx.set_duedate(course, (datetime.now(timezone.utc) + timedelta(days=1))
                   .strftime("%Y-%m-%d %H:%M:%S UTC"))
    entry = eh.drop_submission(hub, "ann", fx.student_notebook(course))
    served = Served(hub, "--workers", "1")
    served.wait_for(lambda: states(course).get("ann") == ["held"], 240, "held feedback")
    time.sleep(1.5)
    assert not released(hub, entry) and states(course)["ann"] == ["held"]
    assert served.api()["students"][0]["state"] == "held"
    fx.set_duedate(course, (datetime.now(timezone.utc) - timedelta(minutes=1))
                   .strftime("%Y-%m-%d %H:%M:%S UTC"))
    served.wait_for(lambda: states(course).get("ann") == ["released"], 60, "the release")
    assert released(hub, entry)
    assert served.stop() == 0


@pytest.mark.parametrize("case", ["no course", "bad flag", "public bind", "port in use",
                                  "no exchange", "bad workers", "bad policy", "second service"])
def test_usage_errors_are_one_line(hub, capsys, monkeypatch, case):
    course = hub["course"]
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # serve puts its bin/ first
    for var, value in hub["instructor_env"].items():
        if var.startswith("RNN_COURSE_"):
            monkeypatch.setenv(var, value)
    argv = ["serve", "--course-dir", str(course), "--bind", "127.0.0.1:0"]
    if UNSAFE:
        argv.append("--unsafe-no-sandbox")
    holder = None
    if case == "no course":
        argv[2] = str(hub["base"] / "nowhere")
    elif case == "bad flag":
        argv.append("--frobnicate")
    elif case == "public bind":
        argv[4] = "0.0.0.0:8765"
    elif case == "port in use":
        import socket

        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        argv[4] = f"127.0.0.1:{busy.getsockname()[1]}"
    elif case == "no exchange":
        shutil.rmtree(eh.inbound(hub))
    elif case == "bad workers":
        argv += ["--workers", "0"]
    elif case == "bad policy":
        with open(course / "nbgrader_config.py", "a") as fh:
            fh.write('\nc.RnnCourse.feedback_release = "whenever"\n')
    elif case == "second service":
        holder = Served(hub)
    try:
        assert cli.main(argv) == 2
    finally:
        if holder is not None:
            holder.stop()
        if case == "port in use":
            busy.close()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    expected = {"no course": "not a course directory", "bad flag": "unrecognized arguments",
                "public bind": "127.0.0.1 only", "port in use": "cannot serve the status page",
                "no exchange": "no inbound folder",
                "bad workers": "--workers must be at least 1",
                "bad policy": "feedback_release", "second service": "another grading service"}
    assert expected[case] in err, err


def test_the_status_page_lets_only_instructors_in(monkeypatch):
    from jupyterhub.services.auth import HubOAuth, UserNotAllowed

    from autograder.service.status import instructor_check

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    monkeypatch.setenv("JUPYTERHUB_OAUTH_ACCESS_SCOPES",
                       json.dumps(["access:services!service=rnn-course"]))
    auth = HubOAuth()
    check = instructor_check("rnn-course", auth)
    instructor = {"name": "i1", "kind": "user", "groups": ["formgrade-rnn-course"], "scopes": []}
    scoped = {"name": "i2", "kind": "user", "groups": [],
              "scopes": ["access:services!service=rnn-course"]}
    student = {"name": "s1", "kind": "user", "groups": ["students"],
               "scopes": ["access:servers!user=s1"]}
    assert check(instructor) is instructor and check(scoped) is scoped
    with pytest.raises(UserNotAllowed):
        check(student)


def test_under_a_hub_the_status_page_sends_a_stranger_to_the_hubs_login(monkeypatch):
    import asyncio
    from types import SimpleNamespace

    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from autograder.service.status import in_hub, make_app

    hub = "http://127.0.0.1:9/hub"
    for var, value in {"JUPYTERHUB_API_TOKEN": "secret-token",
                       "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:9999",
                       "JUPYTERHUB_SERVICE_PREFIX": "/services/grader/",
                       "JUPYTERHUB_API_URL": f"{hub}/api",
                       "JUPYTERHUB_BASE_URL": "/",
                       "JUPYTERHUB_CLIENT_ID": "service-grader",
                       "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/grader/oauth_callback",
                       "JUPYTERHUB_OAUTH_ACCESS_SCOPES":
                           json.dumps(["access:services!service=grader"])}.items():
        monkeypatch.setenv(var, value)
    assert in_hub()
    app = make_app(SimpleNamespace(course=SimpleNamespace(course_id="rnn-course")), hub=True)

    async def visit(path):
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        try:
            return await AsyncHTTPClient().fetch(
                f"http://127.0.0.1:{sockets[0].getsockname()[1]}{path}",
                follow_redirects=False, raise_error=False)
        finally:
            server.stop()

    for path in ("/services/grader/", "/services/grader/api/status"):
        response = asyncio.run(visit(path))
        assert response.code == 302, (path, response.code)
        assert "/hub/api/oauth2/authorize" in response.headers["Location"]
        assert "client_id=service-grader" in response.headers["Location"]

