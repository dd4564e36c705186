"""nbgrader preprocessors of the grading pipeline, one per module (nbgrader's layout).

- :class:`RestoreCells`: nbgrader's ``OverwriteCells`` that also restores a
  cell's nbgrader kind, re-adds missing graded cells without crashing, and
  records every change (the ``tampered_cells_restored`` flag).
- :class:`TimedExecute`: nbgrader's ``Execute`` that measures kernel start-up
  and can add environment variables to an unsandboxed kernel.
- :class:`GradedCells`: mixed into the execute preprocessor: a graded cell's
  inputs exist only while it runs, its result is taken out of the kernel's
  reach right after, and hidden test code never enters the kernel's history.
- :class:`TrackedLimitOutput`: nbgrader's ``LimitOutput`` that records whether
  it cut anything (the ``output_truncated`` flag).
- :class:`GradesFromScores`: nbgrader's ``GetGrades`` for the worker's feedback,
  reading the scores computed by :mod:`autograder.pipeline.scoring`.
- :class:`FeedbackHiddenTests`: nbgrader's ``ClearHiddenTests`` for feedback
  copies: never raises on a student's markers, and also strips what a hidden
  test's outputs could reveal.
- :class:`SanitizeOutputs`: makes every output, markdown and raw cell of a
  graded notebook inert in a browser (no script, handler, ``javascript:``
  URL or widget state), with ``nh3``; also the feedback's ``clean_html``.
- :class:`SkipUngraded`: the cells the instructor marked as no grade's
  (:mod:`autograder.ungraded`) are not executed; they show the student's own
  outputs from the submission, reduced to text and images.
- :class:`CheckCellMetadata`: nbgrader's, with its JSON schema compiled once
  per process (:func:`metadata_validator`, also the precheck's).
"""

from .cell_metadata import CheckCellMetadata, metadata_validator
from .feedback_hidden_tests import FeedbackHiddenTests
from .graded_cells import GradedCells, graded_cells_class
from .grades_from_scores import GradesFromScores
from .limit_output import TrackedLimitOutput
from .restore_cells import RestoreCells
from .sanitize_outputs import SanitizeOutputs
from .skip_ungraded import SkipUngraded
from .timed_execute import TimedExecute, TimingMixin

__all__ = ["CheckCellMetadata", "FeedbackHiddenTests", "GradedCells", "GradesFromScores",
           "RestoreCells", "SanitizeOutputs", "SkipUngraded", "TimedExecute", "TimingMixin",
           "TrackedLimitOutput",
           "graded_cells_class", "metadata_validator"]
