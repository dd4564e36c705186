"""The JupyterHub round trip through nbgrader's real exchange, in temporary folders.

instructor: ``nbgrader release_assignment``  ->  student: ``nbgrader fetch_assignment``,
fills in the solutions, ``nbgrader submit``  ->  instructor: ``nbgrader collect``,
``python -m autograder grade``  ->  ``nbgrader release_feedback``  ->  student:
``nbgrader fetch_feedback``.

The exchange root is configured the way docs/jupyterhub.md says (the
``RNN_COURSE_EXCHANGE`` variable read by the course's ``nbgrader_config.py``,
a course id of its own, a world-writable sticky folder), and the student has
a home, a working folder and an ``nbgrader_config.py`` of their own.  When the
tests run as root (a container, CI) the student's commands run as ``nobody``,
so that nbgrader's permission handling of the exchange (outbound readable,
inbound write-only for students) is exercised as on a real hub, where every
student is a separate user.  A real student brings nbgrader in their own image;
here they borrow this clone's Python, shown to them even when the clone sits in
a folder they may not enter (``other_accounts``).
"""

from __future__ import annotations

import shutil
import sys

import exchange_hub as eh
import nbformat
import pytest
from exchange_hub import ASSIGNMENT, COURSE_ID
from exchange_hub import make_hub as _make_hub
from exchange_hub import nbgrader as _nbgrader
from exchange_hub import run as _run

from autograder.commands.demo import fill_solutions

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("exchange")]

@pytest.fixture
def hub():
    h = _make_hub()
    yield h
    shutil.rmtree(h["base"], ignore_errors=True)


@pytest.fixture(scope="module")
def round_trip():
    """release -> fetch -> fill in -> submit -> collect -> grade, once for the module."""
    hub = _make_hub()
    course, home = hub["course"], hub["home"]
    ienv, senv = hub["instructor_env"], hub["student_env"]

    # instructor: build the release (and the gradebook's record of it), hand it out
    _run(_nbgrader("generate_assignment", ASSIGNMENT, "--force"), course, ienv)
    _run(_nbgrader("release_assignment", ASSIGNMENT), course, ienv)

    # student: list, fetch, fill in every solution, submit
    listing = _run(_nbgrader("list"), home, senv, as_student=True)
    fetched = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    _run(_nbgrader("fetch_assignment", ASSIGNMENT), home, senv, as_student=True)
    source_nb = nbformat.read(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    nbformat.write(fill_solutions(nbformat.read(fetched, 4), source_nb), fetched)
    _run(_nbgrader("submit", ASSIGNMENT), home, senv, as_student=True)
    inbound = sorted((hub["exchange"] / COURSE_ID / "inbound").iterdir())

    # instructor: collect and grade with the sandboxed pipeline
    _run(_nbgrader("collect", ASSIGNMENT), course, ienv)
    graded = _run([sys.executable, "-m", "autograder", "grade", ASSIGNMENT,
                   "--course-dir", str(course), "--workers", "1"], course, ienv)
    hub.update(listing=listing, inbound=inbound, graded=graded, fetched=fetched)
    yield hub
    shutil.rmtree(hub["base"], ignore_errors=True)


def test_release_fetch_submit_collect_grade(round_trip):
    hub = round_trip
    course, student = hub["course"], hub["student"]
    outbound = hub["exchange"] / COURSE_ID / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert outbound.is_file()
    assert ASSIGNMENT in hub["listing"].stdout + hub["listing"].stderr
    assert hub["fetched"].is_file()
    assert len(hub["inbound"]) == 1 and hub["inbound"][0].name.startswith(f"{student}+")
    assert (course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    assert student in hub["graded"].stdout

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        score, max_score = submission.score, submission.max_score
    assert max_score > 0
    assert score == max_score, hub["graded"].stdout


def test_feedback_goes_back_through_the_exchange(round_trip):
    hub = round_trip
    course, home = hub["course"], hub["home"]
    _run(_nbgrader("release_feedback", ASSIGNMENT), course, hub["instructor_env"])
    _run(_nbgrader("fetch_feedback", ASSIGNMENT), home, hub["student_env"], as_student=True)
    feedback = list((home / ASSIGNMENT / "feedback").rglob(f"{ASSIGNMENT}.html"))
    assert len(feedback) == 1
    html = feedback[0].read_text()
    assert "passed (verified by the grader)" in html
    assert (course / ".grader_secret").read_text().strip() not in html


# A student may write into the exchange's inbound folder directly (it is
# world-writable, so that `nbgrader submit` works) and so hand the grader a
# folder of their own making: here one whose "notes" are symlinks to the
# instructor's notebook and to the grader's secret, and a notebook whose every
# solution cell execs whatever solutions it finds in them.
LEAK_CELL = '''
import json, os
found = {}
for name in ("notes.txt", "secret.txt"):
    try:
        found[name] = open(name).read()
    except OSError as exc:
        found[name] = None
src = found.get("notes.txt") or ""
if "def rnn_step_forward" in src:
    for cell in json.loads(src)["cells"]:
        code = "".join(cell["source"])
        if cell["cell_type"] == "code" and "def rnn_" in code:
            exec(code, globals())
print("LEAKED", {k: (v or "")[:40] for k, v in found.items()})
'''


def test_collect_does_not_hand_a_students_symlinks_to_the_grader(hub):
    course, home = hub["course"], hub["home"]
    ienv, senv = hub["instructor_env"], hub["student_env"]
    _run(_nbgrader("generate_assignment", ASSIGNMENT, "--force"), course, ienv)
    _run(_nbgrader("release_assignment", ASSIGNMENT), course, ienv)
    _run(_nbgrader("fetch_assignment", ASSIGNMENT), home, senv, as_student=True)
    (course / ".grader_secret").write_text("the-grader-secret\n")

    # the student crafts an inbound entry by hand, as their own user
    fetched = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(fetched, 4)
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell.source = LEAK_CELL
    nbformat.write(nb, fetched)
    inbound = hub["exchange"] / COURSE_ID / "inbound"
    student = hub["student"]
    entry = inbound / f"{student}+{ASSIGNMENT}+2026-01-10 12:00:00.000000 UTC+crafted"
    script = (
        "import os, shutil, sys\n"
        "entry, notebook, source, secret = sys.argv[1:]\n"
        "os.mkdir(entry)\n"
        "shutil.copy(notebook, entry)\n"
        "os.symlink(source, os.path.join(entry, 'notes.txt'))\n"
        "os.symlink(secret, os.path.join(entry, 'secret.txt'))\n"
        "open(os.path.join(entry, 'timestamp.txt'), 'w').write('2026-01-10 12:00:00.000000 UTC')\n"
    )
    _run([sys.executable, "-c", script, str(entry), str(fetched),
          str(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
          str(course / ".grader_secret")], home, senv, as_student=True)

    # the grader account collects and grades as usual
    _run(_nbgrader("collect", ASSIGNMENT), course, ienv)
    submitted = course / "submitted" / student / ASSIGNMENT
    _run([sys.executable, "-m", "autograder", "grade", ASSIGNMENT, "--course-dir", str(course),
          "--workers", "1"], course, ienv)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        score = gb.find_submission(ASSIGNMENT, student).score
    autograded = (course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    leaked = [name for name in ("notes.txt", "secret.txt")
              if (submitted / name).exists() and not (submitted / name).is_symlink()]
    assert leaked == [], f"collect dereferenced {leaked}; graded {score}"
    # without the instructor's solutions, the cells earn nothing
    assert score == 0, "the student's notebook ran the instructor's solutions"
    assert "the-grader-secret" not in autograded


# An inbound entry as its owner writes it, run as that owner (a real local account).
WRITE_ENTRY = (
    "import os, shutil, sys\n"
    "entry, notebook, stamp = sys.argv[1:]\n"
    "os.mkdir(entry)\n"
    "shutil.copy(notebook, entry)\n"
    "open(os.path.join(entry, 'timestamp.txt'), 'w').write(stamp)\n"
    "open(os.path.join(entry, 'submission_secret.txt'), 'w').write('s' * 32)\n"
)


def test_a_forged_entry_never_changes_what_happens_to_the_genuine_one(hub, monkeypatch):
    """On a shared exchange, account ``daemon`` (student1) plants an entry named as
    ``nobody``'s (student2) with a timestamp in 2099, and one under an id that is a formula.
    The service journals both; collect decides per owner before it picks the newest, so
    student2's genuine submission is collected (and the forgery rejected), and the
    formula id never enters the journal."""
    import pwd

    from other_accounts import as_account

    from autograder.commands.release import nbgrader_env
    from autograder.course import Course
    from autograder.service import journal as J
    from autograder.service.app import Service
    from autograder.service.rounds import Options, take

    if not eh.AS_ROOT:
        pytest.fail("this test runs as root: it acts as two local accounts", pytrace=False)
    course, ienv = hub["course"], hub["instructor_env"]
    _run(_nbgrader("generate_assignment", ASSIGNMENT, "--force"), course, ienv)
    _run(_nbgrader("release_assignment", ASSIGNMENT), course, ienv)
    notebook = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    inbound = eh.inbound(hub)
    genuine_stamp = "2026-12-01 10:00:00.000000 UTC"
    forged_stamp = "2099-01-01 00:00:00.000000 UTC"
    victim, forger = pwd.getpwnam("nobody"), pwd.getpwnam("daemon")
    planted = {
        "genuine": (victim, f"{victim.pw_name}+{ASSIGNMENT}+{genuine_stamp}+a1", genuine_stamp),
        "forged": (forger, f"{victim.pw_name}+{ASSIGNMENT}+{forged_stamp}+b2", forged_stamp),
        "formula": (forger, f"=1+2+{ASSIGNMENT}+{genuine_stamp}+c3", genuine_stamp),
    }
    for account, name, stamp in planted.values():
        _run(as_account([sys.executable, "-c", WRITE_ENTRY, str(inbound / name), str(notebook),
                         stamp], show=[str(course)], uid=account.pw_uid, gid=account.pw_gid),
             hub["base"], ienv)
        assert (inbound / name).stat().st_uid == account.pw_uid

    for var, value in ienv.items():
        if var.startswith("RNN_COURSE_") or var == "PATH":
            monkeypatch.setenv(var, value)
    monkeypatch.setenv("PATH", nbgrader_env()["PATH"])
    service = Service(Options(course_dir=str(course)))
    events = []
    monkeypatch.setattr("autograder.service.app.event",
                        lambda name, text: events.append(f"{name} {text}"))
    assert service.scan() == 2
    assert any(e.startswith("ignored '=1+2+") and "not a student id" in e for e in events)
    rows = {row.entry: row for row in service.journal.rows()}
    assert set(rows) == {planted["genuine"][1], planted["forged"][1]}

    take(Course(course), service.journal, ASSIGNMENT, list(rows.values()))
    after = {row.entry: row.state for row in service.journal.rows()}
    assert after[planted["genuine"][1]] == J.COLLECTED, after
    assert after[planted["forged"][1]] == J.REJECTED, after
    submitted = course / "submitted" / victim.pw_name / ASSIGNMENT / "timestamp.txt"
    assert submitted.read_text() == genuine_stamp
    assert not (course / "submitted" / "=1+2").exists()
