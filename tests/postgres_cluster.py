"""A throw-away PostgreSQL server for the tests that run the gradebook on PostgreSQL.

:class:`Cluster` runs Debian's server binaries (``/usr/lib/postgresql/<v>/bin``,
the ``postgresql`` package): ``initdb`` in a temporary folder, then
``pg_ctl start`` with no TCP listener, only a Unix socket in that folder on a
port number nobody else uses.  PostgreSQL refuses to run as root, so when the
tests run as root the server runs as ``nobody`` (uid 65534), the folder
belonging to it.  Connections use ``trust`` authentication on that socket,
as the server's superuser ``grader``.

:func:`use_postgres` moves a released fixture course's gradebook there: the
URL goes into the course's own ``nbgrader_config.py`` (``c.CourseDirectory.db_url``,
read by :class:`autograder.course.Course`), and the assignments are released
again into the new database, with their due dates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

NOBODY = 65534
SUPERUSER = "grader"
MISSING = ("PostgreSQL's server binaries (initdb, pg_ctl) are not installed "
           "(/usr/lib/postgresql/<version>/bin): install Debian's postgresql package "
           "to run the gradebook tests on PostgreSQL")


def server_bin() -> Path | None:
    """The folder of the newest installed server's binaries, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL server of its own, in a temporary folder (see the module docstring)."""

    def __init__(self, bin_dir: Path):
        self.bin = Path(bin_dir)
        self.base = Path(tempfile.mkdtemp(prefix="rnn-postgres-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self._databases = 0

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
                   *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, LC_ALL="C.UTF-8"), cwd=self.base)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return proc

    def start(self) -> Cluster:
        self.base.chmod(0o755)
        if self.as_root:
            os.chown(self.base, NOBODY, NOBODY)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.base} -c listen_addresses='' -c fsync=off "
                   "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.base / "server.log"), "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3, over the Unix socket)."""
        return (f"postgresql+psycopg://{SUPERUSER}@/{database}"
                f"?host={self.base}&port={self.port}")

    def new_database(self, prefix: str = "gradebook") -> str:
        """A new, empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        with psycopg.connect(host=str(self.base), port=self.port, user=SUPERUSER,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def use_postgres(course: Path, url: str) -> None:
    """Move the released fixture ``course``'s gradebook to the empty database at ``url``."""
    from nbgrader.api import Gradebook

    from autograder.commands.release import nbgrader_env
    from autograder.course import Course

    course = Path(course)
    before = Course(course)
    with Gradebook(before.db_url, before.course_id) as gb:
        duedates = {a.name: a.duedate for a in gb.assignments}
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write(f"\n# the tests' PostgreSQL gradebook\nc.CourseDirectory.db_url = {url!r}\n")
    after = Course(course)
    assert after.db_url == url, after.db_url
    env = nbgrader_env()
    for var in [v for v in env if v.startswith("RNN_COURSE_")]:
        env.pop(var)
    env["RNN_COURSE_SECRET"] = "test-secret"
    for assignment in duedates:
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment",
                               assignment, "--force", "--log-level=ERROR"],
                              cwd=course, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"generate_assignment failed:\n{proc.stdout}\n{proc.stderr}")
    with Gradebook(url, after.course_id) as gb:
        for assignment, duedate in duedates.items():
            gb.update_or_create_assignment(assignment, duedate=duedate)
