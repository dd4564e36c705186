"""Feedback HTML for one graded notebook, made in the worker with nbgrader's feedback template.

:func:`render_feedback` does what ``nbgrader generate_feedback`` does for one
notebook (``GetGrades``, ``CSSHTMLHeaderPreprocessor``, the ``feedback``
HTMLExporter template of nbgrader's formgrader), with two differences:

* :class:`~autograder.pipeline.preprocessors.FeedbackHiddenTests` runs first, so the
  student sees which hidden checks failed (the grader's one-line verdict in
  the cell's output) but neither the hidden tests' code nor their inputs;
* a "Grader notes" cell at the top lists the submission's flags with their
  reasons and the checks that failed.

The exporter (templates, filters) is built once per worker process and kept.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import html
import os
import pickle
import re
import threading
from pathlib import Path

from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_markdown_cell
from nbformat.v4 import new_output as nbformat_output
from nbgrader.preprocessors import GetGrades
from traitlets.config import Config

from autograder.pipeline.preprocessors import FeedbackHiddenTests

FEEDBACK_PREPROCESSORS = (FeedbackHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor)

# What each flag means, in words a student understands.
FLAG_TEXT = {
    "invalid_notebook": "the notebook could not be read, so it was not run",
    "missing_notebook": "the notebook was not in the submission",
    "renamed_notebook": "the notebook had another name; it was graded anyway",
    "duplicate_grade_id": "a graded cell was duplicated; the first copy was graded",
    "unknown_grade_id": "a cell carried grading metadata that is not in the assignment",
    "shadowing_module": "a file named like a Python module was left out",
    "too_large": "a file was over the size limit and was left out",
    "unsafe_file": "a link or special file was left out",
    "timeout": "a cell ran too long and was stopped",
    "memory_limit": "the notebook used more memory than allowed",
    "process_limit": "the notebook started too many processes or threads",
    "cpu_limit": "the notebook used more CPU time than allowed",
    "output_truncated": "some output was too long and was cut",
    "kernel_died": "the Python kernel died while running the notebook",
    "tampered_cells_restored": "read-only or graded cells were changed; the original "
                               "versions were graded",
    "late": "the submission was late",
    "grader_error": "the grader itself failed; an instructor will look at it",
}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>])")
_lock = threading.Lock()


def md_escape(text: str) -> str:
    """``text`` as literal markdown: no markup, no HTML (flag reasons name students' files)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


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
        cfg.HTMLExporter.template_name = "feedback"
    formgrader = _nbgrader_dir() / "server_extensions" / "formgrader"
    if "extra_template_basedirs" not in cfg.HTMLExporter:
        cfg.HTMLExporter.extra_template_basedirs = [str(formgrader / "templates")]
    cfg.HTMLExporter.extra_template_paths = [
        str(formgrader / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    cfg.FeedbackHiddenTests.enforce_metadata = False
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


def exporter(course_config: Config | None = None) -> HTMLExporter:
    """The feedback exporter of this process for ``course_config`` (built on first use)."""
    key = _config_key(course_config)
    return _cached(_Hashable(key, course_config))


@functools.lru_cache(maxsize=4)
def _cached(wrapped: _Hashable) -> HTMLExporter:
    exp = HTMLExporter(config=_exporter_config(wrapped.config))
    for pp in FEEDBACK_PREPROCESSORS:
        exp.register_preprocessor(pp, enabled=True)
    return exp


def warm_up(course_config: Config | None = None) -> None:
    """Render a tiny notebook once: templates, lexers and filters load on first use.

    Done before worker processes are forked, so that no job pays for it.
    ``GetGrades`` is switched off for this one rendering (no gradebook needed).
    """
    from nbformat.v4 import new_code_cell, new_notebook

    exp = exporter(course_config)
    cell = new_code_cell("print(1)\n1 / 0", metadata={"nbgrader": {
        "grade": True, "grade_id": "warm", "locked": True, "points": 1.0, "score": 0.0,
        "solution": False, "schema_version": 3}})
    cell.outputs = [nbformat_output("stream", name="stdout", text="1\n"),
                    nbformat_output("error", ename="ZeroDivisionError", evalue="x",
                                    traceback=["ZeroDivisionError: x"])]
    nb = new_notebook(cells=[new_markdown_cell("# warm *up* `x`"), cell])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                              "language": "python"}
    res = {"nbgrader": {"notebook": "warm", "score": 0.0, "max_score": 1.0,
                        "late_penalty": 0.0}}
    switched = [pp for pp in exp._preprocessors if isinstance(pp, GetGrades)]
    with _lock:
        try:
            for pp in switched:
                pp.enabled = False
            exp.from_notebook_node(nb, resources=res)
        finally:
            for pp in switched:
                pp.enabled = True


def notes_cell(flags: list[tuple[str, str]], checks: dict[str, dict]):
    """A markdown cell summarising flags (with reasons) and failed checks, or None."""
    lines = []
    for name, reason in flags:
        what = FLAG_TEXT.get(name, name)
        lines.append(f"- **{md_escape(name)}**: {md_escape(what)}"
                     + (f" ({md_escape(reason)})" if reason else ""))
    failed = [(cid, v) for cid, v in checks.items() if v.get("passed") is False]
    for cid, verdict in failed:
        kind = "hidden check" if verdict.get("kind") == "hidden" else "check"
        lines.append(f"- {kind} **{md_escape(cid)}** failed: {md_escape(verdict.get('message'))}")
    if not lines:
        return None
    return new_markdown_cell("## Grader notes\n\n" + "\n".join(lines))


def render_feedback(nb, resources: dict, flags: list[tuple[str, str]],
                    course_config: Config | None = None) -> str:
    """Feedback HTML of a graded notebook (``nb`` is not modified).

    ``resources`` are the grading resources: ``resources["nbgrader"]`` names
    the student, assignment, notebook and the gradebook holding the scores
    (``GetGrades`` reads them); ``resources["rnn_course"]["checks"]`` holds
    the verdicts of ``VerifyChecks``.
    """
    nb = copy.deepcopy(nb)
    checks = resources.get("rnn_course", {}).get("checks", {})
    cell = notes_cell(flags, checks)
    if cell is not None:
        nb.cells.insert(0, cell)
    res = {
        "nbgrader": dict(resources["nbgrader"]),
        "rnn_course": {"checks": checks},
        "unique_key": resources["nbgrader"]["notebook"],
        "output_files_dir": f"{resources['nbgrader']['notebook']}_files",
    }
    # one notebook at a time per exporter: its preprocessors keep per-call state
    with _lock:
        body, _ = exporter(course_config).from_notebook_node(nb, resources=res)
    return body


def write_feedback(folder: Path, feedback: dict[str, str]) -> list[Path]:
    """Write ``<notebook>.html`` files into ``folder`` (created); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in feedback.items():
        path = folder / f"{name}.html"
        tmp = path.with_suffix(".html.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
