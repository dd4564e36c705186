"""The data that crosses the process boundary: a :class:`GradeJob` goes from the
coordinator to a worker, a :class:`GradeResult` comes back (both plain, picklable data),
and the names of the stages a grading run times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from traitlets.config import Config

from autograder.pipeline.flags import Flagged
from autograder.pipeline.scoring import AssignmentStructure, Scores

if TYPE_CHECKING:
    from autograder.pipeline.worker.precheck import Submission

STAGES = ("intake", "precheck", "sanitize", "sandbox_start", "execute", "verify", "score",
          "feedback", "gradebook")
"""Where a grading run spends its time (``GradeReport.stage_seconds``), in pipeline order."""
COORDINATOR_STAGES = ("intake", "gradebook")
"""The stages the coordinator times itself (reading and hashing a submission folder, and
recording a result): its serial share.  The others come from the workers' timings."""
WORKER_STAGES = tuple(s for s in STAGES if s not in COORDINATOR_STAGES)


@dataclass
class GradeJob:
    """Everything needed to grade one submission, with no access to the course."""

    student: str
    assignment: str
    course_id: str
    submission: Submission
    """The folder as the coordinator read it (:meth:`Precheck.gather`): its files as bytes,
    its timestamp, digest and the flags of reading it.  The worker prechecks it."""
    source_files: dict[str, bytes]
    """The instructor's non-notebook files of the assignment; they overwrite the student's."""
    structure: AssignmentStructure
    """The assignment's notebooks, graded cells, points and due date (scoring reads it)."""
    structure_db: bytes
    """SQLite gradebook with this assignment's structure only (the sanitize steps read it)."""
    seed_secret: bytes
    """Per-submission secret (course secret, assignment, student, digest) that seeds
    every check's inputs while grading."""
    config: Config
    """The course's nbgrader configuration (preprocessor settings, timeouts, sandbox)."""
    extension_seconds: float | None = None
    sandbox: bool = True
    limits: object | None = None
    """``autograder.sandbox.Limits``, the cell timeout included (None: its defaults)."""
    warm_next: bool = False
    """Another job will follow on this worker: start its kernel while grading this one
    (:mod:`autograder.pipeline.worker.warm`; set by the runner)."""


@dataclass
class GradeResult(Flagged):
    """What a worker hands back: plain data only (it crosses process and host boundaries)."""

    student: str
    assignment: str
    status: str = "graded"
    """"graded", or "error" when the grader itself failed."""
    notebooks: dict[str, str] = field(default_factory=dict)
    """Notebook name -> autograded notebook JSON (what nbgrader writes to autograded/)."""
    feedback: dict[str, str] = field(default_factory=dict)
    """Notebook name -> feedback HTML."""
    scores: Scores = field(default_factory=Scores)
    """Per notebook and grade cell: verdict and points; late penalties (scoring's result)."""
    comments: dict[str, dict[str, str | None]] = field(default_factory=dict)
    """Notebook name -> answer cell id -> nbgrader's automatic comment (graded notebooks)."""
    flags: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """The submission's files (relative paths) the precheck kept: what ``autograded/`` holds."""
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    """Traceback of a grader error (for the log, never for the student)."""
    worker: str = ""
    usage: dict[str, float] = field(default_factory=dict)
    """What the worker itself spent on this submission
    (:class:`~autograder.pipeline.worker.budget.Usage`): CPU seconds, peak resident MiB,
    wall seconds."""

    @property
    def score(self) -> float:
        """Total after the late penalty."""
        return self.scores.score

    @property
    def max_score(self) -> float:
        return self.scores.max_score

    @property
    def late_penalty(self) -> float:
        return self.scores.late_penalty

    def add_time(self, stage: str, seconds: float) -> None:
        if stage not in WORKER_STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds
