"""Running grading jobs on an executor: a local process pool or a dask cluster.

Results come back as they finish; a hung or dead worker is detected by a
watchdog and its jobs are retried alone, so that only the job that kills its
worker ends with ``grader_error``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from autograder.errors import SchedulerUnavailable
from autograder.pipeline.flags import GRADER_ERROR
from autograder.pipeline.types import GradeResult

WATCHDOG_SECONDS = 5.0  # how often the coordinator looks for hung jobs
# what a job stream yields for "nothing now, ask again" (the grading service's
# rounds stay open for submissions that arrive while they run)
WAIT = object()
WAIT_SECONDS = 0.5


class Runner:
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
                raise SchedulerUnavailable(
                    f"cannot connect to the dask scheduler {self.scheduler}: "
                    f"{str(exc).splitlines()[0] if str(exc) else exc}") from None
            self.executor = self.client.get_executor(pure=False)
            self._warm_dask_workers()
            threads = sum(self.client.nthreads().values()) or 1
            self.capacity = self.workers or 2 * threads
            self.description = f"dask cluster {self.scheduler} ({threads} thread(s))"
        else:
            self._new_pool()
            self.description = f"{self.capacity - 1} local worker process(es)"

    def _warm_dask_workers(self):
        """``worker.warm_up`` on every dask worker, as a local pool's workers have it by fork."""
        from autograder.pipeline.worker import submission as worker

        try:
            self.client.run(worker.warm_up, self.config)
        except Exception:  # pickling, a worker gone: it imports on its first job instead
            pass

    def _new_pool(self):
        import multiprocessing

        from autograder.pipeline.worker import submission as worker

        n = self.workers or default_workers()
        # one job queued beyond the workers: a worker never waits while the
        # coordinator records a result
        self.capacity = n + 1
        # fork: workers start with everything imported and the feedback
        # exporter built (warm_up), so no job pays for imports or templates
        if not self._warm:
            worker.warm_up(self.config)
            self._warm = True
        self.executor = ProcessPoolExecutor(max_workers=n,
                                            mp_context=multiprocessing.get_context("fork"),
                                            initializer=_worker_start,
                                            initargs=(os.getpid(),))

    def close(self, wait: bool = False):
        """Stop the executor: after a complete run, wait for the workers to exit."""
        if self.client is not None:
            self.executor.shutdown(wait=wait)  # without waiting, dask cancels what is left
            quiet = logging.getLogger("distributed.client")
            level = quiet.level
            if self.client.status != "running":  # its reconnection loop, cancelled by close,
                quiet.setLevel(logging.CRITICAL)  # logs a traceback: SchedulerUnavailable says it
            try:
                self.client.close()
            finally:
                quiet.setLevel(level)
            self.client = None
        elif self.executor is not None:
            self.executor.shutdown(wait=wait, cancel_futures=not wait)
        self.executor = None

    def run_batches(self, jobs, bar, total=None):
        """Yield lists of ``(student, GradeResult)`` for the ``(student, job)`` pairs of ``jobs``.

        Each list holds every result finished when the coordinator looks (so the
        coordinator can record them together when results come faster than it
        records them, and never waits for a result that is not there).

        Results come in completion order; ``jobs`` is pulled only when a
        worker has room, and may yield :data:`WAIT` for "nothing yet": it is
        asked again after the next result, or :data:`WAIT_SECONDS` later.
        ``bar`` (tqdm) advances once per result.  ``total``: how many jobs
        ``jobs`` holds at most (None: unknown, more may come): a local worker
        starts its next job's kernel ahead (``GradeJob.warm_next``) unless the
        jobs left are fewer than the workers.  A job whose result is a grader error, or
        whose worker died, is run once more, alone, once the jobs in flight are done (the
        one retry of a run); what fails alone is final.  A job still running after
        :func:`_deadline` seconds (the sandbox's own wall clock failed) counts
        as a dead worker: a local pool is killed and its jobs retried as
        above; on dask the job ends with ``grader_error``.

        On dask, a worker that dies mid-job is the scheduler's business: it runs the
        job again on another worker, and its one result comes back here.  The
        scheduler itself going away cancels every job in flight (dask's client
        does): what finished is yielded, then :class:`SchedulerUnavailable` is
        raised, and the jobs in flight are neither recorded nor counted as errors.
        """
        from autograder.pipeline.worker.submission import grade_submission

        pending = iter(jobs)
        exhausted = False
        suspects: deque = deque()
        in_flight: dict = {}  # future -> (student, job, alone, deadline)

        submitted = 0

        def submit(student, job, alone):
            nonlocal submitted
            if self.client is not None and self.client.status != "running":
                raise SchedulerUnavailable(f"lost the dask scheduler {self.scheduler}: "
                                           f"{len(in_flight) + 1} submission(s) not graded")
            submitted += 1
            warm_next = self._warm_next(submitted, total) and not alone
            fut = self.executor.submit(grade_submission,
                                       dataclasses.replace(job, warm_next=warm_next))
            in_flight[fut] = (student, job, alone, time.monotonic() + _deadline(job))

        self._start()
        try:
            while not exhausted or suspects or in_flight:
                waiting = False
                if suspects:  # a suspect runs alone, once the others are done
                    if not in_flight:
                        submit(*suspects.popleft(), True)
                else:
                    while not exhausted and len(in_flight) < self.capacity:
                        item = next(pending, None)
                        if item is None:
                            exhausted = True
                            break
                        if item is WAIT:
                            waiting = True
                            break
                        submit(*item, False)
                if not in_flight:
                    if not suspects and not exhausted:
                        time.sleep(WAIT_SECONDS)
                    continue
                done, _ = wait(list(in_flight),
                               timeout=WAIT_SECONDS if waiting else WATCHDOG_SECONDS,
                               return_when=FIRST_COMPLETED)
                broken = False
                batch = []
                lost = 0
                for fut in done:
                    if self.scheduler and fut.cancelled():  # only dask's client cancels:
                        lost += 1                           # it lost the scheduler
                        continue
                    student, job, alone, _ = in_flight.pop(fut)
                    try:
                        result = fut.result()
                        if result.status == "error" and not alone:
                            # maybe transient (a neighbour's fork bomb): once more, alone
                            suspects.append((student, job))
                            continue
                    except BrokenProcessPool:
                        broken = True
                        if not alone:
                            suspects.append((student, job))
                            continue
                        result = crashed(GradeResult, job, "the worker process died")
                    except Exception as exc:  # dask KilledWorker, pickling errors...
                        result = crashed(GradeResult, job,
                                          f"{type(exc).__name__}: {str(exc)[:200]}")
                    batch.append(self._done(bar, student, result))
                now = time.monotonic()
                overdue = [f for f, entry in in_flight.items() if entry[3] < now]
                if overdue and self.scheduler:
                    for fut in overdue:
                        fut.cancel()
                        student, job, _, _ = in_flight.pop(fut)
                        batch.append(self._done(bar, student, crashed(
                            GradeResult, job, "the worker did not finish in time")))
                elif overdue and not broken:
                    self._kill_pool()  # its futures now fail with BrokenProcessPool
                if broken and not self.scheduler:
                    for student, job, _alone, _ in in_flight.values():
                        suspects.append((student, job))  # they die with the pool too
                    in_flight.clear()
                    self.executor.shutdown(wait=False, cancel_futures=True)
                    self._new_pool()
                if batch:
                    yield batch
                if lost:
                    raise SchedulerUnavailable(
                        f"lost the dask scheduler {self.scheduler} mid-run: {len(in_flight)} "
                        "submission(s) in flight not graded (what finished is recorded)")
            self.close(wait=True)
        finally:
            self.close()

    def _warm_next(self, submitted: int, total: int | None) -> bool:
        """Whether the ``submitted``-th job's worker should start a kernel for a next job.

        Local workers only: a dask worker's threads may sit idle for long after a
        run, and their kernels with them.  Not when fewer jobs are left than
        workers: those workers get no next job.
        """
        if self.scheduler:
            return False
        return total is None or submitted + (self.capacity - 1) <= total

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


def default_workers() -> int:
    """Local workers when ``--workers`` is not given: one and a half per core.

    A worker leaves its core idle about a quarter of the time (kernel start-up
    and shutdown, message round trips); on the project's 2-core machine, 12
    ``rnn_cell`` submissions left 7.4 core-seconds idle with 2 workers and 3.9
    with 3, and were graded fastest with 3 (4 was slower again).
    """
    return max(1, len(os.sched_getaffinity(0)) * 3 // 2)


WORKER_NICENESS = 19
"""How much lower a local worker's (and so its kernels') CPU priority is than the
coordinator's: the lowest there is.  The coordinator's work is the run's serial part
(and it hands out the next jobs): when the cores are busy, it should not wait for one
behind the workers (Amdahl).  On the project's 2-core machine (12 ``rnn_cell``
submissions, 3 workers, three alternating pairs) 19 rather than 10 took the
coordinator's recording from 0.039-0.049 to 0.034-0.039 s per submission and the
run from 12.5-12.8 to 11.8-12.2 s.  Beside a hub's users, grading also yields to
their interactive kernels."""


def die_with_parent() -> None:
    """This process gets SIGKILL when its parent dies (Linux; elsewhere nothing happens)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux
        pass


def _worker_start(coordinator: int) -> None:
    """Pool initializer: the worker ends with its coordinator, at a lower priority.

    A coordinator that dies (an OOM kill, a crashed service round) would leave its
    workers waiting for jobs forever, each with the kernel it started ahead and that
    kernel's uid lease; killed with it, a worker takes its sandboxes along
    (``--die-with-parent``).  Its priority is :data:`WORKER_NICENESS` lower.
    """
    die_with_parent()
    if os.getppid() != coordinator:  # it died before the line above
        os._exit(1)
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed here: the worker runs at the coordinator's priority
        pass


def _deadline(job) -> float:
    """Seconds after which a job is presumed hung: twice the sandbox's wall clock, and more."""
    wall = getattr(job.limits, "wall_seconds", 900) if job.limits is not None else 900
    notebooks = max(1, len(job.structure.notebooks))
    return 2 * wall * notebooks + 120


def crashed(cls, job, reason: str):
    result = cls(student=job.student, assignment=job.assignment, status="error",
                 flags=list(job.submission.flags))
    result.flag(GRADER_ERROR, reason)
    return result


def progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    # no monitor thread: worker processes are forked from this one
    tqdm.monitor_interval = 0
    return tqdm(total=total, desc="grading", unit="submission", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True, leave=False)
