"""The dask scheduler gone: the runner records what finished and nothing else, the grading
service keeps the rest in its queue, without counting an attempt, in one line of its log.

Fast stand-ins for the real thing (``test_dask_cluster`` kills a real scheduler): an executor
whose futures dask's client would cancel, and round processes that exit as a round does.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from autograder.errors import SchedulerUnavailable
from autograder.pipeline.coordinator.runner import Runner
from autograder.pipeline.types import GradeResult
from autograder.service import app
from autograder.service import journal as J
from autograder.service.rounds import Options


@dataclass
class Job:
    student: str
    limits: object = None
    structure: object = field(default_factory=lambda: SimpleNamespace(notebooks=["nb"]))
    warm_next: bool = False


class LosingExecutor:
    """Finishes the first job; the client then loses the scheduler and cancels the others."""

    def __init__(self):
        self.futures = []

    def submit(self, fn, job):
        fut = Future()
        if not self.futures:
            fut.set_result(GradeResult(student=job.student, assignment="a"))
        else:  # what dask's ClientExecutor does to a future whose client lost the scheduler
            fut.cancel()
            fut.set_running_or_notify_cancel()
        self.futures.append(fut)
        return fut

    def shutdown(self, wait=False):
        pass


class Client:
    status = "running"

    def close(self):
        pass


def _runner(executor) -> Runner:
    runner = Runner(None, "tcp://127.0.0.1:1", None)

    def start():
        runner.client, runner.executor, runner.capacity = Client(), executor, 3

    runner._start = start
    return runner


def test_the_runner_yields_what_finished_then_says_the_scheduler_is_gone():
    bar = SimpleNamespace(set_postfix_str=lambda *a, **k: None, update=lambda n: None)
    jobs = [(s, Job(s)) for s in ("ann", "ben", "cat")]
    batches = []
    with pytest.raises(SchedulerUnavailable, match=r"lost the dask scheduler tcp://127\.0\.0\.1"
                                                   r":1 mid-run: 2 submission\(s\) in flight"):
        for batch in _runner(LosingExecutor()).run_batches(iter(jobs), bar):
            batches.append([(s, r.status) for s, r in batch])
    assert batches == [[("ann", "graded")]]  # ben and cat: neither graded nor an error


def test_no_job_goes_to_a_client_that_lost_its_scheduler():
    runner = _runner(LosingExecutor())
    bar = SimpleNamespace(set_postfix_str=lambda *a, **k: None, update=lambda n: None)
    Client.status = "connecting"
    try:
        with pytest.raises(SchedulerUnavailable, match="1 submission"):
            list(runner.run_batches(iter([("ann", Job("ann"))]), bar))
    finally:
        Client.status = "running"
    assert runner.executor is None


class Round:
    """A finished round's process."""

    def __init__(self, exitcode):
        self.exitcode = exitcode

    def join(self):
        pass


def test_the_service_keeps_the_queue_and_says_it_once(course, caplog):
    opts = Options(course_dir=str(course), scheduler="tcp://127.0.0.1:1")
    service = app.Service(opts)
    ids = [service.journal.add(s, "rnn_cell", f"2026-01-10 12:00:0{i}.000000 UTC", f"e{i}",
                               J.utcnow(), state=J.COLLECTED) for i, s in enumerate("abc")]

    def finish(code, graded=ids):
        service.round = (Round(code), "rnn_cell", list(graded), time.time(), True)
        service.finish_round()

    caplog.set_level(logging.INFO, logger="autograder.serve")
    for _ in range(3):  # three rounds in a row find no scheduler
        finish(app.SCHEDULER_EXIT)
        assert service.next_round() is not None  # the work is there...
        assert service._rounds_after > time.monotonic()  # ...and waits SCHEDULER_RETRY s
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["scheduler  the dask scheduler tcp://127.0.0.1:1 is unreachable or went "
                     f"away: 3 submission(s) stay in the queue; trying again every "
                     f"{app.SCHEDULER_RETRY:g} s"]
    rows = service.journal.rows(ids=ids)
    assert [(r.state, r.attempts) for r in rows] == [(J.COLLECTED, 0)] * 3
    assert service.crashed_rounds == 0

    finish(0)  # a round that reached the scheduler; the next loss is said again
    finish(app.SCHEDULER_EXIT)
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 2
    finish(1)  # a round that crashed otherwise still counts an attempt
    assert [r.attempts for r in service.journal.rows(ids=ids)] == [1] * 3
    service.journal.close()


def test_on_dask_the_service_needs_no_sandbox_of_its_own(course, monkeypatch):
    """The kernels run in the workers' sandboxes: a coordinator without bubblewrap (a hub's
    pod) may grade on dask, never locally."""
    import autograder.sandbox as sandbox
    from autograder.errors import UsageError

    monkeypatch.setattr(sandbox, "sandbox_available", lambda: (False, "no bwrap here"))
    local = app.Service(Options(course_dir=str(course)))
    with pytest.raises(UsageError, match="no sandbox: no bwrap here"):
        local.check()
    on_dask = app.Service(Options(course_dir=str(course), scheduler="tcp://127.0.0.1:1"))
    with pytest.raises(UsageError) as refused:  # it gets further: to the exchange's folder
        on_dask.check()
    assert str(refused.value).startswith("no inbound folder"), refused.value
