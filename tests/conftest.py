"""Fixtures shared by the fast tests of the grading pipeline's stages.

``released_course`` is the fixture course of :mod:`nbfixtures`, released once
per test session (``nbgrader generate_assignment`` takes seconds);
``course`` is a fresh copy of it for one test, with the fixture checks
registered and a clean ``RNN_COURSE_*`` environment.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbfixtures as fx  # noqa: E402

SECRET = "stage-test-secret"


@pytest.fixture(scope="session")
def released_course(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
            mp.delenv(var)
        return fx.make_course(tmp_path_factory.mktemp("released") / "course")


@pytest.fixture
def course(released_course, tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RNN_COURSE_SECRET", SECRET)
    fx.install_fixture_checks()
    yield shutil.copytree(released_course, tmp_path / "course")
    fx.uninstall_fixture_checks()
