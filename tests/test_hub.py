"""The course in a real JupyterHub, driven in a real browser (``make hub-test``).

tools/hub/hub.py sets up and starts a hub as ``make hub`` does, with accounts
of its own (``rnnt-*``, removed afterwards), a fresh state folder and free
ports; Playwright drives Debian's chromium (no browser download):

1. a student logs in and fetches rnn_cell and bptt from the Assignments tab;
   in each, the solutions are filled in (saved through the Jupyter contents
   API, as the browser's session), the notebook is opened and every cell run:
   in bptt a live ipywidgets slider appears and moving it redraws the plot
   (rnn_cell has no widget); rnn_cell, with one more cell of the student's
   that displays planted HTML/script/SVG/widget outputs, is submitted;
2. the grading service (``python -m autograder serve``, a hub service run as
   the grader account) collects, grades and releases the feedback; the
   instructor watches it on the service's status page (hub OAuth);
3. the student fetches the feedback in the Assignments tab and reads the score;
4. the instructor sees the grade in the formgrader (its own tab: nbgrader
   #1870) and, on the submission's page, the planted outputs are inert
   (issue 11: tests/test_sanitize.py's check, on every frame).

Every step leaves a screenshot in ``build/hub-test/`` (printed at the end).
Run as root (accounts, servers as other users): as `make test` is on CI.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "hub"))
import hub as hubtools  # noqa: E402
from test_sanitize import ATTACK_CELL, MARK, _pwned  # noqa: E402

from autograder.classview.render import CSP  # noqa: E402
from autograder.commands.demo import fill_solutions  # noqa: E402
from autograder.course import Course  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.hub]

CHROMIUM = "/usr/lib/chromium/chromium"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the current tab
ASSIGNMENT = "rnn_cell"
# rnn_cell shows no widget; bptt's gradient-norm demo has sliders
WIDGETS_ASSIGNMENT = "bptt"
SHOTS = REPO / "build" / "hub-test"
PREFIX = "rnnt-"
STUDENT, ONLY_A, INSTRUCTOR = f"{PREFIX}student", f"{PREFIX}student-a", f"{PREFIX}instructor"
# the exchange the browser flow goes through (tools/hub/hub.py's EXCHANGES): over HTTP, no
# folder shared with students' servers (tests/test_hub_setup.py: the file exchange's set-up)
EXCHANGE = "http"
TIMEOUT_MS = 60_000
# running every cell of a notebook in the browser, on a loaded 2-core machine
RUN_TIMEOUT_S = 150
# from submit to feedback released by the grading service (polls every 2 s, sandboxed grading)
GRADE_TIMEOUT_S = 180


def _remove_account(user: str) -> None:
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    for pid in hubtools.pids_of({uid}):  # a server left by a failed run: this account's only
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run([hubtools.tool("userdel"), "--remove", user], capture_output=True)


def require_root_and_chromium(test_file: str) -> None:
    """A hub test runs as root (accounts, servers as other users) with Debian's chromium."""
    if os.geteuid() != 0:
        pytest.fail(f"{test_file} runs as root (it makes accounts and runs a hub)",
                    pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing (tools/install-system-deps.sh installs chromium)",
                    pytrace=False)


@pytest.fixture(scope="module")
def hub():
    require_root_and_chromium("tests/test_hub.py")
    state = Path(tempfile.mkdtemp(prefix="rnn-hub-test-", dir="/tmp"))
    course_a, course_b = (c.id for c in hubtools.default_courses())
    st = hubtools.Settings(
        state=state,
        courses=[
            # the student of both courses (STUDENT) works in A; ONLY_A is in A only
            hubtools.HubCourse(course_a, grader=f"{PREFIX}grader", staff=[INSTRUCTOR],
                               students=[STUDENT, ONLY_A],
                               ports=hubtools.free_ports(hubtools.COURSE_PORTS),
                               release=[ASSIGNMENT, WIDGETS_ASSIGNMENT]),
            hubtools.HubCourse(course_b, grader=f"{PREFIX}grader-b", staff=[],
                               students=[STUDENT],
                               ports=hubtools.free_ports(hubtools.COURSE_PORTS),
                               release=[ASSIGNMENT]),
        ],
        ports=hubtools.free_ports(), exchange=EXCHANGE,
        # bptt ships rnn_cell's rnn_forward: it opens once rnn_cell is due (the schedule)
        now=Course().schedule[WIDGETS_ASSIGNMENT].opens)
    for user in st.accounts:  # fresh homes: nothing fetched or configured before
        _remove_account(user)
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    running = None
    try:
        t = time.monotonic()
        passwords, _ = hubtools.prepare(st)
        print(f"\n[hub test] set-up: {time.monotonic() - t:.1f} s", flush=True)
        t = time.monotonic()
        running = hubtools.start(st)
        print(f"[hub test] hub start: {time.monotonic() - t:.1f} s", flush=True)
        yield running, passwords
    finally:
        if running is not None:
            log = running.log_tail(60)
            running.stop()
            (SHOTS / "jupyterhub.log").write_text(log)
        for user in st.accounts:
            _remove_account(user)
        shutil.rmtree(state, ignore_errors=True)
        print(f"\nhub test screenshots: {SHOTS}")


# --------------------------------------------------------------------------- #
# browser steps
# --------------------------------------------------------------------------- #
def open_feedback(page, item, tries: int = 3) -> None:
    """Follow the "view feedback" link of ``item`` and open the page in the file browser.

    Under load the file browser has been seen to move back to the parent folder
    while the double click landed (one run in a loaded full suite: only the
    click's selection stayed, no viewer opened); a person would follow the
    link again, and so does this, with a screenshot of what it saw.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, tries + 1):
        item.locator('a:text("view feedback")').click()
        try:
            page.locator(".jp-DirListing-item", has_text=f"{ASSIGNMENT}.html").dblclick(
                timeout=30_000)
            page.locator(".jp-HTMLViewer iframe").wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == tries:
                raise
            shot(page, f"10-feedback-try-{attempt}")
            print(f"[hub test] the feedback did not open (try {attempt}); following the link "
                  "again")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def login(browser, url: str, user: str, password: str):
    ctx = browser.new_context(viewport={"width": 1360, "height": 860})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=90_000)
    # (a second visit restores the last workspace: wait for the menu, not the launcher)
    page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")').wait_for()
    return ctx, page


def open_assignment_list(page, tries: int = 3) -> None:
    """Nbgrader > Assignment List.  On a loaded machine the menu has been seen to close
    again before its item could be clicked (JupyterLab still restoring its layout): a
    person opens it again, and so does this."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, tries + 1):
        page.click('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")')
        try:
            page.click('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-assignment-list"]',
                       timeout=20_000)
            break
        except PlaywrightTimeout:
            if attempt == tries:
                raise
            shot(page, f"00-menu-try-{attempt}")
            page.keyboard.press("Escape")
    page.locator("#released_assignments_list, #fetched_assignments_list").first.wait_for()


def xsrf(ctx) -> str:
    return next(c["value"] for c in ctx.cookies() if c["name"] == "_xsrf")


def put_notebook(ctx, url: str, user: str, path: str, nb) -> None:
    """Save ``nb`` at ``path`` through the Jupyter contents API, as the browser's session."""
    r = ctx.request.put(f"{url}/user/{user}/api/contents/{path}",
                        data=json.dumps({"type": "notebook", "format": "json", "content": nb}),
                        headers={"X-XSRFToken": xsrf(ctx), "Content-Type": "application/json"})
    assert r.ok, r.text()


def get_notebook(ctx, url: str, user: str, path: str):
    r = ctx.request.get(f"{url}/user/{user}/api/contents/{path}")
    assert r.ok, r.text()
    return nbformat.from_dict(r.json()["content"])


def fetch(page, assignment: str) -> None:
    open_assignment_list(page)
    page.locator("#released_assignments_list > .list_item", has_text=assignment) \
        .locator(".item_status button").click()
    page.locator("#fetched_assignments_list > .list_item", has_text=assignment).wait_for()


def notebook_path(course, assignment: str) -> str:
    """Where a fetched notebook is in the student's home: under its course's folder
    (the hub's c.Exchange.path_includes_course: two courses share assignment names)."""
    return f"{course.id}/{assignment}/{assignment}.ipynb"


def fill_in(ctx, url: str, user: str, course, assignment: str, extra=()):
    """The fetched notebook with the instructor's solutions typed in (and ``extra`` cells)."""
    path = notebook_path(course, assignment)
    release_nb = get_notebook(ctx, url, user, path)
    filled = fill_solutions(release_nb, nbformat.read(
        REPO / "source" / assignment / f"{assignment}.ipynb", as_version=4))
    assert filled.cells != release_nb.cells
    filled.cells += [nbformat.v4.new_code_cell(source) for source in extra]
    put_notebook(ctx, url, user, path, filled)
    return filled


def open_and_run_all(page, url: str, user: str, course, assignment: str, nb,
                     tries: int = 3) -> None:
    """Open the notebook in JupyterLab, Run > Run All Cells, wait for every prompt.

    ``?reset`` opens the notebook alone: without it JupyterLab restores the last
    workspace (the notebook run before) and, on a loaded machine, "Run All" has
    gone to that restored notebook (CI, stop 21: every prompt of this one stayed
    ``[ ]``). The notebook is clicked first, so that it is the current one; and
    if no cell has started after a while a person asks again, and so does this.
    """
    page.goto(f"{url}/user/{user}/lab/tree/{notebook_path(course, assignment)}?reset")
    panel = PANEL
    # the full count: a one-cell placeholder shows before the notebook loads
    expect(page.locator(f"{panel} .jp-Cell")).to_have_count(len(nb.cells), timeout=TIMEOUT_MS)
    page.locator(f"{panel} .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    prompts = page.locator(f"{panel} .jp-CodeCell .jp-InputPrompt")
    errors = page.locator(
        f"{panel} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        has_text=re.compile("Error|Traceback"))
    end = time.monotonic() + RUN_TIMEOUT_S
    for attempt in range(1, tries + 1):
        page.locator(f"{panel} .jp-Cell").first.click()  # this notebook is the current one
        page.click('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Run")')
        page.locator('#jp-mainmenu-run li[data-command="notebook:run-all-cells"], '
                     '#jp-mainmenu-run li[data-command="runmenu:run-all"]').first.click()
        started = time.monotonic() + 30
        while True:
            # textContent: cells scrolled out of view are not rendered (no innerText)
            texts = prompts.evaluate_all("els => els.map(e => e.textContent)")
            assert errors.count() == 0, f"a cell failed: {errors.first.inner_text()[-1500:]}"
            if len(texts) == n_code and all(re.search(r"\[\d+\]", t) for t in texts):
                return
            assert time.monotonic() < end, f"cells not run after {RUN_TIMEOUT_S} s: {texts}"
            if attempt < tries and time.monotonic() > started \
                    and not any(re.search(r"\[(\d+|\*)\]", t) for t in texts):
                shot(page, f"run-all-not-started-{assignment}-{attempt}")
                print(f"[hub test] {assignment}: no cell started 30 s after Run All; again",
                      flush=True)
                break
            page.wait_for_timeout(500)


def wait_released(ictx, service: str, student: str, since: float) -> dict:
    """The student's row of the grading service's api/status once its feedback is out."""
    while True:
        r = ictx.request.get(f"{service}/api/status")
        assert r.ok, r.text()
        data = r.json()
        rows = [x for x in data["students"] if x["student"] == student
                and x["assignment"] == ASSIGNMENT]
        assert not data["failures"], data["failures"]
        if rows and rows[0]["state"] == "released":
            return rows[0]
        assert time.monotonic() - since < GRADE_TIMEOUT_S, \
            f"not released after {GRADE_TIMEOUT_S} s: {rows or data['counts']}"
        time.sleep(1)


def listed(ctx, url: str, user: str, what: str, course_id: str | None = None, ok: bool = True):
    """The ``value`` of the student's Assignments tab's ``courses`` or ``assignments`` call
    (nbgrader's assignment_list server extension), or None when it failed and ``ok`` is
    False (a course the student is not in, over the HTTP exchange)."""
    r = ctx.request.get(f"{url}/user/{user}/{what}",
                        params={"course_id": course_id} if course_id else None)
    assert r.ok, r.text()
    answer = r.json()
    if not answer["success"] and not ok:
        return None
    assert answer["success"], answer
    return answer["value"]


def step(times: dict, name: str, since: float) -> None:
    times[name] = time.monotonic() - since
    print(f"[hub test] {name}: {times[name]:.1f} s", flush=True)


def save(page) -> None:
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-mod-dirty")).to_have_count(0)
    page.wait_for_timeout(500)


# --------------------------------------------------------------------------- #
# the flow
# --------------------------------------------------------------------------- #
def test_a_student_submits_in_the_browser_and_everyone_sees_the_grade(hub):
    from playwright.sync_api import sync_playwright

    running, passwords = hub
    st, url = running.st, running.url
    student, instructor = STUDENT, INSTRUCTOR
    times = {}
    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            _flow(browser, st, url, passwords, student, instructor, times, t0)
        except BaseException:
            for i, pg in enumerate(pg for c in browser.contexts for pg in c.pages):
                shot(pg, f"failure-{i}")
            raise
        finally:
            browser.close()
    print("\nhub test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))


def _flow(browser, st, url, passwords, student, instructor, times, t0):
    course_a, course_b = st.courses
    # 1. the student: log in, fetch, fill in, run, submit
    ctx, page = login(browser, url, student, passwords[student])
    step(times, "student login", t0)
    shot(page, "01-student-lab")
    # a student's Nbgrader menu: the assignment list only (no course list, no formgrader)
    page.click('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")')
    menu = page.locator("#jp-mainmenu-nbgrader li[data-command]")
    menu.first.wait_for()
    shown = "els => els.filter(e => e.getClientRects().length).map(e => e.dataset.command)"
    assert menu.evaluate_all(shown) == ["nbgrader:open-assignment-list"]
    page.keyboard.press("Escape")
    open_assignment_list(page)
    page.locator("#released_assignments_list > .list_item", has_text=ASSIGNMENT).wait_for()
    shot(page, "02-assignments-released")
    fetch(page, ASSIGNMENT)
    fetch(page, WIDGETS_ASSIGNMENT)
    shot(page, "03-assignments-fetched")

    # the widgets render live, and a slider redraws its plot (rnn_cell has none: bptt)
    t = time.monotonic()
    nb = fill_in(ctx, url, student, course_a, WIDGETS_ASSIGNMENT)
    open_and_run_all(page, url, student, course_a, WIDGETS_ASSIGNMENT, nb)
    interact = page.locator(".jp-OutputArea .widget-interact").first
    slider = interact.locator(".widget-slider").first
    slider.wait_for()
    interact.scroll_into_view_if_needed()
    plot = interact.locator("img").first
    plot.wait_for()
    before = plot.get_attribute("src")
    idle = f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']"
    page.locator(idle).wait_for()
    shot(page, "04-widgets-live")
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    page.wait_for_function("([el, old]) => { const i = el.querySelector('img');"
                           " return i && i.src !== old; }",
                           arg=[interact.element_handle(), before], timeout=30_000)
    page.wait_for_timeout(1500)  # the redraws the other key presses asked for
    page.locator(idle).wait_for()
    shot(page, "05-widgets-slider-moved")
    step(times, "bptt: fill, run, slide", t)

    t = time.monotonic()
    # a cell of the student's own whose outputs attack whoever views them (issue 11)
    nb = fill_in(ctx, url, student, course_a, ASSIGNMENT, extra=[ATTACK_CELL])
    open_and_run_all(page, url, student, course_a, ASSIGNMENT, nb)
    step(times, "rnn_cell: fill, run", t)
    shot(page, "06-notebook-run")
    save(page)
    open_assignment_list(page)
    page.locator("#fetched_assignments_list > .list_item", has_text=ASSIGNMENT) \
        .locator('.item_status button:text("Submit")').click()
    page.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT).first.wait_for()
    shot(page, "07-submitted")
    submitted_at = time.monotonic()

    # 2. the grading service collects, grades and releases the feedback; the instructor
    #    watches its status page (hub OAuth: instructors only)
    ictx, ipage = login(browser, url, instructor, passwords[instructor])
    ipage.click('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")')
    ipage.click('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-course-list"]')
    links = ipage.locator(".lm-DockPanel a", has_text=course_a.id)
    links.first.wait_for()
    shot(ipage, "07b-instructor-course-list")
    assert links.all_inner_texts() == [course_a.id]  # not course B's: not its staff
    service = f"{url}/services/{course_a.grading_service}"
    ipage.goto(f"{service}/")
    ipage.locator("#summary").wait_for()
    row = wait_released(ictx, service, student, submitted_at)
    step(times, "submit -> feedback released", submitted_at)
    ipage.reload()
    ipage.locator("td", has_text=student).first.wait_for()
    shot(ipage, "08-grading-service-status")
    assert row["state"] == "released" and row["score"] == row["max_score"] > 0, row
    assert f"{row['score']:g}" in ipage.locator("body").inner_text()
    # and a student may not see it
    denied = ctx.request.get(f"{service}/api/status")
    assert denied.status == 403, (denied.status, denied.text()[:300])

    # the class view beside it (issue 24): the instructor sees its pictures and the
    # student's row, under a CSP that allows no script; the student gets 403 there too
    answer = ipage.goto(f"{service}/class/{ASSIGNMENT}")
    assert answer.ok and answer.headers["content-security-policy"] == CSP, answer.headers
    ipage.locator("#students td", has_text=student).first.wait_for()
    pictures = ipage.locator("img")
    assert pictures.count() >= 3 and all(
        pictures.nth(k).evaluate("i => i.complete && i.naturalWidth > 0")
        for k in range(pictures.count()))
    shot(ipage, "08b-class-view")
    denied = ctx.request.get(f"{service}/class/{ASSIGNMENT}")
    assert denied.status == 403, (denied.status, denied.text()[:300])
    # course A's instructor reaches nothing of course B: its status page, its formgrader
    for page_of_b in (f"services/{course_b.grading_service}/api/status",
                      f"services/{course_b.grading_service}/",
                      f"services/{course_b.id}/formgrader"):
        denied = ictx.request.get(f"{url}/{page_of_b}")
        assert denied.status == 403, (page_of_b, denied.status, denied.text()[:300])

    # 3. the student fetches the feedback and reads the score
    page.reload()
    page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")').wait_for()
    open_assignment_list(page)
    item = page.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT)
    item.locator('button:text("Fetch Feedback")').click()
    item.locator('a:text("view feedback")').wait_for()
    shot(page, "09-feedback-fetched")
    # the link shows the feedback folder in the file browser: open the page from there
    open_feedback(page, item)
    viewer = page.frame_locator(".jp-HTMLViewer iframe")
    text = viewer.locator("body").inner_text()
    shot(page, "10-feedback")

    # the student of both courses picks course B in the Assignments tab: its rnn_cell
    t = time.monotonic()
    assert listed(ctx, url, student, "courses") == [course_a.id, course_b.id]
    open_assignment_list(page)
    page.click("#course_list_dropdown")
    page.locator("#course_list li a", has_text=re.compile(f"^{course_b.id}$")).click()
    page.locator("#released_assignments_list > .list_item", has_text=ASSIGNMENT).wait_for()
    shot(page, "10b-assignments-of-course-b")
    # a student of course A only sees nothing of B, and cannot fetch from it
    actx, apage = login(browser, url, ONLY_A, passwords[ONLY_A])
    assert listed(actx, url, ONLY_A, "courses") == [course_a.id]
    assert [a["assignment_id"] for a in listed(actx, url, ONLY_A, "assignments",
                                               course_a.id)] == sorted(course_a.release)
    assert listed(actx, url, ONLY_A, "assignments", course_b.id, ok=False) in ([], None)
    actx.request.post(f"{url}/user/{ONLY_A}/assignments/fetch", headers={
        "X-XSRFToken": xsrf(actx)}, form={"course_id": course_b.id, "assignment_id": ASSIGNMENT})
    assert listed(actx, url, ONLY_A, "assignments", course_b.id, ok=False) in ([], None)
    home = actx.request.get(f"{url}/user/{ONLY_A}/api/contents/")
    assert course_b.id not in {f["name"] for f in home.json()["content"]}, home.text()
    actx.close()
    step(times, "two courses: B listed, nothing of B for A's student", t)

    # 4. the instructor: the formgrader (own tab) shows the grade
    fg = f"{url}/services/{course_a.id}/formgrader"
    r = ictx.request.get(f"{fg}/api/submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
    assert r.ok, r.text()
    (sub,) = r.json()
    assert sub["student"] == student
    assert sub["score"] == sub["max_score"] > 0, sub
    assert (sub["score"], sub["max_score"]) == (row["score"], row["max_score"])
    assert f"Score: {sub['score']:.1f} / {sub['max_score']:.1f}" in text
    ipage.goto(f"{fg}/gradebook/{ASSIGNMENT}/{ASSIGNMENT}")
    # (the formgrader hides the names: "Submission #1", with its score)
    ipage.locator("td", has_text=f"{sub['score']:g} / {sub['max_score']:g}").first.wait_for()
    shot(ipage, "11-formgrader-gradebook")

    # the autograded notebook as the formgrader shows it: the planted outputs are inert
    ipage.goto(f"{fg}/submissions/{sub['id']}/?index=0")
    table = ipage.locator("table.dataframe").last  # the planted cell's honest output
    table.wait_for()
    table.scroll_into_view_if_needed()
    ipage.wait_for_timeout(3000)  # time for anything planted to run
    shot(ipage, "12-formgrader-submission-planted-cell")
    for frame in ipage.frames:
        assert not _pwned(frame.content()), frame.url
    assert ipage.title() != MARK
    # the attacks did run in the grader's kernel: what is left of them is shown, inert
    # (the script and widget bundles as their text/plain parts, the HTML without its handlers)
    assert {"js", "widget"} <= {t.strip() for t in ipage.locator("pre").all_inner_texts()}
    assert ipage.locator("div", has_text=re.compile(r"^hover$")).count() >= 1


def test_a_student_reads_no_solution_anywhere_the_hub_put_or_used_them(hub):
    """As a student account of the running hub: neither the checkout the hub was made from,
    nor the grader's course copy, nor the hub's state and software folders give away
    ``source/`` or ``autograder/reference.py`` (hub.protect_checkout, copy_course)."""
    running, _ = hub
    st = running.st
    student = STUDENT
    runuser = hubtools.tool("runuser")
    for root in (st.repo, *map(st.course_dir, st.courses)):
        for rel in (f"source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", "autograder/reference.py"):
            probe = subprocess.run([runuser, "-u", student, "--", "cat", str(root / rel)],
                                   capture_output=True, text=True)
            assert probe.returncode != 0 and "Permission denied" in probe.stderr, (root, rel)
    names = ["-path", "*/autograder/reference.py"]
    for a in Course().assignments:
        names += ["-o", "-path", f"*/source/{a}/{a}.ipynb"]
    found = subprocess.run(
        [runuser, "-u", student, "--", "find", str(st.state), str(st.shared), "-readable",
         "(", *names, ")"], capture_output=True, text=True)
    assert found.stdout.strip() == "", found.stdout


def test_no_exchange_folder_is_shared_with_students_servers(hub):
    """Over HTTP (EXCHANGE) no exchange folder exists for students' servers to mount: each
    course's grader has its own (mode 0700), which a student cannot even list."""
    running, _ = hub
    st = running.st
    assert st.exchange == "http" and not st.exchange_root.exists()
    runuser = hubtools.tool("runuser")
    for course in st.courses:
        root = st.exchange_of(course)
        info = os.stat(root)
        assert (info.st_uid, info.st_mode & 0o777) == (pwd.getpwnam(course.grader).pw_uid, 0o700)
        assert (root / course.id / "outbound" / ASSIGNMENT).is_dir()  # released there
        probe = subprocess.run([runuser, "-u", STUDENT, "--", "ls", str(root)],
                               capture_output=True, text=True)
        assert probe.returncode != 0 and "Permission denied" in probe.stderr, course.id
