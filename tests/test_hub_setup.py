"""``make hub``'s set-up and shutdown (tools/hub/hub.py), without a real JupyterHub.

The browser test (tests/test_hub.py) runs the whole hub; these check its safety
nets one by one: system tools found by absolute path whatever PATH says, a
checkout that other accounts can read made private, and a stop that no second
signal interrupts (SIGINT, SIGTERM, both, twice, to the whole process group as
systemd sends), leaving no process and no bound port.
"""

from __future__ import annotations

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
    hubtools.protect_checkout(hubtools.Settings(repo=repo, students=[]))  # nobody to hide it from
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
st = hub.Settings(state=state, instructors=[], grader="root", students=[],
                  ports={"hub": int(hub_port), "proxy_api": int(proxy_port)})
def start(st):
    proc = subprocess.Popen([sys.executable, "-c", fake, str(state / "pids"), hub_port,
                             proxy_port], start_new_session=True)
    h = hub.Hub(st, proc, state / "log")
    while not (state / "pids").is_file() or len(h.bound_ports()) < 2:
        time.sleep(0.05)
    h.track()
    return h
hub.prepare = lambda st: ({"student": "pw"}, ["rnn_cell"])
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
    st = hubtools.Settings(state=tmp_path / "state", shared=tmp_path / "shared",
                           students=["student1", "=1+2"])
    with pytest.raises(hubtools.HubError, match="account '=1\\+2' is not a student id") as exc:
        hubtools.prepare(st)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "state").exists() and not (tmp_path / "shared").exists()


def test_a_release_not_open_yet_is_refused_in_one_line(tmp_path):
    """make hub hands out only what c.RnnCourse.schedule has opened (tests/test_schedule.py)."""
    from autograder.course import Course

    schedule = Course(REPO).schedule
    st = hubtools.Settings(release=["rnn_cell", "bptt"], now=schedule["bptt"].opens)
    assert hubtools.open_assignments(st) == ["rnn_cell", "bptt"]
    st.now = schedule["bptt"].opens - timedelta(seconds=1)
    with pytest.raises(hubtools.HubError, match="bptt opens at .* not released before"):
        hubtools.open_assignments(st)
    st.release = None
    assert hubtools.open_assignments(st) == ["rnn_cell"]
