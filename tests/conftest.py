"""Fixtures shared by the fast tests of the grading pipeline's stages.

``released_course`` is the fixture course of :mod:`nbfixtures`, released once
per run and shared by the xdist workers (``nbgrader generate_assignment`` takes
seconds);
``course`` is a fresh copy of it for one test, with the fixture checks
registered and a clean ``RNN_COURSE_*`` environment.

``gradebook_db`` runs a test twice, its course's gradebook on SQLite and on
PostgreSQL (a server of the session's own, :mod:`postgres_cluster`; the
PostgreSQL variant is skipped, saying why, where the server is not installed);
``database`` does the same with the URL of an empty database.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbfixtures as fx  # noqa: E402
import postgres_cluster as pg  # noqa: E402

SECRET = "stage-test-secret"


@pytest.fixture(scope="session")
def released_course(tmp_path_factory, worker_id):
    """Built once per run: under xdist, the first worker that needs it builds it in the
    run's shared temporary folder while the others wait on a lock, then all use it (tests
    only read it: ``course`` copies it)."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    target = shared / "released-course"
    with open(shared / "released-course.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "released-course.done").is_file():
            shutil.rmtree(target, ignore_errors=True)
            with pytest.MonkeyPatch.context() as mp:
                for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
                    mp.delenv(var)
                fx.make_course(target)
            (shared / "released-course.done").write_text("")
    return target


@pytest.fixture
def course(released_course, tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RNN_COURSE_SECRET", SECRET)
    fx.install_fixture_checks()
    yield shutil.copytree(released_course, tmp_path / "course")
    fx.uninstall_fixture_checks()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session (:class:`postgres_cluster.Cluster`)."""
    bin_dir = pg.server_bin()
    if bin_dir is None:
        pytest.skip(pg.MISSING)
    cluster = pg.Cluster(bin_dir).start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def gradebook_db(request):
    """``prepare(course)``: leave a released course on SQLite, or move it to PostgreSQL."""
    if request.param == "sqlite":
        return lambda course: None
    cluster = request.getfixturevalue("postgres")
    return lambda course: pg.use_postgres(course, cluster.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gradebook.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def lti_key():
    """The tool's LTI key (one per test process)."""
    import lmsfixture

    return lmsfixture.tool_key()


@pytest.fixture
def lms(lti_key):
    """The project's test LMS, running, with a class and the tool registered (lmsfixture)."""
    import lmsfixture

    with lmsfixture.start_lms(lti_key) as lms:
        yield lms
