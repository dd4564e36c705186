"""The class view and the similarity report (``autograder.classview``, ``python -m autograder
report``, the service's ``class/<assignment>``).

The planted class (:mod:`planted_class`) is graded by the checks themselves and
recorded through the coordinator's path into the gradebook, on SQLite and on
PostgreSQL; the plagiarism corpus is :mod:`plagiarism`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import plagiarism as P
import planted_class as PC
import pytest

from autograder import cli
from autograder.classview import render, similarity
from autograder.classview.data import collect, template
from autograder.classview.verdicts import MESSAGE_CHARS
from autograder.course import Course
from autograder.pipeline import flags as F
from autograder.pipeline.coordinator.gradebook import CourseGradebook

A = "rnn_cell"
HOSTILE_IDS = ("<script>alert(1)</script>", "=HYPERLINK(\"http://x\",\"y\")", "+1-2", "@SUM(A1)",
               "-3", "\tTAB", "a&b\"c'd")


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """A course with ``A`` in its SQLite gradebook and no submission (made once: nbgrader
    runs ``alembic`` to make a gradebook)."""
    return PC.make_course(tmp_path_factory.mktemp("classview") / "course", None, A)[0]


def new_course(released: Path, tmp_path: Path, database: str | None = None):
    """(root, db_url) of a fresh course: a copy of ``released``, or on PostgreSQL."""
    if database and database.startswith("postgresql"):
        return PC.make_course(tmp_path / "course", database, A)
    root = shutil.copytree(released, tmp_path / "course")
    return root, Course(root).db_url


@pytest.fixture
def planted(released, tmp_path, database):
    """A course whose gradebook (SQLite or PostgreSQL) holds the planted class of ``A``."""
    root, url = new_course(released, tmp_path, database)
    groups = PC.record_class(url, A)
    return SimpleNamespace(root=root, url=url, groups=groups)


# Planted bugs whose first failing message is the same named bug: the checks cannot tell
# them apart (both a wrong tanh derivative), so the class view rightly shows them as one
# group; any other pair sharing a group fails the test below.
SAME_NAME = [{"rnn_cell/tanh_prime_one_minus_h", "rnn_cell/tanh_prime_from_preactivation"}]


@pytest.mark.slow
def test_every_planted_bug_is_its_own_named_group_and_no_honest_student_is_in_one(planted):
    view = collect(planted.url, PC.COURSE_ID, A)
    groups = planted.groups
    honest = set(groups.pop("honest"))
    assert len(view.students) == sum(map(len, groups.values())) + len(honest)
    members = [set(b.students) for b in view.bugs]
    for bug, students in groups.items():
        together = [b for b in groups if b == bug or {bug, b} in SAME_NAME]
        assert set().union(*(groups[b] for b in together)) in members, (bug, students)
    for b in view.bugs:
        assert not honest & set(b.students), b
        assert len(b.students) == len(set(b.students))
        # a group is one template: its example message has it
        assert template(b.example) == b.template
    # the bug that names itself, with its count and its share of the class
    named = [b for b in view.bugs if "the bias b is not added" in b.template]
    assert len(named) == 1 and named[0].students == sorted(groups["rnn_cell/no_bias"])
    page = render.page(view)
    n = len(view.students)
    assert (f"<td class='num'>{len(groups['rnn_cell/no_bias'])}</td>"
            f"<td class='num'>{len(groups['rnn_cell/no_bias']) / n:.0%}</td>") in page
    # honest students have full marks, except the late one, whose penalty is shown
    rows = {s.student: s for s in view.students}
    late = [rows[s] for s in honest if rows[s].seconds_late > 0]
    assert len(late) == 1 and late[0].late_penalty == late[0].max_score and late[0].score == 0
    assert all(rows[s].score == rows[s].max_score for s in honest if rows[s].seconds_late == 0)
    assert f"Late: 1 submission(s), penalties {view.max_score:g} point(s)" in page
    # per function: the students with a bug in it have less than full points
    fn = view.functions["rnn_forward"]
    assert fn[1] + fn[2] == len(groups["rnn_cell/forward_restarts_from_h0"])
    bugs_rows = list(csv.DictReader(io.StringIO(render.bugs_csv(view))))
    assert len(bugs_rows) == len(view.bugs)
    assert int(bugs_rows[0]["students"]) == len(view.bugs[0].students)


def test_numbers_and_arrays_do_not_split_a_group_and_words_stay():
    a = "result['Wx']: entries above 0.88454 must become exactly 0.88454 (got [1.769] for [1.7])"
    b = ("result['Wx']: entries above 0.918939 must become exactly 0.918939 "
         "(got [[1.83 -2.1]\n [3e-05 4]] for [1.8])")
    assert template(a) == template(b)
    assert "['Wx']" in template(a) and "#" in template(a)
    c = "dWh disagrees (relative error 7.9e-01, should be below 1e-07); see h0 and a[:, :H]"
    d = "dWh disagrees (relative error 5.8e-01, should be below 1e-07); see h0 and a[:, :H]"
    assert template(c) == template(d) and "h0" in template(c) and "a[:, :H]" in template(c)
    assert template("x (also wrong: edge_a)") == template("x (also wrong: edge_a, edge_b)")
    assert template("the bias is missing") != template("the tanh is missing")


@pytest.mark.slow
def test_an_empty_class_shows_a_page_that_says_so(released, tmp_path, database):
    root, url = new_course(released, tmp_path, database)
    view = collect(url, PC.COURSE_ID, A)
    assert view.students == [] and view.bugs == []
    page = render.page(view)
    assert "id='empty'" in page and "<img" not in page
    assert render.students_csv(view).splitlines() == [",".join(render.STUDENT_HEADER)]
    out = tmp_path / "out"
    assert cli.main(["report", A, "--course-dir", str(root), "--out", str(out)]) == 0
    assert "No submissions yet" in (out / "class.html").read_text()


@pytest.mark.slow
def test_hostile_ids_unicode_messages_and_a_student_with_only_a_flag(released, tmp_path, capsys,
                                                                     database):
    root, url = new_course(released, tmp_path, database)
    structure = CourseGradebook(url, PC.COURSE_ID).structure(A)
    when = PC.DUE - timedelta(hours=1)
    unicode_msg = ("naïve ∑ 😀 שלום \u202e<b>gate</b> order is i, f, o, g; "
                   "lone \udcff surrogate, NUL \x00; max error 0.5 " + "x" * 3 * MESSAGE_CHARS)
    items = []
    for student in HOSTILE_IDS:
        verdicts = {gid: {"kind": "hidden", "passed": gid != "rnn_step_forward_bias",
                          "message": unicode_msg if gid == "rnn_step_forward_bias" else ""}
                    for gid, _ in PC.gradesim.graded_cells(A)}
        items.append((PC.result_for(structure, student, verdicts, timestamp=when), when))
    crashed = PC.result_for(structure, "only-a-flag", None, timestamp=when, status="error",
                            flags=[(F.TIMEOUT, "cell 3 ran for 60 s <img src=x>")])
    items.append((crashed, when))
    PC.record(url, items)

    view = collect(url, PC.COURSE_ID, A)
    rows = {s.student: s for s in view.students}
    assert rows["only-a-flag"].score is None and view.flags == {F.TIMEOUT: 1}
    bug = [b for b in view.bugs if "gate" in b.template]
    assert len(bug) == 1 and bug[0].students == sorted(HOSTILE_IDS)
    assert len(bug[0].example) <= MESSAGE_CHARS and "😀" in bug[0].example
    page = render.page(view)
    assert "<script" not in page.lower() and "<b>gate" not in page and "\u202e" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<img src=x" not in page
    assert "no score" in page
    assert f'content="{render.CSP}"' in page and "script-src" not in render.CSP
    assert "default-src 'none'" in render.CSP
    for table in (render.students_csv(view), render.bugs_csv(view)):
        for row in csv.reader(io.StringIO(table)):
            for cell in row:
                assert not cell.startswith(render.FORMULA_START), cell
    students = [r["student"] for r in csv.DictReader(io.StringIO(render.students_csv(view)))]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in students and "'<script>" not in students
    # the command writes the same, its links escaped and percent-encoded
    out = tmp_path / "out"
    assert cli.main(["report", A, "--course-dir", str(root), "--out", str(out)]) == 0
    written = (out / "class.html").read_text(encoding="utf-8")
    assert "<script" not in written.lower()
    assert "named bug(s)" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["no course", "unknown assignment", "not released",
                                  "no gradebook"])
def test_report_usage_errors_are_one_line(released, tmp_path, capsys, case):
    root, _ = new_course(released, tmp_path)
    if case == "no gradebook":
        (root / "gradebook.db").unlink()
    args = {"no course": ["report", A, "--course-dir", str(tmp_path / "nowhere")],
            "unknown assignment": ["report", "nope", "--course-dir", str(root)],
            "not released": ["report", "gru", "--course-dir", str(root)],
            "no gradebook": ["report", A, "--course-dir", str(root)]}[case]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert case != "no gradebook" or not (root / "gradebook.db").exists()


# --------------------------------------------------------------------------- #
# similarity
# --------------------------------------------------------------------------- #
def corpus(root: Path) -> dict[str, str]:
    """The planted plagiarism corpus as submissions: who copied from whom."""
    subs = {"original": P.notebook(P.ORIGINAL),
            "copier": P.notebook(P.COPIED, order=tuple(reversed(P.FUNCTIONS))),
            "untouched-1": P.notebook(None), "untouched-2": P.notebook(None)}
    for i, solution in enumerate(P.INDEPENDENT):
        subs[f"independent-{i}"] = P.notebook(solution)
    for student, nb in subs.items():
        PC.write_submission(root, student, A, nb)
    return subs


def test_copied_pairs_rank_above_every_independent_pair_and_untouched_ones_are_not_similar(
        tmp_path):
    root = tmp_path / "course"
    corpus(root)
    release = P.REPO / "release" / A
    rep = similarity.report(root, A, release)
    assert rep.students == 3 + len(P.INDEPENDENT) + 1
    assert [(p.a, p.b) for p in rep.pairs[:1]] == [("copier", "original")]
    assert rep.pairs[0].similarity > 0.7  # 0.87-0.88 here (copydetect hashes with hash())
    # every pair, even those below the listing threshold
    codes = similarity.submissions_of(root, A)
    ranked = similarity.compare(codes, similarity.starter_of(release), min_similarity=0.0,
                                top=10_000)
    copied = [p for p in ranked if {p.a, p.b} == {"copier", "original"}]
    others = [p for p in ranked if {p.a, p.b} != {"copier", "original"}]
    assert copied and others and min(p.similarity for p in copied) > max(
        p.similarity for p in others)
    assert not [p for p in ranked if "untouched" in p.a or "untouched" in p.b]
    page = similarity.page(rep)
    assert "<mark>" in page and "<script" not in page.lower()
    assert "changes no grade" in page


def test_a_huge_code_cell_is_cut_with_a_note(tmp_path):
    root = tmp_path / "course"
    nb = P.notebook(P.ORIGINAL)
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [],
                        "execution_count": None,
                        "source": "x = 1\n" * (similarity.CELL_CHARS // 3)})
    PC.write_submission(root, "huge", A, nb)
    PC.write_submission(root, "other", A, P.notebook(P.INDEPENDENT[0]))
    rep = similarity.report(root, A, P.REPO / "release" / A)
    assert any("huge" in n and f"cut to {similarity.CELL_CHARS}" in n for n in rep.notes)
    codes = similarity.submissions_of(root, A)
    assert len(codes["huge"]) <= similarity.SUBMISSION_CHARS
    assert "cut to" in similarity.page(rep)


# --------------------------------------------------------------------------- #
# the service's class/<assignment>
# --------------------------------------------------------------------------- #
HUB_ENV = {"JUPYTERHUB_API_TOKEN": "secret-token",
           "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:9999",
           "JUPYTERHUB_SERVICE_PREFIX": "/services/grader/",
           "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
           "JUPYTERHUB_BASE_URL": "/",
           "JUPYTERHUB_CLIENT_ID": "service-grader",
           "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/grader/oauth_callback",
           "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:services!service=grader"])}
USERS = {
    "instructor": {"name": "i1", "kind": "user", "groups": ["formgrade-rnn-course"],
                   "scopes": []},
    "student": {"name": "s1", "kind": "user", "groups": ["students"],
                "scopes": ["access:servers!user=s1"]},
}


def test_the_service_shows_the_class_view_to_instructors_and_403_to_a_student(
        released, tmp_path, monkeypatch):
    import asyncio

    from jupyterhub.services.auth import HubOAuth
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from autograder.service.status import make_app

    root, url = new_course(released, tmp_path)
    structure = CourseGradebook(url, PC.COURSE_ID).structure(A)
    when = PC.DUE - timedelta(hours=1)
    student = "<b>x&y"
    verdicts = {gid: {"kind": "hidden", "passed": not gid.endswith("_bias"),
                      "message": "the bias b is not added (error 0.3)"}
                for gid, _ in PC.gradesim.graded_cells(A)}
    PC.record(url, [(PC.result_for(structure, student, verdicts, timestamp=when), when)])
    feedback = root / "feedback" / student / A / f"{A}.html"
    feedback.parent.mkdir(parents=True)
    feedback.write_text("<html><body>your feedback</body></html>")
    for var, value in HUB_ENV.items():
        monkeypatch.setenv(var, value)
    # who is asking: the hub's answer for the request's token, here a header of the test
    monkeypatch.setattr(HubOAuth, "get_user", lambda self, handler, sync=True:
                        USERS.get(handler.request.headers.get("X-Test-User", "")))
    app = make_app(SimpleNamespace(course=Course(root)), hub=True)

    prefix = "/services/grader/"
    link = f"{prefix}class/{A}/feedback/%3Cb%3Ex%26y"
    asks = {"student": [(f"{prefix}class/{A}", "student"), (link, "student")],
            "stranger": [(f"{prefix}class/{A}", None), (link, None)],
            "instructor": [(f"{prefix}class/{A}", "instructor"), (link, "instructor"),
                           (f"{prefix}class/nope", "instructor"),
                           (f"{prefix}class/{A}/feedback/..", "instructor")]}

    async def answers() -> dict:
        """Each request of ``asks`` to one server of ``app``, as its user."""
        (sock,) = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets([sock])
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        client = AsyncHTTPClient()
        try:
            return {who: [await client.fetch(base + path, raise_error=False,
                                             follow_redirects=False,
                                             headers={"X-Test-User": user} if user else {})
                          for path, user in requests]
                    for who, requests in asks.items()}
        finally:
            server.stop()

    got = asyncio.run(answers())
    assert [r.code for r in got["student"]] == [403, 403]
    assert [r.code for r in got["stranger"]] == [302, 302]
    page, fb, unknown, outside = got["instructor"]
    assert (page.code, fb.code, unknown.code, outside.code) == (200, 200, 404, 404)
    assert page.headers["Content-Security-Policy"] == render.CSP
    body = page.body.decode()
    assert "the bias b is not added" in body and "<b>x" not in body
    assert f"href='{link}'" in body and "data:image/png;base64," in body
    assert b"your feedback" in fb.body
    assert fb.headers["Content-Security-Policy"] == render.CSP


@pytest.mark.slow
def test_a_script_put_into_the_page_does_not_run_in_chromium(released, tmp_path):
    """The page's Content-Security-Policy stops a script that got in (here: planted)."""
    import browser

    root, url = new_course(released, tmp_path)
    page = render.page(collect(url, PC.COURSE_ID, A))
    planted_script = "<script>document.title = 'ran';document.body.id = 'ran'</script>"
    path = tmp_path / "class.html"
    path.write_text(page.replace("</body>", planted_script + "</body>"))
    dom = browser.browse(path, tmp_path)
    assert "No submissions yet" in dom
    assert not re.search(r"<body[^>]*id=\"ran\"", dom) and "<title>ran" not in dom


@pytest.mark.slow
def test_screenshots_of_the_class_view_and_the_similarity_report(released, tmp_path):
    """docs/img/class-view.png and similarity.png (rewritten with UPDATE_DOCS_IMG=1)."""
    import browser

    root, url = new_course(released, tmp_path)
    PC.record_class(url, A)
    corpus(root)
    out = root / "reports" / A
    assert cli.main(["report", A, "--course-dir", str(root)]) == 0
    for page, name, height in (("class.html", "class-view.png", 1300),
                               ("similarity.html", "similarity.png", 900)):
        png = browser.screenshot(out / page, tmp_path / name, tmp_path, height=height)
        browser.keep_for_docs(png, name)


def test_the_coordinators_record_keeps_each_verdict_message_and_a_regrade_replaces_them(course):
    """The messages come from the pipeline's own recording (record.record), once per cell."""
    import nbfixtures as fx
    from test_record import FAIL, PASS, context, db_rows, make_result

    from autograder.pipeline.coordinator import record as R

    fx.submit(course, "ann", fx.student_notebook(course))
    job, sub = fx.job_for(course, "ann")
    c = Course(course)
    R.record(make_result(job, FAIL), sub, **context(course))
    view = collect(c.db_url, c.course_id, fx.ASSIGNMENT)
    (bug,) = view.bugs
    assert bug.example == FAIL["message"] and bug.students == ["ann"]
    assert sorted(bug.checks) == sorted(job.structure.notebooks[fx.ASSIGNMENT])
    cells = len(job.structure.notebooks[fx.ASSIGNMENT])
    assert db_rows(course, "SELECT count(*) FROM rnn_course_verdict") == [(cells,)]
    R.record(make_result(job, PASS), sub, **context(course))
    assert collect(c.db_url, c.course_id, fx.ASSIGNMENT).bugs == []
    assert db_rows(course, "SELECT count(*) FROM rnn_course_verdict") == [(cells,)]
