"""Cells no grade depends on: the instructor's mark, and the proof that it is safe.

An instructor marks a locked, non-solution cell of a source notebook (an
experiment, a demonstration, a widget) with ``metadata.rnn_course.skip_when_grading``
(:data:`MARK_KEY`, :data:`MARK_FIELD`).  Grading does not execute it
(:class:`~autograder.pipeline.worker.preprocessors.SkipUngraded`), and shows the
student's own outputs of it instead.  What is skipped is decided by the
instructor's source notebook and the gradebook, never by a submission's metadata.

``python -m autograder release`` proves a marking safe (:func:`refusals`):

* a marked cell is a locked instructor cell, neither a solution nor a test;
* it binds no name (assignment, ``def``, ``class``, ``import``, loop target)
  that a later cell still run in grading reads (static analysis of the cells'
  code with :mod:`ast`);
* the source notebook, run with its marked cells skipped, passes every check
  with the reference solution (:func:`failures_when_skipped`).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import nbformat

MARK_KEY = "rnn_course"
"""Cell metadata key of this project's own marks."""
MARK_FIELD = "skip_when_grading"
"""``metadata[MARK_KEY][MARK_FIELD] = True``: grading does not execute the cell."""
NOT_RERUN_NOTE = ("[not re-run when grading: the output above is your own, from your "
                  "submission; no grade depends on this cell]\n")
"""The line a skipped cell shows after the student's own outputs."""


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_marked(cell) -> bool:
    """Whether the cell carries the mark (in an instructor's notebook)."""
    mark = cell.get("metadata", {}).get(MARK_KEY)
    return isinstance(mark, dict) and mark.get(MARK_FIELD) is True


def marked_ids(nb) -> list[str]:
    """Grade ids of the marked cells of ``nb``, in order."""
    return [_nbgrader(c).get("grade_id") for c in nb.cells if is_marked(c)]


def set_marks(nb, grade_ids) -> list[str]:
    """Mark exactly the cells of ``grade_ids`` (metadata only); returns the ids not found."""
    wanted = set(grade_ids)
    for cell in nb.cells:
        gid = _nbgrader(cell).get("grade_id")
        if gid in wanted:
            cell.metadata[MARK_KEY] = {MARK_FIELD: True}
        elif MARK_KEY in cell.get("metadata", {}):
            del cell.metadata[MARK_KEY]
    return sorted(wanted - {_nbgrader(c).get("grade_id") for c in nb.cells})


def source_marks(source_dir: Path, notebooks) -> dict[str, frozenset[str]]:
    """Notebook name -> grade ids marked in ``<source_dir>/<name>.ipynb`` (the instructor's
    notebooks; a notebook that cannot be read marks nothing)."""
    marks = {}
    for name in notebooks:
        try:
            nb = nbformat.read(Path(source_dir) / f"{name}.ipynb", as_version=4)
        except Exception:  # no source here (a course copied without it): skip nothing
            continue
        ids = frozenset(gid for gid in marked_ids(nb) if gid)
        if ids:
            marks[name] = ids
    return marks


def may_skip(cell) -> bool:
    """Whether ``cell`` (its nbgrader metadata as the gradebook restored it) is one grading
    may skip: a locked instructor code cell, not a solution, test or task."""
    meta = _nbgrader(cell)
    return (cell.get("cell_type") == "code" and bool(meta.get("grade_id"))
            and meta.get("locked") is True
            and not (meta.get("solution") or meta.get("grade") or meta.get("task")))


# --------------------------------------------------------------------------- #
# static analysis
# --------------------------------------------------------------------------- #
def _tree(source: str) -> ast.AST | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def bound_names(source: str) -> set[str]:
    """Global names a cell binds: assignments, loop, ``with`` and ``except`` targets,
    ``def``, ``class``, ``import``, and a function's ``global`` names (a function's, a
    lambda's or a comprehension's own locals stay their own)."""
    tree = _tree(source)
    names: set[str] = set()
    if tree is None:
        return names

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
                names.update(n for g in ast.walk(child) if isinstance(g, ast.Global)
                             for n in g.names)
                continue
            if isinstance(child, _OWN_SCOPE):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in child.names)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                names.add(child.id)
            elif isinstance(child, ast.ExceptHandler) and child.name:
                names.add(child.name)
            visit(child)

    visit(tree)
    return names


_OWN_SCOPE = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def used_names(source: str) -> set[str]:
    """Names a cell reads that it does not bind itself (anywhere in it)."""
    tree = _tree(source)
    if tree is None:
        return set()
    loads, binds = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else binds).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        elif isinstance(node, ast.arg):
            binds.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            binds.update((a.asname or a.name).split(".")[0] for a in node.names)
    return loads - binds


def refusals(nb) -> list[str]:
    """One line per unsafe mark of ``nb`` (empty: the marking is safe by static analysis)."""
    problems = []
    cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    for index, cell in enumerate(cells):
        if not is_marked(cell):
            continue
        gid = _nbgrader(cell).get("grade_id") or f"code cell {index + 1}"
        if not may_skip(cell):
            problems.append(f"cell {gid}: marked {MARK_FIELD} but not a locked instructor "
                            "cell (only locked, non-solution, non-test cells may be skipped)")
            continue
        bound = bound_names(cell.source)
        for later in cells[index + 1:]:
            if is_marked(later):
                continue
            needed = sorted(bound & used_names(later.source))
            if needed:
                where = _nbgrader(later).get("grade_id") or "an unnamed cell"
                problems.append(f"cell {gid}: marked {MARK_FIELD} but defines "
                                f"{', '.join(needed)}, which cell {where} uses")
                break
    return problems


# --------------------------------------------------------------------------- #
# the run
# --------------------------------------------------------------------------- #
SKIP_TAG = "skip-execution"
"""nbclient's tag for a cell it does not execute (its ``skip_cells_with_tag`` default)."""


def skip_tag(config=None) -> str:
    """The tag nbgrader's ``Execute`` (and so the sandbox's) skips under ``config``."""
    for section in ("SandboxExecute", "Execute", "ExecutePreprocessor", "NotebookClient"):
        value = (config or {}).get(section, {}).get("skip_cells_with_tag")
        if isinstance(value, str) and value:
            return value
    return SKIP_TAG


def failures_when_skipped(path: Path, timeout: int = 300) -> list[str]:
    """Run the source notebook at ``path`` with its marked cells skipped: one line per
    cell that then fails (an error, or a test cell writing to stderr)."""
    from nbclient import NotebookClient

    from rnn_course.grading import GRADING_DIR_ENV
    from rnn_course.widgets import STATIC_ENV

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if is_marked(cell):
            cell.metadata.setdefault("tags", []).append(SKIP_TAG)
    saved = dict(os.environ)
    os.environ.update({"MPLBACKEND": "Agg", STATIC_ENV: "1", "OPENBLAS_NUM_THREADS": "1",
                       "PATH": str(Path(sys.executable).parent) + os.pathsep
                       + os.environ.get("PATH", "")})
    for var in (GRADING_DIR_ENV, "RNN_COURSE_ROOT", "RNN_COURSE_DB_URL"):
        os.environ.pop(var, None)
    try:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=True,
                       skip_cells_with_tag=SKIP_TAG,
                       resources={"metadata": {"path": str(path.parent)}}).execute(
            stderr=subprocess.DEVNULL)  # the kernel's own log: a failure shows in the cells
    finally:
        os.environ.clear()
        os.environ.update(saved)
    failed = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            bad = out.output_type == "error" or (
                _nbgrader(cell).get("grade") and out.output_type == "stream"
                and out.get("name") == "stderr")
            if bad:
                gid = _nbgrader(cell).get("grade_id") or f"cell {index + 1}"
                what = (f"{out.get('ename')}: {str(out.get('evalue', ''))[:120]}"
                        if out.output_type == "error" else "wrote to stderr")
                failed.append(f"cell {gid} fails with the marked cells skipped ({what})")
                break
    return failed
