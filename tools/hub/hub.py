"""A real JupyterHub serving this course on 127.0.0.1: ``make hub``.

    python tools/hub/hub.py up [--state DIR] [--exchange file|http]   # set up, start, wait

Run as root (it makes Unix accounts and runs servers as them).  What it sets
up, each step idempotent (``make hub`` twice works):

- ``<shared>/venv``: jupyterhub, jupyterlab, nbgrader and the course's pinned
  dependencies (pyproject.toml), in a venv of Debian's /usr/bin/python3 (a venv
  of a python under a private home would be unusable by the students);
  ``rnn_course`` and ``rnn_exchange`` alone are put on its path (``<shared>/lib``):
  students import them, and never see ``autograder/`` (whose ``reference.py`` holds
  the solutions);
- ``<shared>/proxy``: configurable-http-proxy from npm (tools/hub/package.json);
- the accounts: each course's staff (instructors, TAs), students and grader
  account, with fresh random passwords, homes mode 0700;
- for each course of ``Settings.courses`` (:class:`HubCourse`; `make hub`:
  two, from this repository's assignments), ``<state>/courses/<id>``: a copy
  of this checkout owned by its grader, mode 0700, with the assignments open by
  ``c.RnnCourse.schedule`` handed out (with the file exchange, to
  ``<state>/exchange``, mode 1777); its grading service releases each later
  one when it opens (``serve --release-on-open``);
- ``<state>/hub``: tools/hub/jupyterhub_config.py and the settings.json it reads;
  the hub runs two services per course as its grader account: the formgrader
  (``/services/<id>/``) and the grading service ``python -m autograder serve``
  (``/services/<id>-grader/``); the groups ``nbgrader-<id>`` and
  ``formgrade-<id>`` (autograder/roles.py) say who is in which course.

The same functions set up and stop the hub of tests/test_hub.py (other
accounts, another state folder, free ports).  It runs with the checkout's
.venv (Python 3.11+: tomllib; the assignment list through autograder.course)
and imports nothing of the hub's venv.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lti  # noqa: E402  (tools/hub/lti.py)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))
from autograder import roles  # noqa: E402  (the names of groups and services)

# The Python the hub venv is built from: Debian's, world-readable (not pyenv's under /root).
BASE_PYTHON = "/usr/bin/python3"
SHARED = Path(os.environ.get("RNN_HUB_SHARED", "/srv/rnn-course-hub"))
STATE = Path(os.environ.get("RNN_HUB_STATE", "/srv/rnn-course-hub"))
# The hub's own ports; each course has its formgrader's and grading service's (COURSE_PORTS).
HUB_PORTS = {"hub": 18000, "proxy_api": 18001, "hub_api": 18081}
COURSE_PORTS = ("formgrader", "grading_service")
# How students' servers and the grading services exchange assignments: "file" is
# nbgrader's shared folder (mode 1777, in every server); "http" is the grading
# service's exchange over HTTP (no folder shared with students' servers).
EXCHANGES = ("file", "http")
# nbgrader's lab extensions: all on once installed; students keep only the Assignments tab.
INSTRUCTOR_LAB_EXTENSIONS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                             "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",
                                "nbgrader.server_extensions.course_list")


# Where system tools are looked for, whatever PATH says: `env -i`, some `su` and cron
# give a PATH without /usr/sbin, where useradd and chpasswd live.
# on the students' path (<shared>/lib), and nothing else of the checkout: never autograder/
STUDENT_PACKAGES = ("rnn_course", "rnn_exchange")
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
SYSTEM_PATH = ":".join(SYSTEM_DIRS)


class HubError(Exception):
    """A set-up step failed: one line saying which and why."""


def tool(name: str) -> str:
    """The absolute path of system tool ``name`` (in :data:`SYSTEM_DIRS`, never by PATH)."""
    for folder in SYSTEM_DIRS:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise HubError(f"{name} is missing (looked in {':'.join(SYSTEM_DIRS)}): `make hub` needs it "
                   "(as root: tools/install-system-deps.sh)")


@dataclasses.dataclass
class HubCourse:
    """One course of the hub: its id, grader account, people and ports (its one home).

    Its staff (instructors and teaching assistants) and students are hub groups
    named by :mod:`autograder.roles`; its formgrader service is named like the
    course and its grading service :func:`autograder.roles.grading_service`.
    """

    id: str
    grader: str
    staff: list[str]
    students: list[str]
    ports: dict[str, int]  # a port for each of COURSE_PORTS
    # assignments to release (None: every one open by c.RnnCourse.schedule); each must be open
    release: list[str] | None = None

    @property
    def grading_service(self) -> str:
        return roles.grading_service(self.id)


def default_courses() -> list[HubCourse]:
    """`make hub`'s two courses, made from this repository's assignments.

    student3 is enrolled in both; ta1 is a teaching assistant of both.
    """
    return [
        HubCourse("rnn-course", grader="grader-rnn-course", staff=["instructor1", "ta1"],
                  students=["student1", "student2", "student3"],
                  ports={"formgrader": 19999, "grading_service": 19998}),
        HubCourse("rnn-course-b", grader="grader-rnn-course-b", staff=["instructor2", "ta1"],
                  students=["student3", "student4"],
                  ports={"formgrader": 19997, "grading_service": 19996}),
    ]


@dataclasses.dataclass
class Settings:
    """Where a hub lives, its courses, accounts and ports."""

    state: Path = STATE
    shared: Path = SHARED
    repo: Path = REPO
    courses: list[HubCourse] = dataclasses.field(default_factory=default_courses)
    ports: dict[str, int] = dataclasses.field(default_factory=lambda: dict(HUB_PORTS))
    # the time the schedule is read at (naive UTC; None: now): tests open later assignments
    now: dt.datetime | None = None
    # arguments of `python -m autograder serve`, the grading services
    serve_args: list[str] = dataclasses.field(default_factory=list)
    exchange: str = "file"  # one of EXCHANGES
    # "password" (PAM) or "lti" (an LMS's LTI 1.3 launch, over HTTPS: tools/hub/lti.py)
    login: str = "password"
    lti_platform: dict | None = None  # an LMS's registration (the test LMS's); else c.LtiPlatform
    lti: dict | None = None  # settings.json's "lti" entry (lti.prepare)
    lti_tool_jwk: dict | None = None  # the tool's public key (lti.prepare)

    @property
    def venv(self) -> Path:
        return self.shared / "venv"

    @property
    def lib(self) -> Path:
        return self.shared / "lib"

    @property
    def proxy(self) -> Path:
        return self.shared / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

    def course_dir(self, course: HubCourse) -> Path:
        """The grader's copy of the course folder (mode 0700)."""
        return self.state / "courses" / course.id

    @property
    def exchange_root(self) -> Path:
        """The file exchange's folder (mode 1777; only with ``exchange == "file"``)."""
        return self.state / "exchange"

    def exchange_of(self, course: HubCourse) -> Path:
        """The exchange root ``course``'s grader releases to: the shared folder of the file
        exchange, or with "http" a folder of its grader's own (mode 0700) that its grading
        service serves."""
        if self.exchange == "file":
            return self.exchange_root
        return self.state / "exchanges" / course.id

    @property
    def exchange_url(self) -> str:
        """The HTTP exchange's URL, through the hub, with ``{course_id}`` in it."""
        return roles.exchange_url(self.url)

    @property
    def jupyter_config(self) -> Path:
        return self.state / "etc" / "jupyter"

    @property
    def hub_dir(self) -> Path:
        return self.state / "hub"

    @property
    def url(self) -> str:
        scheme = "https" if self.login == "lti" else "http"
        return f"{scheme}://127.0.0.1:{self.ports['hub']}"

    @property
    def staff(self) -> list[str]:
        """Every course's instructors and teaching assistants, once each."""
        return list(dict.fromkeys(u for c in self.courses for u in c.staff))

    @property
    def students(self) -> list[str]:
        """Every course's students, once each."""
        return list(dict.fromkeys(u for c in self.courses for u in c.students))

    @property
    def graders(self) -> list[str]:
        return [c.grader for c in self.courses]

    @property
    def accounts(self) -> list[str]:
        return list(dict.fromkeys([*self.staff, *self.graders, *self.students]))

    def all_ports(self) -> dict[str, int]:
        """Every port of the hub, as ``role`` or ``course role`` -> port."""
        return {**self.ports, **{f"{c.id} {role}": port for c in self.courses
                                 for role, port in c.ports.items()}}


def log(msg: str) -> None:
    print(f"[hub] {msg}", flush=True)


def run(argv: list[str], what: str, *, user: str | None = None, env: dict | None = None,
        cwd: Path | None = None, input: str | None = None) -> str:
    """Run ``argv`` (as ``user``); a failure is a HubError naming ``what`` with the output's end."""
    if user is not None:
        argv = [tool("runuser"), "-u", user, "--", tool("env"), "-i",
                *[f"{k}={v}" for k, v in env.items()], *argv]
        env = None
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, input=input)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise HubError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))
    return proc.stdout


def _chmod_tree_readable(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


# --------------------------------------------------------------------------- #
# software: the hub venv and the proxy
# --------------------------------------------------------------------------- #
def requirements(repo: Path = REPO) -> list[str]:
    """The course's pinned dependencies (pyproject.toml: jupyterhub and jupyterlab among them)."""
    with open(repo / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def ensure_venv(st: Settings) -> None:
    """The hub venv: Debian's python, the course's dependencies, STUDENT_PACKAGES on its
    path."""
    if not os.access(BASE_PYTHON, os.X_OK):
        raise HubError(f"{BASE_PYTHON} is missing: the hub venv needs a system Python that every "
                       "account can run (apt-get install python3-venv)")
    reqs = requirements(st.repo)
    stamp = st.venv / ".rnn-course-stamp"
    digest = hashlib.sha256("\n".join(reqs).encode()).hexdigest()
    python = st.venv / "bin" / "python"
    if not (stamp.is_file() and stamp.read_text() == digest and python.exists()):
        log(f"installing jupyterhub, jupyterlab and the course's dependencies in {st.venv} ...")
        st.shared.mkdir(parents=True, exist_ok=True)
        os.chmod(st.shared, 0o755)
        if not python.exists():
            run([BASE_PYTHON, "-m", "venv", str(st.venv)], "python3 -m venv")
        run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], "pip upgrade")
        run([str(python), "-m", "pip", "install", "--quiet", *reqs], "pip install (hub venv)")
        run([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
             "--display-name", "Python 3 (rnn-course)"], "ipykernel install")
        _student_extensions(st)
        stamp.write_text(digest)
    # rnn_course for the students' kernels, rnn_exchange (the HTTP exchange's nbgrader
    # plugin) for their servers (refreshed every time: they follow the checkout)
    for package in STUDENT_PACKAGES:
        target = st.lib / package
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(st.repo / package, target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _chmod_tree_readable(st.lib)
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               "locate site-packages").strip()
    Path(site, "rnn_course.pth").write_text(f"{st.lib}\n")


def _student_extensions(st: Settings) -> None:
    """nbgrader's extensions as students get them: the Assignments tab only (sys-prefix)."""
    env = dict(os.environ, PATH=f"{st.venv / 'bin'}:{SYSTEM_PATH}")
    jupyter = str(st.venv / "bin" / "jupyter")
    for ext in INSTRUCTOR_SERVER_EXTENSIONS:
        run([jupyter, "server", "extension", "disable", "--sys-prefix", ext],
            f"disable {ext}", env=env)
    for ext in INSTRUCTOR_LAB_EXTENSIONS:
        run([jupyter, "labextension", "disable", "--level=sys_prefix", ext],
            f"disable {ext}", env=env)
        # JupyterLab >= 4.1 locks what it disables at this level: instructors enable it per user
        run([jupyter, "labextension", "unlock", "--level=sys_prefix", ext],
            f"unlock {ext}", env=env)
    settings = st.venv / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "overrides.json", settings / "overrides.json")  # no news pop-up


def ensure_proxy(st: Settings) -> None:
    """configurable-http-proxy, pinned in tools/hub/package.json, installed with npm."""
    folder = st.proxy.parent.parent.parent
    spec = (HERE / "package.json").read_text()
    if st.proxy.exists() and (folder / "package.json").is_file() \
            and (folder / "package.json").read_text() == spec:
        return
    try:
        npm = tool("npm")
        tool("node")
    except HubError:
        raise HubError("npm is missing: JupyterHub's proxy (configurable-http-proxy) comes from "
                       "npm; as root run tools/install-system-deps.sh, or apt-get install npm"
                       ) from None
    log(f"installing configurable-http-proxy with npm in {folder} ...")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(spec)
    run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error"],
        "npm install configurable-http-proxy", env=dict(os.environ, PATH=SYSTEM_PATH))
    _chmod_tree_readable(folder)
    for exe in (folder / "node_modules" / ".bin").iterdir():
        os.chmod(exe.resolve(), 0o755)


# --------------------------------------------------------------------------- #
# accounts, course, exchange
# --------------------------------------------------------------------------- #
def home_of(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def server_env(st: Settings) -> dict[str, str]:
    """What every server of the hub (users' and the services') has in its environment:
    the hub's jupyter config folder (its nbgrader_config.py), and the file exchange's
    folder when the hub uses it."""
    env = {"PATH": f"{st.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
           "JUPYTER_CONFIG_PATH": str(st.jupyter_config)}
    if st.exchange == "file":
        env["RNN_COURSE_EXCHANGE"] = str(st.exchange_root)
    return env


def users_env(st: Settings) -> dict[str, str]:
    """The environment of users' servers (students, staff): with "http", the exchange's
    URL and the hub's courses (rnn_exchange.plugin.configure reads them), no folder."""
    env = server_env(st)
    if st.exchange == "http":
        env.update(RNN_EXCHANGE_URL=st.exchange_url,
                   RNN_EXCHANGE_COURSES=",".join(c.id for c in st.courses))
    return env


def course_env(st: Settings, course: HubCourse) -> dict[str, str]:
    """The environment of a course's grader: its services and the set-up's commands.

    The course id (read by the course folder's nbgrader_config.py), its
    exchange root, and the course folder on the path (the course's exchange
    plugins are in it).
    """
    env = {**server_env(st), "RNN_COURSE_ID": course.id,
           "RNN_COURSE_EXCHANGE": str(st.exchange_of(course)),
           "PYTHONPATH": str(st.course_dir(course))}
    if st.exchange == "http":  # the course's nbgrader_config.py: its service serves it
        env["RNN_COURSE_EXCHANGE_MODE"] = "http"
    return env


def service_scopes(st: Settings) -> list[str]:
    """What a grading service may ask the hub: with "http", the groups of its callers
    (who is a student or staff of its course)."""
    return ["read:users:groups"] if st.exchange == "http" else []


def user_env(st: Settings, user: str, **extra: str) -> dict[str, str]:
    return {"HOME": str(home_of(user)), "USER": user, "LANG": "C.UTF-8", **server_env(st),
            **extra}


def ensure_accounts(st: Settings) -> dict[str, str]:
    """Every account exists with a home of mode 0700 and a fresh random password."""
    passwords = {}
    for user in st.accounts:
        try:
            pwd.getpwnam(user)
        except KeyError:
            run([tool("useradd"), "--create-home", "--shell", "/bin/bash", user], f"useradd {user}")
        os.chmod(home_of(user), 0o700)  # Debian's useradd makes homes world-readable
        passwords[user] = secrets.token_urlsafe(9)
    # the graders never log in
    logins = {u: p for u, p in passwords.items() if u not in st.graders}
    run([tool("chpasswd")], "chpasswd", input="".join(f"{u}:{p}\n" for u, p in passwords.items()))
    _jupyter_user_config(st)
    return logins


def _jupyter_user_config(st: Settings) -> None:
    """~/.jupyter of the graders (formgrader, course list) and the staff (course list).

    Copied from tools/hub/jupyter/<role>/: the server extensions written by hand
    (`jupyter server extension enable --user` cannot find nbgrader's), the lab
    extensions as `jupyter labextension enable --level=user` writes them.
    """
    kinds = {**{u: "instructor" for u in st.staff}, **{g: "grader" for g in st.graders}}
    for user, role in kinds.items():
        entry = pwd.getpwnam(user)
        config = Path(entry.pw_dir) / ".jupyter"
        shutil.copytree(HERE / "jupyter" / role, config, dirs_exist_ok=True)
        for root, dirs, files in os.walk(config):
            for name in [".", *dirs, *files]:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def reachable_by_others(path: Path) -> bool:
    """Whether an account other than the owners can reach ``path``'s entries.

    True when every folder from ``/`` down to ``path`` lets its group or others
    through (execute bit) and ``path`` itself lets its group or others read or
    through: a student could then list and read ``source/`` or
    ``autograder/reference.py`` under it.
    """
    path = Path(os.path.abspath(path))
    for folder in [*reversed(path.parents), path]:
        if not os.stat(folder).st_mode & 0o011:
            return False
    return bool(os.stat(path).st_mode & 0o055)


def protect_checkout(st: Settings) -> None:
    """Make the checkout unreadable by other accounts when students have accounts here.

    ``source/`` and ``autograder/reference.py`` hold the solutions: a checkout in a
    world-readable place (a 0755 clone) would hand them to every student of the
    hub.  Its mode loses the group and other bits, said in one line; everything
    the hub uses from it is copied as root (the course copy is the grader's, 0700).
    """
    if not st.students or not reachable_by_others(st.repo):
        return
    mode = stat.S_IMODE(os.stat(st.repo).st_mode)
    os.chmod(st.repo, mode & 0o700)
    log(f"{st.repo} was readable by other accounts (mode {mode:04o}) and students have "
        f"accounts here: made it {mode & 0o700:04o} (source/ and autograder/reference.py hold "
        "the solutions)")


def copy_course(st: Settings, course: HubCourse) -> None:
    """This checkout's files (tracked and not ignored) into the course's grader's folder."""
    listing = subprocess.run([tool("git"), "-C", str(st.repo), "ls-files", "-z", "--cached",
                              "--others", "--exclude-standard"], capture_output=True, text=True)
    if listing.returncode != 0:
        raise HubError(f"{st.repo} is not a git checkout: `make hub` copies the course's "
                       "tracked files")
    folder = st.course_dir(course)
    for parent in (st.state, folder.parent):
        parent.mkdir(parents=True, exist_ok=True)
        os.chmod(parent, 0o755)
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o700)  # before a file is copied in: source/ holds the solutions
    for rel in filter(None, listing.stdout.split("\0")):
        src = st.repo / rel
        if src.is_file():
            dst = folder / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    grader = pwd.getpwnam(course.grader)
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), grader.pw_uid, grader.pw_gid)
    os.chown(folder, grader.pw_uid, grader.pw_gid)
    os.chmod(folder, 0o700)  # source/ holds the solutions


def open_assignments(st: Settings, release: list[str] | None = None) -> list[str]:
    """The assignments to hand out: open at ``st.now`` by ``c.RnnCourse.schedule`` (the
    schedule validated: each opens once the previous one is due), in course order.

    ``release`` (a course's, None: every open one): an assignment named there that is
    not open yet is a HubError: a later notebook ships working versions of earlier
    graded functions.
    """
    from autograder.course import Course
    from autograder.errors import UsageError

    course = Course(st.repo)
    try:
        schedule = course.schedule
        opened = course.open_assignments(st.now)
        for name in release or ():
            course.check_assignment(name)
    except UsageError as exc:
        raise HubError(str(exc)) from None
    if release is None:
        return opened
    for name in release:
        if name not in opened:
            raise HubError(f"{name} opens at {schedule[name].opens} UTC "
                           "(c.RnnCourse.schedule): not released before")
    return [a for a in opened if a in release]


def ensure_server_config(st: Settings) -> None:
    """nbgrader's configuration of every server (tools/hub/nbgrader_config.py), and the
    file exchange's folder (mode 1777) when the hub uses it."""
    if st.exchange not in EXCHANGES:
        raise HubError(f"exchange {st.exchange!r}: one of {', '.join(EXCHANGES)}")
    if st.exchange == "file":
        st.exchange_root.mkdir(parents=True, exist_ok=True)
        os.chmod(st.exchange_root, 0o1777)
    st.jupyter_config.mkdir(parents=True, exist_ok=True)
    os.chmod(st.state / "etc", 0o755)
    os.chmod(st.jupyter_config, 0o755)
    shutil.copy(HERE / "nbgrader_config.py", st.jupyter_config / "nbgrader_config.py")
    os.chmod(st.jupyter_config / "nbgrader_config.py", 0o644)


def release(st: Settings, course: HubCourse) -> list[str]:
    """Every wanted assignment of ``course`` built and handed out by its grader."""
    wanted = open_assignments(st, course.release)
    if not wanted:
        raise HubError("no assignment is open yet (c.RnnCourse.schedule in nbgrader_config.py)")
    folder = st.course_dir(course)
    if st.exchange == "http":  # the grader's own exchange root, served by its grading service
        root = st.exchange_of(course)
        root.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(root.parent, 0o755)
        root.mkdir(exist_ok=True)
        grader = pwd.getpwnam(course.grader)
        os.chown(root, grader.pw_uid, grader.pw_gid)
        os.chmod(root, 0o700)
    # what earlier runs released (both steps done) in this state folder, and from which
    # source: an assignment whose source notebook changed since is released again
    done_file = st.state / f"released-{course.id}.json"
    done = json.loads(done_file.read_text()) if done_file.is_file() else {}
    if not isinstance(done, dict) or done.get("exchange") != st.exchange:
        done = {"exchange": st.exchange}  # another exchange: nothing of it handed out yet
    digests = {a: source_digest(folder, a) for a in wanted}
    todo = [a for a in wanted if done.get(a) != digests[a]]
    env = user_env(st, course.grader, **course_env(st, course))
    if todo:
        # release/ rebuilt and checked for leaks, the gradebook told of the assignments
        log(f"{course.id}: python -m autograder release {' '.join(todo)} ...")
        run(["python", "-m", "autograder", "release", *todo], "python -m autograder release",
            user=course.grader, env=env, cwd=folder)
    for name in todo:
        again = name in done or (st.exchange_of(course) / course.id / "outbound" / name).is_dir()
        log(f"{course.id}: nbgrader release_assignment {name}"
            f"{' --force (its source changed)' if again else ''} ...")
        run(["nbgrader", "release_assignment", name, *(["--force"] if again else [])],
            f"nbgrader release_assignment {name}", user=course.grader, env=env, cwd=folder)
        done[name] = digests[name]
        done_file.write_text(json.dumps(done, indent=1, sort_keys=True))
    return wanted


def source_digest(folder: Path, assignment: str) -> str:
    """sha256 of a course folder's source notebook of ``assignment`` ("" when it is missing)."""
    path = folder / "source" / assignment / f"{assignment}.ipynb"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


# --------------------------------------------------------------------------- #
# the hub's configuration, start and stop
# --------------------------------------------------------------------------- #
def hub_settings(st: Settings) -> dict:
    """What tools/hub/jupyterhub_config.py reads (``settings.json``): paths, ports, who
    logs in, every server's environment, and each course's groups, accounts and services."""
    return {
        "venv": str(st.venv), "proxy": str(st.proxy), "hub_dir": str(st.hub_dir),
        "ports": st.ports, "users": [*st.staff, *st.students], "users_env": users_env(st),
        "courses": [{
            "id": c.id,
            "staff_group": roles.staff_group(c.id), "staff": c.staff,
            "student_group": roles.student_group(c.id), "students": c.students,
            "grader": c.grader, "grader_home": str(home_of(c.grader)),
            "dir": str(st.course_dir(c)), "env": course_env(st, c),
            # nbgrader's formgrader, named like the course (its course list links there)
            "formgrader": {"name": c.id, "port": c.ports["formgrader"]},
            # the service hands out each later assignment when it opens (c.RnnCourse.schedule)
            "grading_service": {"name": c.grading_service, "port": c.ports["grading_service"],
                                "args": ["--release-on-open", *st.serve_args],
                                "scopes": service_scopes(st)},
        } for c in st.courses],
    }


def write_config(st: Settings) -> Path:
    st.hub_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(st.hub_dir, 0o700)  # cookie secret, hub database
    settings = hub_settings(st)
    if st.lti:
        settings["lti"] = st.lti
    (st.hub_dir / "settings.json").write_text(json.dumps(settings, indent=2))
    shutil.copy(HERE / "jupyterhub_config.py", st.hub_dir / "jupyterhub_config.py")
    return st.hub_dir / "jupyterhub_config.py"


def prepare(st: Settings) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every set-up step; the accounts' passwords (the graders' left out), and what each
    course released."""
    if os.geteuid() != 0:
        raise HubError("run as root: the hub makes Unix accounts and runs servers as them")
    from autograder.course import student_id_problem

    for user in st.accounts:  # a user name becomes a student id: folders, CSV cells
        problem = student_id_problem(user)
        if problem is not None:
            raise HubError(f"account {problem}")
    protect_checkout(st)
    t = time.monotonic()
    ensure_proxy(st)
    ensure_venv(st)
    log(f"software ready ({time.monotonic() - t:.1f} s)")
    t = time.monotonic()
    passwords = ensure_accounts(st)
    for course in st.courses:
        copy_course(st, course)
    if st.login == "lti":  # the LMS's course is the hub's first course (tools/hub/lti.py)
        first = st.courses[0]
        grader = dict(user=first.grader, cwd=st.course_dir(first),
                      env=user_env(st, first.grader, PYTHONPATH=str(st.course_dir(first))))
        try:
            st.lti_tool_jwk = lti.prepare(st, st.lti_platform, lambda argv, what: run(
                argv, what, **grader))
        except lti.LtiError as exc:
            raise HubError(str(exc)) from None
    log(f"accounts and course copies ready ({time.monotonic() - t:.1f} s)")
    ensure_server_config(st)
    t = time.monotonic()
    # each course by its own grader, in its own folder: side by side
    with concurrent.futures.ThreadPoolExecutor(max(1, len(st.courses))) as pool:
        jobs = {c.id: pool.submit(release, st, c) for c in st.courses}
    released = {course: job.result() for course, job in jobs.items()}
    said = "; ".join(f"{course} {' '.join(names)}" for course, names in released.items())
    log(f"released: {said} ({time.monotonic() - t:.1f} s)")
    write_config(st)
    return passwords, released


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(roles=tuple(HUB_PORTS)) -> dict[str, int]:
    """A free port on 127.0.0.1 for each of ``roles`` (tests: the hub's, or COURSE_PORTS)."""
    socks, ports = [], {}
    for role in roles:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports[role] = s.getsockname()[1]
    for s in socks:
        s.close()
    return ports


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def uid_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def pids_of(uids: set[int]) -> list[int]:
    """The processes that run as one of ``uids``."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and uid_of(int(p)) in uids]


def _signal(pids, sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids, timeout: float) -> list[int]:
    end = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < end:
        time.sleep(0.2)
        alive = [p for p in alive if Path(f"/proc/{p}").exists()
                 and _state(p) != "Z"]
    return alive


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


class Hub:
    """A running jupyterhub process (and everything it started)."""

    def __init__(self, st: Settings, proc: subprocess.Popen, log_path: Path):
        self.st, self.proc, self.log_path = st, proc, log_path
        # every process seen in the hub's tree (pid -> start time, against pid reuse):
        # a hub that dies leaves its children to init
        self.known: dict[int, int] = {}

    def track(self) -> None:
        for pid in descendants(self.proc.pid):
            self.known.setdefault(pid, start_time(pid))

    def _ours(self, uids: set[int]) -> list[int]:
        """Tracked processes still the same, and every process of the hub's accounts."""
        same = [p for p, t in self.known.items() if t is not None and start_time(p) == t]
        return sorted(set(same) | set(pids_of(uids)))

    @property
    def url(self) -> str:
        return self.st.url

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Services first (SIGTERM), then the hub; whatever is left of what it started is killed.

        What it started: its process tree (as tracked while it ran) and every process
        of the hub's accounts (made for it: their servers, the services' kernels).
        """
        if self.proc.poll() is None:
            self.track()
        uids = {pwd.getpwnam(u).pw_uid for u in self.st.accounts}
        grader_uids = {pwd.getpwnam(g).pw_uid for g in self.st.graders}
        # The services' servers ignore the hub's shutdown for 30 s: stop them first.
        services = [p for p in self._ours(uids) if uid_of(p) in grader_uids]
        _signal(services, signal.SIGTERM)
        _wait_gone(services, 10)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        left = _wait_gone(self._ours(uids), 5)
        _signal(left, signal.SIGKILL)
        _wait_gone(left, 5)
        end = time.monotonic() + 5
        while self.bound_ports() and time.monotonic() < end:
            time.sleep(0.2)
        if self.bound_ports():
            log(f"still bound after the stop: {', '.join(self.bound_ports())} (another "
                "program's?)")

    def bound_ports(self) -> list[str]:
        """The hub's ports still in use on 127.0.0.1, as ``role port``."""
        return [f"{role} {port}" for role, port in self.st.all_ports().items()
                if not port_free(port)]


def start(st: Settings, timeout: float = 90) -> Hub:
    """Start jupyterhub (its own session: Ctrl-C reaches only us) and wait for its login page."""
    for role, port in st.all_ports().items():
        if not port_free(port):
            raise HubError(f"port {port} ({role}) on 127.0.0.1 is in use: is another hub "
                           "running? (stop it, or free the port)")
    config = st.hub_dir / "jupyterhub_config.py"
    log_path = st.hub_dir / "jupyterhub.log"
    env = {"PATH": f"{st.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "HOME": "/root"}
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([str(st.venv / "bin" / "jupyterhub"), "-f", str(config)],
                                cwd=st.hub_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    hub = Hub(st, proc, log_path)
    try:
        return _wait_ready(hub, timeout)
    except BaseException:  # a HubError, or a stop signal while it starts: nothing is left
        hub.stop()
        raise


def _wait_ready(hub: Hub, timeout: float) -> Hub:
    st, proc = hub.st, hub.proc
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        hub.track()
        if proc.poll() is not None:  # what it had started (the proxy, a service) is stopped
            raise HubError(f"jupyterhub exited ({proc.returncode}); its log:\n{hub.log_tail()}")
        try:
            context = lti.ssl_context(st.lti["cert"]) if st.lti else None
            with urllib.request.urlopen(f"{st.url}/hub/login", timeout=2, context=context) as r:
                if r.status == 200:
                    return hub
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise HubError(f"jupyterhub did not serve {st.url}/hub/login in {timeout:.0f} s; its log:\n"
                   f"{hub.log_tail()}")


def what_of(st: Settings, user: str) -> str:
    """``user``'s part in each course, e.g. "staff of rnn-course, student of rnn-course-b"."""
    return ", ".join(f"{'staff' if user in c.staff else 'student'} of {c.id}"
                     for c in st.courses if user in c.staff or user in c.students)


def banner(st: Settings, passwords: dict[str, str], released: dict[str, list[str]]) -> str:
    width = max(len(u) for u in passwords)
    rows = "\n".join(f"    {u:<{width}}  {passwords[u]}  ({what_of(st, u)})" for u in passwords)
    courses = "\n".join(
        f"  {c.id}: released {', '.join(released.get(c.id, []))}; formgrader "
        f"{st.url}/services/{c.id}/formgrader\n    grading service "
        f"(python -m autograder serve, as {c.grader}): {st.url}/services/{c.grading_service}/"
        for c in st.courses)
    return f"""
  JupyterHub for {', '.join(c.id for c in st.courses)}: {st.url}/   (127.0.0.1 only)

  Accounts (passwords are new each time `make hub` starts):
{rows}

{courses}

  A student: log in, menu Nbgrader > Assignment List, pick the course, Fetch an assignment,
    open it, work, Submit; later, Fetch Feedback in the same list.
  Staff (instructors, TAs): log in, Nbgrader > Course List, or open a course's formgrader in
    a tab; its grading service grades each submission as it arrives and releases its
    feedback; its status page is for that course's staff only.

  Exchange: {st.exchange}.  State: {st.state} (course copies, hub log
    {st.hub_dir}/jupyterhub.log)
  Ctrl-C stops the hub, its services and every server it started.
"""


# What stops `make hub`: Ctrl-C, and what systemd and container runtimes send (to the
# whole process group: make passes its own SIGTERM on, so hub.py gets it twice).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopping:
    """The stop signals' handler: the first one interrupts (KeyboardInterrupt), the
    others are noted and ignored, so that no second signal interrupts the clean-up."""

    def __init__(self):
        self.signals: list[int] = []

    def __call__(self, signum, frame) -> None:
        self.signals.append(signum)
        if len(self.signals) == 1:
            raise KeyboardInterrupt

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self)


def up(st: Settings, test_lms: bool = False) -> int:
    stopping = Stopping()
    stopping.install()  # before anything starts: a signal in set-up still cleans up
    hub = lms = None
    try:
        if test_lms:
            lms, st.lti_platform = lti.start_test_lms(st, st.url)
        passwords, released = prepare(st)
        if lms is not None:  # it cannot read the tool's JWKS URL (self-signed HTTPS): pasted
            lms.tool.public_jwk = st.lti_tool_jwk
        hub = start(st)
        print(banner(st, passwords, released), flush=True)
        if st.login == "lti":
            print(lti.banner(st, lms), flush=True)
        while hub.alive():
            hub.track()
            time.sleep(1)
        hub.stop()
        print(f"make hub: jupyterhub exited ({hub.proc.returncode}); log:\n{hub.log_tail()}",
              file=sys.stderr)
        return 1
    except HubError as exc:
        print(f"make hub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log("stopping the services, the hub and its servers ...")
        if hub is not None:
            hub.stop()
        log("stopped")
        return 0
    finally:
        if lms is not None:
            lms.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/hub/hub.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="set up, start the hub and wait for Ctrl-C")
    p_up.add_argument("--state", type=Path, default=STATE,
                      help=f"folder of the course copies, exchange and hub state ({STATE})")
    p_up.add_argument("--exchange", choices=EXCHANGES, default=Settings.exchange,
                      help="how servers exchange assignments: nbgrader's shared folder (file) "
                      "or the grading services over HTTP (http); default %(default)s")
    p_up.add_argument("--login", choices=lti.LOGINS, default=os.environ.get("HUB_LOGIN",
                      "password"), help="password (default, $HUB_LOGIN) or lti: an LMS's LTI "
                      "1.3 launch, c.LtiPlatform of nbgrader_config.py (docs/lms.md)")
    p_up.add_argument("--with-test-lms", action="store_true",
                      help="LTI login from the project's test LMS, run beside the hub")
    args = parser.parse_args(argv)
    st = Settings(state=args.state, exchange=args.exchange,
                  login="lti" if args.with_test_lms else args.login)
    return up(st, test_lms=args.with_test_lms)


if __name__ == "__main__":
    sys.exit(main())
