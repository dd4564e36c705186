"""The coordinator of a grading run: ``grade_assignment`` (``python -m autograder grade``;
the command line, exit status and configuration are in README.md and docs/).

It reads and hashes every ``submitted/<student>/<assignment>/`` (the intake,
:meth:`~autograder.pipeline.worker.precheck.Precheck.gather`), skips what is recorded
unchanged, hands one self-contained job per submission to workers on a
``concurrent.futures`` executor (:mod:`.runner`: a local process pool, or a
``dask.distributed`` cluster with ``--scheduler``), records the results as they arrive
as the gradebook's only writer (:mod:`.record`) and exports ``grades.csv`` at the end
(:mod:`.export`).  Re-running is idempotent; every submitted student ends up recorded,
with flags saying what went wrong.  Python API (``autograder.commands.demo``, tests)::

    report = grade_assignment(course_dir, "rnn_cell", workers=2)
    print(report.table())
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from pathlib import Path

from nbgrader.coursedir import CourseDirectory

from autograder.course import Course, student_id_problem
from autograder.errors import UsageError
from autograder.pipeline.coordinator.gradebook import CourseGradebook
from autograder.pipeline.coordinator.jobs import JobMaker
from autograder.pipeline.coordinator.record import is_recorded, record, record_batch
from autograder.pipeline.coordinator.report import GradeReport, StudentResult
from autograder.pipeline.coordinator.runner import WAIT, Runner, crashed, progress_bar
from autograder.pipeline.flags import GRADER_ERROR, flag_names
from autograder.pipeline.types import STAGES, GradeResult
from autograder.pipeline.worker.precheck import Precheck, Submission

SANDBOX_HINT = "install bubblewrap (make setup) or pass --unsafe-no-sandbox"


def _require_oracles(assignments) -> None:
    """Refuse to grade (rather than fail every gradient check) without the stored oracles."""
    from autograder.protocol import oracles

    absent = oracles.missing(assignments)
    if absent:
        raise UsageError(f"the visible checks' oracle values are missing ({', '.join(absent)}); "
                         "rebuild them with `python -m autograder release`")


def grade_assignment(course_dir, assignment, *, workers=None, scheduler=None, students=None,
                     force=False, unsafe_no_sandbox=False, progress=True,
                     on_result=None, follow=None) -> GradeReport:
    """Grade ``assignment``'s submissions in ``course_dir`` (see the module docstring).

    ``on_result``, when given, is called with each :class:`StudentResult` as soon
    as it is recorded (graded, skipped or failed), before the run ends: the
    grading service (:mod:`autograder.service`) hands feedback back from there.
    ``follow``, when given, keeps the run open once ``students`` are handed
    out: it is called whenever a worker has room and returns more students
    whose ``submitted/`` folders are ready to grade, ``[]`` for "none yet, ask
    again", or None to finish the run.

    Raises :class:`~autograder.cli.UsageError` for problems a person must fix
    (unknown assignment or student, no ``submitted/`` folder, no sandbox, no
    stored oracle values).
    """
    started = time.monotonic()
    course = Course(course_dir)
    course.check_assignment(assignment)
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    if not unsafe_no_sandbox and scheduler is None:  # on dask, the workers' sandboxes run
        _require_sandbox()                           # the kernels: the coordinator needs none
        # the local workers' warm-up waits for this (a sandboxed interpreter builds
        # matplotlib's font list): started now, it runs while the run is set up
        from autograder.sandbox import prebuild_font_list

        threading.Thread(target=prebuild_font_list, args=(course.config,),
                         daemon=True).start()
    _require_oracles(course.assignments)
    run = _Run(course, assignment, students, force=force, unsafe=unsafe_no_sandbox,
               on_result=on_result, follow=follow)
    try:
        workers_text = run.grade(workers, scheduler, progress)
    finally:
        run.book.close()

    from autograder.pipeline.coordinator.export import export_grades

    csv_path = course.root / "grades.csv"
    export_grades(course.db_url, course.course_id, csv_path, course.config)
    return GradeReport(
        assignment=assignment,
        results=[run.results[s] for s in sorted(run.results)],
        csv_path=csv_path,
        feedback_dir=run.folder("feedback_directory", "."),
        autograded_dir=run.folder("autograded_directory", "."),
        seconds=time.monotonic() - started,
        stage_seconds=run.stage,
        gradebook=_safe_url(course.db_url),
        workers=workers_text,
    )


class _Run:
    """One grading run of one assignment: what is found, handed out, and recorded."""

    def __init__(self, course: Course, assignment: str, students, *, force: bool,
                 unsafe: bool, on_result, follow):
        self.course, self.assignment, self.force = course, assignment, force
        self.on_result, self.follow = on_result, follow
        self.coursedir = CourseDirectory(config=course.config)
        self.coursedir.root = str(course.root)
        submitted_root = self.folder("submitted_directory", ".")
        if not submitted_root.is_dir():
            raise UsageError(f"no submissions folder: {submitted_root} does not exist")
        self.found = _submitted_students(self.coursedir, assignment)
        if students:
            wanted = list(dict.fromkeys(students))
            missing = [s for s in wanted if s not in self.found]
            if missing:
                raise UsageError(f"no submission of {assignment} for student(s) "
                                 f"{', '.join(missing)} in {submitted_root}")
            self.found = {s: self.found[s] for s in wanted}
        self.book = CourseGradebook(course.db_url, course.course_id, course.config)
        self.structure = self.book.structure(assignment)
        self.stage = dict.fromkeys(STAGES, 0.0)
        self.results: dict[str, StudentResult] = {}
        self.checker = Precheck(config=course.config)
        if "ignore" in course.config.get("CourseDirectory", {}):
            self.checker.ignore = list(self.coursedir.ignore)
        self.recorded = (self.book.recorded(assignment) if self.found or follow is not None
                         else {})
        self.maker = JobMaker(course, self.coursedir, self.book, assignment, unsafe,
                              self.structure)
        self.record_ctx = dict(book=self.book, coursedir=self.coursedir, assignment=assignment,
                               stage=self.stage, maker=self.maker)
        self.prechecked: dict[str, Submission] = {}

    def folder(self, directory: str, student: str) -> Path:
        """``c.CourseDirectory.<directory>`` of ``student`` for this assignment."""
        return Path(self.coursedir.format_path(getattr(self.coursedir, directory), student,
                                               self.assignment if student != "." else "."))

    def grade(self, workers, scheduler, progress) -> str:
        """Hand out every job, record every result; what described the workers."""
        self.bar = progress_bar(len(self.found), progress)
        try:
            stream = self.job_stream()
            first = next(stream, None)
            if first is None:
                return "none needed"
            runner = Runner(workers, scheduler, self.course.config)
            # with `follow`, more may come: the workers keep a kernel started for them
            total = None if self.follow is not None else len(self.found)
            for batch in runner.run_batches(itertools.chain([first], stream), self.bar, total):
                self.record_all(batch)  # grader errors come back after a retry (the runner's)
            return runner.description
        finally:
            self.bar.close()

    def job_stream(self):
        """``(student, job)`` pairs, lazily: the runner pulls the next job when a worker has
        room, so reading a folder overlaps with grading; :data:`WAIT` for "none yet"."""
        yield from self.submissions(sorted(self.found.items()))
        while self.follow is not None:  # the grading service: more may arrive while this runs
            more = self.follow()
            if more is None:
                return
            if not more:
                yield WAIT
                continue
            self.recorded.update(self.book.recorded(self.assignment, more))
            folders = {s: self.folder("submitted_directory", s) for s in more}
            self.found.update(folders)
            yield from self.submissions(folders.items())

    def submissions(self, items):
        for student, folder in items:
            t0 = time.monotonic()
            # reading and hashing only: the worker prechecks (Precheck.finished)
            sub = self.checker.gather(folder, student, self.assignment,
                                      self.structure.cell_ids)
            self.stage["intake"] += time.monotonic() - t0
            state = self.recorded.get(student)
            if not self.force and is_recorded(state, sub.digest):
                self.done(StudentResult(student, state.score, state.max_score,
                                        flag_names(state.flags), "skipped"))
                continue
            self.maker.shared()  # the first time: what every job of the run shares
            t0 = time.monotonic()
            job = self.maker.job(sub)
            self.stage["intake"] += time.monotonic() - t0
            if GRADER_ERROR in sub.flag_names:  # the folder could not be read
                self.done(record(crashed(GradeResult, job, "precheck failed"), sub,
                                 **self.record_ctx))
                continue
            self.prechecked[student] = sub
            yield student, job

    def record_all(self, batch) -> None:
        """What finished together is recorded together (:func:`record_batch`)."""
        items = [(result, self.prechecked.pop(student)) for student, result in batch]
        for item in record_batch(items, **self.record_ctx):
            self.results[item.student] = item
            if self.on_result is not None:
                self.on_result(item)

    def done(self, result: StudentResult) -> None:
        """A student settled without a worker (skipped, or unreadable)."""
        self.results[result.student] = result
        if self.on_result is not None:
            self.on_result(result)
        self.bar.update(1)


def _require_sandbox() -> None:
    try:
        from autograder.sandbox import sandbox_available
    except ImportError as exc:
        raise UsageError(f"no sandbox: {exc}; {SANDBOX_HINT}") from None
    ok, reason = sandbox_available()
    if not ok:
        raise UsageError(f"no sandbox: {reason}; {SANDBOX_HINT}")
    from autograder.sandbox.uids import pool_missing_reason

    reason = pool_missing_reason()
    if reason is not None:  # never the shared uid nobody instead (docs/security.md)
        raise UsageError(f"no sandbox accounts: {reason}")


def _submitted_students(coursedir: CourseDirectory, assignment: str) -> dict[str, Path]:
    """student -> submission folder, for every student with a folder for ``assignment``.

    A symlink, as the student's folder or as the submission's, is listed too, under the
    link's name: the precheck refuses it with a flag (:func:`~autograder.pipeline.worker.
    precheck.folder_link_problem`), so it is recorded (0), never followed and never left out.
    """
    root = Path(coursedir.format_path(coursedir.submitted_directory, ".", "."))
    found = {}
    for entry in sorted(os.listdir(root)):
        if entry.startswith("."):
            continue
        problem = student_id_problem(entry)
        if problem is not None:  # a student id enters here: refused, in one line
            print(f"grade: skipped {root / entry!s:.200}: {problem}", file=sys.stderr)
            continue
        folder = Path(coursedir.format_path(coursedir.submitted_directory, entry, assignment))
        if folder.parent.is_symlink() or folder.is_symlink() or folder.is_dir():
            found[entry] = folder
    return found


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
