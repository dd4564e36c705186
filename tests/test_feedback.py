"""Feedback HTML (``autograder.pipeline.worker.feedback``): the scores, the notes, hidden
tests hidden."""

from __future__ import annotations

import os
import re
from html import unescape

import nbfixtures as fx
import nbformat
import pytest
from nbformat.v4 import new_output

from autograder.pipeline import flags as F
from autograder.pipeline.scoring import NO_RESPONSE, Scores
from autograder.pipeline.worker.feedback import (
    cell_doc,
    feedback_resources,
    function_subtotals,
    math_html,
    notes_cell,
    render_feedback,
)

A = fx.ASSIGNMENT
HIDDEN_MESSAGE = "s differs from the expected values"


def graded_notebook():
    """The fixture notebook as the worker leaves it: instructor's cells, verdicts as outputs."""
    nb = fx.fixture_source()
    outputs = {
        "add_impl": [new_output("stream", name="stdout", text="my inputs: 0.123456789\n")],
        fx.PLAIN_ID: [new_output("stream", name="stdout", text=f"{fx.PLAIN_ID}: passed\n")],
        fx.VISIBLE_ID: [new_output("stream", name="stdout", text=f"{fx.VISIBLE_ID}: passed\n")],
        fx.HIDDEN_ID: [new_output("error", ename="CheckFailed",
                                  evalue=f"{fx.HIDDEN_ID}: {HIDDEN_MESSAGE}",
                                  traceback=[f"CheckFailed: {fx.HIDDEN_ID}: {HIDDEN_MESSAGE}"])],
    }
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and gid in outputs:
            cell.outputs = outputs[gid]
    return nb


def scores(late_penalty=None) -> Scores:
    def cell(score, points, passed, kind, message=""):
        return {"score": score, "max_score": points, "passed": passed, "kind": kind,
                "message": message}

    return Scores(cells={A: {
        fx.PLAIN_ID: cell(1.0, 1.0, True, "visible"),
        fx.VISIBLE_ID: cell(1.0, 1.0, True, "visible"),
        fx.HIDDEN_ID: cell(0.0, 2.0, False, "hidden", HIDDEN_MESSAGE),
    }}, late_penalties={A: late_penalty})


def render(flags=(), late_penalty=None, comments=None):
    res = feedback_resources("ann", A, A, scores(late_penalty), comments or {"add_impl": None})
    return render_feedback(graded_notebook(), res, list(flags))


def text_of(html: str) -> str:
    """What a reader sees: no styles, no tags (code is highlighted span by span)."""
    body = re.sub(r"<(style|script).*?</\1>", "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", body))


def test_the_feedback_shows_the_workers_scores():
    html = render()
    assert f"{A} (Score: 2.0 / 4.0)" in html
    assert "(Score: 0.0 / 2.0)" in html and html.count("(Score: 1.0 / 1.0)") == 2
    assert "Late submission penalty" not in html
    late = render(late_penalty=1.5)
    assert f"{A} (Score: 0.5 / 4.0)" in late and "Late submission penalty (Score: -1.5)" in late


def test_notes_list_flags_in_the_students_words_and_failed_checks():
    reason = "Copy of rnn_cell.ipynb <b>x</b>"
    html = render(flags=[(F.RENAMED_NOTEBOOK, reason), (F.LATE, "")])
    body = text_of(html)
    assert "Grader notes" in body
    assert F.VOCABULARY[F.RENAMED_NOTEBOOK].text in body
    assert F.VOCABULARY[F.LATE].text in body
    assert "<b>x</b>" not in html and reason in body  # a reason is text, never markup
    assert f"hidden check {fx.HIDDEN_ID} failed: {HIDDEN_MESSAGE}" in body
    assert HIDDEN_MESSAGE in body


def test_no_notes_for_a_clean_submission():
    assert notes_cell([], scores().cells[A] | {fx.HIDDEN_ID: {"passed": True}}) is None
    assert notes_cell([], {"essay": {"passed": False, "kind": "manual"}}) is None


def test_hidden_tests_are_hidden_and_the_verdict_shown():
    body = text_of(render())
    for leak in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "grading.inputs(", '_in["a"]'):
        assert leak not in body, leak
    assert f"CheckFailed: {fx.HIDDEN_ID}: {HIDDEN_MESSAGE}" in body
    assert f"{fx.VISIBLE_ID}: passed" in body  # a visible check's code and verdict are shown
    assert "assert add(2, 2) == 4" in body  # the visible part of the hidden cell stays


def test_an_answer_left_as_released_says_no_response():
    assert NO_RESPONSE in render(comments={"add_impl": NO_RESPONSE})
    assert NO_RESPONSE not in render()


# --------------------------------------------------------------------------- #
# read offline: named cells, rendered math, tables
# --------------------------------------------------------------------------- #
MATH_MD = (
    "The step: $h_t = \\tanh(x_t W_x + h_{t-1} W_h + b)$, and\n\n"
    "$$\\frac{\\partial E}{\\partial h_t} = \\sum_{k \\le t} \\delta_k$$\n\n"
    "| letter | meaning |\n| --- | --- |\n| `N` | batch size |\n| `D` | size of $x_t$ |\n"
)


def render_with(*extra_cells, flags=(), extra_scores=None):
    nb = graded_notebook()
    nb.cells[1:1] = list(extra_cells)
    graded = scores()
    graded.cells[A].update(extra_scores or {})
    res = feedback_resources("ann", A, A, graded, {"add_impl": None})
    return render_feedback(nb, res, list(flags))


def toc(html: str) -> str:
    return text_of(html[html.index('<div id="toc">'):html.index('<div class="panel-body">')])


def test_every_graded_cell_is_named_by_its_check_id_and_docstring():
    html = render()
    listed = toc(html)
    assert "Test cell" not in listed
    for gid, doc in ((fx.PLAIN_ID, "add adds."), (fx.VISIBLE_ID, "add works on arrays."),
                     (fx.HIDDEN_ID, "add is right on inputs the grader draws.")):
        assert f"{gid}: {doc}" in " ".join(listed.split()), gid
        assert f'href="#{gid}"' in html


def test_hidden_checks_are_listed_by_name_with_their_reason_and_no_code():
    listed = " ".join(toc(render()).split())
    assert f"{fx.HIDDEN_ID}: add is right on inputs the grader draws. (hidden check)" in listed
    assert f"failed: {HIDDEN_MESSAGE}" in listed
    assert f"{fx.VISIBLE_ID}: add works on arrays. (Score: 1.0 / 1.0) passed" in listed
    for leak in ("grading.inputs", "BEGIN HIDDEN", '_in["a"]'):
        assert leak not in listed


def test_a_docstring_is_its_first_line():
    assert cell_doc('"""One line.\n\nMore text."""\nx = 1') == "One line."
    assert cell_doc('%%time\n"""After a magic."""\nx') == "After a magic."
    assert cell_doc('"""Unterminated code below."""\nx = (') == "Unterminated code below."
    assert cell_doc("x = 1") == ""


def test_math_is_rendered_as_mathml_without_any_script():
    html = render_with(fx.markdown(MATH_MD))
    assert "<script" not in html.lower() and "cdnjs" not in html and "MathJax" not in html
    assert html.count("<math") == 3
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html
    body = text_of(html)
    assert "$" not in body and "\\frac" not in body and "\\tanh" not in body


def test_tables_keep_their_header_row_and_their_math():
    html = render_with(fx.markdown(MATH_MD))
    table = html[html.index("<table"):html.index("</table>")]
    header = table[table.index("<thead>"):table.index("</thead>")]
    assert "<th>letter</th>" in header and "<th>meaning</th>" in header
    assert "<math" in table  # $x_t$ inside a cell
    assert ".rendered_html thead th" in html  # the header row is drawn apart from the body


def test_math_cannot_carry_markup():
    # (a student's markdown with raw HTML never gets here: SanitizeOutputs escapes it first)
    for tex in ("\\text{<img src=x onerror=alert(1)>}", "\\href{javascript:alert(1)}{x}",
                "\\style{background:url(x)}{x}", "\\class{navbar}{x}"):
        mathml = math_html(tex, False)
        assert mathml.startswith("<math"), tex
        for bad in ("<img", "onerror", "javascript:", "href", "style", "class"):
            assert bad not in mathml, (tex, bad)
    assert math_html("a < b", False).count("&lt;") == 1
    html = render_with(fx.markdown("Unreadable: $\\frac{1}{$ stays text."))
    assert '<code class="math-tex">\\frac{1}{</code>' in html


# --------------------------------------------------------------------------- #
# slow: a real assignment's feedback in chromium, without network
# --------------------------------------------------------------------------- #
REAL = "rnn_cell"
# the tanh derivative written as (1 - h) instead of (1 - h**2): rnn_step_backward is wrong
TANH_BUG = ("(1.0 - next_h ** 2)", "(1.0 - next_h)")

PROBE = """
const cells = [...document.querySelectorAll('#toc li.graded-cell')].map(li => ({
  id: li.dataset.gradeId, code: li.querySelector('code.check-id').textContent,
  text: li.textContent.replace(/\\s+/g, ' ').trim()}));
const maths = [...document.querySelectorAll('.text_cell_render math')];
const boxes = maths.map(m => m.getBoundingClientRect());
const fracs = [...document.querySelectorAll('.text_cell_render math[display=block] mfrac')]
  .map(f => f.getBoundingClientRect().height / parseFloat(getComputedStyle(f).fontSize));
const raw = [...document.querySelectorAll('.text_cell_render')].map(e => e.innerText)
  .filter(t => /\\$[^$\\n]+\\$/.test(t) || t.includes('\\\\frac') || t.includes('\\\\tanh'));
return {cells, maths: maths.length, laid_out: boxes.filter(b => b.width > 0 && b.height > 0).length,
        tall: fracs.map(h => h > 1.6), ratios: fracs, raw, scripts: document.scripts.length,
        tables: [...document.querySelectorAll('.text_cell_render table')].map(
          t => t.querySelectorAll('thead th').length)};
"""


WIDTH_PROBE = """
const rows = [...document.querySelectorAll('#by-function tr.function')];
return {functions: rows.map(r => r.dataset.function),
        failed: Object.fromEntries(rows.map(r => [r.dataset.function,
                                                   r.querySelectorAll('a').length])),
        wide: document.documentElement.scrollWidth, view: window.innerWidth};
"""


def graded_real_submission(tmp_path, monkeypatch) -> tuple[str, nbformat.NotebookNode]:
    """The feedback of a submission of ``rnn_cell`` with one planted bug, graded by the worker."""
    from autograder.commands.demo import fill_solutions
    from autograder.pipeline.worker.submission import grade_submission

    for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("RNN_COURSE_SECRET", "feedback-screenshot")
    source = nbformat.read(fx.REPO / "source" / REAL / f"{REAL}.ipynb", as_version=4)
    course = fx.make_course(tmp_path / "course", source, assignment=REAL,
                            config_extra="c.Execute.timeout = 120\n")
    nb = fill_solutions(fx.release_notebook(course, REAL), source)
    cell = next(c for c in nb.cells if TANH_BUG[0] in c.source)
    cell.source = cell.source.replace(*TANH_BUG)
    fx.submit(course, "ann", nb, assignment=REAL)
    job, _ = fx.job_for(course, "ann", assignment=REAL)
    result = grade_submission(job)
    assert result.status == "graded", result.error
    assert 0 < result.score < result.max_score
    return result.feedback[REAL], source


@pytest.mark.slow
def test_in_a_browser_offline_the_feedback_names_every_cell_and_renders_its_math(
        tmp_path, monkeypatch):
    from browser import keep_for_docs, probe, screenshot

    body, source = graded_real_submission(tmp_path, monkeypatch)
    page = tmp_path / f"{REAL}.html"
    page.write_text(body, encoding="utf-8")
    got = probe(page, PROBE, tmp_path)

    graded = [(c.metadata.nbgrader["grade_id"], cell_doc(c.source)) for c in source.cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c["id"] for c in got["cells"]] == [gid for gid, _ in graded]
    for (gid, doc), cell in zip(graded, got["cells"], strict=True):
        assert doc and cell["code"] == gid and cell["text"].startswith(f"{gid}: {doc}"), cell
    listed = [c["text"] for c in got["cells"]]
    assert any("rnn_step_backward" in t and "failed:" in t for t in listed), listed
    assert any("(hidden check)" in t and t.endswith("passed") for t in listed), listed

    assert got["scripts"] == 1  # the probe's own: the page has none
    assert got["maths"] > 20 and got["laid_out"] == got["maths"]
    assert got["tall"] and all(got["tall"]), got["ratios"]  # fractions stacked: MathML laid out
    assert got["raw"] == []  # no $...$ left in any markdown cell
    assert got["tables"] and all(n >= 2 for n in got["tables"]), got["tables"]

    # a subtotal per function on top, and nothing wider than a 1000 px window
    layout = probe(page, WIDTH_PROBE, tmp_path, "--window-size=1000,900")
    assert {"rnn_step_forward", "rnn_step_backward"} <= set(layout["functions"]), layout
    # the tanh' bug: its function's failed checks listed under it, none under the forward
    assert layout["failed"]["rnn_step_backward"] and not layout["failed"]["rnn_step_forward"]
    assert layout["wide"] <= layout["view"], layout  # no sideways scrolling
    keep_for_docs(screenshot(page, tmp_path / "feedback.png", tmp_path, width=1000,
                             height=1700), "feedback.png")


def test_a_flag_reason_is_never_read_as_math():
    html = render(flags=[(F.RENAMED_NOTEBOOK, "Copy of $x_t$ notebook.ipynb")])
    assert "Copy of $x_t$ notebook.ipynb" in text_of(html)
    assert html.count("<math") == 0


def test_answers_graded_by_hand_are_listed_as_such():
    essay = fx.markdown("Why does the gradient vanish? $\\prod_k W_h$")
    essay.metadata.nbgrader = fx._meta("essay", grade=True, solution=True, points=2)
    code = fx.code("def explain():\n    return 1")
    code.metadata.nbgrader = fx._meta("explain", grade=True, solution=True, points=1)
    manual = {  # as scoring leaves them: one answered (for a person to grade), one left as released
        "essay": {"score": None, "max_score": 2.0, "passed": None, "kind": "manual",
                  "message": "graded by an instructor"},
        "explain": {"score": 0.0, "max_score": 1.0, "passed": False, "kind": "manual",
                    "message": NO_RESPONSE}}
    listed = " ".join(toc(render_with(essay, code, extra_scores=manual)).split())
    assert "essay (written response) (Score: 0.0 / 2.0)" in listed
    assert "explain (coding free-response) (Score: 0.0 / 1.0)" in listed
    assert "failed" not in listed.replace(f"failed: {HIDDEN_MESSAGE}", "")


def test_what_the_exporter_remembers_renders_as_nbconvert_does():
    """Highlighted code and markdown are cached per worker: the same HTML as rendered afresh."""
    from nbconvert.filters.highlight import Highlight2HTML

    from autograder.pipeline.worker.feedback import CachedHighlight2HTML, exporter

    cached, plain = CachedHighlight2HTML(pygments_lexer="ipython3"), Highlight2HTML(
        pygments_lexer="ipython3")
    for source, metadata in (("x = 1  # a comment\nprint(x)", None),
                             ("SELECT 1", {"magics_language": "sql"}), ("", {})):
        first = cached(source, None, metadata)
        assert first == plain(source, None, metadata) == cached(source, None, metadata)
    exp = exporter()
    markdown = "# Title\n\nSome *text* and $\\tanh(x)$ and `code`."
    once = exp._markdown(markdown)
    assert once == exp._render_markdown(markdown) == exp._markdown(markdown)
    assert "<math" in once and exp._markdown.cache_info().hits >= 1


def test_the_feedback_gives_a_subtotal_per_function_with_its_failed_checks():
    """Issue 26: a student sees which function lost the points, and which checks."""
    def cell(score, points, passed, kind):
        return {"score": score, "max_score": points, "passed": passed, "kind": kind,
                "message": "" if passed else "dx differs"}

    cells = {"rnn_step_forward_shapes": cell(1.0, 1.0, True, "visible"),
             "rnn_step_forward_hidden": cell(0.5, 2.0, False, "hidden"),
             "rnn_step_backward_shapes": cell(1.0, 1.0, True, "visible")}
    assert function_subtotals("rnn_cell", cells) == {
        "rnn_step_forward": {"score": 1.5, "max_score": 3.0,
                             "failed": ["rnn_step_forward_hidden"]},
        "rnn_step_backward": {"score": 1.0, "max_score": 1.0, "failed": []}}
    assert function_subtotals("no_such_assignment", cells) == {}  # no checks module
    fixture = scores().cells[A]  # the graded notebook's own cells, about no function
    assert function_subtotals("rnn_cell", fixture) == {}
    res = feedback_resources("ann", "rnn_cell", A, Scores(cells={A: {**fixture, **cells}}),
                             {"add_impl": None})
    html = render_feedback(graded_notebook(), res, [])
    table = re.search(r'<table id="by-function">.*?</table>', html, flags=re.S).group(0)
    rows = re.findall(r'<tr class="function".*?</tr>', table, flags=re.S)
    assert [re.sub(r"\s+", " ", text_of(r)).strip() for r in rows] == [
        "rnn_step_forward 1.5 / 3.0 rnn_step_forward_hidden",
        "rnn_step_backward 1.0 / 1.0 none"]
    assert 'href="#rnn_step_forward_hidden"' in table
