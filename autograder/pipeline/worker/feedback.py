"""Feedback HTML for one graded notebook, made in the worker with nbgrader's feedback template.

:func:`render_feedback` does what ``nbgrader generate_feedback`` does for one
notebook (``GetGrades``, ``CSSHTMLHeaderPreprocessor``, the ``feedback``
HTMLExporter template of nbgrader's formgrader), with five differences:

* the scores come from the worker's own scoring (:mod:`autograder.pipeline.scoring`,
  :func:`feedback_resources`) through
  :class:`~autograder.pipeline.worker.preprocessors.GradesFromScores`,
  not from a gradebook: the feedback shows exactly the numbers recorded;

* :class:`~autograder.pipeline.worker.preprocessors.FeedbackHiddenTests` runs first, so the
  student sees which hidden checks failed (the grader's one-line verdict in
  the cell's output) but neither the hidden tests' code nor their inputs;
* the notebook was made inert by the worker
  (:class:`~autograder.pipeline.worker.preprocessors.SanitizeOutputs`), which the exporter
  runs again first (whatever notebook it is given), and it renders with
  ``sanitize_html`` on, its ``clean_html`` filter being that same ``nh3`` sanitizer:
  markdown cells, HTML and markdown outputs are cleaned again as they are rendered,
  and the template writes no JavaScript or widget script;
* a "Grader notes" cell at the top lists the submission's flags with their
  reasons (in the words of :data:`autograder.pipeline.flags.VOCABULARY`) and the
  graded cells that failed, with why;
* it reads well offline: the template (:data:`TEMPLATE`, in ``templates/`` beside
  this module, extending nbgrader's) names every graded cell in the list at the
  top (its check id, its one-line docstring, hidden or not, passed or why it
  failed: never a hidden test's code or inputs) and draws the rules of tables;
  math is rendered as MathML when the page is made (:class:`MathMLRenderer`,
  ``latex2mathml``), which browsers display natively: the page loads no MathJax,
  no script at all, and needs no network.

The exporter (templates, filters) is built once per worker process and kept.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import html
import os
import pickle
import re
import threading
from pathlib import Path

import nh3
from jinja2 import pass_context
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_markdown_cell
from nbformat.v4 import new_output as nbformat_output
from traitlets.config import Config

from autograder.pipeline.flags import VOCABULARY
from autograder.pipeline.scoring import points, points_text, total
from autograder.pipeline.worker.preprocessors import (
    FeedbackHiddenTests,
    GradesFromScores,
    SanitizeOutputs,
)
from autograder.pipeline.worker.preprocessors.sanitize_outputs import RENDERED_CACHE, clean_html
from rnn_course import checks

FEEDBACK_PREPROCESSORS = (SanitizeOutputs, FeedbackHiddenTests, GradesFromScores,
                          CSSHTMLHeaderPreprocessor)

TEMPLATE = "rnn_course_feedback"
"""The feedback template (``templates/rnn_course_feedback``), based on nbgrader's ``feedback``."""
TEMPLATES = Path(__file__).resolve().parent / "templates"

_DOC_START = re.compile(r"""\s*[rRuU]?(\"\"\"|'''|"|')([^\n]*?)(?:\1|$)""", re.M)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$])")  # $: no math either
_lock = threading.Lock()


def md_escape(text: str) -> str:
    """``text`` as literal markdown: no markup, no HTML (flag reasons name students' files)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


# --------------------------------------------------------------------------- #
# math, rendered when the page is made
# --------------------------------------------------------------------------- #
MATHML_TAGS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup",
    "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd",
    "mstyle", "mpadded", "mphantom", "menclose", "merror", "semantics", "annotation",
})
"""The MathML elements the feedback keeps (presentation MathML only, no links)."""
_MATHML_ATTRIBUTES = {"*": {
    "xmlns", "display", "mathvariant", "stretchy", "fence", "separator", "form", "lspace",
    "rspace", "columnalign", "rowalign", "width", "height", "depth", "displaystyle",
    "scriptlevel", "accent", "accentunder", "linethickness", "minsize", "maxsize",
    "movablelimits", "symmetric", "notation", "rowspacing", "columnspacing", "columnlines",
    "rowlines", "frame", "largeop",
}}


_ROW_SPACE = re.compile(r"\\\\\[[^\]]*\]")


@functools.lru_cache(maxsize=8192)
def math_html(tex: str, display: bool) -> str:
    """``tex`` as MathML (sanitized: no script, style, link or handler), or as escaped code.

    Cached: the instructor's formulas are the same in every submission a worker renders.
    """
    try:
        # a row break's extra space (\\[6pt]): latex2mathml would print it as text
        mathml = latex_to_mathml(_ROW_SPACE.sub(r"\\\\", tex),
                                 display="block" if display else "inline")
    except Exception:  # latex2mathml cannot read it: show the source, as text
        return f'<code class="math-tex">{html.escape(tex)}</code>'
    return nh3.clean(mathml, tags=set(MATHML_TAGS), attributes=_MATHML_ATTRIBUTES,
                     url_schemes=set(), strip_comments=True)


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, with math written as MathML instead of left for MathJax."""

    def block_math(self, body: str) -> str:
        return math_html(body, True)

    def inline_math(self, body: str) -> str:
        return math_html(body, False)

    def latex_environment(self, name: str, body: str) -> str:
        return math_html(f"\\begin{{{name}}}{body}\\end{{{name}}}", True)


class CachedHighlight2HTML(Highlight2HTML):
    """nbconvert's ``highlight_code`` filter, remembering what it highlighted.

    Most cells of a submission are the instructor's, the same in every
    submission a worker renders; pygments re-lexed them every time.
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self._rendered = functools.lru_cache(maxsize=RENDERED_CACHE)(self._render)

    def _render(self, source, language, magics_language):
        metadata = {"magics_language": magics_language} if magics_language else None
        return super().__call__(source, language, metadata)

    def __call__(self, source, language=None, metadata=None):
        magics = metadata.get("magics_language") if metadata else None
        return self._rendered(source, language, magics)


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter whose ``markdown2html`` renders math (:class:`MathMLRenderer`).

    Its :meth:`from_notebook_node` is nbconvert's without the last pass, which
    parses the finished page with BeautifulSoup to add alt texts to images and
    ``tabindex`` to the lab template's cells, then writes it out again: more than
    half of a feedback page's rendering time, for a template (classic) without
    those cells.
    """

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._highlighters: dict = {}  # pygments lexer -> CachedHighlight2HTML
        self._markdown = functools.lru_cache(maxsize=RENDERED_CACHE)(self._render_markdown)

    def from_notebook_node(self, nb, resources=None, **kw):
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        if "highlight_code" not in self.filters:
            if lexer not in self._highlighters:
                self._highlighters[lexer] = CachedHighlight2HTML(pygments_lexer=lexer,
                                                                 parent=self)
            self.register_filter("highlight_code", self._highlighters[lexer])
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    @pass_context
    def markdown2html(self, context, source):
        cell = context.get("cell", {})
        if not cell.get("attachments") and not self.embed_images:
            # then the page depends on the source alone: instructor cells render once
            return self._markdown(source)
        return self._render_markdown(source, cell.get("attachments", {}),
                                     context.get("resources", {}).get("metadata", {})
                                     .get("path", ""))

    def _render_markdown(self, source, attachments=None, path=""):
        renderer = MathMLRenderer(
            escape=False, attachments=attachments or {},
            embed_images=self.embed_images, path=path,
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


def cell_doc(source) -> str:
    """The first line of a graded cell's docstring ("" when it has none)."""
    text = "\n".join(line for line in str(source).splitlines()
                     if not line.lstrip().startswith(("%", "!")))  # IPython magics
    try:
        doc = ast.get_docstring(ast.parse(text), clean=True)
    except (SyntaxError, ValueError):  # not plain Python: the string the cell starts with
        match = _DOC_START.match(text)
        doc = match.group(2) if match else None
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def _nbgrader_dir() -> Path:
    import nbgrader

    return Path(nbgrader.__file__).resolve().parent


def _exporter_config(course_config: Config | None) -> Config:
    """The HTMLExporter configuration ``GenerateFeedback`` would use."""
    cfg = Config()
    if course_config is not None:
        cfg.merge(copy.deepcopy(course_config))
    cfg.Exporter.default_preprocessors = []  # as nbgrader's converters do
    if "template_name" not in cfg.HTMLExporter:
        cfg.HTMLExporter.template_name = TEMPLATE
    formgrader = _nbgrader_dir() / "server_extensions" / "formgrader"
    if "extra_template_basedirs" not in cfg.HTMLExporter:
        cfg.HTMLExporter.extra_template_basedirs = [str(TEMPLATES),
                                                    str(formgrader / "templates")]
    # nbgrader's templates by their path ('feedback/index.html.j2', which ours extends),
    # and bootstrap's CSS, which nbgrader's template inlines
    cfg.HTMLExporter.extra_template_paths = [
        str(formgrader / "templates"),
        str(formgrader / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    cfg.FeedbackHiddenTests.enforce_metadata = False
    # the template's own switch: no JavaScript or widget script blocks, and markdown
    # cells and HTML outputs pass the filter clean_html, which is the worker's sanitizer
    cfg.HTMLExporter.sanitize_html = True
    cfg.HTMLExporter.filters = {**cfg.HTMLExporter.get("filters", {}), "clean_html": clean_html,
                                "points": points, "cell_doc": cell_doc}
    return cfg


def _config_key(course_config) -> str:
    try:
        return hashlib.sha1(pickle.dumps(course_config)).hexdigest()
    except Exception:
        return "unpicklable"


class _Hashable:
    """Wrap a config so lru_cache keys on its content, not on the object."""

    def __init__(self, key, config):
        self.key, self.config = key, config

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return isinstance(other, _Hashable) and other.key == self.key


def exporter(course_config: Config | None = None) -> FeedbackExporter:
    """The feedback exporter of this process for ``course_config`` (built on first use)."""
    key = _config_key(course_config)
    return _cached(_Hashable(key, course_config))


@functools.lru_cache(maxsize=4)
def _cached(wrapped: _Hashable) -> FeedbackExporter:
    exp = FeedbackExporter(config=_exporter_config(wrapped.config))
    for pp in FEEDBACK_PREPROCESSORS:
        exp.register_preprocessor(pp, enabled=True)
    return exp


def warm_up(course_config: Config | None = None) -> None:
    """Render a tiny notebook once: templates, lexers and filters load on first use.

    Done before worker processes are forked, so that no job pays for it.
    """
    from nbformat.v4 import new_code_cell, new_notebook

    exp = exporter(course_config)
    cell = new_code_cell("print(1)\n1 / 0", metadata={"nbgrader": {
        "grade": True, "grade_id": "warm", "locked": True, "points": 1.0,
        "solution": False, "schema_version": 3}})
    cell.outputs = [nbformat_output("stream", name="stdout", text="1\n"),
                    nbformat_output("error", ename="ZeroDivisionError", evalue="x",
                                    traceback=["ZeroDivisionError: x"])]
    nb = new_notebook(cells=[new_markdown_cell("# warm *up* `x`"), cell])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                              "language": "python"}
    res = {"nbgrader": {"notebook": "warm", "score": 0.0, "max_score": 1.0,
                        "late_penalty": 0.0},
           "rnn_course": {"scores": {"warm": {"score": 0.0, "max_score": 1.0}}}}
    with _lock:
        exp.from_notebook_node(nb, resources=res)


def function_subtotals(assignment: str, cells: dict) -> dict[str, dict]:
    """``{function: {"score", "max_score", "failed": [grade ids]}}``: the points of each
    function a notebook's checks are about (:func:`rnn_course.checks.function_of`), in
    the order of its cells; {} for an assignment without a checks module."""
    try:
        functions = checks.checked_functions(checks.assignment_checks(assignment))
    except checks.NoChecksModule:
        return {}
    out: dict[str, dict] = {}
    for grade_id, cell in cells.items():
        function = checks.function_of(grade_id, functions)
        if function is None:
            continue
        row = out.setdefault(function, {"score": 0.0, "max_score": 0.0, "failed": []})
        row["score"] += float(cell.get("score") or 0.0)
        row["max_score"] += float(cell.get("max_score") or 0.0)
        if cell.get("passed") is False:
            row["failed"].append(grade_id)
    return out


def feedback_resources(student: str, assignment: str, notebook: str, scores,
                       comments: dict[str, str | None]) -> dict:
    """The resources :func:`render_feedback` needs for one notebook, from its scores.

    ``scores`` is a :class:`~autograder.pipeline.scoring.Scores`; what
    ``GetGrades`` would read from the gradebook is taken from it.
    """
    penalty = scores.late_penalties.get(notebook) or 0.0
    cells = scores.cells.get(notebook, {})
    return {
        "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                     "score": total(scores.notebook_score(notebook), penalty),
                     "max_score": scores.notebook_max(notebook), "late_penalty": penalty},
        # "checks": the cells' verdicts, which FeedbackHiddenTests keeps as the grader wrote them
        "rnn_course": {"scores": cells, "checks": cells, "comments": dict(comments),
                       "functions": function_subtotals(assignment, cells)},
    }


def notes_cell(flags: list[tuple[str, str]], cells: dict[str, dict]):
    """A markdown cell summarising flags (with reasons) and failed cells, or None.

    ``cells`` maps grade ids to their scores (or verdicts): ``{"kind", "passed", "message"}``.
    """
    lines = []
    for name, reason in flags:
        flag = VOCABULARY.get(name)
        what = flag.text if flag is not None else name
        lines.append(f"- **{md_escape(name)}**: {md_escape(what)}"
                     + (f" ({md_escape(reason)})" if reason else ""))
    for cid, verdict in cells.items():
        if verdict.get("passed") is not False or verdict.get("kind") == "manual":
            continue
        kind = "hidden check" if verdict.get("kind") == "hidden" else "check"
        lines.append(f"- {kind} **{md_escape(cid)}** failed: {md_escape(verdict.get('message'))}")
    if not lines:
        return None
    return new_markdown_cell("## Grader notes\n\n" + "\n".join(lines))


def render_feedback(nb, resources: dict, flags: list[tuple[str, str]],
                    course_config: Config | None = None) -> str:
    """Feedback HTML of a graded notebook (``nb`` is not modified).

    ``resources`` come from :func:`feedback_resources`: ``resources["nbgrader"]``
    names the student, assignment and notebook and holds the notebook's score,
    max score and late penalty; ``resources["rnn_course"]`` holds the cells'
    scores (also as ``checks``, the verdicts) and comments.
    """
    nb = copy.deepcopy(nb)
    info = resources.get("rnn_course", {})
    cell = notes_cell(flags, info.get("scores", {}))
    if cell is not None:
        nb.cells.insert(0, cell)
    name = resources["nbgrader"]["notebook"]
    res = {
        "nbgrader": dict(resources["nbgrader"]),
        "rnn_course": {key: dict(value) for key, value in info.items()},
        "unique_key": name,
        "output_files_dir": f"{name}_files",
    }
    # one notebook at a time per exporter: its preprocessors keep per-call state
    with _lock:
        body, _ = exporter(course_config).from_notebook_node(nb, resources=res)
    return body


def short_feedback(resources: dict, flags: list[tuple[str, str]]) -> str:
    """A plain feedback page (the score, each cell's points and message, the flags), for a
    notebook whose full rendering ran over the worker's limit.  Everything is escaped."""
    info = resources["nbgrader"]
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(cid))}</td><td>{points_text(v.get('score'))} / "
        f"{points_text(v.get('max_score'))}</td><td>{esc(str(v.get('message') or ''))}</td></tr>"
        for cid, v in resources.get("rnn_course", {}).get("scores", {}).items())
    notes = "".join(
        f"<li><b>{esc(name)}</b>: {esc(VOCABULARY[name].text if name in VOCABULARY else name)}"
        f"{' (' + esc(reason) + ')' if reason else ''}</li>" for name, reason in flags)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(info['notebook'])}"
            f"</title></head><body><h1>{esc(info['assignment'])}: {esc(info['notebook'])}</h1>"
            f"<p>Score: {points_text(info['score'])} / {points_text(info['max_score'])}</p>"
            f"<table><tr><th>cell</th><th>points</th><th>message</th></tr>{rows}</table>"
            f"<h2>Grader notes</h2><ul>{notes}</ul></body></html>")


def write_feedback(folder: Path, feedback: dict[str, str]) -> list[Path]:
    """Write ``<notebook>.html`` files into ``folder`` (created); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in feedback.items():
        path = folder / f"{name}.html"
        tmp = path.with_suffix(".html.tmp")
        tmp.write_text(body, encoding="utf-8", errors="backslashreplace")
        os.replace(tmp, path)
        written.append(path)
    return written
