"""The coordinator of a grading run: ``grade_assignment`` (``python -m autograder grade``).

::

    python -m autograder grade ASSIGNMENT [--workers N] [--scheduler ADDR]
        [--course-dir DIR] [--student ID ...] [--force] [--unsafe-no-sandbox]

The coordinator (this process) reads and hashes every
``submitted/<student>/<assignment>/`` (:meth:`~autograder.pipeline.worker.precheck.Precheck.gather`)
and hands one self-contained job per submission to workers
(:mod:`autograder.pipeline.worker.submission`, which finish the precheck) on a
``concurrent.futures`` executor (a local process pool, or a ``dask.distributed``
cluster with ``--scheduler``); it records the results as they arrive, as the
gradebook's only writer, several at once when several are waiting
(:mod:`autograder.pipeline.coordinator.record`).  Feedback HTML comes back with each result;
``grades.csv`` is exported at the end (:mod:`autograder.pipeline.coordinator.export`).

Re-running is idempotent: what is recorded is skipped (``--force`` regrades),
a resubmitted folder is graded again, an interrupted run resumes where it
stopped.  Every submitted student ends up recorded, with flags saying what
went wrong.  Exit status: 0 when the pipeline did its job (even if students
failed), 1 when a submission could not be graded (``grader_error``) or its
files could not be written (``files_not_written``), 2 for usage errors.

Workers score (:mod:`autograder.pipeline.scoring`) and render; the coordinator
records each result, gradebook first, then files (:mod:`autograder.pipeline.coordinator.record`).
Flags (:mod:`autograder.pipeline.flags`, one vocabulary) say what went wrong
for a student; they are stored with one-line reasons in the gradebook's
database (:mod:`autograder.pipeline.coordinator.gradebook`), shown in the feedback's
"Grader notes" and in the ``flags`` column of ``grades.csv``.  What the
gradebook holds also decides what a rerun skips: a submission graded with the
same digest and whose files were written.

Configuration, in ``nbgrader_config.py``: nbgrader's own sections apply as in
``nbgrader autograde`` (``c.Execute.timeout``, ``c.LimitOutput``,
``c.IgnorePattern``, ``c.OverwriteCells``, ``c.LateSubmissionPlugin``,
``c.Autograde.exclude_overwriting``, ``c.CourseDirectory.ignore``...), plus
``c.Precheck.*`` (size limits, :class:`~autograder.pipeline.worker.precheck.Precheck`) and the
sandbox's limits as ``c.Limits.<field>`` (any field of
``autograder.sandbox.Limits``) or ``c.SandboxedKernelManager.<limit>``.

Python API (used by ``autograder.commands.demo`` and the tests)::

    report = grade_assignment(course_dir, "rnn_cell", workers=2)
    print(report.table())
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from nbgrader.coursedir import CourseDirectory

from autograder.course import Course
from autograder.errors import UsageError
from autograder.pipeline.coordinator.gradebook import CourseGradebook
from autograder.pipeline.coordinator.jobs import JobMaker
from autograder.pipeline.coordinator.record import is_recorded, record, record_batch
from autograder.pipeline.coordinator.report import GradeReport, StudentResult
from autograder.pipeline.coordinator.runner import WAIT, NoBar, Runner, crashed, progress_bar
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
    if not unsafe_no_sandbox:
        _require_sandbox()
        if scheduler is None:
            # the local workers' warm-up waits for this (a sandboxed interpreter builds
            # matplotlib's font list): started now, it runs while the run is set up
            from autograder.sandbox import prebuild_font_list

            threading.Thread(target=prebuild_font_list, args=(course.config,),
                             daemon=True).start()
    _require_oracles(course.assignments)

    coursedir = CourseDirectory(config=course.config)
    coursedir.root = str(course.root)
    submitted_root = Path(coursedir.format_path(coursedir.submitted_directory, ".", "."))
    if not submitted_root.is_dir():
        raise UsageError(f"no submissions folder: {submitted_root} does not exist")
    found = _submitted_students(coursedir, assignment)
    if students:
        wanted = list(dict.fromkeys(students))
        missing = [s for s in wanted if s not in found]
        if missing:
            raise UsageError(f"no submission of {assignment} for student(s) "
                             f"{', '.join(missing)} in {submitted_root}")
        found = {s: found[s] for s in wanted}

    book = CourseGradebook(course.db_url, course.course_id, course.config)
    structure = book.structure(assignment)
    autograded_root = Path(coursedir.format_path(coursedir.autograded_directory, ".", "."))
    feedback_root = Path(coursedir.format_path(coursedir.feedback_directory, ".", "."))
    csv_path = course.root / "grades.csv"
    stage = dict.fromkeys(STAGES, 0.0)
    results: dict[str, StudentResult] = {}

    # Precheck and job building are lazy: the runner pulls the next job when a
    # worker has room, so prechecking overlaps with grading.
    checker = Precheck(config=course.config)
    if "ignore" in course.config.get("CourseDirectory", {}):
        checker.ignore = list(coursedir.ignore)
    recorded = book.recorded(assignment) if found or follow is not None else {}
    maker = JobMaker(course, coursedir, book, assignment, unsafe_no_sandbox, structure)
    record_ctx = dict(book=book, coursedir=coursedir, assignment=assignment, stage=stage,
                      maker=maker)
    prechecked: dict[str, Submission] = {}

    def done(result: StudentResult) -> StudentResult:
        if on_result is not None:
            on_result(result)
        return result

    def jobs():
        yield from submissions(sorted(found.items()))
        while follow is not None:  # the grading service: more may arrive while this runs
            more = follow()
            if more is None:
                return
            if not more:
                yield WAIT
                continue
            recorded.update(book.recorded(assignment, more))
            folders = {s: Path(coursedir.format_path(coursedir.submitted_directory, s,
                                                     assignment)) for s in more}
            found.update(folders)
            yield from submissions(folders.items())

    def submissions(items):
        for student, folder in items:
            t0 = time.monotonic()
            # reading and hashing only: the worker finishes the precheck (Precheck.finish)
            sub = checker.gather(folder, student, assignment, structure.cell_ids)
            stage["intake"] += time.monotonic() - t0
            state = recorded.get(student)
            if not force and is_recorded(state, sub.digest):
                results[student] = done(StudentResult(student, state.score, state.max_score,
                                                      flag_names(state.flags), "skipped"))
                bar.update(1)
                continue
            maker.shared()  # the first time: what every job of the run shares (a fixed cost)
            t0 = time.monotonic()
            job = maker.job(sub)
            stage["intake"] += time.monotonic() - t0
            if GRADER_ERROR in sub.flag_names:  # the folder could not be read
                results[student] = done(record(crashed(GradeResult, job, "precheck failed"),
                                                sub, **record_ctx))
                bar.update(1)
                continue
            prechecked[student] = sub
            yield student, job

    workers_text = "none needed"
    bar = progress_bar(len(found), progress)
    jobs_by_student = {}

    def remembered(stream):
        for item in stream:
            if item is not WAIT:
                jobs_by_student[item[0]] = item[1]
            yield item

    try:
        stream = remembered(jobs())
        first = next(stream, None)
        if first is not None:
            runner = Runner(workers, scheduler, course.config)
            retry = []

            def record_all(batch):
                # what finished together is recorded together (record_batch)
                items = [(result, prechecked.pop(student)) for student, result in batch]
                for item in record_batch(items, **record_ctx):
                    results[item.student] = done(item)

            # with `follow`, more may come: the workers keep a kernel started for them
            total = None if follow is not None else len(found)
            for batch in runner.run_batches(itertools.chain([first], stream), bar, total):
                # an error may be transient (a neighbour's fork bomb): retried after the run
                retry += [student for student, result in batch if result.status == "error"]
                record_all([(s, r) for s, r in batch if r.status != "error"])
            workers_text = runner.description
            if retry:
                # once more, alone, after the batch: what failed again is recorded as is
                again = Runner(1, scheduler, course.config)
                for batch in again.run_batches(
                        ((s, jobs_by_student[s]) for s in retry), NoBar(), len(retry)):
                    record_all(batch)
    finally:
        bar.close()
        book.close()

    from autograder.pipeline.coordinator.export import export_grades

    export_grades(course.db_url, course.course_id, csv_path, course.config)
    return GradeReport(
        assignment=assignment,
        results=[results[s] for s in sorted(results)],
        csv_path=csv_path,
        feedback_dir=feedback_root,
        autograded_dir=autograded_root,
        seconds=time.monotonic() - started,
        stage_seconds=stage,
        gradebook=_safe_url(course.db_url),
        workers=workers_text,
    )


def _require_sandbox() -> None:
    try:
        from autograder.sandbox import sandbox_available
    except ImportError as exc:
        raise UsageError(f"no sandbox: {exc}; {SANDBOX_HINT}") from None
    ok, reason = sandbox_available()
    if not ok:
        raise UsageError(f"no sandbox: {reason}; {SANDBOX_HINT}")


def _submitted_students(coursedir: CourseDirectory, assignment: str) -> dict[str, Path]:
    """student -> submission folder, for every student with a folder for ``assignment``."""
    root = Path(coursedir.format_path(coursedir.submitted_directory, ".", "."))
    found = {}
    for entry in sorted(os.listdir(root)):
        if entry.startswith("."):
            continue
        folder = Path(coursedir.format_path(coursedir.submitted_directory, entry, assignment))
        if folder.is_dir() and not folder.is_symlink():
            found[entry] = folder
    return found


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
