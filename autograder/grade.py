"""``python -m autograder grade ASSIGNMENT``: grade every submission of an assignment.

::

    python -m autograder grade ASSIGNMENT [--workers N] [--scheduler ADDR]
        [--course-dir DIR] [--student ID ...] [--force] [--unsafe-no-sandbox]

The coordinator (this process) prechecks every ``submitted/<student>/<assignment>/``
(:mod:`autograder.precheck`), hands one self-contained job per submission to
workers (:mod:`autograder.worker`) on a ``concurrent.futures`` executor (a
local process pool, or a ``dask.distributed`` cluster with ``--scheduler``),
and records each result as it arrives, as the gradebook's only writer
(:mod:`autograder.gradebook`).  Feedback HTML comes back with each result;
``grades.csv`` is exported at the end (:mod:`autograder.export`).

Re-running is idempotent: what is recorded is skipped (``--force`` regrades),
a resubmitted folder is graded again, an interrupted run resumes where it
stopped.  Every submitted student ends up recorded, with flags saying what
went wrong.  Exit status: 0 when the pipeline did its job (even if students
failed), 1 when a submission could not be graded (``grader_error``), 2 for
usage errors.

Flags (short snake_case strings, :data:`autograder.precheck.FLAGS`) say what
went wrong for a student; they are stored per submission in
``autograded/<student>/<assignment>/rnn_course_flags.json`` with one-line
reasons (:mod:`autograder.gradebook`), shown in the feedback's "Grader notes"
and in the ``flags`` column of ``grades.csv``.

Configuration, in ``nbgrader_config.py``: nbgrader's own sections apply as in
``nbgrader autograde`` (``c.Execute.timeout``, ``c.LimitOutput``,
``c.IgnorePattern``, ``c.OverwriteCells``, ``c.LateSubmissionPlugin``,
``c.Autograde.exclude_overwriting``, ``c.CourseDirectory.ignore``...), plus
``c.Precheck.*`` (size limits, :class:`~autograder.precheck.Precheck`) and the
sandbox's limits as ``c.Limits.<field>`` (any field of
``autograder.sandbox.Limits``) or ``c.SandboxedKernelManager.<limit>``.

Python API (used by ``autograder.demo`` and the tests)::

    report = grade_assignment(course_dir, "rnn_cell", workers=2)
    print(report.table())
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import itertools
import os
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from nbgrader.coursedir import CourseDirectory

from autograder.cli import UsageError
from autograder.course import Course
from autograder.gradebook import SIDECAR, CourseGradebook, read_sidecar
from autograder.precheck import Precheck, Submission

STAGES = ("precheck", "sandbox_start", "execute", "verify", "gradebook", "feedback")
SANDBOX_HINT = "install bubblewrap (make setup) or pass --unsafe-no-sandbox"
WATCHDOG_SECONDS = 5.0  # how often the coordinator looks for hung jobs


# --------------------------------------------------------------------------- #
# the report
# --------------------------------------------------------------------------- #
@dataclass
class StudentResult:
    """One student's outcome in a grading run."""

    student: str
    score: float
    max_score: float
    flags: list[str]
    status: str
    """"graded" (this run), "skipped" (already recorded) or "error" (grader_error)."""


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
    """Seconds summed over submissions per stage: precheck, sandbox_start, execute,
    verify, gradebook, feedback (plus sanitize and score, nbgrader's own steps)."""
    gradebook: str = ""
    workers: str = ""

    @property
    def errors(self) -> list[StudentResult]:
        return [r for r in self.results if r.status == "error"]

    def table(self) -> str:
        """A plain-text table: student, score/max, status and flags."""
        rows = [("student", "score", "status", "flags")]
        for r in sorted(self.results, key=lambda r: r.student):
            rows.append((r.student, f"{_num(r.score)}/{_num(r.max_score)}", r.status,
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

    def stages(self) -> str:
        """One line: seconds per stage, summed over the submissions graded."""
        parts = [f"{k} {v:.1f}s" for k, v in self.stage_seconds.items() if v > 0]
        return "time per stage (summed over submissions): " + (", ".join(parts) or "-")


def _num(x: float) -> str:
    return f"{x:g}" if x is not None else "?"


# --------------------------------------------------------------------------- #
# the API
# --------------------------------------------------------------------------- #
def _require_oracles() -> None:
    """Refuse to grade (rather than fail every gradient check) without the stored oracles."""
    from autograder import oracles

    absent = oracles.missing()
    if absent:
        raise UsageError(f"the visible checks' oracle values are missing ({', '.join(absent)}); "
                         "rebuild them with `python -m autograder release`")


def grade_assignment(course_dir, assignment, *, workers=None, scheduler=None, students=None,
                     force=False, unsafe_no_sandbox=False, progress=True) -> GradeReport:
    """Grade ``assignment``'s submissions in ``course_dir`` (see the module docstring).

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
    _require_oracles()

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
    recorded = book.recorded_submissions(assignment) if found else {}
    maker = _JobMaker(course, coursedir, book, assignment, unsafe_no_sandbox)
    record_ctx = dict(book=book, coursedir=coursedir, assignment=assignment, stage=stage,
                      maker=maker)
    prechecked: dict[str, Submission] = {}

    def jobs():
        from autograder.worker import GradeResult

        for student, folder in sorted(found.items()):
            t0 = time.monotonic()
            sub = checker.check(folder, student, assignment, structure)
            stage["precheck"] += time.monotonic() - t0
            dest = Path(coursedir.format_path(coursedir.autograded_directory, student,
                                              assignment))
            side = read_sidecar(dest)
            if (not force and side is not None and side.get("status") == "graded"
                    and side.get("digest") == sub.digest and student in recorded):
                score, max_score = book.current_score(assignment, student)
                results[student] = StudentResult(student, score, max_score,
                                                 list(side.get("flags", [])), "skipped")
                bar.update(1)
                continue
            job = maker.job(sub)
            if "grader_error" in sub.flag_names:  # the precheck itself failed
                results[student] = _record(_crashed(GradeResult, job, "precheck failed"),
                                           sub, **record_ctx)
                bar.update(1)
                continue
            prechecked[student] = sub
            yield student, job

    workers_text = "none needed"
    bar = _progress_bar(len(found), progress)
    jobs_by_student = {}

    def remembered(stream):
        for student, job in stream:
            jobs_by_student[student] = job
            yield student, job

    try:
        stream = remembered(jobs())
        first = next(stream, None)
        if first is not None:
            runner = _Runner(workers, scheduler, course.config)
            retry = []
            for student, result in runner.run(itertools.chain([first], stream), bar):
                if result.status == "error":
                    retry.append(student)  # maybe transient (a neighbour's fork bomb)
                    continue
                results[student] = _record(result, prechecked.pop(student), **record_ctx)
            workers_text = runner.description
            if retry:
                # once more, alone, after the batch: what failed again is recorded as is
                again = _Runner(1, scheduler, course.config)
                for student, result in again.run(
                        ((s, jobs_by_student[s]) for s in retry), _NoBar()):
                    results[student] = _record(result, prechecked.pop(student), **record_ctx)
    finally:
        bar.close()

    from autograder.export import export_grades

    export_grades(course.db_url, course.course_id, csv_path, autograded_root, course.config)
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


class _NoBar:
    """A progress bar that shows nothing (retries were already counted once)."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, *args, **kwargs):
        pass


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


def submission_secret(course_secret: bytes, assignment: str, student: str) -> bytes:
    """Seed material for one submission's hidden inputs, derived from the course secret.

    Workers (possibly on other hosts) get this, never the course secret:
    knowing it reveals nothing about another student's inputs.
    """
    msg = f"rnn-course submission\x1f{assignment}\x1f{student}".encode()
    return hmac.new(course_secret, msg, hashlib.sha256).digest()


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


KERNEL_LIMITS = ("memory_bytes", "cpu_seconds", "max_processes", "file_bytes", "open_files",
                 "tmp_bytes")


def _limits_and_timeout(course: Course):
    """The sandbox's ``Limits`` and the cell timeout, from ``nbgrader_config.py``.

    ``c.SandboxedKernelManager.<limit>`` (the sandbox's own traits) and
    ``c.Limits.<field>`` (any field of ``autograder.sandbox.Limits``, the
    latter wins) set the limits; the cell timeout is ``c.Limits.cell_timeout``
    if given, else nbgrader's ``c.Execute.timeout`` / ``c.ExecutePreprocessor.timeout``.
    """
    try:
        from autograder.sandbox import Limits
    except ImportError:
        return None, None
    values = {k: v for k, v in course.config.get("SandboxedKernelManager", {}).items()
              if k in KERNEL_LIMITS}
    values.update(course.config.get("Limits", {}))
    try:
        limits = Limits(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad sandbox limits in nbgrader_config.py: {exc}") from None
    if "cell_timeout" in values:
        return limits, None
    for name in ("Execute", "ExecutePreprocessor"):
        if "timeout" in course.config.get(name, {}):
            return limits, int(course.config[name]["timeout"])
    return limits, None


class _JobMaker:
    """Builds one :class:`~autograder.worker.GradeJob` per submission.

    What every job shares (the structure snapshot, source files, limits) is
    read once, on the first job.
    """

    def __init__(self, course, coursedir, book, assignment, unsafe):
        self.course, self.coursedir, self.book = course, coursedir, book
        self.assignment, self.unsafe = assignment, unsafe
        self._shared = None

    @property
    def source_files(self) -> dict[str, bytes]:
        return self.shared()["source_files"]

    def shared(self) -> dict:
        if self._shared is None:
            from autograder.verify import course_secret

            limits, timeout = _limits_and_timeout(self.course)
            self._shared = dict(
                structure_db=self.book.snapshot(self.assignment),
                secret=course_secret(self.course.root),
                source_files=_source_files(self.course, self.coursedir, self.assignment),
                extensions=self.book.extensions(self.assignment),
                limits=limits, timeout=timeout,
            )
        return self._shared

    def job(self, sub: Submission):
        from autograder.worker import GradeJob

        shared = self.shared()
        return GradeJob(
            student=sub.student, assignment=self.assignment, course_id=self.course.course_id,
            notebooks=sub.notebooks, files=sub.files, source_files=shared["source_files"],
            structure_db=shared["structure_db"],
            seed_secret=submission_secret(shared["secret"], self.assignment, sub.student),
            config=self.course.config, flags=list(sub.flags), timestamp=sub.timestamp,
            extension_seconds=shared["extensions"].get(sub.student), sandbox=not self.unsafe,
            limits=shared["limits"], timeout=shared["timeout"],
        )


def _record(result, sub, *, book, coursedir, assignment, stage, maker) -> StudentResult:
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


# --------------------------------------------------------------------------- #
# running jobs on an executor
# --------------------------------------------------------------------------- #
class _Runner:
    """Runs jobs on a local process pool or a dask cluster and yields results as they finish.

    At most ``capacity`` jobs are in flight, so that an interrupted run loses
    only those.  A local worker process that dies (``BrokenProcessPool``) takes
    every job in flight with it: each of them is retried alone, in a fresh
    pool, so that only the job that kills its worker ends with ``grader_error``.
    """

    def __init__(self, workers, scheduler, config):
        self.workers = workers
        self.scheduler = scheduler
        self.config = config
        self.client = None
        self.executor = None
        self.capacity = 1
        self.description = ""
        self._warm = False

    def _start(self):
        if self.scheduler:
            try:
                from distributed import Client

                self.client = Client(self.scheduler, timeout="20s")
            except Exception as exc:
                raise UsageError(f"cannot connect to the dask scheduler {self.scheduler}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else exc}") from None
            self.executor = self.client.get_executor(pure=False)
            threads = sum(self.client.nthreads().values()) or 1
            self.capacity = self.workers or 2 * threads
            self.description = f"dask cluster {self.scheduler} ({threads} thread(s))"
        else:
            self._new_pool()
            self.description = f"{self.capacity - 1} local worker process(es)"

    def _new_pool(self):
        import multiprocessing

        from autograder import worker

        n = self.workers or len(os.sched_getaffinity(0)) or 1
        # one job queued beyond the workers: a worker never waits while the
        # coordinator records a result
        self.capacity = n + 1
        # fork: workers start with everything imported and the feedback
        # exporter built (warm_up), so no job pays for imports or templates
        if not self._warm:
            worker.warm_up(self.config)
            self._warm = True
        self.executor = ProcessPoolExecutor(max_workers=n,
                                            mp_context=multiprocessing.get_context("fork"))

    def close(self, wait: bool = False):
        """Stop the executor: after a complete run, wait for the workers to exit."""
        if self.client is not None:
            self.executor.shutdown(wait=wait)  # without waiting, dask cancels what is left
            self.client.close()
            self.client = None
        elif self.executor is not None:
            self.executor.shutdown(wait=wait, cancel_futures=not wait)
        self.executor = None

    def run(self, jobs, bar):
        """Yield ``(student, GradeResult)`` for every ``(student, job)`` of the iterable ``jobs``.

        Results come in completion order; ``jobs`` is pulled only when a
        worker has room.  ``bar`` (tqdm) advances once per result.  A job
        still running after :func:`_deadline` seconds (the sandbox's own wall
        clock failed) counts as a dead worker: a local pool is killed and its
        jobs retried as above; on dask the job ends with ``grader_error``.
        """
        from autograder.worker import GradeResult, grade_submission

        pending = iter(jobs)
        exhausted = False
        suspects: deque = deque()
        in_flight: dict = {}  # future -> (student, job, alone, deadline)

        def submit(student, job, alone):
            fut = self.executor.submit(grade_submission, job)
            in_flight[fut] = (student, job, alone, time.monotonic() + _deadline(job))

        self._start()
        try:
            while not exhausted or suspects or in_flight:
                if suspects:  # a suspect runs alone, once the others are done
                    if not in_flight:
                        submit(*suspects.popleft(), True)
                else:
                    while not exhausted and len(in_flight) < self.capacity:
                        item = next(pending, None)
                        if item is None:
                            exhausted = True
                            break
                        submit(*item, False)
                if not in_flight:
                    continue
                done, _ = wait(list(in_flight), timeout=WATCHDOG_SECONDS,
                               return_when=FIRST_COMPLETED)
                broken = False
                for fut in done:
                    student, job, alone, _ = in_flight.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        if not alone:
                            suspects.append((student, job))
                            continue
                        result = _crashed(GradeResult, job, "the worker process died")
                    except Exception as exc:  # dask KilledWorker, pickling errors...
                        result = _crashed(GradeResult, job,
                                          f"{type(exc).__name__}: {str(exc)[:200]}")
                    yield self._done(bar, student, result)
                now = time.monotonic()
                overdue = [f for f, entry in in_flight.items() if entry[3] < now]
                if overdue and self.scheduler:
                    for fut in overdue:
                        fut.cancel()
                        student, job, _, _ = in_flight.pop(fut)
                        yield self._done(bar, student, _crashed(
                            GradeResult, job, "the worker did not finish in time"))
                elif overdue and not broken:
                    self._kill_pool()  # its futures now fail with BrokenProcessPool
                if broken and not self.scheduler:
                    for student, job, _alone, _ in in_flight.values():
                        suspects.append((student, job))  # they die with the pool too
                    in_flight.clear()
                    self.executor.shutdown(wait=False, cancel_futures=True)
                    self._new_pool()
            self.close(wait=True)
        finally:
            self.close()

    @staticmethod
    def _done(bar, student, result):
        bar.set_postfix_str(student, refresh=False)
        bar.update(1)
        return student, result

    def _kill_pool(self) -> None:
        for proc in list(getattr(self.executor, "_processes", {}).values()):
            try:
                proc.kill()
            except Exception:  # already gone
                pass


def _deadline(job) -> float:
    """Seconds after which a job is presumed hung: twice the sandbox's wall clock, and more."""
    wall = getattr(job.limits, "wall_seconds", 900) if job.limits is not None else 900
    notebooks = max(1, sum(nb is not None for nb in job.notebooks.values()))
    return 2 * wall * notebooks + 120


def _crashed(cls, job, reason: str):
    result = cls(student=job.student, assignment=job.assignment, status="error",
                 flags=list(job.flags))
    result.flag("grader_error", reason)
    return result


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    # no monitor thread: worker processes are forked from this one
    tqdm.monitor_interval = 0
    return tqdm(total=total, desc="grading", unit="submission", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True, leave=False)


# --------------------------------------------------------------------------- #
# the command line
# --------------------------------------------------------------------------- #
def add_arguments(parser) -> None:
    parser.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment to grade")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="grade on this dask.distributed cluster (e.g. tcp://host:8786)")
    parser.add_argument("--course-dir", default=".", help="the nbgrader course directory")
    parser.add_argument("--student", nargs="+", action="extend", default=None, metavar="ID",
                        help="grade only these students")
    parser.add_argument("--force", action="store_true",
                        help="regrade submissions that are already recorded")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run student code without the sandbox (trusted code only!)")


def run(args) -> int:
    report = grade_assignment(
        args.course_dir, args.assignment, workers=args.workers, scheduler=args.scheduler,
        students=args.student, force=args.force, unsafe_no_sandbox=args.unsafe_no_sandbox,
        progress=True,
    )
    if args.unsafe_no_sandbox:
        print("warning: student code ran WITHOUT the sandbox (--unsafe-no-sandbox)",
              file=sys.stderr)
    print(report.table())
    print(report.stages())
    print(f"workers:    {report.workers}")
    print(f"gradebook:  {report.gradebook}")
    print(f"autograded: {report.autograded_dir}")
    print(f"feedback:   {report.feedback_dir}")
    print(f"grades:     {report.csv_path}")
    if report.errors:
        print(f"error: {len(report.errors)} submission(s) could not be graded (grader_error): "
              f"{', '.join(r.student for r in report.errors)}; run again to retry them",
              file=sys.stderr)
        return 1
    return 0
