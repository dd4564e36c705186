"""``make hub``'s set-up and shutdown (tools/hub/hub.py), without a real JupyterHub.

The browser test (tests/test_hub.py) runs the whole hub; these check its safety
nets one by one: system tools found by absolute path whatever PATH says, a
checkout that other accounts can read made private, and a stop that no second
signal interrupts (SIGINT, SIGTERM, both, twice, to the whole process group as
systemd sends), leaving no process and no bound port.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "hub"))
import hub as hubtools  # noqa: E402


# --------------------------------------------------------------------------- system tools
def test_system_tools_are_found_without_sbin_on_path(monkeypatch):
    """`env -i` or `su` give a PATH without /usr/sbin: useradd and chpasswd are found anyway."""
    monkeypatch.setenv("PATH", "/nonexistent")
    for name in ("useradd", "chpasswd", "runuser", "env", "git"):
        path = hubtools.tool(name)
        assert os.path.isabs(path) and os.access(path, os.X_OK), (name, path)
    with pytest.raises(hubtools.HubError, match="no-such-tool is missing") as exc:
        hubtools.tool("no-such-tool")
    assert "\n" not in str(exc.value)


def test_every_command_the_hub_runs_starts_with_an_absolute_path(monkeypatch):
    """run() as another user goes through runuser and env by absolute path."""
    seen = []

    class Done:
        returncode, stdout, stderr = 0, "", ""

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(hubtools.subprocess, "run", lambda argv, **kw: seen.append(argv) or Done)
    hubtools.run(["python", "-V"], "python", user="nobody", env={"HOME": "/"})
    assert seen[0][0] == hubtools.tool("runuser") and seen[0][3:5] == ["--", hubtools.tool("env")]


# --------------------------------------------------------------------------- the checkout
@pytest.fixture
def open_dir():
    """A folder in /tmp that every account can traverse (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="rnn-hub-checkout-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def _tree(tmp_path: Path, mode: int) -> Path:
    repo = tmp_path / "checkout"
    (repo / "source").mkdir(parents=True)
    (repo / "source" / "answers.txt").write_text("the solutions")
    repo.chmod(mode)
    return repo


def test_readable_checkout_is_made_private_saying_so(open_dir, capsys):
    """A 0755 clone in a folder every account can traverse: made 0700, in one line."""
    repo = _tree(open_dir, 0o755)
    assert all(os.stat(p).st_mode & 0o001 for p in repo.parents), "the fixture's folders"
    assert hubtools.reachable_by_others(repo)
    hubtools.protect_checkout(hubtools.Settings(repo=repo))
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o700
    assert not hubtools.reachable_by_others(repo)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "was readable by other accounts (mode 0755)" in out[0] \
        and "made it 0700" in out[0]
    if os.geteuid() == 0:  # a student's view: nobody cannot list the checkout any more
        probe = subprocess.run([hubtools.tool("runuser"), "-u", "nobody", "--", "ls",
                                str(repo / "source")], capture_output=True, text=True)
        assert probe.returncode != 0 and "Permission denied" in probe.stderr


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o711])
def test_group_or_other_bits_count_as_readable(open_dir, mode):
    repo = _tree(open_dir, mode)
    assert hubtools.reachable_by_others(repo)
    hubtools.protect_checkout(hubtools.Settings(repo=repo))
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o700


def test_private_checkout_or_closed_parent_is_left_alone(open_dir, capsys):
    repo = _tree(open_dir, 0o700)
    hubtools.protect_checkout(hubtools.Settings(repo=repo))
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o700
    repo.chmod(0o755)
    open_dir.chmod(0o700)  # a home of mode 0700: no other account gets through
    assert not hubtools.reachable_by_others(repo)
    hubtools.protect_checkout(hubtools.Settings(repo=repo))
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o755
    open_dir.chmod(0o755)
    hubtools.protect_checkout(hubtools.Settings(repo=repo, courses=[]))  # nobody to hide it from
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o755
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- the stop
def test_only_the_first_stop_signal_interrupts():
    stopping = hubtools.Stopping()
    with pytest.raises(KeyboardInterrupt):
        stopping(signal.SIGTERM, None)
    stopping(signal.SIGTERM, None)  # the clean-up goes on
    stopping(signal.SIGINT, None)
    assert stopping.signals == [signal.SIGTERM, signal.SIGTERM, signal.SIGINT]


# A stand-in for jupyterhub, in a session of its own as start() runs it: it binds the
# hub's port, starts a "proxy" child that binds another (and outlives it, as the real
# proxy can), and takes a second to shut down on SIGTERM, the time in which a second
# signal used to interrupt hub.py's clean-up.
FAKE_HUB = r"""
import os, signal, socket, subprocess, sys, time
pids_file, hub_port, proxy_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
PROXY = ("import socket, sys, time; s = socket.socket();"
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
         "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(600)")
proxy = subprocess.Popen([sys.executable, "-c", PROXY, str(proxy_port)])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", hub_port)); s.listen()
def slow_exit(signum, frame):
    time.sleep(1.0)
    os._exit(0)
signal.signal(signal.SIGTERM, slow_exit)
open(pids_file, "w").write(f"{os.getpid()} {proxy.pid}\n")
time.sleep(600)
"""

# hub.py's up() with prepare() and start() standing in: no accounts, no npm, no venv.
DRIVER = r"""
import subprocess, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import hub
state, fake, hub_port, proxy_port = Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
hub.pids_of = lambda uids: []  # the hub's accounts: none here, only its process tree
st = hub.Settings(state=state, courses=[],
                  ports={"hub": int(hub_port), "proxy_api": int(proxy_port)})
def start(st):
    proc = subprocess.Popen([sys.executable, "-c", fake, str(state / "pids"), hub_port,
                             proxy_port], start_new_session=True)
    h = hub.Hub(st, proc, state / "log")
    while not (state / "pids").is_file() or len(h.bound_ports()) < 2:
        time.sleep(0.05)
    h.track()
    return h
hub.prepare = lambda st: ({"student": "pw"}, {"rnn-course": ["rnn_cell"]})
hub.start = start
sys.exit(hub.up(st))
"""


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and hubtools._state(pid) != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("signals", [
    (signal.SIGINT,), (signal.SIGTERM,), (signal.SIGTERM, signal.SIGTERM),
    (signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT, signal.SIGTERM)],
    ids=lambda sigs: "+".join(signal.Signals(s).name for s in sigs))
def test_stop_signals_to_the_group_leave_no_process_and_no_port(tmp_path, signals):
    """Signals to `make hub`'s whole process group, the later ones during the clean-up:
    hub.py finishes it (exit 0, "stopped"), and the hub, its proxy and their ports are gone."""
    ports = hubtools.free_ports()
    hub_port, proxy_port = ports["hub"], ports["proxy_api"]
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(REPO / "tools" / "hub"), str(tmp_path), FAKE_HUB,
         str(hub_port), str(proxy_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    pids: list[int] = []
    try:
        for line in driver.stdout:  # the banner: the hub is up
            if "Ctrl-C stops the hub" in line:
                break
        pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
        assert all(map(_alive, pids)) and not hubtools.port_free(hub_port)
        for sig in signals:
            os.killpg(driver.pid, sig)  # the group: what systemd and make pass on
            time.sleep(0.3)
        out = driver.communicate(timeout=60)[0]
        assert driver.returncode == 0, out
        assert "[hub] stopped" in out and "Traceback" not in out, out
        assert not [p for p in pids if _alive(p)], "the hub or its proxy survived"
        assert hubtools.port_free(hub_port) and hubtools.port_free(proxy_port)
    finally:
        for pid in [driver.pid, *pids]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_an_account_name_that_is_no_student_id_is_refused_before_any_set_up(tmp_path):
    """Hub user names become student ids (folders, exchange names, CSV cells)."""
    if os.geteuid() != 0:
        pytest.fail("make hub runs as root", pytrace=False)
    st = hubtools.Settings(state=tmp_path / "state", shared=tmp_path / "shared", courses=[
        hubtools.HubCourse("c", grader="grader-c", staff=[], students=["student1", "=1+2"],
                           ports={})])
    with pytest.raises(hubtools.HubError, match="account '=1\\+2' is not a student id") as exc:
        hubtools.prepare(st)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "state").exists() and not (tmp_path / "shared").exists()


def test_a_release_not_open_yet_is_refused_in_one_line(tmp_path):
    """make hub hands out only what c.RnnCourse.schedule has opened (tests/test_schedule.py)."""
    from autograder.course import Course

    schedule = Course(REPO).schedule
    st = hubtools.Settings(now=schedule["bptt"].opens)
    assert hubtools.open_assignments(st, ["rnn_cell", "bptt"]) == ["rnn_cell", "bptt"]
    st.now = schedule["bptt"].opens - timedelta(seconds=1)
    with pytest.raises(hubtools.HubError, match="bptt opens at .* not released before"):
        hubtools.open_assignments(st, ["rnn_cell", "bptt"])
    assert hubtools.open_assignments(st) == ["rnn_cell"]


# --------------------------------------------------------------------------- the configuration
def _two_courses(tmp_path: Path, exchange: str = "file") -> hubtools.Settings:
    """Two courses as `make hub` runs them: a student in both, a TA of both (no hub started;
    the graders are accounts every machine has)."""
    return hubtools.Settings(
        state=tmp_path / "state", shared=tmp_path / "shared", exchange=exchange, courses=[
            hubtools.HubCourse("course-a", grader="nobody", staff=["inst-a", "ta"],
                               students=["s-both", "s-a"],
                               ports={"formgrader": 20001, "grading_service": 20002}),
            hubtools.HubCourse("course-b", grader="daemon", staff=["inst-b", "ta"],
                               students=["s-both"],
                               ports={"formgrader": 20003, "grading_service": 20004})])


def _hub_config(st: hubtools.Settings):
    """tools/hub/jupyterhub_config.py as JupyterHub loads it, with the settings.json written."""
    from traitlets.config.loader import PyFileConfigLoader

    path = hubtools.write_config(st)
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def _nbgrader_config(env: dict, monkeypatch):
    """The hub's nbgrader_config.py as a server with environment ``env`` reads it."""
    from traitlets.config.loader import PyFileConfigLoader

    for var in [v for v in os.environ if v.startswith(("RNN_COURSE_", "RNN_EXCHANGE_"))]:
        monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return PyFileConfigLoader("nbgrader_config.py", path=str(hubtools.HERE)).load_config()


@pytest.mark.parametrize("exchange", hubtools.EXCHANGES)
def test_each_course_has_its_groups_roles_services_and_nothing_of_the_other(tmp_path, exchange):
    from jupyterhub.scopes import _check_scopes_exist

    from autograder import roles

    st = _two_courses(tmp_path, exchange)
    c = _hub_config(st)
    a, b = st.courses
    assert c.Authenticator.allowed_users == {"inst-a", "inst-b", "ta", "s-both", "s-a"}
    assert c.JupyterHub.load_groups == {
        roles.staff_group("course-a"): {"users": ["inst-a", "ta"]},
        roles.student_group("course-a"): {"users": ["s-both", "s-a"]},
        roles.staff_group("course-b"): {"users": ["inst-b", "ta"]},
        roles.student_group("course-b"): {"users": ["s-both"]},
    }
    by_name = {r["name"]: r for r in c.JupyterHub.load_roles}
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"course-a", roles.grading_service("course-a"),
                             "course-b", roles.grading_service("course-b")}
    assert len({s["url"] for s in services.values()}) == 4
    for course, other in ((a, b), (a, b)[::-1]):
        role = by_name[roles.staff_group(course.id)]
        assert role["groups"] == [roles.staff_group(course.id)]
        _check_scopes_exist(role["scopes"])  # JupyterHub's own check of each scope
        mine = {course.id, course.grading_service}
        assert {f"access:services!service={n}" for n in mine} <= set(role["scopes"])
        assert not [s for s in role["scopes"] if s.endswith(("=" + other.id,
                                                             "=" + other.grading_service))]
        for name in mine:  # both services: the course's grader, folder and course id
            service = services[name]
            assert service["user"] == course.grader
            assert service["cwd"] == str(st.course_dir(course))
            assert service["environment"]["RNN_COURSE_ID"] == course.id
            role_of = "formgrader" if name == course.id else "grading_service"
            assert service["url"] == f"http://127.0.0.1:{course.ports[role_of]}"
    # no role lets students in: only staff groups hold roles, besides the servers' own
    assert [r["name"] for r in c.JupyterHub.load_roles if "groups" in r] \
        == [roles.staff_group("course-a"), roles.staff_group("course-b")]
    env = c.Spawner.environment
    assert "RNN_COURSE_ID" not in env  # users' servers list every course of their groups
    service_env = {n: services[n]["environment"] for n in services}
    if exchange == "file":
        assert not [e for e in [env, *service_env.values()] if "RNN_COURSE_EXCHANGE_MODE" in e
                    or "RNN_EXCHANGE_URL" in e]
        assert {e["RNN_COURSE_EXCHANGE"] for e in [env, *service_env.values()]} \
            == {str(st.exchange_root)}
        assert not [r for r in c.JupyterHub.load_roles if "services" in r]
    else:  # users' servers are told of no folder; each grader serves one of its own
        assert "RNN_COURSE_EXCHANGE" not in env and "RNN_COURSE_EXCHANGE_MODE" not in env
        assert not [v for v in env.values() if v.startswith(str(st.state))
                    and not v.startswith(str(st.jupyter_config))]
        assert env["RNN_EXCHANGE_URL"].format(course_id="course-b") \
            == f"{st.url}/services/{roles.grading_service('course-b')}/"
        assert env["RNN_EXCHANGE_COURSES"] == "course-a,course-b"
        for course in (a, b):
            for name in (course.id, course.grading_service):  # the service's side
                assert service_env[name]["RNN_COURSE_EXCHANGE"] == str(st.exchange_of(course))
                assert service_env[name]["RNN_COURSE_EXCHANGE_MODE"] == "http"
                assert "RNN_EXCHANGE_URL" not in service_env[name]
            # the grading service reads its callers' groups, and may do nothing more
            assert by_name[course.grading_service] == {
                "name": course.grading_service, "services": [course.grading_service],
                "scopes": ["read:users:groups"]}
        assert st.exchange_of(a) != st.exchange_of(b)


@pytest.mark.parametrize("exchange", hubtools.EXCHANGES)
def test_the_file_exchange_folder_exists_only_when_configured(tmp_path, exchange):
    st = _two_courses(tmp_path, exchange)
    hubtools.ensure_server_config(st)
    assert (st.jupyter_config / "nbgrader_config.py").is_file()
    if exchange == "file":
        assert stat.S_IMODE(os.stat(st.exchange_root).st_mode) == 0o1777
    else:
        assert not st.exchange_root.exists()
    with pytest.raises(hubtools.HubError, match="exchange 'nfs': one of file, http"):
        hubtools.ensure_server_config(dataclasses.replace(st, exchange="nfs"))


def test_servers_read_their_courses_from_the_hub_and_services_their_own(tmp_path, monkeypatch):
    from nbgrader.auth import Authenticator, JupyterHubAuthPlugin

    from rnn_exchange.plugin import factory_config

    st = _two_courses(tmp_path)
    user = _nbgrader_config(hubtools.users_env(st), monkeypatch)
    assert "course_id" not in user.CourseDirectory  # every course of the user's groups
    assert isinstance(Authenticator(config=user).plugin, JupyterHubAuthPlugin)
    assert user.Exchange.path_includes_course is True  # courses share assignment names
    assert user.Exchange.root == str(st.exchange_root)
    service = _nbgrader_config(hubtools.course_env(st, st.courses[1]), monkeypatch)
    assert service.CourseDirectory.course_id == "course-b"
    assert "plugin_class" not in service.Authenticator
    http = _nbgrader_config(hubtools.users_env(_two_courses(tmp_path, "http")), monkeypatch)
    assert "root" not in http.Exchange
    assert {trait: http.ExchangeFactory[trait] for trait in factory_config()} == factory_config()
    assert http.HttpExchange.path_includes_course is True
    assert isinstance(Authenticator(config=http).plugin, JupyterHubAuthPlugin)
    http_st = _two_courses(tmp_path, "http")
    service = _nbgrader_config(hubtools.course_env(http_st, http_st.courses[0]), monkeypatch)
    assert "ExchangeFactory" not in service  # a course's own services: its folder's config
    assert service.Exchange.root == str(http_st.exchange_of(http_st.courses[0]))


def _fake_hub_api(groups: dict[str, list[str]]):
    """The one hub API call of nbgrader's JupyterHub auth plugin: GET /users/<name>."""
    import http.server
    import json
    import threading

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            name = self.path.rsplit("/", 1)[-1]
            ok = self.path.startswith("/users/") and name in groups
            body = json.dumps({"name": name, "groups": groups.get(name, [])}).encode()
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _exchange_app(config, kind: str, course_id: str = "", assignment_id: str = ""):
    """nbgrader's exchange class ``kind`` (List, FetchAssignment, ...) as a server runs it."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    config.CourseDirectory.course_id = course_id
    config.CourseDirectory.assignment_id = assignment_id
    return getattr(ExchangeFactory(config=config), kind)(
        coursedir=CourseDirectory(config=config), authenticator=Authenticator(config=config),
        config=config)


def test_the_file_exchange_lists_and_fetches_only_the_users_courses(tmp_path, monkeypatch):
    """The file exchange as the hub configures users' servers: each lists and fetches the
    courses of its hub groups (nbgrader's JupyterHub auth plugin), into a folder per course."""
    from nbgrader.exchange import ExchangeError

    from autograder import roles

    st = _two_courses(tmp_path)
    a, b = st.courses
    for course in (a, b):  # what `nbgrader release_assignment rnn_cell` leaves
        out = st.exchange_root / course.id / "outbound" / "rnn_cell"
        out.mkdir(parents=True)
        (out / "rnn_cell.ipynb").write_text(f'{{"course": "{course.id}"}}')
    groups = {u: [roles.student_group(c.id) for c in st.courses if u in c.students]
              for u in st.students}
    api = _fake_hub_api(groups)
    try:
        for user in st.students:
            home = tmp_path / user
            home.mkdir()
            monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{api.server_port}")
            monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "token-of-" + user)
            monkeypatch.setenv("JUPYTERHUB_USER", user)
            config = _nbgrader_config(hubtools.users_env(st), monkeypatch)
            config.Exchange.assignment_dir = str(home)
            mine = [c.id for c in st.courses if user in c.students]
            listed = _exchange_app(config, "List").start()
            assert sorted(x["course_id"] for x in listed) == mine, user
            for course in st.courses:
                fetch = _exchange_app(config, "FetchAssignment", course.id, "rnn_cell")
                if course.id in mine:
                    fetch.start()
                    got = home / course.id / "rnn_cell" / "rnn_cell.ipynb"
                    assert course.id in got.read_text()
                else:
                    with pytest.raises(ExchangeError):
                        fetch.start()
            assert sorted(p.name for p in home.iterdir()) == mine
    finally:
        api.shutdown()
