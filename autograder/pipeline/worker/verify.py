"""Judging graded cells in the grader's own process: the one judge of every check.

Grading a submission has three steps around the student's kernel:

1. :func:`grading_plan` (before execution) says, for every graded cell of
   the notebook, which check it calls, the inputs drawn for that check from a
   per-submission seed (visible and hidden checks alike: a visible check's
   fixed inputs are public) and whether the cell holds hidden test code.
2. The notebook executes (sandboxed); the execute preprocessor
   (:class:`autograder.pipeline.worker.preprocessors.GradedCells`) delivers a check's
   inputs just before its graded cell runs and takes the result out of the
   kernel's reach right after, then empties the shared folder; a cell with
   hidden test code runs outside the kernel's history.  The check cells only
   run the student's functions and *submit* plain arrays through the channel.
3. :class:`VerifyChecks`, an nbgrader preprocessor run right after the
   execution, decides every graded code cell: it finds
   the cell's check (:class:`rnn_course.checks.Check`, the checks of the
   notebook's assignment), redraws the inputs itself from the per-submission
   seed, loads the collected arrays without unpickling anything, judges them
   (a hidden check against :mod:`autograder.reference`, a visible check with
   its oracle computed there for those inputs), and rewrites the cell's
   outputs to one verdict: a stdout line when it passed, an error output when
   it failed.
   The verdicts (``resources["rnn_course"]["checks"]``) are what
   :mod:`autograder.pipeline.scoring` scores; the outputs are for people.

It fails closed: a graded cell whose ``grade_id`` names no registered check
fails ("no check is registered for graded cell X"); nothing is ever scored from
what the kernel printed.  Nothing the student's code does in its kernel
(patched numpy, lying objects, silenced exceptions, rewritten cells) decides a
verdict: only the numbers it hands back do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Bytes, Dict, Integer, Unicode
from traitlets.config import Config

from autograder import reference
from autograder.protocol import standins
from autograder.protocol.secrets import seed_for
from autograder.sandbox import STOPPED_ENAME
from rnn_course import checks, grading
from rnn_course import standins as rnn_standins

PASSED_TEXT = "passed (verified by the grader)\n"
FAILED_ENAME = "CheckFailed"
UNREGISTERED = "unregistered"  # the kind of a graded cell without a check
UNVERIFIED_ENAME = "NotVerified"
"""ename of the error shown in a graded cell that no check judged (it scores 0)."""


def graded_cells(nb, registered: dict):
    """``(cell, grade_id, check)`` for each graded code cell of ``nb``, in order;
    ``check`` is ``registered``'s check of that id, or None."""
    for cell in nb.cells:
        if cell.cell_type == "code" and is_grade(cell):
            check_id = cell.metadata.nbgrader["grade_id"]
            yield cell, check_id, registered.get(check_id)


def assignment_checks(assignment: str) -> dict[str, checks.Check]:
    """The checks of ``assignment`` (none when it has no checks module: every cell fails)."""
    try:
        return checks.assignment_checks(assignment)
    except checks.NoChecksModule:
        return {}


def drawn_inputs(check: checks.Check, secret: bytes, assignment: str,
                 student: str) -> dict[str, np.ndarray]:
    """The inputs of ``check`` for this submission, from the per-submission seed.

    Hidden and visible checks alike (``secret`` already depends on the
    submission's bytes, :func:`autograder.protocol.secrets.submission_secret`).
    """
    return check.draw(np.random.default_rng(seed_for(secret, assignment, student, check.id)))


@dataclass(frozen=True)
class GradedCell:
    """What the execute preprocessor needs to know about one graded cell."""

    check: str
    """The check it calls (its grade_id)."""
    drawn: dict
    """The inputs drawn for this submission, once: delivered while the cell runs, and
    what :class:`VerifyChecks` judges the results against."""
    hidden_code: bool
    """The cell holds hidden test code: it runs outside the kernel's history."""
    tables: dict | None = None
    """The stand-in tables delivered with them (:mod:`autograder.protocol.standins`)."""

    @property
    def inputs(self) -> dict:
        """What the cell receives while it runs: the drawn inputs and the tables."""
        return {**self.drawn, rnn_standins.INPUT_NAME: self.tables} if self.tables else self.drawn


def hidden_delimiter(config: "Config | None" = None) -> str:
    """nbgrader's marker of hidden test code (``ClearHiddenTests.begin_test_delimeter``)."""
    from nbgrader.preprocessors import ClearHiddenTests

    return ClearHiddenTests(config=config or Config()).begin_test_delimeter


def grading_plan(nb, secret: bytes, assignment: str, student: str,
                 config: "Config | None" = None) -> dict[str, GradedCell]:
    """grade_id -> :class:`GradedCell` for each graded code cell with a registered check.

    ``nb`` must already have its graded cells restored from the gradebook
    (nbgrader's OverwriteCells), so that the list of checks and the hidden
    code are the instructor's, not the student's.
    """
    delimiter = hidden_delimiter(config)
    plan = {}
    for cell, check_id, check in graded_cells(nb, assignment_checks(assignment)):
        if check is None:
            continue
        inputs = drawn_inputs(check, secret, assignment, student)
        plan[check_id] = GradedCell(check_id, inputs, check.hidden or delimiter in cell.source,
                                    standins.tables_for(check, inputs) or None)
    return plan


def prepare_grading_dir(grading_dir: str | os.PathLike) -> None:
    """Create the shared folder, empty: inputs are delivered cell by cell while grading."""
    grading.prepare(grading_dir)


def warm_up(assignments) -> None:
    """Import the checks of every assignment in ``assignments`` (before workers fork)."""
    checks.registry(assignments)


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


def verdict_record(kind: str, verdict: "checks.Verdict | None") -> dict:
    """A cell's verdict as the plain data that :mod:`autograder.pipeline.scoring` scores."""
    return {"kind": kind, "passed": verdict is None,
            "message": "" if verdict is None else verdict.message,
            "fraction": 1.0 if verdict is None else verdict.fraction}


class VerifyChecks(NbGraderPreprocessor):
    """Decide every graded code cell in the grader's process (see module docstring)."""

    grading_dir = Unicode(
        "", help="The grader's private folder of the results collected after each graded "
                 "cell (<check id>.npz), out of the kernel's reach."
    ).tag(config=True)
    secret = Bytes(b"", help="The grader's secret that seeds hidden inputs.")
    plan = Dict({}, help="grade_id -> GradedCell: the inputs drawn before execution (judged "
                         "against as drawn, never drawn again); a check not in it draws its own.")
    max_result_bytes = Integer(
        grading.MAX_RESULT_BYTES,
        help="Largest result file (and its uncompressed content) accepted."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        assignment = info.get("assignment", "")
        student = info.get("student", "")
        verdicts = {}
        registered = assignment_checks(assignment)
        judged = {}
        for cell, check_id, check in graded_cells(nb, registered):
            if check is None:
                kind = UNREGISTERED
                message = f"no check is registered for graded cell {check_id!r}"
            else:
                kind = check.kind
                message = self._judge(cell, check, assignment, student)
            judged[check_id] = (cell, kind, checks.Verdict.of(message))
        # a function wrong on general inputs keeps at most half of its points
        capped = checks.capped_by_function(
            {i: v for i, (_, k, v) in judged.items() if k != UNREGISTERED},
            {i: float(c.metadata.get("nbgrader", {}).get("points") or 0)
             for i, (c, k, _) in judged.items() if k != UNREGISTERED}, registered)
        for check_id, (cell, kind, verdict) in judged.items():
            verdict = capped.get(check_id, verdict)
            if verdict is None:
                cell.outputs = [new_output("stream", name="stdout",
                                           text=f"{check_id}: {PASSED_TEXT}")]
            else:
                text = f"{check_id}: {verdict.message}"
                cell.outputs = [new_output("error", ename=FAILED_ENAME, evalue=text,
                                           traceback=[f"{FAILED_ENAME}: {text}"])]
            verdicts[check_id] = verdict_record(kind, verdict)
        resources.setdefault("rnn_course", {})["checks"] = verdicts
        return nb, resources

    def _judge(self, cell, check: checks.Check, assignment: str, student: str):
        """None when the check passed, else its :class:`~rnn_course.checks.Verdict` (or the
        message of a failure to judge)."""
        path = (os.path.join(self.grading_dir, f"{check.id}{grading.SUFFIX}")
                if self.grading_dir else None)
        if path is None or not os.path.isfile(path):
            err = _kernel_error(cell, with_message=not check.hidden)
            return f"no result ({err})" if err else "no result was produced"
        try:
            outputs = grading.load_result(path, self.max_result_bytes)
        except ValueError as exc:
            return str(exc)
        try:
            entry = self.plan.get(check.id)
            inputs = (entry.drawn if entry is not None
                      else drawn_inputs(check, self.secret, assignment, student))
            return check.judge(outputs, inputs, reference)
        except Exception as exc:  # a verdict must never crash grading
            return f"could not be judged ({type(exc).__name__}: {str(exc)[:120]})"


def never_ran(nb, reason: str) -> dict[str, str]:
    """grade id -> ``reason`` for each graded code cell the stopped notebook never finished.

    A cell never ran when it has no execution count, or when the sandbox
    marked it stopped (:data:`~autograder.sandbox.STOPPED_ENAME`).
    """
    out = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_grade(cell) or not cell.source.strip():
            continue
        stopped = any(o.get("output_type") == "error" and o.get("ename") == STOPPED_ENAME
                      for o in cell.get("outputs", []))
        if stopped or cell.get("execution_count") is None:
            out[cell.metadata.nbgrader["grade_id"]] = reason
    return out


def show_scores(nb, cells: dict[str, dict], not_run: dict[str, str]) -> None:
    """Make a failed test cell that shows no error show why (nbgrader reads errors as failed).

    A cell that never ran shows only that; a cell no check judged keeps what
    it printed and gets the reason after it.  Cells whose verdict already
    shows an error are left as they are.
    """
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        gid = cell.metadata.nbgrader["grade_id"]
        scored = cells.get(gid)
        if scored is None or scored["passed"] is not False:
            continue
        message = scored["message"]
        if gid in not_run:  # whatever its verdict said, it shows that it never ran
            cell.outputs = [new_output("error", ename=STOPPED_ENAME, evalue=message,
                                       traceback=[f"{STOPPED_ENAME}: {message}"])]
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            continue
        if scored["kind"] == "unverified":
            cell.outputs.append(new_output("error", ename=UNVERIFIED_ENAME, evalue=message,
                                           traceback=[f"{UNVERIFIED_ENAME}: {message}"]))
