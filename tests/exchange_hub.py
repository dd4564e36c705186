"""A one-machine hub in temporary folders: course, nbgrader exchange, a student's home.

Shared by the exchange round trip (``test_exchange``) and the grading service
(``test_serve``).  The exchange root is configured the way docs/jupyterhub.md says (the
``RNN_COURSE_EXCHANGE`` variable read by the course's ``nbgrader_config.py``,
a course id of its own, a world-writable sticky folder), and the student has
a home, a working folder and an ``nbgrader_config.py`` of their own.  When
run as root (a container, CI) the student's commands run as ``nobody``, so
that nbgrader's permission handling of the exchange is exercised as on a real
hub, where every student is a separate user (:mod:`other_accounts`).

:func:`drop_submission` writes an inbound entry as ``nbgrader submit`` leaves
one (folder name, notebook, ``timestamp.txt``, ``submission_secret.txt``)
for students who have no Unix account here; :func:`feedback_name` is the
name under which ``release_feedback`` publishes its feedback.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from other_accounts import NOBODY, as_account

from autograder.commands.release import nbgrader_env

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "rnn_cell"
COURSE_ID = "rnn-course-exchange-test"
AS_ROOT = os.geteuid() == 0
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's Exchange.timestamp_format

def run(cmd, cwd, env, *, as_student=False, check=True, timeout=600):
    """Run ``cmd`` (as the student's user when running as root); fail with its output."""
    import pytest

    if as_student and AS_ROOT:
        try:
            cmd = as_account(cmd, uid=NOBODY, gid=NOBODY)
        except RuntimeError as exc:
            pytest.fail(str(exc))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
                    f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc

def nbgrader(*args):
    return [sys.executable, "-m", "nbgrader", *args]

def make_hub(course_builder=None, *, course_id: str = COURSE_ID) -> dict:
    """Folders of a one-machine hub: course (instructor), exchange, a student's home.

    ``course_builder(path)`` makes the course directory at ``path`` (default:
    this repository's ``nbgrader_config.py`` and ``source/rnn_cell``).  Not
    under pytest's tmp_path: that is private to root (mode 0700), and the
    student's user must be able to reach the exchange and their home.
    """
    base = Path(tempfile.mkdtemp(prefix="rnn-exchange-"))
    base.chmod(0o755)
    course = base / "course"
    if course_builder is None:
        (course / "source").mkdir(parents=True)
        shutil.copy2(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
        shutil.copytree(REPO / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    else:
        course_builder(course)
    # As on a hub: a folder every user may write into, where nobody may delete
    # another's files (sticky bit).  nbgrader release_assignment insists on 0777.
    exchange = base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)
    home = base / "student"
    (home / ".jupyter").mkdir(parents=True)
    (home / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.CourseDirectory.course_id = {course_id!r}\n"
    )
    if AS_ROOT:
        for path in [home, *home.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
    base_env = nbgrader_env()
    for var in list(base_env):  # the real course's settings must not leak into this one
        if var.startswith(("RNN_COURSE_", "JUPYTER_")):
            base_env.pop(var)
    instructor_env = dict(base_env, HOME=str(base / "instructor"),
                          RNN_COURSE_EXCHANGE=str(exchange), RNN_COURSE_ID=course_id)
    student_env = dict(base_env, HOME=str(home))
    return {"base": base, "course": course, "exchange": exchange, "home": home,
            "course_id": course_id, "instructor_env": instructor_env,
            "student_env": student_env,
            "student": "nobody" if AS_ROOT else os.environ.get("USER", "student")}

def inbound(hub: dict) -> Path:
    return hub["exchange"] / hub["course_id"] / "inbound"

def drop_submission(hub: dict, student: str, nb, *, assignment: str = ASSIGNMENT,
                    when: datetime | None = None, files: dict[str, bytes] | None = None,
                    name: str | None = None) -> Path:
    """An inbound entry as ``nbgrader submit`` leaves it; written whole, then renamed in.

    Returns the entry's folder; ``files`` adds or replaces files in it.
    """
    when = when or datetime.now(timezone.utc)
    stamp = when.strftime(TIMESTAMP_FORMAT)
    folder = inbound(hub)
    entry = folder / (name or f"{student}+{assignment}+{stamp}+{secrets.token_hex(8)}")
    partial = folder.parent / f".partial-{entry.name}"
    partial.mkdir(parents=True)
    if nb is not None:
        nbformat.write(nb, partial / f"{assignment}.ipynb")
    (partial / "timestamp.txt").write_text(stamp)
    (partial / "submission_secret.txt").write_text(secrets.token_hex(16))
    for rel, data in (files or {}).items():
        (partial / rel).write_bytes(data)
    os.rename(partial, entry)
    return entry

def feedback_name(entry: Path, notebook: str = ASSIGNMENT) -> str:
    """The file ``release_feedback`` publishes the feedback of inbound ``entry`` under."""
    from nbgrader.utils import notebook_hash

    secret = (entry / "submission_secret.txt").read_text()
    return f"{notebook_hash(secret=secret, notebook_id=notebook)}.html"

def feedback_folder(hub: dict) -> Path:
    return hub["exchange"] / hub["course_id"] / "feedback"
