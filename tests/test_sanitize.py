"""Nothing a student's code outputs is active in a browser (``SanitizeOutputs``, the feedback).

A planted submission outputs every kind of active content we know of (script
tags, ``Javascript``, markdown with raw HTML, SVG with ``onload``,
``javascript:`` links, widget views and state, event-handler attributes,
``<style>``, ``<iframe>``, ``<object>``, ``<embed>``, ``<form>``, a raw HTML
cell), from a plain cell and from inside a graded cell, beside an honest
HTML table and a PNG plot.  Each attack, if it ran, would set the page's
title to :data:`MARK` and add an element with id :data:`MARK_ID`.

The fast tests run the preprocessor and the feedback renderer on a notebook
built here; the slow ones grade the planted submission through the worker
(``sandbox=False``) and load its feedback in headless chromium, and grade it
with ``python -m autograder grade`` and load the page nbgrader's formgrader
shows the instructor for it (:mod:`browser`: chromium without network).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbfixtures as fx
import nbformat
import pytest
from browser import browse, jupyter
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_output, new_raw_cell

from autograder.pipeline.scoring import Scores
from autograder.pipeline.worker.feedback import feedback_resources, render_feedback
from autograder.pipeline.worker.preprocessors import SanitizeOutputs
from autograder.pipeline.worker.preprocessors.sanitize_outputs import SAFE_MIME, SANITIZED_MIME
from autograder.pipeline.worker.submission import grade_submission

A = fx.ASSIGNMENT
MARK = "PWNED"
MARK_ID = "pwned-by-student"
JS = (f"document.title='{MARK}';p=document.createElement('p');p.id='{MARK_ID}';"
      "document.documentElement.appendChild(p)")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ATTACK_HTML = (
    f"<script>{JS}</script>"
    f'<img src="x" onerror="{JS}">'
    f'<div onmouseover="{JS}" id="hover">hover</div>'
    f'<a href="javascript:{JS}">click</a>'
    f'<a href="JaVaScRiPt:{JS}">click2</a>'
    f"<style>body {{background: url('javascript:{JS}')}}</style>"
    f'<iframe srcdoc="<script>{JS}</script>"></iframe>'
    f'<object data="javascript:{JS}"></object>'
    f'<embed src="data:text/html;base64,{base64.b64encode(JS.encode()).decode()}">'
    f'<form action="javascript:{JS}"><input type="submit"></form>'
    f'<svg><animate onbegin="{JS}" attributeName="x" dur="1s"/></svg>'
    f'<details open ontoggle="{JS}">d</details>'
)
ATTACK_SVG = (f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}" width="20" height="20">'
              f'<script>{JS}</script><rect width="10" height="10" fill="red"/></svg>')
ATTACK_MARKDOWN = f'Look: <img src="x" onerror="{JS}"> [me](javascript:{JS}) <script>{JS}</script>'
ATTACK_BUNDLES = [
    {"text/html": ATTACK_HTML, "text/plain": "html"},
    {"application/javascript": JS, "text/plain": "js"},
    {"text/markdown": ATTACK_MARKDOWN, "text/plain": "markdown"},
    {"image/svg+xml": ATTACK_SVG, "text/plain": "svg"},
    {WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
     "text/plain": "widget"},
    {"text/html": ATTACK_HTML},
]
HONEST_TABLE = (
    '<div><style scoped>.dataframe tbody tr th {vertical-align: top;}</style>'
    '<table border="1" class="dataframe"><thead><tr style="text-align: right;">'
    "<th></th><th>loss</th></tr></thead><tbody><tr><th>0</th><td>0.125</td></tr>"
    "</tbody></table></div>"
)
WIDGET_STATE_META = {WIDGET_STATE: {"state": {"abc": {"model_name": "HTMLModel",
                                                      "state": {"value": ATTACK_HTML}}}}}

# a plain code cell that outputs every attack, then the honest table and a matplotlib PNG
ATTACK_CELL = f"""\
from IPython.display import HTML, Image, display
for bundle in {ATTACK_BUNDLES!r}:
    display(bundle, raw=True)
display(HTML({HONEST_TABLE!r}))
import io
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([0, 1, 2], [1, 0, 1])
buf = io.BytesIO()
plt.savefig(buf, format="png")
display(Image(data=buf.getvalue()))
HTML({ATTACK_HTML!r})
"""
# the answer cell: add() itself outputs an attack, so graded cells carry one too
ATTACK_ANSWER = f"""\
def add(a, b):
    from IPython.display import HTML, display
    display(HTML({ATTACK_HTML!r}))
    return a + b
"""


# --------------------------------------------------------------------------- #
# what "inert" means, checked on the stored notebook and on the rendered page
# --------------------------------------------------------------------------- #
_HANDLER = re.compile(r"\bon[a-z]+\s*=", re.IGNORECASE)


def active_parts(nb) -> str:
    """Everything of ``nb`` a browser renders as markup: outputs, markdown and raw cells, metadata.

    Code cells' sources are left out: they are rendered as escaped text.
    """
    parts = [json.dumps(nb.metadata)]
    for cell in nb.cells:
        parts.append(json.dumps(cell.metadata))
        if cell.cell_type in ("markdown", "raw"):
            parts.append(cell.source)
            parts.append(json.dumps(cell.get("attachments", {})))
        parts.append(json.dumps(cell.get("outputs", [])))
    return "\n".join(parts)


def html_outputs(nb) -> str:
    return "\n".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells
                     for o in c.get("outputs", []))


def assert_inert_notebook(nb) -> None:
    text = active_parts(nb)
    assert "<script" not in text.lower()
    assert not _HANDLER.search(text), _HANDLER.search(text)
    assert "javascript:" not in text.lower()
    for needle in (WIDGET_VIEW, WIDGET_STATE, "application/javascript", "<iframe", "<object",
                   "<embed", "<form", "<style"):
        assert needle not in text, needle
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert set(out.get("data", {})) <= set(SAFE_MIME) | set(SANITIZED_MIME)


class _Page(HTMLParser):
    """The scripts, event handlers and script URLs of a rendered page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.script_urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append(dict(attrs).get("src") or "")
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if value and value.strip().lower().startswith(("javascript:", "data:text")):
                self.script_urls.append(value)

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def page(html: str) -> _Page:
    parsed = _Page()
    parsed.feed(html)
    parsed.close()
    return parsed


def assert_inert_page(html: str, baseline: str) -> None:
    """``html`` has no script, handler or script URL beyond those of the template (``baseline``)."""
    got, base = page(html), page(baseline)
    assert got.scripts == base.scripts  # the template's own (MathJax), nothing from the student
    assert got.handlers == base.handlers == []
    assert got.script_urls == []  # widget views and state would be scripts too (checked above)


def png_bytes() -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def planted_notebook():
    """The fixture's graded notebook as if it had run the attacks (no kernel)."""
    png = base64.b64encode(png_bytes()).decode()
    nb = fx.fixture_source()
    nb.metadata.widgets = copy.deepcopy(WIDGET_STATE_META)
    cell = fx.code("# attacks")
    cell.metadata.widgets = copy.deepcopy(WIDGET_STATE_META)
    cell.outputs = [new_output("display_data", data=b) for b in copy.deepcopy(ATTACK_BUNDLES)]
    cell.outputs += [
        new_output("display_data", data={"text/html": HONEST_TABLE, "text/plain": "table"}),
        new_output("display_data", data={"image/png": png, "text/plain": "fig"},
                   metadata={"image/png": {"width": 200, "height": 200}}),
        new_output("execute_result", data={"text/html": ATTACK_HTML, "text/plain": "h"},
                   metadata={"text/html": {"isolated": True}}, execution_count=3),
    ]
    graded = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    graded.outputs = [new_output("display_data", data={"text/html": ATTACK_HTML})]
    md = fx.markdown(ATTACK_MARKDOWN)
    md.attachments = {"x.svg": {"image/svg+xml": ATTACK_SVG}, "p.png": {"image/png": png}}
    raw = new_raw_cell(ATTACK_HTML, metadata={"raw_mimetype": "text/html"})
    nb.cells += [cell, md, raw]
    return nb, png


def _sanitize(nb):
    nb = copy.deepcopy(nb)
    nb, _ = SanitizeOutputs().preprocess(nb, {})
    return nb


def _feedback(nb) -> str:
    cells = {gid: {"score": 0.0, "max_score": 1.0, "passed": False, "kind": "visible",
                   "message": "wrong"} for gid in (fx.PLAIN_ID, fx.VISIBLE_ID, fx.HIDDEN_ID)}
    res = feedback_resources("ann", A, A, Scores(cells={A: cells}), {"add_impl": None})
    return render_feedback(nb, res, [])


# --------------------------------------------------------------------------- #
# fast: the preprocessor and the renderer
# --------------------------------------------------------------------------- #
def test_the_planted_notebook_is_active_before_sanitizing():
    """The attacks are real: unsanitized, the checks below fail."""
    nb, _ = planted_notebook()
    with pytest.raises(AssertionError):
        assert_inert_notebook(nb)
    plain = HTMLExporter(template_name="classic").from_notebook_node(nb)[0]
    assert any(MARK in s for s in page(plain).scripts)


def test_every_attack_is_removed_from_the_stored_notebook():
    nb, _ = planted_notebook()
    clean = _sanitize(nb)
    assert_inert_notebook(clean)
    nbformat.validate(clean)
    assert "widgets" not in clean.metadata
    assert all("widgets" not in c.metadata for c in clean.cells)


def test_honest_tables_and_plots_survive():
    nb, png = planted_notebook()
    clean = _sanitize(nb)
    text = html_outputs(clean)
    assert 'class="dataframe"' in text and "<td>0.125</td>" in text and "<th>loss</th>" in text
    outputs = [o for c in clean.cells for o in c.get("outputs", [])]
    assert any(o.get("data", {}).get("image/png") == png for o in outputs)
    assert {"width": 200, "height": 200} in [o.metadata.get("image/png") for o in outputs]
    # the attachment that is an image stays, the SVG attachment goes
    md = next(c for c in clean.cells if c.cell_type == "markdown" and "attachments" in c)
    assert list(md.attachments) == ["p.png"]


def test_an_output_left_empty_says_what_was_removed():
    clean = _sanitize(planted_notebook()[0])
    outs = [o for c in clean.cells for o in c.get("outputs", [])]
    notes = [o.data["text/plain"] for o in outs if "removed by the grader" in
             o.data.get("text/plain", "")]
    assert notes == []  # each attack bundle had a text/plain: it is what remains
    bare = _sanitize(fx.notebook([fx.code("x")]))
    bare.cells[0].outputs = [new_output("display_data", data={WIDGET_VIEW: {"model_id": "a"}})]
    bare = _sanitize(bare)
    assert WIDGET_VIEW in bare.cells[0].outputs[0].data["text/plain"]


def test_honest_markdown_is_kept_as_written():
    nb = fx.notebook([fx.markdown("# Title\n\nSome *text*, `a < b`, [a link](https://x.org), "
                                  "$x_t = W h_{t-1}$.")])
    assert _sanitize(nb).cells[0].source == nb.cells[0].source


def test_sanitized_markdown_is_not_read_as_markdown_again():
    # a textarea is dropped but its text kept: a blank line in it must not start a new
    # markdown paragraph in which the link would be live again
    nb = fx.notebook([fx.markdown(f"<textarea>\n\n[x](javascript:{JS})\n</textarea>")])
    clean = _sanitize(nb)
    plain = HTMLExporter(template_name="classic").from_notebook_node(clean)[0]
    assert "javascript:" not in "".join(page(plain).script_urls).lower()
    assert 'href="javascript' not in plain


def test_the_feedback_page_runs_nothing_of_the_students():
    nb, png = planted_notebook()
    honest = _feedback(_sanitize(fx.fixture_source()))
    # even given the unsanitized notebook, the feedback exporter's own switch holds
    for body in (_feedback(_sanitize(nb)), _feedback(nb)):
        assert_inert_page(body, honest)
        assert 'class="dataframe"' in body and f"data:image/png;base64,{png[:40]}" in body


# --------------------------------------------------------------------------- #
# slow: through the worker, then in a real browser
# --------------------------------------------------------------------------- #
def _planted_result(course):
    nb = fx.student_notebook(course, {"add_impl": ATTACK_ANSWER})
    nb.metadata.widgets = copy.deepcopy(WIDGET_STATE_META)
    attack = fx.code(ATTACK_CELL)
    attack.metadata.widgets = copy.deepcopy(WIDGET_STATE_META)
    nb.cells.append(attack)
    nb.cells.append(fx.markdown(ATTACK_MARKDOWN))
    nb.cells.append(new_raw_cell(ATTACK_HTML, metadata={"raw_mimetype": "text/html"}))
    fx.submit(course, "mallory", nb)
    job, _ = fx.job_for(course, "mallory")
    assert job.sandbox is False
    result = grade_submission(job)
    assert result.status == "graded", result.error
    return result


@pytest.mark.slow
def test_a_planted_submission_is_graded_inert(course):
    result = _planted_result(course)
    assert result.score == result.max_score == 4.0  # the attacks cost the honest part nothing
    stored = nbformat.reads(result.notebooks[A], as_version=4)
    # the attacks did run: their harmless text/plain parts are there
    outputs = [o for c in stored.cells for o in c.get("outputs", [])]
    assert {"html", "js", "markdown", "svg", "widget"} <= {
        o.get("data", {}).get("text/plain") for o in outputs}
    assert_inert_notebook(stored)
    assert 'class="dataframe"' in html_outputs(stored)
    pngs = [o.data["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1 and base64.b64decode(pngs[0]).startswith(b"\x89PNG")
    honest = _feedback(_sanitize(fx.fixture_source()))
    assert_inert_page(result.feedback[A], honest)
    assert f"data:image/png;base64,{pngs[0][:40]}" in result.feedback[A]


def _pwned(dom: str) -> bool:
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    return f'id="{MARK_ID}"' in dom or (title is not None and title.group(1).strip() == MARK)


@pytest.mark.slow
def test_in_a_browser_the_planted_script_does_nothing(course, tmp_path):
    result = _planted_result(course)
    stored = nbformat.reads(result.notebooks[A], as_version=4)
    pages = {
        # the feedback the student gets
        "feedback": result.feedback[A],
        # the stored notebook through a viewer that sanitizes nothing (the formgrader's worst case)
        "stored": HTMLExporter(template_name="classic").from_notebook_node(stored)[0],
    }
    # the control: the planted outputs, unsanitized, do run in this browser
    nb, _ = planted_notebook()
    control = tmp_path / "control.html"
    control.write_text(HTMLExporter(template_name="classic").from_notebook_node(nb)[0])
    assert _pwned(browse(control, tmp_path))
    for name, body in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_text(body, encoding="utf-8")
        dom = browse(path, tmp_path)
        assert "loss" in dom and not _pwned(dom), name


# --------------------------------------------------------------------------- #
# slow: what nbgrader's formgrader shows the instructor, in a real browser
# --------------------------------------------------------------------------- #
def _submission_notebook_id(course: Path, student: str) -> str:
    from nbgrader.api import Gradebook

    from autograder.course import Course

    c = Course(course)
    with Gradebook(c.db_url, c.course_id) as gb:
        return gb.find_submission_notebook(A, A, student).id


def _live(dom: str, needle: str) -> list[str]:
    """The script texts and attribute values of ``dom`` that contain ``needle``."""
    found: list[str] = []

    class Parser(HTMLParser):
        in_script = False

        def handle_starttag(self, tag, attrs):
            self.in_script = tag == "script"
            found.extend(f"{tag} {name}={value}" for name, value in attrs
                         if value and needle in value)

        def handle_endtag(self, tag):
            self.in_script = False

        def handle_data(self, data):
            if self.in_script and needle in data:
                found.append(f"script: {data[:200]}")

    parser = Parser(convert_charrefs=True)
    parser.feed(dom)
    parser.close()
    return found


@pytest.mark.slow
def test_in_the_formgraders_view_the_planted_submission_is_inert(course, tmp_path):
    """The instructor's view of an autograded submission (nbgrader's formgrader), in chromium.

    ``mallory`` submits every attack and is graded by ``python -m autograder
    grade``; ``control`` is graded honestly, then its autograded notebook is
    replaced by the attacks unsanitized, to show that this very page, in this
    very browser, would run them.
    """
    from autograder import cli

    nb = fx.student_notebook(course, {"add_impl": ATTACK_ANSWER})
    nb.metadata.widgets = copy.deepcopy(WIDGET_STATE_META)
    attack = fx.code(ATTACK_CELL)
    attack.metadata.widgets = copy.deepcopy(WIDGET_STATE_META)
    nb.cells += [attack, fx.markdown(ATTACK_MARKDOWN),
                 new_raw_cell(ATTACK_HTML, metadata={"raw_mimetype": "text/html"})]
    fx.submit(course, "mallory", nb)
    fx.submit(course, "control", fx.student_notebook(course))
    assert cli.main(["grade", A, "--course-dir", str(course), "--workers", "1",
                     "--unsafe-no-sandbox"]) == 0
    assert fx.gradebook_scores(course)["mallory"]["score"] == 4.0
    nbformat.write(planted_notebook()[0], course / "autograded" / "control" / A / f"{A}.ipynb")

    extension = {"nbgrader.server_extensions.formgrader": True}
    with jupyter("server", course, tmp_path, extensions=extension,
                 ready="/formgrader/api/assignments") as url:
        doms = {student: browse(url(f"/formgrader/submissions/"
                                    f"{_submission_notebook_id(course, student)}/"), tmp_path)
                for student in ("control", "mallory")}
    assert _pwned(doms["control"])  # the formgrader renders a notebook's outputs live
    dom = doms["mallory"]
    assert 'class="dataframe"' in dom and fx.VISIBLE_ID in dom  # the submission is shown
    assert not _pwned(dom)
    assert _live(dom, MARK_ID) == []  # no script, handler or URL carries the payload
    assert _live(dom.lower(), "javascript:") == []  # (the attack cell's code shows it as text)
    assert _live(dom, WIDGET_VIEW) == [] and _live(dom, WIDGET_STATE) == []
    # the planted HTML is there, sanitized: its text without its active parts
    assert ">hover</div>" in dom and ">click</a>" in dom
