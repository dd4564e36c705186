"""What a grading run reports: one :class:`StudentResult` per student, and the run's totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autograder.pipeline.flags import FILES_NOT_WRITTEN
from autograder.pipeline.scoring import points_text


@dataclass
class StudentResult:
    """One student's outcome in a grading run."""

    student: str
    score: float
    max_score: float
    flags: list[str]
    status: str
    """"graded" (this run), "skipped" (already recorded) or "error" (grader_error)."""
    usage: dict[str, float] = field(default_factory=dict)
    """What the worker spent on it (``GradeResult.usage``): CPU seconds, peak MiB."""


@dataclass
class GradeReport:
    """What a grading run did, and where its files went."""

    assignment: str
    results: list[StudentResult]
    csv_path: Path
    feedback_dir: Path
    autograded_dir: Path
    seconds: float
    stage_seconds: dict[str, float]
    """Seconds summed over submissions per stage (:data:`STAGES`)."""
    gradebook: str = ""
    workers: str = ""

    @property
    def errors(self) -> list[StudentResult]:
        return [r for r in self.results if r.status == "error"]

    @property
    def unwritten(self) -> list[StudentResult]:
        """Graded and recorded, but their files could not be written (a rerun writes them)."""
        return [r for r in self.results if FILES_NOT_WRITTEN in r.flags]

    def table(self) -> str:
        """A plain-text table: student, score/max, status and flags."""
        rows = [("student", "score", "status", "flags")]
        for r in sorted(self.results, key=lambda r: r.student):
            rows.append((r.student, f"{points_text(r.score)}/{points_text(r.max_score)}", r.status,
                         ", ".join(r.flags) or "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = []
        for i, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
                         + "  " + row[3])
            if i == 0:
                lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 5)
        graded = sum(r.status == "graded" for r in self.results)
        skipped = sum(r.status == "skipped" for r in self.results)
        lines.append("")
        lines.append(f"{len(self.results)} submission(s): {graded} graded, {skipped} already "
                     f"recorded (skipped), {len(self.errors)} grader error(s) "
                     f"in {self.seconds:.1f}s")
        return "\n".join(lines)

    def usage(self) -> str:
        """One line: the most CPU and memory the grader's worker spent on one submission."""
        used = [r.usage for r in self.results if r.usage]
        if not used:
            return "grader per submission: -"
        cpu = max(u["cpu_seconds"] for u in used)
        peak = max(u["peak_rss_mib"] for u in used)
        return (f"grader per submission (worker, not the sandbox): at most {cpu:.1f} s CPU, "
                f"peak memory at most {peak:.0f} MiB")

    def stages(self) -> str:
        """One line: seconds per stage, summed over the submissions graded."""
        parts = [f"{k} {v:.1f}s" for k, v in self.stage_seconds.items() if v > 0]
        return "time per stage (summed over submissions): " + (", ".join(parts) or "-")


