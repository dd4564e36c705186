"""The roster from the LMS and grades back to it, against the project's test LMS.

The test LMS (``tools/lms/testlms.py``, the ``lms`` fixture of :mod:`lmsfixture`) runs
for real on a free loopback port, with the tool registered under its key; the
course is the fixture course of :mod:`nbfixtures` (one assignment, 4 points) with
``c.LtiPlatform`` pointing at that LMS.  Most tests drive the service's LMS work in this
process (:class:`autograder.service.lms.Lms`, one pass at a time) on grades written
into the gradebook as the grader and the formgrader write them; the last one runs
``python -m autograder serve`` for real, grades a submission, and kills it with SIGKILL
while the LMS holds the score's post.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
import signal
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tornado.escape import xhtml_escape

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exchange_hub as eh  # noqa: E402
import lmsfixture as LF  # noqa: E402
import nbfixtures as fx  # noqa: E402

from autograder import roles  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.service import passback as P  # noqa: E402
from autograder.service.journal import Journal  # noqa: E402
from autograder.service.lms import Lms, LmsOptions  # noqa: E402

A = fx.ASSIGNMENT
MAX = 4.0  # the fixture assignment's points
STUDENTS = [uid for uid, _, role in LF.PEOPLE if role == roles.LTI_LEARNER]
BAD_ID = "=cmd|' /C calc'!A0"  # an LMS user id that is no student id (a CSV formula)
RETRY = 0.3  # seconds before the first retry, in these tests
TIMEOUT = 1.0  # seconds each LMS call may take, in these tests


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
            mp.delenv(var)
        return fx.make_course(tmp_path_factory.mktemp("passback") / "course",
                              config_extra="c.Execute.timeout = 5\n")


def registered(course: Path, lms, tool_key, course_id: str, *, timeout: float = TIMEOUT):
    """Register ``lms`` in the course's nbgrader_config.py and give it the tool's key; a
    learner whose LMS user id is no student id joins the LMS course."""
    lms.add_user(BAD_ID, "Mallory Formula", "m@lms.example.org")
    lms.enroll(LF.CONTEXT, BAD_ID, roles.LTI_LEARNER)
    config = lms.platform_config()
    config.update(contexts={LF.CONTEXT: course_id}, timeout=timeout)
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write("\n" + "".join(f"c.LtiPlatform.{k} = {v!r}\n" for k, v in config.items()))
    path = course / ".lti" / "tool-key.pem"
    path.parent.mkdir(exist_ok=True)
    path.write_text(tool_key.export_to_pem(private_key=True, password=None).decode())
    path.chmod(0o600)


@pytest.fixture
def course(template, lms, lti_key, tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "course"
    shutil.copytree(template, path)
    registered(path, lms, lti_key, Course(path).course_id)
    return path


@pytest.fixture
def link(course, caplog):
    """The service's LMS work on ``course``, one pass at a time (:meth:`Lms.step`)."""
    caplog.set_level(logging.INFO, logger="autograder.serve")
    journals = []

    def make(roster_every: float = 0.0):
        journals.append(Journal(Course(course).db_url))  # where the gradebook is now
        return Lms(Course(course), journals[-1].engine,
                   LmsOptions(poll=0.1, roster_every=roster_every, retry=RETRY))

    yield make
    for journal in journals:
        journal.close()


def record_grade(course: Path, student: str, score: float, *, manual: bool = False,
                 penalty: float | None = None,
                 timestamp: str = "2026-01-10 12:00:00.000000 UTC") -> None:
    """``student``'s submission scored ``score`` in the gradebook: by the grader (its
    auto scores, its late ``penalty`` and its row in ``rnn_course_grading``, a new
    grading each time), or by a person in the formgrader (``manual``: manual scores, no
    new grading)."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy import delete, insert
    from sqlalchemy.exc import SAWarning

    from autograder.pipeline.coordinator.gradebook import GRADING, ensure_tables

    c = Course(course)
    with Gradebook(c.db_url, c.course_id) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's models trip autoflush's
        gb.update_or_create_student(student)
        try:
            sub = gb.find_submission(A, student)
        except MissingEntry:
            sub = gb.add_submission(A, student, timestamp=timestamp)
        left = score
        for nb in sub.notebooks:
            if not manual:
                nb.late_submission_penalty = penalty
            for grade in nb.grades:
                points = min(left, grade.max_score)
                left -= points
                if manual:
                    grade.manual_score = points
                else:
                    grade.auto_score = points
                grade.needs_manual_grade = False
        gb.db.commit()
        if not manual:
            ensure_tables(gb.engine)
            with gb.engine.begin() as conn:
                conn.execute(delete(GRADING).where(GRADING.c.submission_id == sub.id))
                conn.execute(insert(GRADING).values(
                    submission_id=sub.id, assignment=A, student_id=student, digest="d",
                    status="graded", files_written=True, worker="test",
                    graded_at=datetime.now(timezone.utc).replace(tzinfo=None)))


def execute(course: Path, sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(Course(course).db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def rows(course: Path) -> list[tuple]:
    """The passback journal: (student, state, score, attempts, last_error), in order."""
    return fx.query(course, "SELECT student_id, state, score, attempts, last_error "
                            "FROM rnn_course_passback ORDER BY id")


def item_id(lms) -> str:
    item = lms.item_of(LF.CONTEXT, A)
    assert item is not None, lms.items()
    return item["id"]


def wait_until(predicate, timeout: float, what: str, step=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if step is not None:
            step()
        time.sleep(0.05)


# --------------------------------------------------------------------------- #
# the roster
# --------------------------------------------------------------------------- #
def test_roster_adds_students_marks_who_left_and_skips_a_bad_id(course, lms, link, caplog):
    from nbgrader.api import Gradebook

    from autograder.pipeline.coordinator.export import canvas_csv, export_grades

    c = Course(course)
    record_grade(course, "s1", 3)  # one submission; s2 and s3 never submit
    done = link().sync_roster()
    assert sorted(done.added) == STUDENTS and done.skipped == [BAD_ID] and not done.left
    with Gradebook(c.db_url, c.course_id) as gb:
        people = {s.id: (s.first_name, s.last_name, s.email, s.lms_user_id)
                  for s in gb.students}
    assert people == {uid: (name.split()[0], name.split()[1], f"{uid}@lms.example.org", uid)
                      for uid, name, role in LF.PEOPLE if role == roles.LTI_LEARNER}
    state = {r[0]: r[1:] for r in fx.query(course, "SELECT user_id, state, student_id, note "
                                                   "FROM rnn_course_roster")}
    assert state["teacher"][:2] == ("staff", "teacher")
    assert state[BAD_ID][0] == "skipped" and state[BAD_ID][1] is None
    assert "not a student id" in state[BAD_ID][2]
    skipped = [r for r in caplog.messages if BAD_ID in r]
    assert len(skipped) == 1 and "skipped LMS user" in skipped[0]

    # grades.csv and the Canvas file list every enrolled student, submitted or not
    dest = export_grades(c.db_url, c.course_id, course / "grades.csv", c.config)
    table = {r["student_id"]: r for r in csv.DictReader(io.StringIO(dest.read_text()))}
    assert sorted(table) == STUDENTS
    assert (table["s1"]["submitted"], float(table["s1"]["score"])) == ("yes", 3.0)
    assert [(table[s]["submitted"], float(table[s]["score"])) for s in ("s2", "s3")] == [
        ("no", 0.0)] * 2
    assert table["s2"]["first_name"] == "Alan" and table["s2"]["email"] == "s2@lms.example.org"
    canvas = list(csv.reader(io.StringIO(canvas_csv(dest).read_text())))
    assert sorted(r[3] for r in canvas[2:]) == STUDENTS  # SIS Login ID
    assert {r[3]: r[2] for r in canvas[2:]}["s3"] == "s3"  # SIS User ID: the LMS's id

    # s2 becomes Inactive, s1 is gone from the LMS course: marked, never deleted
    lms.leave(LF.CONTEXT, "s2")
    lms.leave(LF.CONTEXT, "s1", status=None)
    again = link().sync_roster()
    assert sorted(again.left) == ["s1", "s2"] and not again.added and not again.skipped
    assert len([r for r in caplog.messages if BAD_ID in r]) == 1  # said once, not at each read
    state = dict(fx.query(course, "SELECT user_id, state FROM rnn_course_roster"))
    assert (state["s1"], state["s2"], state["s3"]) == ("left", "left", "active")
    assert fx.gradebook_scores(course)["s1"]["score"] == 3  # their grades stay
    table = {r["student_id"] for r in csv.DictReader(io.StringIO(
        export_grades(c.db_url, c.course_id, course / "grades.csv", c.config).read_text()))}
    assert table == set(STUDENTS)
    # and s2 comes back
    lms.enroll(LF.CONTEXT, "s2", roles.LTI_LEARNER)
    assert link().sync_roster().added == ["s2"]


def test_a_roster_that_cannot_be_read_changes_nothing(course, lms, link, caplog):
    first = link()
    assert sorted(first.sync_roster().added) == STUDENTS
    for failure in ({"status": 503}, {"garbage": True}, {"hang": True}):
        lms.fail("memberships", **failure)
        assert first.sync_roster() is None
    assert any("roster" in m and "not read" in m and "timeout" in m for m in caplog.messages)
    state = dict(fx.query(course, "SELECT user_id, state FROM rnn_course_roster"))
    assert [state[s] for s in STUDENTS] == ["active"] * len(STUDENTS)  # nobody "left"


def test_a_student_graded_before_the_roster_knew_them_has_it_read_again(course, lms, link,
                                                                      monkeypatch):
    from autograder.service import lms as L

    monkeypatch.setattr(L, "ROSTER_EARLY", 0.0)
    one = link(roster_every=3600)
    assert one.step() == 0  # the roster, read at start

    def reads():
        return lms.requests.count(("memberships", "GET"))

    assert reads() == 1
    lms.add_user("s4", "Katherine Johnson", "s4@lms.example.org")  # enrolled since
    lms.enroll(LF.CONTEXT, "s4", roles.LTI_LEARNER)
    record_grade(course, "s4", 4)
    assert one.step() == 1 and reads() == 2
    assert lms.posts(item_id(lms), "s4") == 1
    record_grade(course, "outsider", 1)  # never in the LMS: the roster is read once for it
    for _ in range(3):
        assert one.step() == 0
    assert reads() == 3


# --------------------------------------------------------------------------- #
# grades
# --------------------------------------------------------------------------- #
def test_each_graded_version_is_posted_once(course, lms, link):
    one = link()
    record_grade(course, "s1", 3)
    record_grade(course, "s2", 4, penalty=1.5)  # late: 4 - 1.5, as the feedback says
    record_grade(course, "outsider", 2)  # a hub account the LMS does not know
    assert one.step() == 2
    item = lms.item_of(LF.CONTEXT, A)
    assert item["scoreMaximum"] == MAX and item["tag"] == Course(course).course_id
    assert [lms.posts(item["id"], s) for s in ("s1", "s2")] == [1, 1]
    score = lms.grade(item["id"], "s1")
    assert (score["scoreGiven"], score["scoreMaximum"]) == (3, MAX)
    assert (score["gradingProgress"], score["activityProgress"]) == ("FullyGraded", "Submitted")
    assert score["submission"]["submittedAt"].startswith("2026-01-10T12:00:00")  # submitted
    for _ in range(3):
        assert one.step() == 0  # nothing new: nothing posted
    assert link().step() == 0  # nor by a restarted service
    assert [lms.posts(item["id"], s) for s in ("s1", "s2")] == [1, 1]
    assert len(lms.items(LF.CONTEXT)) == 1  # found again, never created twice
    assert lms.grade(item["id"], "s2")["scoreGiven"] == 2.5
    assert fx.gradebook_scores(course)["s2"]["penalty"] == 1.5
    assert sorted(rows(course)) == [("s1", "posted", 3, 1, ""), ("s2", "posted", 2.5, 1, "")]


def test_regrade_and_manual_grade_post_again(course, lms, link, gradebook_db):
    gradebook_db(course)  # the gradebook, roster and journal on SQLite, then on PostgreSQL
    one = link()
    record_grade(course, "s1", 2)
    assert one.step() == 1
    record_grade(course, "s1", 2)  # graded again, the same score: a new graded version
    assert one.step() == 1
    record_grade(course, "s1", 3.5, manual=True)  # a person in the formgrader
    assert one.step() == 1
    item = item_id(lms)
    assert lms.posts(item, "s1") == 3
    assert lms.grade(item, "s1")["scoreGiven"] == 3.5
    assert [r[1:3] for r in rows(course)] == [("posted", 2), ("posted", 2), ("posted", 3.5)]
    stamps = [s["timestamp"] for s in lms.score_log]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3  # each newer than the last


@pytest.mark.parametrize("failure", [{"endpoint": "scores", "status": 503},
                                     {"endpoint": "scores", "hang": True},
                                     {"endpoint": "lineitems", "garbage": True},
                                     {"endpoint": "token", "status": 500}],
                         ids=["5xx", "timeout", "garbage", "token-5xx"])
def test_an_lms_that_fails_is_tried_again_with_backoff(course, lms, link, failure):
    one = link(roster_every=3600)
    one.sync_roster()  # (and a token cached: the next call needs a new one)
    lms.revoke_tokens()
    record_grade(course, "s1", 3)
    lms.fail(**failure, times=2)
    t0 = datetime.now(timezone.utc).replace(tzinfo=None)
    assert one.step() == 0
    (state, attempts, error, next_try), = fx.query(
        course, "SELECT state, attempts, last_error, next_try FROM rnn_course_passback")
    assert (state, attempts) == ("pending", 1) and error, error
    next_try = datetime.fromisoformat(str(next_try))
    assert timedelta(seconds=RETRY * 0.9) <= next_try - t0 <= timedelta(seconds=RETRY + 5)
    assert one.step() == 0  # not before its time
    time.sleep(RETRY)
    t1 = datetime.now(timezone.utc).replace(tzinfo=None)
    assert one.step() == 0  # the second failure: twice the wait
    (attempts, next_try), = fx.query(course, "SELECT attempts, next_try FROM rnn_course_passback")
    assert attempts == 2
    assert datetime.fromisoformat(str(next_try)) - t1 >= timedelta(seconds=2 * RETRY * 0.9)
    wait_until(lambda: lms.item_of(LF.CONTEXT, A) is not None
               and lms.posts(item_id(lms), "s1") == 1, 10, "the post", step=one.step)
    for _ in range(3):
        one.step()
    assert lms.posts(item_id(lms), "s1") == 1
    assert rows(course) == [("s1", "posted", 3, 3, "")]


def test_a_refusal_is_flagged_with_the_lms_reason_not_retried(course, lms, link, caplog):
    from autograder.service import status as S
    from autograder.service.app import Options, Service

    one = link()
    record_grade(course, "s1", 3)
    lms.fail("scores", status=422, reason="this assignment is closed for grading", times=None)
    assert one.step() == 0
    time.sleep(RETRY * 3)
    for _ in range(3):
        assert one.step() == 0
    requests = [r for r in lms.requests if r[0] == "scores"]
    assert len(requests) == 1  # refused once, not tried again
    ((state, _, attempts, error),) = [r[1:] for r in rows(course)]
    assert (state, attempts) == ("refused", 1)
    assert "422" in error and "this assignment is closed for grading" in error
    assert any("REFUSED" in m and "closed for grading" in m for m in caplog.messages)

    service = Service(Options(course_dir=str(course)), lms=LmsOptions())
    data = S.status(service)["lms"]
    assert data["configured"] is True
    (grade,) = data["grades"]
    assert (grade["student"], grade["state"]) == ("s1", "refused")
    assert "closed for grading" in grade["reason"]
    html = S.page(S.status(service), "api/status")
    assert "closed for grading" in html and "Grades in the LMS" in html
    assert xhtml_escape(BAD_ID) in html and BAD_ID not in html  # skipped: shown, escaped
    assert S.lms_text({"state": "refused", "reason": "closed"}) == "refused (closed)"
    assert S.lms_text({"state": "pending", "next_try": "T", "reason": "503"}) == (
        "pending (next try T; 503)")

    # a new graded version is tried; --retry-failed puts the refused one back too
    lms.heal()
    assert P.retry_refused(Journal(Course(course).db_url).engine) == 1
    assert one.step() == 1 and lms.posts(item_id(lms), "s1") == 1


def test_without_an_lms_the_status_says_not_configured(template, tmp_path, monkeypatch):
    from autograder.service import status as S
    from autograder.service.app import Options, Service

    for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "course"
    shutil.copytree(template, path)
    service = Service(Options(course_dir=str(path)), lms=LmsOptions())
    assert service.lms is None  # no c.LtiPlatform: no LMS process
    data = S.status(service)
    assert data["lms"] == {"configured": False, "roster": None, "grades": []}
    assert S.lms_of(data["lms"], "s1", A, set()) == {"state": "not configured"}
    assert "not configured" in S.page(data, "api/status")


@pytest.mark.parametrize("case", ["no key", "no services", "bad setting"])
def test_a_registration_serve_cannot_use_is_one_line(course, case):
    from autograder.errors import UsageError
    from autograder.service.app import Options, Service

    if case == "no key":
        (course / ".lti" / "tool-key.pem").unlink()
    elif case == "no services":
        with open(course / "nbgrader_config.py", "a") as fh:
            fh.write("\nc.LtiPlatform.services = {}\n")
    else:
        with open(course / "nbgrader_config.py", "a") as fh:
            fh.write("\nc.LtiPlatform.timeout = 'soon'\n")
    with pytest.raises(UsageError) as err:
        Service(Options(course_dir=str(course), unsafe_no_sandbox=True),
                lms=LmsOptions()).check()
    message = str(err.value)
    assert "\n" not in message and {"no key": "lti keys", "no services": "lacks",
                                     "bad setting": "LtiPlatform"}[case] in message, message


def test_a_deleted_line_item_is_created_again(course, lms, link, caplog):
    one = link()
    record_grade(course, "s1", 3)
    assert one.step() == 1
    first = item_id(lms)
    lms.delete_item(first)
    record_grade(course, "s1", 4)  # a regrade, to a line item the LMS no longer has
    wait_until(lambda: lms.item_of(LF.CONTEXT, A) is not None, 10, "a new line item",
               step=one.step)
    second = item_id(lms)
    assert second != first and lms.item_of(LF.CONTEXT, A)["scoreMaximum"] == MAX
    assert lms.posts(second, "s1") == 1 and lms.grade(second, "s1")["scoreGiven"] == 4
    assert [r[1] for r in rows(course)] == ["posted", "posted"]
    assert any("line item is gone" in m for m in caplog.messages)


@pytest.mark.parametrize("lost", ["killed", "5xx", "timeout"])
def test_a_post_whose_outcome_was_lost_is_read_back_not_posted_again(course, lms, link,
                                                                     caplog, lost):
    """The LMS accepted the score but the service never learnt it: it died before writing
    it down (the row says ``sending``), or the LMS's answer was lost (a 5xx, a timeout,
    after the score was recorded).  The next try reads the LMS's result, posts nothing."""
    record_grade(course, "s1", 3)
    one = link()
    if lost == "killed":
        assert one.step() == 1
        execute(course, "UPDATE rnn_course_passback SET state = 'sending'")
        one = link()  # a new service
    else:
        lms.fail("scores", applied=True, **({"status": 503} if lost == "5xx" else
                                            {"hang": True}))
        assert one.step() == 0 and rows(course)[0][1] == "pending"
    assert lms.posts(item_id(lms), "s1") == 1
    wait_until(lambda: rows(course)[0][1] == "posted", 10, "the read-back", step=one.step)
    assert lms.posts(item_id(lms), "s1") == 1  # never posted again
    assert ("results", "GET") in lms.requests
    assert any("already holds it" in m for m in caplog.messages)


def test_after_due_grades_wait_for_the_due_date(course, lms, link):
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write('\nc.RnnCourse.feedback_release = "after_due"\n')
    fx.set_duedate(course, (datetime.now(timezone.utc) + timedelta(days=1))
                   .strftime("%Y-%m-%d %H:%M:%S UTC"))
    record_grade(course, "s1", 3)
    assert link().step() == 0 and lms.items(LF.CONTEXT) == []
    assert "after the due date" in rows(course)[0][4]
    fx.set_duedate(course, (datetime.now(timezone.utc) - timedelta(minutes=1))
                   .strftime("%Y-%m-%d %H:%M:%S UTC"))  # moved earlier: due now
    one = link()
    assert one.step() == 1
    assert lms.grade(item_id(lms), "s1")["activityProgress"] == "Completed"  # past due


# --------------------------------------------------------------------------- #
# the service, killed while posting
# --------------------------------------------------------------------------- #
@pytest.mark.slow
@pytest.mark.parametrize("applied", [False, True], ids=["held", "recorded-then-held"])
def test_sigkill_while_posting_then_restart_posts_exactly_once(template, lms, lti_key,
                                                               applied):
    """The LMS holds the score's post (``applied``: after recording it) and the service is
    killed; restarted, it reads the LMS's result back and the LMS counts one post."""
    from test_serve import Served

    hub = eh.make_hub(lambda path: shutil.copytree(template, path))
    try:
        course = hub["course"]
        registered(course, lms, lti_key, hub["course_id"], timeout=60)
        inbound = eh.inbound(hub)
        inbound.mkdir(parents=True)
        inbound.chmod(0o2733)
        lms.fail("scores", hang=True, applied=applied, times=None)  # it holds every post
        eh.drop_submission(hub, "s1", fx.student_notebook(course))
        served = Served(hub, "--workers", "1", "--lms-poll", "0.2", "--lms-retry", "0.5")
        served.wait_for(lambda: ("scores", "POST") in lms.requests, 120, "the score's post")
        assert [r[1] for r in rows(course)] == ["sending"]
        served.kill()  # SIGKILL, the whole process group, while the LMS holds the post
        assert lms.posts(item_id(lms), "s1") == (1 if applied else 0)

        lms.heal()
        again = Served(hub, "--workers", "1", "--lms-poll", "0.2", "--lms-retry", "0.5")
        again.wait_for(lambda: [r[1] for r in rows(course)] == ["posted"], 60, "the post")
        time.sleep(1.0)  # a few more passes: nothing more is posted
        assert lms.posts(item_id(lms), "s1") == 1
        assert lms.grade(item_id(lms), "s1")["scoreGiven"] == MAX
        after = lms.requests[lms.requests.index(("scores", "POST")) + 1:]
        assert ("results", "GET") in after  # read back before posting again
        student = {r["student"]: r for r in again.api()["students"]}["s1"]
        assert student["lms"]["state"] == "posted"
        assert "posted" in again.page()
        assert again.stop(signal.SIGTERM) == 0
        log = again.log()
        said = "the LMS already holds it" if applied else "posted to the LMS"
        assert re.search(rf"^\S+Z lms +s1 rnn_cell 4/4: {said}", log, re.M), log
        assert "Traceback" not in log
    finally:
        shutil.rmtree(hub["base"], ignore_errors=True)


def test_an_lms_user_is_one_name_for_the_hub_and_the_roster():
    from autograder.lti.users import user_name

    assert user_name("s1") == ("s1", None)
    assert user_name("A6D5C443-1f51-4783-ba1a-7686ffe3b54a") == (
        "a6d5c443-1f51-4783-ba1a-7686ffe3b54a", None)  # as JupyterHub normalises names
    assert user_name("1234") == ("1234", None)  # Moodle's ids are numbers
    for bad in (BAD_ID, "", None, "a" * 65, "ada/../bob", "-rf", "x y"):
        name, why = user_name(bad)
        assert name is None and why and "\n" not in why, bad
