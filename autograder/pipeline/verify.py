"""Judging graded cells in the grader's own process.

Grading a submission has three steps around the student's kernel:

1. :func:`prepare_grading_dir` (before execution) draws the inputs of every
   hidden check of the notebook from a per-submission seed and writes them
   where the kernel can read them (``<grading_dir>/inputs/<id>.npz``).
2. The notebook executes (sandboxed); its check cells only *submit* plain
   arrays to ``<grading_dir>/results/<id>.npz`` (``rnn_course.grading``).
3. :class:`VerifyChecks`, an nbgrader preprocessor placed after ``Execute``
   and before ``SaveAutoGrades``, decides every graded cell whose
   ``grade_id`` names a check: it rebuilds the inputs itself (from the seed or
   the visible check's fixed seed), loads the submitted arrays without
   unpickling anything, judges them with :mod:`autograder.protocol.hidden` or
   :mod:`rnn_course.checks`, and rewrites the cell's outputs to one verdict:
   a stdout line when it passed, an error output when it failed.  nbgrader's
   ``SaveAutoGrades`` then scores the cell from those outputs as usual.

Nothing the student's code does in its kernel (patched numpy, lying objects,
silenced exceptions, rewritten cells) decides a verdict: only the numbers it
hands back do.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Bytes, Integer, Unicode

from autograder.protocol import hidden
from autograder.protocol.secrets import seed_for
from rnn_course import checks as visible

PASSED_TEXT = "passed (verified by the grader)\n"


def graded_check_ids(nb) -> list[str]:
    """grade_ids of the notebook's graded code cells, in order."""
    return [
        cell.metadata.nbgrader["grade_id"]
        for cell in nb.cells
        if cell.cell_type == "code" and is_grade(cell)
    ]


def prepare_grading_dir(nb, grading_dir: str | os.PathLike, secret: bytes,
                        assignment: str, student: str) -> list[str]:
    """Write the inputs of the notebook's hidden checks for this submission.

    Returns the ids of the hidden checks prepared.  ``nb`` must already have
    its graded cells restored from the gradebook (nbgrader's OverwriteCells),
    so that the list of checks is the instructor's, not the student's.
    """
    grading_dir = Path(grading_dir)
    (grading_dir / "inputs").mkdir(parents=True, exist_ok=True)
    (grading_dir / "results").mkdir(parents=True, exist_ok=True)
    specs = hidden.registry()
    prepared = []
    for check_id in graded_check_ids(nb):
        spec = specs.get(check_id)
        if spec is None:
            continue
        rng = np.random.default_rng(seed_for(secret, assignment, student, check_id))
        np.savez(grading_dir / "inputs" / f"{check_id}.npz", **spec.draw(rng))
        prepared.append(check_id)
    return prepared


def load_result(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """Load a submitted ``.npz`` safely: no pickles, bounded size, plain arrays only.

    Raises ``ValueError`` with a short reason for anything else.
    """
    try:
        if path.stat().st_size > max_bytes:
            raise ValueError("result file too large")
        with zipfile.ZipFile(path) as zf:  # bound the *uncompressed* size too
            if sum(info.file_size for info in zf.infolist()) > max_bytes:
                raise ValueError("result file too large")
        with np.load(path, allow_pickle=False) as data:
            return {k: np.array(data[k]) for k in data.files}
    except ValueError:
        raise
    except Exception as exc:  # corrupt zip, not an npz, object arrays...
        raise ValueError(f"unreadable result ({type(exc).__name__})") from None


def _kernel_error(cell, with_message: bool) -> str:
    """A short description of the error the kernel reported for a cell, if any.

    A visible check's own message (say "must return a tuple (next_h, cache)")
    is worth keeping; for a hidden check only the exception's name is kept, as
    its message might echo a hidden input.
    """
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name = str(out.get("ename", "Error"))[:80]
            value = " ".join(str(out.get("evalue", "")).split())[:200]
            return f"{name}: {value}" if with_message and value else name
    return ""


class VerifyChecks(NbGraderPreprocessor):
    """Decide every graded check cell in the grader's process (see module docstring)."""

    grading_dir = Unicode(
        "", help="Folder shared with the kernel: inputs/ written before, results/ read after."
    ).tag(config=True)
    secret = Bytes(b"", help="The grader's secret that seeds hidden inputs.")
    max_result_bytes = Integer(
        64 * 1024 * 1024, help="Largest result file (and its uncompressed content) accepted."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        assignment = info.get("assignment", "")
        student = info.get("student", "")
        hidden_specs = hidden.registry()
        visible_checks = visible.registry()
        verdicts = {}
        for cell in nb.cells:
            if cell.cell_type != "code" or not is_grade(cell):
                continue
            check_id = cell.metadata.nbgrader["grade_id"]
            if check_id in hidden_specs:
                kind = "hidden"
            elif check_id in visible_checks:
                kind = "visible"
            else:
                verdicts[check_id] = {"kind": "unverified", "passed": None, "message": ""}
                continue
            message = self._judge(cell, check_id, kind, hidden_specs, visible_checks,
                                  assignment, student)
            if message is None:
                cell.outputs = [new_output("stream", name="stdout",
                                           text=f"{check_id}: {PASSED_TEXT}")]
            else:
                text = f"{check_id}: {message}"
                cell.outputs = [new_output("error", ename="CheckFailed", evalue=text,
                                           traceback=[f"CheckFailed: {text}"])]
            verdicts[check_id] = {"kind": kind, "passed": message is None,
                                  "message": message or ""}
        resources.setdefault("rnn_course", {})["checks"] = verdicts
        return nb, resources

    def _judge(self, cell, check_id, kind, hidden_specs, visible_checks, assignment, student):
        path = Path(self.grading_dir) / "results" / f"{check_id}.npz"
        if not self.grading_dir or not path.is_file():
            err = _kernel_error(cell, with_message=kind == "visible")
            return f"no result ({err})" if err else "no result was produced"
        try:
            outputs = load_result(path, self.max_result_bytes)
        except ValueError as exc:
            return str(exc)
        try:
            if kind == "hidden":
                spec = hidden_specs[check_id]
                seed = seed_for(self.secret, assignment, student, check_id)
                inputs = spec.draw(np.random.default_rng(seed))
                return spec.judge(inputs, outputs)
            return visible_checks[check_id].judge(outputs)
        except Exception as exc:  # a verdict must never crash grading
            return f"could not be judged ({type(exc).__name__}: {str(exc)[:120]})"
