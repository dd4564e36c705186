"""The exchange over HTTP: a real JupyterHub, the grading service, nbgrader's plugin classes.

The module starts one JupyterHub process (free ports, a SQLite database and a
proxy that routes nothing, in a temporary folder; no spawner, no Unix
account: users, groups and tokens are made through its REST API with an admin
service's token) and the grading service (``python -m autograder serve``, the
fixture course of :mod:`nbfixtures`, ``RNN_COURSE_EXCHANGE_MODE=http``) as the
hub's external service, with the scope to read users' groups.  The client
classes (:mod:`rnn_exchange.plugin`) are driven as nbgrader drives them:
``ExchangeFactory(config).List(coursedir=..., authenticator=..., config=...).start()``.

The served course is ``COURSE``; ``OTHER`` is a course the service does not
serve (a student of OTHER is a student of "course A" calling "course B").
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbfixtures as fx  # noqa: E402
from postgres_cluster import free_port  # noqa: E402
from test_serve import CLI, UNSAFE, Served  # noqa: E402  (the service, as test_serve runs it)

from autograder.pipeline.scoring import parse_timestamp  # noqa: E402
from autograder.roles import (  # noqa: E402
    exchange_url,
    grading_service,
    staff_group,
    student_group,
)
from rnn_exchange.plugin import configure, factory_config, run  # noqa: E402
from rnn_exchange.protocol import API, pack  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("http_exchange")]

COURSE = "rnn-http-b"
OTHER = "rnn-http-a"
A = fx.ASSIGNMENT
SERVICE = grading_service(COURSE)
MAX_FILES = 20
MAX_BYTES = 200_000
BURST = 3  # c.HttpExchangeService.max_submissions in the fixture course
CONFIG_EXTRA = (
    "c.Execute.timeout = 5\n"
    f"c.Precheck.max_files = {MAX_FILES}\n"
    f"c.Precheck.max_submission_bytes = {MAX_BYTES}\n"
    f"c.HttpExchangeService.max_submissions = {BURST}\n"
    "c.HttpExchangeService.rate_window = 600\n"
)
HUB_CONFIG = """
import json, os
from jupyterhub.proxy import Proxy

class NoProxy(Proxy):
    \"\"\"Nothing is routed: the tests call the hub's API and the service directly.\"\"\"
    async def add_route(self, routespec, target, data):
        pass
    async def delete_route(self, routespec):
        pass
    async def get_all_routes(self):
        return {}

s = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.json")))
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = f"http://127.0.0.1:{s['port']}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["hub_port"]
c.JupyterHub.proxy_class = NoProxy
c.Proxy.should_start = False
c.JupyterHub.db_url = "sqlite:///" + os.path.join(s["dir"], "hub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(s["dir"], "cookie_secret")
c.JupyterHub.authenticator_class = "null"
c.JupyterHub.services = [
    {"name": "test-admin", "api_token": s["admin_token"]},
    {"name": s["service"], "api_token": s["service_token"]},
]
c.JupyterHub.load_roles = [
    {"name": "admin", "services": ["test-admin"]},
    {"name": "exchange-groups", "services": [s["service"]], "scopes": ["read:users:groups"]},
]
"""


# --------------------------------------------------------------------------- #
# the hub, the service, the callers
# --------------------------------------------------------------------------- #
class Hub:
    """A JupyterHub process of its own; users, groups and tokens through its REST API."""

    def __init__(self, base: Path):
        self.dir = base / "hub"
        self.dir.mkdir()
        self.admin_token = secrets.token_hex(16)
        self.service_token = secrets.token_hex(16)
        self.port, self.hub_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.hub_port}/hub/api"
        (self.dir / "settings.json").write_text(json.dumps({
            "port": self.port, "hub_port": self.hub_port, "dir": str(self.dir),
            "admin_token": self.admin_token, "service_token": self.service_token,
            "service": SERVICE}))
        (self.dir / "jupyterhub_config.py").write_text(HUB_CONFIG)
        self.log = open(self.dir / "hub.log", "w")
        bindir = str(Path(sys.executable).parent)
        self.proc = subprocess.Popen(
            [os.path.join(bindir, "jupyterhub"), "-f", str(self.dir / "jupyterhub_config.py")],
            cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}"))
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, (self.dir / "hub.log").read_text()[-3000:]
            with contextlib.suppress(OSError):
                if self.call("GET", "/")[0] == 200:
                    break
            assert time.monotonic() < deadline, (self.dir / "hub.log").read_text()[-3000:]
            time.sleep(0.3)

    def call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + path, method=method, data=data, headers={
            "Authorization": f"token {token or self.admin_token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def user(self, name: str, *groups: str) -> str:
        """A new user in ``groups``; a token of theirs."""
        status, _ = self.call("POST", f"/users/{name}")
        assert status == 201, status
        for group in groups:
            if self.call("POST", f"/groups/{group}")[0] not in (201, 409):
                raise AssertionError(f"cannot create group {group}")
            assert self.call("POST", f"/groups/{group}/users", {"users": [name]})[0] == 200
        return self.token(name)[0]

    def token(self, name: str, expires_in=None) -> tuple[str, str]:
        body = {"note": "test"} | ({"expires_in": expires_in} if expires_in else {})
        status, data = self.call("POST", f"/users/{name}/tokens", body)
        assert status == 201, status
        return data["token"], data["id"]

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.log.close()


class Service(Served):
    """``python -m autograder serve`` as the hub's service, with the exchange over HTTP."""

    def __init__(self, base: Path, course: Path, hub: Hub):
        self.course, self.base = course, base
        self.port = free_port()
        self.private = base / "private"
        self.env = dict(fx_env(), RNN_COURSE_EXCHANGE_MODE="http",
                        RNN_COURSE_EXCHANGE=str(self.private), RNN_COURSE_ID=COURSE,
                        JUPYTERHUB_API_TOKEN=hub.service_token, JUPYTERHUB_API_URL=hub.api,
                        JUPYTERHUB_SERVICE_NAME=SERVICE,
                        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{self.port}",
                        JUPYTERHUB_SERVICE_PREFIX=f"/services/{SERVICE}/",
                        JUPYTERHUB_CLIENT_ID=f"service-{SERVICE}",
                        JUPYTERHUB_HOST="", JUPYTERHUB_BASE_URL="/")
        self.url = f"http://127.0.0.1:{self.port}/services/{SERVICE}/"
        self.template = exchange_url(f"http://127.0.0.1:{self.port}")
        self.start()

    def start(self):
        self.log_path = self.base / f"serve-{time.monotonic_ns()}.log"
        self.log_file = open(self.log_path, "w")
        cmd = [sys.executable, "-c", CLI, str(Path(fx.__file__).parent), "serve",
               "--course-dir", str(self.course), "--poll", "0.3"]
        if UNSAFE:
            cmd.append("--unsafe-no-sandbox")
        self.proc = subprocess.Popen(cmd, cwd=self.course, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for(lambda: " status " in self.log(), 60, "the service to listen")


def fx_env() -> dict:
    from autograder.commands.release import nbgrader_env

    env = nbgrader_env()
    for var in [v for v in env if v.startswith(("RNN_COURSE_", "JUPYTERHUB_"))]:
        env.pop(var)
    return env


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("http-exchange")
    with fx.without_course_env():
        course = fx.make_course(base / "course", config_extra=CONFIG_EXTRA)
    hub = Hub(base)
    try:
        service = Service(base, course, hub)
    except BaseException:
        hub.stop()
        raise
    staff = hub.user("instructor", staff_group(COURSE))
    world = {"base": base, "course": course, "hub": hub, "service": service, "staff": staff}
    try:
        # released over HTTP by an instructor, as the formgrader's server would
        run_exchange(world, "ReleaseAssignment", staff, course, course_root=course)
        yield world
    finally:
        service.stop(timeout=60)
        hub.stop()


def run_exchange(world, kind: str, token: str, workdir: Path, *, course: str = COURSE,
                 assignment: str = A, course_root: Path | None = None, **traits):
    """One of the plugin's classes, made and started as nbgrader's apps do
    (:func:`rnn_exchange.plugin.run`); ``Section__trait=value`` adds configuration."""
    from traitlets.config import Config

    config = Config()
    for name, value in traits.items():
        section, _, trait = name.partition("__")
        setattr(getattr(config, section), trait, value)
    return run(kind, service_url=world["service"].template, token=token, assignment_dir=workdir,
               course=course, assignment=assignment, course_root=course_root, config=config)


def call(world, method: str, path: str, token: str | None, body: bytes | None = None,
         course: str = COURSE, headers=None):
    """A raw call to the exchange's API: ``(status, JSON body or bytes)``."""
    url = world["service"].url + f"{API}/{course}/{path}"
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"token {token}"
    req = urllib.request.Request(url, method=method, data=body, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            return r.status, json.loads(data) if r.headers.get_content_type() == \
                "application/json" else data
    except urllib.error.HTTPError as exc:
        data = exc.read()
        return exc.code, json.loads(data)


def submit_path(nonce: str | None = None, sent_at: float | None = None, extra: str = "") -> str:
    nonce = nonce or secrets.token_urlsafe(18)
    return f"submissions/{A}?nonce={nonce}&sent_at={sent_at or time.time():.3f}{extra}"


def archive(world, answers=None, extra_files: dict[str, bytes] | None = None) -> bytes:
    """A submission of the fixture notebook as the client packs one."""
    folder = Path(tempfile.mkdtemp(dir=world["base"]))
    nbformat.write(fx.student_notebook(world["course"], answers), folder / f"{A}.ipynb")
    for rel, data in (extra_files or {}).items():
        (folder / rel).write_bytes(data)
    return pack(folder)


def rows(world, student: str | None = None) -> list[tuple]:
    """(student, state, entry) of the journal, in order."""
    out = fx.query(world["course"], "SELECT student_id, state, entry FROM rnn_course_inbound "
                                    "ORDER BY id")
    return [r for r in out if student is None or r[0] == student]


def inbound(world, student: str) -> list[str]:
    folder = world["service"].private / COURSE / "inbound"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(student + "+"))


def incoming(world) -> list[str]:
    return sorted(p.name for p in (world["service"].private / COURSE / ".incoming").iterdir())


def folder_exchange_shapes(base: Path) -> dict:
    """The keys of nbgrader's own ExchangeList records (the folder exchange), released and
    submitted: what the Assignments tab reads."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeList
    from traitlets.config import Config

    root, cache = base / "root", base / "cache"
    (root / COURSE / "outbound" / A).mkdir(parents=True)
    (root / COURSE / "outbound" / A / f"{A}.ipynb").write_text("{}")
    entry = cache / COURSE / f"someone+{A}+2026-01-10 12:00:00.000000 UTC"
    entry.mkdir(parents=True)
    (entry / f"{A}.ipynb").write_text("{}")
    config = Config()
    config.Exchange.root, config.Exchange.cache = str(root), str(cache)
    config.Exchange.assignment_dir = str(base)
    config.CourseDirectory.course_id = COURSE
    shapes = {}
    for cached in (False, True):
        config.ExchangeList.cached = cached
        [record] = ExchangeList(coursedir=CourseDirectory(config=config),
                                authenticator=Authenticator(config=config),
                                config=config).start()
        shapes[cached] = record_shape(record)
    return shapes


def record_shape(record: dict) -> dict:
    """A list record's keys, and its notebooks' and submissions' keys, recursively."""
    shape = {"keys": sorted(record)}
    if record.get("notebooks"):
        shape["notebooks"] = sorted(record["notebooks"][0])
    if record.get("submissions"):
        shape["submissions"] = record_shape(record["submissions"][0])
    return shape


# --------------------------------------------------------------------------- #
# the round trip
# --------------------------------------------------------------------------- #
def test_round_trip_release_list_fetch_submit_grade_feedback(world, tmp_path):
    hub, service = world["hub"], world["service"]
    token = hub.user("alice", student_group(COURSE))
    home = tmp_path / "alice"
    home.mkdir()
    # the storage is the service's alone
    assert service.private.stat().st_mode & 0o777 == 0o700

    listed = run_exchange(world, "List", token, home)
    assert [(r["course_id"], r["assignment_id"], r["status"]) for r in listed] == \
        [(COURSE, A, "released")]
    assert [nb["notebook_id"] for nb in listed[0]["notebooks"]] == [A]
    nbgraders = folder_exchange_shapes(tmp_path / "folder-exchange")
    assert record_shape(listed[0]) == nbgraders[False]  # what the Assignments tab reads
    # no course given (the Assignments tab's course list): every course listed in the
    # config that the caller is in, nothing of the others
    every = run_exchange(world, "List", token, home, course="",
                         HttpExchange__courses=[OTHER, COURSE])
    assert [r["course_id"] for r in every] == [COURSE]

    run_exchange(world, "FetchAssignment", token, home)
    assert (home / A / f"{A}.ipynb").is_file()
    assert run_exchange(world, "List", token, home)[0]["status"] == "fetched"

    nbformat.write(fx.student_notebook(world["course"]), home / A / f"{A}.ipynb")
    run_exchange(world, "Submit", token, home)
    [(student, state, entry)] = rows(world, "alice")
    assert student == "alice" and state in ("queued", "collected", "held", "released")
    assert inbound(world, "alice") == [entry]

    service.wait_for(lambda: rows(world, "alice")[0][1] == "released", 120, "feedback")
    [group] = run_exchange(world, "List", token, home, ExchangeList__cached=True)
    [sub] = group["submissions"]
    assert (group["student_id"], sub["has_exchange_feedback"], sub["has_local_feedback"]) == \
        ("alice", True, False)
    assert record_shape(group) == nbgraders[True]

    run_exchange(world, "FetchFeedback", token, home)
    feedback = home / A / "feedback" / sub["timestamp"] / f"{A}.html"
    assert "add" in feedback.read_text()
    [group] = run_exchange(world, "List", token, home, ExchangeList__cached=True)
    sub = group["submissions"][0]
    assert (sub["has_local_feedback"], sub["feedback_updated"]) == (True, False)
    assert sub["local_feedback_path"] == str(feedback.parent)

    # an instructor collects it (as nbgrader collect does) and releases new feedback
    desk = tmp_path / "desk"
    desk.mkdir()
    run_exchange(world, "Collect", world["staff"], desk, course_root=desk)
    got = desk / "submitted" / "alice" / A
    assert (got / f"{A}.ipynb").is_file()
    assert (got / "timestamp.txt").read_text() == sub["timestamp"]
    assert not (got / "submission_secret.txt").exists()  # the secret stays with the service
    out = desk / "feedback" / "alice" / A
    out.mkdir(parents=True)
    (out / f"{A}.html").write_text("<p>looked at by hand</p>")
    (out / "timestamp.txt").write_text(sub["timestamp"])
    run_exchange(world, "ReleaseFeedback", world["staff"], desk, course_root=desk,
                 CourseDirectory__student_id="*")
    [group] = run_exchange(world, "List", token, home, ExchangeList__cached=True)
    assert group["submissions"][0]["feedback_updated"] is True
    run_exchange(world, "FetchFeedback", token, home)
    assert feedback.read_text() == "<p>looked at by hand</p>"


STUDENT_CONFIG = """
from rnn_exchange.plugin import configure

c = get_config()  # noqa: F821
configure(c)  # the plugin's classes, since RNN_EXCHANGE_URL is set
c.CourseDirectory.course_id = ""
"""


def test_configure_sets_the_plugin_only_where_the_service_is_named():
    from traitlets.config import Config

    grader, student = Config(), Config()
    assert configure(grader, {}) is False and "ExchangeFactory" not in grader
    assert configure(student, {"RNN_EXCHANGE_URL": "http://x/{course_id}/"}) is True
    assert dict(student.ExchangeFactory) == factory_config()
    assert student.ExchangeFactory.submit == "rnn_exchange.plugin.ExchangeSubmit"


def test_the_assignments_tab_lists_fetches_and_submits_through_the_plugin(world, tmp_path,
                                                                         monkeypatch):
    """nbgrader's own server extension (what the Assignments tab calls), configured as
    docs/exchange.md says: a student's nbgrader_config.py, the service's URL and the
    courses in the environment, the server's hub token."""
    from nbgrader.server_extensions.assignment_list.handlers import AssignmentList

    token = world["hub"].user("lena", student_group(COURSE))
    home = tmp_path / "lena"
    (home / "config").mkdir(parents=True)
    (home / "nbgrader_config.py").write_text(STUDENT_CONFIG)
    for var, value in {"RNN_EXCHANGE_URL": world["service"].template,
                       "RNN_EXCHANGE_COURSES": f"{OTHER},{COURSE}",
                       "JUPYTERHUB_API_TOKEN": token, "JUPYTER_CONFIG_DIR": str(home / "config"),
                       "JUPYTER_CONFIG_PATH": str(home / "config")}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.chdir(home)  # a single-user server runs in its root folder: nbgrader relies on it
    tab = AssignmentList()
    tab.root_dir = str(home)
    assert tab.list_courses() == {"success": True, "value": [COURSE]}
    assert tab.fetch_assignment(COURSE, A) == {"success": True}
    nbformat.write(fx.student_notebook(world["course"]), home / A / f"{A}.ipynb")
    assert tab.submit_assignment(COURSE, A) == {"success": True}
    listed = tab.list_assignments(course_id=COURSE)
    assert listed["success"], listed
    [fetched, submitted] = listed["value"]
    assert (fetched["status"], fetched["path"]) == ("fetched", A)  # relative to the root
    assert [nb["path"] for nb in fetched["notebooks"]] == [f"{A}/{A}.ipynb"]
    assert (submitted["status"], submitted["student_id"], len(submitted["submissions"])) == \
        ("submitted", "lena", 1)
    assert [r[0] for r in rows(world, "lena")] == ["lena"]


# --------------------------------------------------------------------------- #
# who may do what
# --------------------------------------------------------------------------- #
EVERY_ENDPOINT = [
    ("GET", "assignments"), ("GET", f"assignments/{A}"), ("POST", "SUBMIT"),
    ("GET", "submissions"), ("GET", f"feedback/{A}"), ("POST", f"release/{A}"),
    ("GET", f"collect/{A}"), ("POST", f"feedback/{A}/instructor"),
]


def _endpoint(world, method, path):
    body = archive(world) if method == "POST" else None
    return (submit_path() if path == "SUBMIT" else path), body


def test_a_student_of_another_course_gets_403_everywhere(world, tmp_path):
    from nbgrader.exchange import ExchangeError

    token = world["hub"].user("bob", student_group(OTHER))
    for method, path in EVERY_ENDPOINT:
        path, body = _endpoint(world, method, path)
        status, data = call(world, method, path, token, body)
        assert status == 403, (method, path, status, data)
        assert data == {"error": f"bob is not a member of course {COURSE}"}
    with pytest.raises(ExchangeError, match="not a member"):
        run_exchange(world, "FetchAssignment", token, tmp_path)
    assert rows(world, "bob") == [] and inbound(world, "bob") == []


def test_a_student_calling_instructor_endpoints_gets_403(world):
    token = world["hub"].user("carol", student_group(COURSE))
    for method, path in EVERY_ENDPOINT[5:]:
        path, body = _endpoint(world, method, path)
        status, data = call(world, method, path, token, body)
        assert status == 403, (path, status)
        assert "only the instructors and TAs" in data["error"]
    # a service's token is no user's: nobody of any course
    status, data = call(world, "GET", "assignments", world["hub"].admin_token)
    assert (status, data) == (403, {"error": "only hub users may use the exchange"})


def test_a_token_that_is_missing_wrong_expired_or_revoked_gets_401(world):
    hub = world["hub"]
    hub.user("dave", student_group(COURSE))
    expiring, _ = hub.token("dave", expires_in=1)
    revoked, token_id = hub.token("dave")
    assert call(world, "GET", "assignments", revoked)[0] == 200
    assert hub.call("DELETE", f"/users/dave/tokens/{token_id}")[0] == 204
    time.sleep(1.5)
    for token in (None, "not-a-token", expiring, revoked):
        for method, path in EVERY_ENDPOINT:
            path, body = _endpoint(world, method, path)
            status, data = call(world, method, path, token, body)
            assert status == 401, (token, path, status)
            assert "\n" not in data["error"]
    # a session cookie or a name is not a token
    status, _ = call(world, "GET", "assignments", None,
                     headers={"Cookie": "jupyterhub-session-id=x", "X-Forwarded-User": "dave"})
    assert status == 401
    assert rows(world, "dave") == []


def test_a_student_cannot_submit_as_another(world):
    hub = world["hub"]
    mallory = hub.user("mallory", student_group(COURSE))
    hub.user("victim", student_group(COURSE))
    # a forged name (in the query, a header), a forged time and secret (in the archive):
    # it is mallory's, at the service's time, with the service's secret
    forged = {"timestamp.txt": b"2020-01-01 00:00:00.000000 UTC",
              "submission_secret.txt": b"known"}
    status, data = call(world, "POST", submit_path(extra="&student_id=victim&student=victim"),
                        mallory, archive(world, extra_files=forged),
                        headers={"X-Forwarded-User": "victim"})
    assert status == 200 and data["student_id"] == "mallory"
    [entry] = inbound(world, "mallory")
    stored = world["service"].private / COURSE / "inbound" / entry
    assert (stored / "timestamp.txt").read_text() == data["timestamp"]
    age = datetime.now(timezone.utc).replace(tzinfo=None) - parse_timestamp(data["timestamp"])
    assert abs(age.total_seconds()) < 120  # the service's clock, not 2020
    assert (stored / "submission_secret.txt").read_text() != "known"
    # another's token: the hub will not give mallory one of victim's
    assert hub.call("POST", "/users/victim/tokens", {"note": "x"}, token=mallory)[0] == 403
    assert [r[0] for r in rows(world, "victim")] == []
    assert [r[0] for r in rows(world, "mallory")] == ["mallory"]
    assert inbound(world, "victim") == []


def test_a_replayed_submit_request_is_refused(world):
    token = world["hub"].user("erin@uni.example", student_group(COURSE))  # a name to quote
    body = archive(world)
    path = submit_path()
    assert call(world, "POST", path, token, body)[0] == 200
    # the same request again (same nonce, within the window): refused, nothing new
    status, data = call(world, "POST", path, token, body)
    assert (status, data["error"]) == (409, "this submit request was already received "
                                            "(a replay)")
    # an old request (its sent_at outside the window), even with a nonce never seen
    status, data = call(world, "POST", submit_path(sent_at=time.time() - 3600), token, body)
    assert status == 400 and "a replay, or a wrong clock" in data["error"]
    status, _ = call(world, "POST", f"submissions/{A}", token, body)  # no nonce at all
    assert status == 400
    assert len(rows(world, "erin@uni.example")) == 1
    assert len(inbound(world, "erin@uni.example")) == 1


def test_too_large_or_too_many_files_is_413_and_nothing_recorded(world):
    token = world["hub"].user("frank", student_group(COURSE))
    big = archive(world, extra_files={"data.bin": os.urandom(MAX_BYTES)})
    many = archive(world, extra_files={f"f{i}.txt": b"x" for i in range(MAX_FILES)})
    for body, why in ((big, "bytes"), (many, "files")):
        status, data = call(world, "POST", submit_path(), token, body)
        assert status == 413 and why in data["error"], (status, data)
    huge = b"\0" * (10 * MAX_BYTES)  # refused on its Content-Length, before it is read
    with contextlib.suppress(ConnectionError):
        assert call(world, "POST", submit_path(), token, huge)[0] == 413
    assert rows(world, "frank") == [] and inbound(world, "frank") == []
    assert incoming(world) == []


def test_a_burst_of_resubmissions_gets_429_and_keeps_the_earlier_ones(world):
    token = world["hub"].user("grace", student_group(COURSE))
    body = archive(world)
    statuses = [call(world, "POST", submit_path(), token, body)[0] for _ in range(BURST + 2)]
    assert statuses == [200] * BURST + [429, 429]
    assert len(rows(world, "grace")) == BURST and len(inbound(world, "grace")) == BURST
    status, data = call(world, "POST", submit_path(), token, body)
    assert "at most 3" in data["error"]


@pytest.mark.parametrize("course,path", [
    ("..", "assignments"),
    ("rnn%2F..%2Fx", "assignments"),
    (COURSE, "assignments/..%2F..%2Fetc"),
    (COURSE, "assignments/rnn_cell+x"),
    (COURSE, "feedback/.hidden"),
])
def test_path_characters_in_names_are_400(world, course, path):
    token = world["hub"].user(f"henry{secrets.token_hex(3)}", student_group(COURSE))
    status, data = call(world, "GET", path, token, course=course)
    assert status == 400, (status, data)
    assert "refused" in data["error"] and "\n" not in data["error"]


# --------------------------------------------------------------------------- #
# whole or absent
# --------------------------------------------------------------------------- #
def _crash_in_accept(world, student: str, at: str) -> int:
    """A service process that dies inside accept(): before the rename, or before the journal."""
    pid = os.fork()
    if pid == 0:  # the child: a Service on the same course, killed at ``at``
        try:
            os.environ.update(world["service"].env)
            from autograder.service import journal as J
            from autograder.service.app import Service
            from autograder.service.rounds import Options

            service = Service(Options(course_dir=str(world["course"])))
            real_rename = os.rename
            if at == "rename":
                os.rename = lambda src, dst: os._exit(9) if "inbound" in str(dst) \
                    else real_rename(src, dst)
            else:
                J.Journal.add = lambda *a, **k: os._exit(9)
            files = {f"{A}.ipynb": nbformat.writes(fx.student_notebook(world["course"])).encode()}
            service.http.accept(student, A, files, secrets.token_urlsafe(18))
        finally:
            os._exit(3)
    return os.waitpid(pid, 0)[1]


def test_a_service_killed_mid_upload_leaves_nothing_half_recorded(world):
    service = world["service"]
    token = world["hub"].user("ivan", student_group(COURSE))
    body = archive(world)
    # 1. killed while the body arrives: nothing on disk, nothing in the journal
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall((f"POST /services/{SERVICE}/{API}/{COURSE}/{submit_path()} HTTP/1.1\r\n"
                      f"Host: 127.0.0.1\r\nAuthorization: token {token}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2])
        time.sleep(1.5)  # the hub has been asked who it is; half the body is in
        service.kill()
    # 2. killed after writing, before the rename; 3. after the rename, before the journal
    assert os.WEXITSTATUS(_crash_in_accept(world, "ivan", "rename")) == 9
    assert len(incoming(world)) == 1 and inbound(world, "ivan") == []
    assert os.WEXITSTATUS(_crash_in_accept(world, "judy", "journal")) == 9
    [entry] = inbound(world, "judy")
    assert rows(world, "judy") == []
    service.start()
    assert incoming(world) == []  # the unfinished upload is gone
    assert rows(world, "ivan") == [] and inbound(world, "ivan") == []
    # the renamed one was whole: journalled at start, once
    assert [(r[0], r[2]) for r in rows(world, "judy")] == [("judy", entry)]
    assert "deleted an unfinished upload" in service.log()
    # and the service goes on taking submissions
    assert call(world, "POST", submit_path(), token, body)[0] == 200
    assert len(rows(world, "ivan")) == 1


def test_the_private_storage_must_be_the_graders_alone(world, tmp_path, monkeypatch):
    from autograder.errors import UsageError
    from autograder.service.app import Service as GradingService
    from autograder.service.rounds import Options

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o1777)  # nbgrader's folder exchange, as an administrator makes it
    for var, value in dict(world["service"].env, RNN_COURSE_EXCHANGE=str(shared)).items():
        monkeypatch.setenv(var, value)
    service = GradingService(Options(course_dir=str(world["course"])))
    with pytest.raises(UsageError, match=r"mode 1777: .* private to the grader account \(0700\)"):
        service.check()
    fresh = tmp_path / "fresh" / "exchange"  # made by the service, 0700
    monkeypatch.setenv("RNN_COURSE_EXCHANGE", str(fresh))
    GradingService(Options(course_dir=str(world["course"]))).http.prepare_storage()
    assert fresh.stat().st_mode & 0o777 == 0o700
    assert (fresh / COURSE / "inbound").stat().st_mode & 0o777 == 0o700


def test_the_graders_own_nbgrader_release_goes_into_the_private_folder(world, tmp_path):
    """The formgrader and ``serve --release-on-open`` (the grader account, the course's
    configuration) release with nbgrader's own classes into the private folder."""
    private = world["service"].private
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "release_assignment", A, "--force",
                           "--log-level=ERROR"], cwd=world["course"], env=world["service"].env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (private / COURSE / "outbound" / A / f"{A}.ipynb").is_file()
    assert private.stat().st_mode & 0o777 == 0o700  # still the grader's alone
    token = world["hub"].user("nora", student_group(COURSE))
    run_exchange(world, "FetchAssignment", token, tmp_path)
    assert (tmp_path / A / f"{A}.ipynb").is_file()


def test_archives_with_links_or_escaping_paths_are_400(world):
    token = world["hub"].user("kim", student_group(COURSE))

    def tar_with(info: tarfile.TarInfo, data: bytes = b"") -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    link = tarfile.TarInfo("notes.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for body in (tar_with(link), tar_with(tarfile.TarInfo("../../evil.py"), b"x"),
                 tar_with(tarfile.TarInfo("/abs.py"), b"x"), b"not a tar",
                 base64.b64encode(b"x" * 100)):
        status, data = call(world, "POST", submit_path(), token, body)
        assert status == 400, (status, data)
        assert re.fullmatch(r"[^\n]+", data["error"])
    assert rows(world, "kim") == [] and incoming(world) == []
    assert not (world["service"].private / "evil.py").exists()
    shutil.rmtree(world["base"] / "unused", ignore_errors=True)
