"""``GradedCells``: graded inputs exist only while their cell runs; hidden code leaves no history.

Mixed in before an nbclient ``NotebookClient`` (nbgrader's ``Execute``, the
sandbox's ``SandboxExecute``), it wraps nbclient's per-cell hook,
``async_execute_cell``.  For each graded cell of the grading plan
(:func:`autograder.pipeline.worker.verify.grading_plan`):

1. just before the cell runs, the shared folder is emptied and the inputs the
   grader drew for the cell's check are written to ``inputs/<id>.npz``
   (:func:`rnn_course.grading.deliver`);
2. a cell that holds hidden test code runs with ``store_history=False``: its
   code never enters ``In``, ``_ih``, ``_i``, ``Out`` or the history database
   (the kernel also starts with ``--HistoryManager.enabled=False``, so there is
   no database at all);
3. right after it, the result of that cell's check (and only that one) is
   copied out of the kernel's reach, to the grader's private folder, and the
   shared folder is emptied again (:func:`rnn_course.grading.collect`); after
   a cell with hidden code, a silent request also drops that code from the
   kernel's ``linecache`` (where IPython keeps every cell's source for
   tracebacks), before the next student cell runs.

What it cannot take away: the student's functions run inside the graded cell
and receive its inputs as arguments (that is the point of calling them), and
any code of the kernel may watch what the kernel executes while it executes
it.  Hence the other half of the defence: the inputs are drawn anew whenever
the submission's bytes change, and the hidden code is one call of a check
that ships with the student package (see docs/security.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from jupyter_core.utils import run_sync
from nbgrader.utils import is_grade

from rnn_course import grading

log = logging.getLogger(__name__)

NO_HISTORY_DB = "--HistoryManager.enabled=False"
"""Kernel argument: IPython keeps no history database (only its in-memory lists)."""

_SCRUB = """(lambda lc, ip, marker: [
    (lc.cache.pop(k, None), getattr(getattr(ip, "compile", None), "_filename_map", {}).pop(k, None))
    for k, v in list(lc.cache.items())
    if isinstance(v, tuple) and len(v) > 2 and marker in "".join(v[2] or ())
])(__import__("linecache"), get_ipython(), %r)
"""


class GradedCells:
    """Deliver each graded cell's inputs, collect its result, keep hidden code out of history.

    Configure a subclass with :func:`graded_cells_class`; the plan, the
    folders and the bound are class attributes (nbclient's preprocessors are
    built by code that passes only its own arguments).
    """

    graded_plan: dict = {}
    """grade_id -> :class:`autograder.pipeline.worker.verify.GradedCell`."""
    shared_dir: str = ""
    """The grader's path of the folder shared with the kernel."""
    collect_dir: str = ""
    """The grader's private folder that receives each check's result."""
    hidden_marker: str = ""
    """nbgrader's hidden-test delimiter (what the scrub looks for in ``linecache``)."""
    max_result_bytes: int = grading.MAX_RESULT_BYTES

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if NO_HISTORY_DB not in self.extra_arguments:
            self.extra_arguments = [*self.extra_arguments, NO_HISTORY_DB]

    def _shared(self) -> str:
        """The shared folder where the kernel sees it now: a sandbox with a bounded
        scratch runs in a tmpfs copy of the scratch folder (``live_path``)."""
        live = getattr(getattr(self, "km", None), "live_path", None)
        return live(self.shared_dir) if callable(live) else self.shared_dir

    def _plan_entry(self, cell):
        if cell.get("cell_type") != "code" or not is_grade(cell):
            return None
        return self.graded_plan.get(cell.metadata.nbgrader.get("grade_id"))

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        entry = self._plan_entry(cell)
        if entry is None:
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        shared = self._shared()
        try:
            grading.deliver(shared, entry.check, entry.inputs)
        except OSError as exc:  # the kernel fought over the folder: the check gets no result
            log.info("%s: inputs not delivered (%s)", entry.check, exc)
        try:
            return await super().async_execute_cell(
                cell, cell_index, execution_count,
                store_history and not entry.hidden_code)
        finally:
            try:
                grading.collect(shared, entry.check,
                                Path(self.collect_dir) / f"{entry.check}{grading.SUFFIX}",
                                self.max_result_bytes)
            except OSError as exc:
                log.info("%s: result not collected (%s)", entry.check, exc)
            if entry.hidden_code:
                await self._scrub()

    execute_cell = run_sync(async_execute_cell)

    async def _scrub(self) -> None:
        """Drop the cells holding hidden code from the kernel's ``linecache`` (silently)."""
        kc = getattr(self, "kc", None)
        if kc is None or not self.hidden_marker:
            return
        try:
            msg_id = kc.execute(_SCRUB % self.hidden_marker, silent=True,
                                store_history=False, allow_stdin=False)
            await self.async_wait_for_reply(msg_id)
        except Exception as exc:  # a dead or stuck kernel: the next cell finds out
            log.info("linecache scrub skipped (%s: %s)", type(exc).__name__, exc)


def graded_cells_class(base: type, plan: dict, shared_dir, collect_dir, hidden_marker: str,
                       max_result_bytes: int = grading.MAX_RESULT_BYTES) -> type:
    """``base`` (an nbclient ``NotebookClient`` subclass) with :class:`GradedCells` for one run."""
    return type(f"Graded{base.__name__}", (GradedCells, base), {
        "graded_plan": dict(plan), "shared_dir": str(shared_dir),
        "collect_dir": str(collect_dir), "hidden_marker": hidden_marker,
        "max_result_bytes": int(max_result_bytes)})
