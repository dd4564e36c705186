"""The flag vocabulary: what went wrong for a student, in one place.

A flag is a short snake_case name plus a one-line reason (``(name, reason)``).
Every stage raises flags from :data:`VOCABULARY` only: the precheck (files
and notebooks), the sandbox (its outcomes, named by :mod:`autograder.sandbox`
itself and imported here), the worker and the coordinator.  Each flag has its
words for the student (the feedback's "Grader notes") and says whether it
*stops* execution: after such a flag, cells may not have run, and a graded
cell that never ran fails (:mod:`autograder.pipeline.scoring`).

Flags are recorded in the gradebook database
(:mod:`autograder.pipeline.coordinator.gradebook`), shown in the feedback and in the
``flags`` column of ``grades.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.sandbox import (
    CPU_LIMIT,
    DISK_LIMIT,
    KERNEL_DIED,
    MEMORY_LIMIT,
    OUTPUT_TRUNCATED,
    PROCESS_LIMIT,
    TIMEOUT,
)

# raised by the precheck
INVALID_NOTEBOOK = "invalid_notebook"
MISSING_NOTEBOOK = "missing_notebook"
RENAMED_NOTEBOOK = "renamed_notebook"
DUPLICATE_GRADE_ID = "duplicate_grade_id"
UNKNOWN_GRADE_ID = "unknown_grade_id"
SHADOWING_MODULE = "shadowing_module"
TOO_LARGE = "too_large"
UNSAFE_FILE = "unsafe_file"
# raised by the worker (the sandbox's outcomes are imported above)
TAMPERED_CELLS_RESTORED = "tampered_cells_restored"
LATE = "late"
GRADER_ERROR = "grader_error"
GRADER_LIMIT = "grader_limit"
# raised by the coordinator: the grade is recorded, the files are not (a rerun writes them)
FILES_NOT_WRITTEN = "files_not_written"

REASON_CHARS = 300


@dataclass(frozen=True)
class Flag:
    """One flag of the vocabulary."""

    name: str
    text: str
    """What it means, in words a student understands."""
    stops: bool = False
    """True when cells after it may not have run."""


VOCABULARY: dict[str, Flag] = {flag.name: flag for flag in (
    Flag(INVALID_NOTEBOOK, "the notebook could not be read, so it was not run"),
    Flag(MISSING_NOTEBOOK, "the notebook was not in the submission"),
    Flag(RENAMED_NOTEBOOK, "the notebook had another name; it was graded anyway"),
    Flag(DUPLICATE_GRADE_ID, "a graded cell was duplicated; the first copy was graded"),
    Flag(UNKNOWN_GRADE_ID, "a cell carried grading metadata that is not in the assignment"),
    Flag(SHADOWING_MODULE, "a file named like a Python module was left out"),
    Flag(TOO_LARGE, "a file was over the size limit and was left out"),
    Flag(UNSAFE_FILE, "a link or special file was left out"),
    Flag(TIMEOUT, "a cell ran too long and was stopped", stops=True),
    Flag(MEMORY_LIMIT, "the notebook used more memory than allowed", stops=True),
    Flag(PROCESS_LIMIT, "the notebook started too many processes or threads", stops=True),
    Flag(CPU_LIMIT, "the notebook used more CPU time than allowed", stops=True),
    Flag(DISK_LIMIT, "the notebook wrote more to disk than allowed; those writes failed"),
    Flag(OUTPUT_TRUNCATED, "some output was too long and was cut"),
    Flag(KERNEL_DIED, "the Python kernel died while running the notebook", stops=True),
    Flag(TAMPERED_CELLS_RESTORED, "read-only or graded cells were changed; the original "
                                  "versions were graded"),
    Flag(LATE, "the submission was late"),
    Flag(GRADER_ERROR, "the grader itself failed; an instructor will look at it"),
    Flag(GRADER_LIMIT, "grading this notebook took the grader too long; what it could not "
                       "finish scored 0 (or, for the feedback, is shown in short)"),
    Flag(FILES_NOT_WRITTEN, "the grade is recorded, but the grader could not write the graded "
                            "files; an instructor will look at it"),
)}
FLAGS = tuple(VOCABULARY)
"""Every flag name, in the vocabulary's order."""
STOPPING = frozenset(flag.name for flag in VOCABULARY.values() if flag.stops)


def clean_text(text) -> str:
    """``text`` as a str that any UTF-8 writer accepts (lone surrogates become ``\\udcxx``)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def add_flag(flags: list[tuple[str, str]], name: str, reason: str = "") -> None:
    """Append ``(name, reason)`` to ``flags`` unless it is there; unknown names are a bug."""
    if name not in VOCABULARY:
        raise ValueError(f"unknown flag {name!r}")
    reason = clean_text(" ".join(str(reason).split())[:REASON_CHARS])
    if (name, reason) not in flags:
        flags.append((name, reason))


def flag_names(flags) -> list[str]:
    """The distinct names of ``flags`` (pairs), sorted."""
    return sorted({name for name, _ in flags})


class Flagged:
    """Mixin for the dataclasses that carry ``flags: list[tuple[str, str]]``."""

    flags: list[tuple[str, str]]

    def flag(self, name: str, reason: str = "") -> None:
        add_flag(self.flags, name, reason)

    @property
    def flag_names(self) -> list[str]:
        return flag_names(self.flags)
