"""The course launched from an LMS, in a real JupyterHub and a real browser (LTI 1.3).

tools/hub/hub.py sets up and starts a hub with ``login="lti"`` (HTTPS, the
course's LTI authenticator) beside the project's test LMS (tools/lms/testlms.py,
its course's members the hub's ``rnnt-*`` accounts), as ``make hub HUB_LOGIN=lti
HUB_ARGS=--with-test-lms`` does; Playwright drives Debian's chromium:

1. a student opens the LMS's course page and launches the tool INSIDE ITS IFRAME
   (a cross-site frame: the hub's cookies are ``SameSite=None; Secure``) and
   lands in JupyterLab, where the Assignments tab lists this course's
   assignment; the student fetches it, and submits it with the solutions in;
2. the grading service grades it and releases the feedback; the student fetches
   the feedback in the iframe and its score is the service's;
3. an instructor launched from the same LMS (the link followed in a tab: the
   formgrader and the grading service are not framed) is in the course's staff
   group: the grading service's status page and the formgrader open for them;
   the LMS's gradebook holds the score the feedback shows (the grading service
   posted it); for the student both pages answer 403;
4. at the HTTP level, against the running hub: the login initiation's cookies
   are ``SameSite=None; Secure``, and a replayed launch (the same id_token, state
   and cookies) is refused.

Screenshots in ``build/hub-lti-test/`` (docs/img/lti-*.png are two of them).
Run as root (accounts, servers as other users), under ``flock /work/brief/hub.lock``
on a shared machine.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

import nbformat
import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "hub"))
import hub as hubtools  # noqa: E402
import lti as hublti  # noqa: E402
from test_hub import (  # noqa: E402
    CHROMIUM,
    TIMEOUT_MS,
    _remove_account,
    notebook_path,
    require_root_and_chromium,
    wait_released,
)

from autograder.commands.demo import fill_solutions  # noqa: E402
from autograder.roles import grading_service  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.hub]

ASSIGNMENT = "rnn_cell"
SHOTS = REPO / "build" / "hub-lti-test"
PREFIX = "rnnt-lti-"
MENU = '#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")'


@pytest.fixture(scope="module")
def lti_hub():
    require_root_and_chromium("tests/test_hub_lti.py")
    state = Path(tempfile.mkdtemp(prefix="rnn-hub-lti-test-", dir="/tmp"))
    # one course (the LMS's), over the file exchange (tests/test_hub.py runs the http one)
    st = hubtools.Settings(
        state=state, courses=[hubtools.HubCourse(
            hubtools.default_courses()[0].id, grader=f"{PREFIX}grader",
            staff=[f"{PREFIX}instructor"], students=[f"{PREFIX}student"],
            ports=hubtools.free_ports(hubtools.COURSE_PORTS), release=[ASSIGNMENT])],
        ports=hubtools.free_ports(), exchange="file", login="lti")
    for user in st.accounts:
        _remove_account(user)
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    running = lms = None
    try:
        t = time.monotonic()
        lms, st.lti_platform = hublti.start_test_lms(st, st.url)
        hubtools.prepare(st)
        lms.tool.public_jwk = st.lti_tool_jwk
        print(f"\n[hub lti test] set-up: {time.monotonic() - t:.1f} s", flush=True)
        t = time.monotonic()
        running = hubtools.start(st)
        print(f"[hub lti test] hub start: {time.monotonic() - t:.1f} s", flush=True)
        yield st, running, lms
    finally:
        if running is not None:
            log = running.log_tail(80)
            running.stop()
            (SHOTS / "jupyterhub.log").write_text(log)
        if lms is not None:
            lms.stop()
        for user in st.accounts:
            _remove_account(user)
        shutil.rmtree(state, ignore_errors=True)
        print(f"\nhub lti test screenshots: {SHOTS}")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def new_context(browser):
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, ignore_https_errors=True)
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


# Chrome's default for a normal window: third-party cookies and storage allowed.  Where
# they are blocked (a Playwright context, like Chrome's Incognito; Safari; Firefox's strict
# mode), the hub's partitioned cookies still log the student in inside the iframe, but
# JupyterLab cannot start there: it needs localStorage, which the browser then denies
# to a third-party frame (docs/lms.md, "Launch": open the tool in a new window).
NORMAL_WINDOW = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}


def normal_window(playwright, folder: Path):
    """A browser with a profile of its own, as a person's Chrome window (NORMAL_WINDOW)."""
    (folder / "Default").mkdir(parents=True)
    (folder / "Default" / "Preferences").write_text(json.dumps(NORMAL_WINDOW))
    ctx = playwright.chromium.launch_persistent_context(
        str(folder), executable_path=CHROMIUM, headless=True, ignore_https_errors=True,
        viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


def launch_in_iframe(ctx, lms, user: str):
    """The LMS's course page for ``user``, the tool launched in its iframe, JupyterLab there."""
    page = ctx.new_page()
    page.goto(lms.frame_url(user, hublti.TEST_CONTEXT))
    page.frame_locator("#tool").locator(MENU).wait_for(timeout=120_000)  # login, spawn, Lab
    frame = page.locator("#tool").element_handle().content_frame()
    assert re.search(rf"/user/{user}/lab", frame.url), frame.url
    assert page.url.startswith(lms.url), page.url  # the LMS's page stays on top
    return page, frame


def launch_in_a_tab(browser, lms, user: str):
    """The LMS's launch link followed in the browser's tab (a tool opened in a new window)."""
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto(f"{lms.url}/")
    link = next(iter(lms.courses[hublti.TEST_CONTEXT]["links"]))
    page.click(f"#launch-{user}-{link}")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
    page.locator(MENU).wait_for()
    return ctx, page


def open_assignment_list(frame) -> None:
    frame.click(MENU)
    frame.click('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-assignment-list"]')
    frame.locator("#released_assignments_list, #fetched_assignments_list").first.wait_for()


# the Jupyter contents API from inside the frame, as its own page calls it (its cookies are
# partitioned under the LMS's site: only the frame has them)
FETCH_JSON = """async ([url, method, body]) => {
    const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
    const r = await fetch(url, {method, body, headers: {"X-XSRFToken": decodeURIComponent(xsrf),
                                                        "Content-Type": "application/json"}});
    return {status: r.status, body: await r.text()};
}"""


def call(frame, url: str, method: str = "GET", body: str | None = None) -> tuple[int, str]:
    r = frame.evaluate(FETCH_JSON, [url, method, body])
    return r["status"], r["body"]


def contents(frame, url: str, user: str, path: str, method: str = "GET", body=None):
    status, text = call(frame, f"{url}/user/{user}/api/contents/{path}", method,
                        None if body is None else json.dumps(body))
    assert status < 300, (status, text[:300])
    return json.loads(text)


def step(times: dict, name: str, since: float) -> None:
    times[name] = time.monotonic() - since
    print(f"[hub lti test] {name}: {times[name]:.1f} s", flush=True)


# --------------------------------------------------------------------------- #
# the flow in the browser
# --------------------------------------------------------------------------- #
def test_launched_from_the_lms_a_student_submits_and_an_instructor_grades(lti_hub):
    from playwright.sync_api import sync_playwright

    st, running, lms = lti_hub
    times = {}
    profile = Path(tempfile.mkdtemp(prefix="rnn-hub-lti-chromium-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        window = normal_window(p, profile)
        try:
            _flow(window, browser, st, running.url, lms, times)
        except BaseException:
            pages = [*window.pages, *(pg for c in browser.contexts for pg in c.pages)]
            for i, pg in enumerate(pages):
                shot(pg, f"failure-{i}")
            raise
        finally:
            window.close()
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)
    print("\nhub lti test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))


def _flow(window, browser, st, url, lms, times):
    student, instructor = st.students[0], st.staff[0]
    t0 = time.monotonic()
    # 1. the student launches inside the LMS's iframe, fetches and submits
    page, frame = launch_in_iframe(window, lms, student)
    step(times, "student launch in the iframe -> JupyterLab", t0)
    open_assignment_list(frame)
    item = frame.locator("#released_assignments_list > .list_item", has_text=ASSIGNMENT)
    item.wait_for()
    item.locator(".item_status button").click()
    fetched = frame.locator("#fetched_assignments_list > .list_item", has_text=ASSIGNMENT)
    fetched.wait_for()
    shot(page, "01-student-launched-in-the-lms-iframe")
    path = notebook_path(st.courses[0], ASSIGNMENT)  # <course>/<assignment>/ on this hub
    released = nbformat.from_dict(contents(frame, url, student, path)["content"])
    filled = fill_solutions(released, nbformat.read(
        REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4))
    contents(frame, url, student, path, "PUT",
             {"type": "notebook", "format": "json", "content": filled})
    fetched.locator('.item_status button:text("Submit")').click()
    frame.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT).first \
        .wait_for()
    submitted_at = time.monotonic()
    step(times, "fetch, fill in, submit", t0)

    # 2. an instructor launched from the same LMS (in a tab of its own: the formgrader and
    #    the grading service refuse to be framed) reaches the status page and the formgrader
    ictx, ipage = launch_in_a_tab(browser, lms, instructor)
    step(times, "instructor launch", t0)
    service = f"{url}/services/{grading_service(st.courses[0].id)}"
    ipage.goto(f"{service}/")
    ipage.locator("#summary").wait_for()
    row = wait_released(InPage(ipage), service, student, submitted_at)
    step(times, "submit -> graded and released", submitted_at)
    assert row["score"] == row["max_score"] > 0, row
    ipage.reload()
    ipage.locator("td", has_text=student).first.wait_for()
    shot(ipage, "03-instructor-grading-service-status")
    fg = f"{url}/services/{st.courses[0].id}/formgrader"
    answer = ipage.goto(f"{fg}/gradebook/{ASSIGNMENT}/{ASSIGNMENT}")
    assert answer.ok, answer.status
    ipage.locator("td", has_text=f"{row['score']:g} / {row['max_score']:g}").first.wait_for()
    shot(ipage, "04-instructor-formgrader")

    # 3. the student fetches the feedback in the iframe: its score is the service's
    open_assignment_list(frame)
    subitem = frame.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT)
    subitem.locator('button:text("Fetch Feedback")').click()
    subitem.locator('a:text("view feedback")').wait_for()
    shot(page, "02-student-feedback-fetched-in-the-iframe")
    folder = contents(frame, url, student, f"{st.courses[0].id}/{ASSIGNMENT}/feedback")["content"]
    (stamp,) = [x["name"] for x in folder if x["type"] == "directory"]
    page_html = contents(frame, url, student,
                         f"{st.courses[0].id}/{ASSIGNMENT}/feedback/{stamp}/{ASSIGNMENT}.html")
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_html["content"])).split())
    assert f"Score: {row['score']:.1f} / {row['max_score']:.1f}" in text
    step(times, "feedback fetched", t0)

    # 4. the LMS's gradebook holds that score: the grading service posted it (AGS)
    grade = wait_lms_grade(lms, student, time.monotonic())
    step(times, "graded -> in the LMS's gradebook", submitted_at)
    assert (grade["scoreGiven"], grade["scoreMaximum"]) == (row["score"], row["max_score"]), grade
    assert grade["gradingProgress"] == "FullyGraded", grade
    lms_page = ictx.new_page()
    lms_page.goto(f"{lms.url}/gradebook")
    assert lms_page.locator("td", has_text=student).first.is_visible()
    assert f"{row['score']:g}" in lms_page.locator("table").first.inner_text()
    shot(lms_page, "06-lms-gradebook")

    # 5. the student may open neither the status page nor the formgrader (in the frame)
    for denied_url in (f"{service}/api/status", fg):
        answer = frame.goto(denied_url)
        assert answer.status == 403, (denied_url, answer.status, answer.text()[:300])
    shot(page, "05-student-403-formgrader")
    step(times, "whole flow", t0)


LMS_TIMEOUT_S = 60  # from the grade recorded to the LMS holding it (the service polls)


def wait_lms_grade(lms, student: str, since: float) -> dict:
    """The LMS's last accepted score of ``student`` for the assignment, once it has one."""
    while True:
        item = lms.item_of(hublti.TEST_CONTEXT, ASSIGNMENT)
        grade = item and lms.grade(item["id"], student)
        if grade:
            assert lms.posts(item["id"], student) == 1  # exactly once
            return grade
        assert time.monotonic() - since < LMS_TIMEOUT_S, \
            f"the LMS has no grade after {LMS_TIMEOUT_S} s: {lms.items()}"
        time.sleep(1)


class InPage:
    """A browser context's ``request.get`` made as the page's own fetch: its cookies are
    partitioned (CROSS_SITE_COOKIE), the page has them."""

    def __init__(self, page):
        self.page, self.request = page, self

    def get(self, url: str):
        status, text = call(self.page, url)
        return types.SimpleNamespace(ok=status < 300, status=status, text=lambda: text,
                                     json=lambda: json.loads(text))


# --------------------------------------------------------------------------- #
# the launch at the HTTP level, against the running hub
# --------------------------------------------------------------------------- #
def test_the_running_hub_sets_iframe_cookies_and_refuses_a_replayed_launch(lti_hub):
    st, running, lms = lti_hub
    student = st.students[0]
    session = requests.Session()
    cert = st.lti["cert"]  # per request: $REQUESTS_CA_BUNDLE would override a session's
    # login initiation, as the LMS's link starts it: to the LMS's authorization endpoint
    start = session.get(lms.login_initiation(student, hublti.TEST_CONTEXT),
                        allow_redirects=False, timeout=30, verify=cert)
    assert start.status_code == 302, (start.status_code, start.text[:300])
    set_cookies = start.raw.headers.getlist("Set-Cookie")
    assert len(set_cookies) == 2 and all(
        "SameSite=None" in c and "Secure" in c and "Partitioned" in c for c in set_cookies), \
        set_cookies
    # the LMS answers with the auto-posting form (id_token, state)
    form = requests.get(start.headers["Location"], timeout=30)
    assert form.ok, form.text[:300]
    fields = dict(re.findall(r'name="(id_token|state)" value="([^"]*)"', form.text))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    callback = f"{st.url}{hublti.CALLBACK_PATH}"
    cookies = dict(session.cookies)
    first = session.post(callback, data=fields, allow_redirects=False, timeout=60, verify=cert)
    assert first.status_code == 302, (first.status_code, first.text[:500])
    # the same request again, its cookies put back: refused, nothing logged in
    replay = requests.post(callback, data=fields, cookies=cookies, allow_redirects=False,
                           verify=cert, timeout=60)
    assert replay.status_code == 400, (replay.status_code, replay.text[:500])
    assert "used before" in replay.text
    assert not any(c.name.startswith("jupyterhub-hub-login") for c in replay.cookies)
    # the tool's public key, where the LMS reads it
    jwks = requests.get(hublti.registration(st.url)["tool JWKS URL"], verify=cert, timeout=30)
    assert jwks.json() == {"keys": [st.lti_tool_jwk]}
