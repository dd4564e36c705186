"""Scoring one submission: the one place where verdicts become points.

:func:`score_submission` is a pure function of

* the assignment's structure (:class:`AssignmentStructure`: notebooks, grade
  cells and their points, due date), read from the gradebook by the
  coordinator and handed to the worker in its job;
* what grading each notebook found (:class:`NotebookRun`): the verdicts of
  ``VerifyChecks`` (``resources["rnn_course"]["checks"]``,
  ``{grade_id: {"kind", "passed", "message"}}``), the graded cells that never
  ran, and the solution cells left as released;
* the submission's time and the student's extension.

Its rules, each written here and nowhere else:

* a notebook that was not graded (missing or unusable) scores 0 in every cell;
* an autograded test cell scores its points when its verdict passed, else the
  share its verdict still earns (``fraction``: the right outputs of a check that
  compares several, each worth the same share), else 0;
  a cell without a verdict scores 0 (never from what the kernel printed);
* a cell that never ran (the notebook was stopped: a stopping flag) fails;
* a cell graded by a person (a graded answer cell, a written answer, a task)
  is left to that person (no auto score), or 0 when left as released;
* lateness goes through nbgrader's configured ``LateSubmissionPlugin``
  (``c.AssignLatePenalties.plugin_class``, ``c.LateSubmissionPlugin.penalty_method``),
  per notebook, clamped between 0 and the notebook's score as nbgrader does.

The worker scores with it and renders the feedback from the result; the
coordinator records those very numbers (:mod:`autograder.pipeline.coordinator.record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nbgrader.utils import compute_checksum, is_solution, is_task
from traitlets.config import Config

NO_RESPONSE = "No response."
"""nbgrader's automatic comment on an answer cell left as released."""
POINT_DECIMALS = 4
"""Points are shown and exported to this many decimals: a share of a cell's points is
rounded to 1e-4 (:func:`earned_fraction`), so nothing real is lost, only float noise."""


def points(value) -> float:
    """``value`` as points are recorded and shown everywhere (12.4, never 12.399999999999999);
    None counts as 0."""
    return round(float(value or 0.0), POINT_DECIMALS) + 0.0  # + 0.0: never -0.0


def points_text(value) -> str:
    """Points as text: ``4``, ``2.5``, ``-`` for none."""
    if value is None:
        return "-"
    value = points(value)
    return str(int(value)) if value == int(value) else repr(value)


def total(raw, late_penalty=None) -> float:
    """The one total of a submission (or a notebook): its points after the late penalty,
    never below 0 (nbgrader's rule), in :func:`points`.  The report's table, the feedback,
    ``grades.csv`` and the Canvas file all read it."""
    return points(max(0.0, float(raw) - float(late_penalty or 0.0)))


# --------------------------------------------------------------------------- #
# the assignment's structure
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class GradedCell:
    """A cell that carries points (nbgrader's grade or task cell)."""

    max_score: float
    cell_type: str = "code"
    solution: bool = False
    """A graded answer cell (grade and solution): a person grades it."""
    task: bool = False

    @property
    def autograded(self) -> bool:
        """An autograder test cell: its verdict decides its points."""
        return self.cell_type == "code" and not self.solution and not self.task


@dataclass(frozen=True)
class AssignmentStructure:
    """What scoring needs to know about an assignment (plain, picklable data)."""

    name: str
    notebooks: dict[str, dict[str, GradedCell]]
    """Notebook name -> grade id -> cell, in the gradebook's order."""
    cell_ids: dict[str, frozenset[str]] = field(default_factory=dict)
    """Notebook name -> ids of all its instructor cells (what the precheck knows)."""
    duedate: datetime | None = None
    """Naive UTC, as nbgrader stores it (None: no due date)."""
    skipped: dict[str, frozenset[str]] = field(default_factory=dict)
    """Notebook name -> ids of the cells the instructor marked as no grade's
    (:mod:`autograder.ungraded`, read from the source notebooks): not executed."""

    @property
    def max_score(self) -> float:
        return float(sum(c.max_score for cells in self.notebooks.values()
                         for c in cells.values()))


# --------------------------------------------------------------------------- #
# what grading found
# --------------------------------------------------------------------------- #
@dataclass
class NotebookRun:
    """What grading one notebook found, as scoring reads it."""

    verdicts: dict[str, dict] = field(default_factory=dict)
    """grade id -> ``{"kind", "passed", "message"}`` (VerifyChecks)."""
    not_run: dict[str, str] = field(default_factory=dict)
    """grade id -> why it never ran (the stopping flags of its notebook)."""
    unanswered: frozenset[str] = frozenset()
    """Ids of answer cells left as released (nbgrader's checksum test)."""


def auto_comments(nb) -> dict[str, str | None]:
    """nbgrader's automatic comment of every answer and task cell: ``NO_RESPONSE`` or None."""
    comments = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if not meta or not (is_solution(cell) or is_task(cell)):
            continue
        unchanged = (not is_task(cell) and meta.get("checksum") is not None
                     and meta.get("checksum") == compute_checksum(cell))
        comments[meta["grade_id"]] = NO_RESPONSE if unchanged else None
    return comments


# --------------------------------------------------------------------------- #
# the result
# --------------------------------------------------------------------------- #
@dataclass
class Scores:
    """Points of one submission (plain data: crosses process boundaries)."""

    cells: dict[str, dict[str, dict]] = field(default_factory=dict)
    """Notebook -> grade id -> ``{"score", "max_score", "passed", "kind", "message"}``;
    ``score`` is None for a cell left to a person."""
    late_penalties: dict[str, float | None] = field(default_factory=dict)
    """Notebook -> late penalty (None: none assigned), as nbgrader stores it."""
    seconds_late: float = 0.0

    def notebook_score(self, name: str) -> float:
        """Points of one notebook before its late penalty."""
        return float(sum(c["score"] or 0.0 for c in self.cells.get(name, {}).values()))

    def notebook_max(self, name: str) -> float:
        return float(sum(c["max_score"] for c in self.cells.get(name, {}).values()))

    @property
    def late_penalty(self) -> float:
        return float(sum(p or 0.0 for p in self.late_penalties.values()))

    @property
    def score(self) -> float:
        """Total after the late penalty (:func:`total`)."""
        return total(sum(self.notebook_score(n) for n in self.cells), self.late_penalty)

    @property
    def max_score(self) -> float:
        return sum(self.notebook_max(n) for n in self.cells)


def _cell(score, max_score, passed, kind, message) -> dict:
    return {"score": None if score is None else float(score), "max_score": float(max_score),
            "passed": passed, "kind": kind, "message": message}


def score_cell(cell: GradedCell, verdict: dict | None, *, not_run: str | None = None,
               unanswered: bool = False) -> dict:
    """Points of one graded cell of a graded notebook (the rules of the module docstring)."""
    if not cell.autograded:
        if unanswered:
            return _cell(0.0, cell.max_score, False, "manual", NO_RESPONSE)
        return _cell(None, cell.max_score, None, "manual", "graded by an instructor")
    kind = (verdict or {}).get("kind") or "unverified"
    if not_run is not None:
        return _cell(0.0, cell.max_score, False, kind,
                     f"not run: the grader stopped the notebook ({not_run})")
    if verdict is None or verdict.get("passed") is None:
        return _cell(0.0, cell.max_score, False, "unverified",
                     "no check is registered for this cell: it scores 0")
    passed = verdict["passed"] is True
    return _cell(cell.max_score * (1.0 if passed else earned_fraction(verdict)),
                 cell.max_score, passed, kind, str(verdict.get("message") or ""))


def earned_fraction(verdict: dict) -> float:
    """The share of its points a failed verdict still earns (its right outputs: the
    ``fraction`` of a :class:`rnn_course.checks.Verdict`, recorded by
    :func:`autograder.pipeline.worker.verify.verdict_record`), in [0, 1), rounded to 1e-4."""
    try:
        fraction = float(verdict.get("fraction") or 0.0)
    except (TypeError, ValueError):
        return 0.0
    if not fraction == fraction:  # NaN
        return 0.0
    return round(min(max(fraction, 0.0), 0.9999), 4)


def seconds_late(timestamp: datetime | None, duedate: datetime | None,
                 extension_seconds: float | None = None) -> float:
    """Seconds past the due date plus extension (0 without a time or a due date), as nbgrader."""
    if timestamp is None or duedate is None:
        return 0.0
    if extension_seconds:
        duedate = duedate + timedelta(seconds=extension_seconds)
    return max(0.0, (timestamp - duedate).total_seconds())


def parse_timestamp(text: str | None) -> datetime | None:
    """nbgrader's reading of ``timestamp.txt`` (naive UTC), or None when absent or unparsable."""
    if not text:
        return None
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text)
    except Exception:  # nbgrader's autograde would stop here; we grade without a time
        return None


def late_plugin(config: Config | None):
    """nbgrader's configured late-submission plugin (``AssignLatePenalties.plugin_class``)."""
    from nbgrader.preprocessors import AssignLatePenalties

    pp = AssignLatePenalties(config=config if config is not None else Config())
    pp.init_plugin()
    return pp.plugin_inst


def _clamp_penalty(penalty: float, score: float) -> float:
    """As nbgrader's ``AssignLatePenalties``: at least 0, at most the notebook's score."""
    return min(max(0.0, float(penalty)), score)


def score_submission(structure: AssignmentStructure, runs: dict[str, NotebookRun | None], *,
                     student: str, timestamp: datetime | None = None,
                     extension_seconds: float | None = None,
                     config: Config | None = None, plugin=None) -> Scores:
    """Scores of one submission; ``runs`` maps notebook name -> what grading found (None or
    absent: not graded).  ``plugin`` overrides the configured late-submission plugin."""
    scores = Scores(seconds_late=seconds_late(timestamp, structure.duedate, extension_seconds))
    for name, cells in structure.notebooks.items():
        run = runs.get(name)
        if run is None:
            scores.cells[name] = {
                gid: _cell(0.0, cell.max_score, False, "missing",
                           "the notebook was not graded (missing or unusable)")
                for gid, cell in cells.items()}
        else:
            scores.cells[name] = {
                gid: score_cell(cell, run.verdicts.get(gid), not_run=run.not_run.get(gid),
                                unanswered=gid in run.unanswered)
                for gid, cell in cells.items()}
        scores.late_penalties[name] = None
    if scores.seconds_late > 0:
        plugin = plugin if plugin is not None else late_plugin(config)
        for name in structure.notebooks:
            nb_score = scores.notebook_score(name)
            penalty = plugin.late_submission_penalty(student, nb_score, scores.seconds_late)
            if penalty is not None:
                scores.late_penalties[name] = _clamp_penalty(penalty, nb_score)
    return scores


def duration(seconds: float) -> str:
    """``3m 20s``, ``2h 5m``, ``4d 1h``: how late a submission is, as its flag says."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
