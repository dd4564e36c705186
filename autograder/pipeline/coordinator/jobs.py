"""Building one self-contained :class:`~autograder.pipeline.types.GradeJob` per submission.

What every job of an assignment shares (the assignment's structure and its
gradebook snapshot, the instructor's source files, the sandbox's limits and
the cell timeout) is read once, on the first job.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from pathlib import Path

from nbgrader.coursedir import CourseDirectory

from autograder.course import Course
from autograder.errors import UsageError
from autograder.pipeline.types import GradeJob
from autograder.pipeline.worker.precheck import Submission
from autograder.protocol.secrets import course_secret, submission_secret
from autograder.ungraded import source_marks


def _source_files(course: Course, coursedir: CourseDirectory, assignment: str) -> dict:
    """The assignment's non-notebook source files, as nbgrader's autograde copies them."""
    root = Path(coursedir.format_path(coursedir.source_directory, ".", assignment))
    exclude = set(course.config.get("Autograde", {}).get("exclude_overwriting", {})
                  .get(assignment, []))
    ignore = list(coursedir.ignore) + ["*.ipynb"]
    files = {}
    if not root.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not any(fnmatch.fnmatch(d, p) for p in ignore)]
        for name in filenames:
            if any(fnmatch.fnmatch(name, p) for p in ignore):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel in exclude or not path.is_file():
                continue
            files[rel] = path.read_bytes()
    return files


def _limits(course: Course):
    """The sandbox's ``Limits`` from ``nbgrader_config.py``, the cell timeout included: the
    one place where they are resolved (a job carries them; nothing else reads the config).

    ``c.SandboxedKernelManager.<limit>`` (the sandbox's own traits) and
    ``c.Limits.<field>`` (any field of ``autograder.sandbox.Limits``, the
    latter wins) set the limits; the cell timeout is ``c.Limits.cell_timeout``
    if given, else nbgrader's ``c.Execute.timeout`` / ``c.ExecutePreprocessor.timeout``,
    else the ``Limits`` default.
    """
    try:
        from autograder.sandbox import Limits
        from autograder.sandbox.limits import KERNEL_LIMITS
    except ImportError:
        return None
    values = {k: v for k, v in course.config.get("SandboxedKernelManager", {}).items()
              if k in KERNEL_LIMITS}
    for name in ("ExecutePreprocessor", "Execute"):  # the latter wins, as in nbgrader
        if "timeout" in course.config.get(name, {}):
            values["cell_timeout"] = int(course.config[name]["timeout"])
    values.update(course.config.get("Limits", {}))
    try:
        return Limits(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad sandbox limits in nbgrader_config.py: {exc}") from None


class JobMaker:
    """Builds one :class:`~autograder.pipeline.types.GradeJob` per submission.

    What every job shares (the structure snapshot, source files, limits) is
    read once, on the first job.
    """

    def __init__(self, course, coursedir, book, assignment, unsafe, structure):
        self.course, self.coursedir, self.book = course, coursedir, book
        self.assignment, self.unsafe = assignment, unsafe
        source_dir = coursedir.format_path(coursedir.source_directory, ".", assignment)
        self.structure = dataclasses.replace(  # the cells the instructor marked as no grade's
            structure, skipped=source_marks(Path(source_dir), structure.notebooks))
        self._shared = None

    @property
    def source_files(self) -> dict[str, bytes]:
        return self.shared()["source_files"]

    def shared(self) -> dict:
        if self._shared is None:
            self._shared = dict(
                structure_db=self.book.snapshot(self.assignment),
                secret=course_secret(self.course.root),
                source_files=_source_files(self.course, self.coursedir, self.assignment),
                extensions=self.book.extensions(self.assignment),
                limits=_limits(self.course),
            )
        return self._shared

    def job(self, sub: Submission):
        shared = self.shared()
        return GradeJob(
            student=sub.student, assignment=self.assignment, course_id=self.course.course_id,
            submission=sub, source_files=shared["source_files"],
            structure=self.structure, structure_db=shared["structure_db"],
            seed_secret=submission_secret(shared["secret"], self.assignment, sub.student,
                                          sub.digest),
            config=self.course.config,
            extension_seconds=shared["extensions"].get(sub.student), sandbox=not self.unsafe,
            limits=shared["limits"],
        )


