"""Recording one worker result: the coordinator's single path into the gradebook and onto disk."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from autograder.pipeline.gradebook import SIDECAR
from autograder.pipeline.report import StudentResult
from autograder.pipeline.runner import STAGES


def record(result, sub, *, book, coursedir, assignment, stage, maker) -> StudentResult:
    """Record one result in the gradebook and on disk; never lets one student stop the run."""
    t0 = time.monotonic()
    dest = Path(coursedir.format_path(coursedir.autograded_directory, result.student,
                                      assignment))
    fb = Path(coursedir.format_path(coursedir.feedback_directory, result.student, assignment))
    for key in STAGES:
        if key in result.timings and key not in ("precheck", "gradebook"):
            stage[key] += result.timings[key]
    for key in ("sanitize", "score"):
        stage[key] = stage.get(key, 0.0) + result.timings.get(key, 0.0)
    if result.status == "error" and result.error:
        print(f"grader error for {result.student} ({result.worker}):\n{result.error}",
              file=sys.stderr)
    try:
        recorded = book.record(result, sub, dest, fb, maker.source_files)
    except Exception:  # the gradebook refused: a grader error, and the run says so
        import traceback

        print(f"could not record {result.student}:\n{traceback.format_exc()}", file=sys.stderr)
        stage["gradebook"] += time.monotonic() - t0
        names = sorted({f for f, _ in result.flags} | {"grader_error"})
        (dest / SIDECAR).unlink(missing_ok=True)
        return StudentResult(result.student, 0.0, result.max_score, names, "error")
    stage["gradebook"] += time.monotonic() - t0
    names = sorted({f for f, _ in recorded.flags})
    status = "error" if result.status == "error" or "grader_error" in names else "graded"
    return StudentResult(result.student, recorded.score, recorded.max_score, names, status)
