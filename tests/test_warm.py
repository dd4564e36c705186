"""Kernels started ahead of need (``autograder.pipeline.worker.warm``) and the jobs that use them.

The unit tests use a stand-in kernel manager; the end-to-end ones grade real
sandboxed submissions one after the other in this process, as a pool worker does.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import nbfixtures as fx
import pytest
from traitlets.config import Config

from autograder.pipeline.coordinator.runner import Runner
from autograder.pipeline.worker import warm
from autograder.pipeline.worker.submission import grade_submission

A = fx.ASSIGNMENT


class FakeKernel:
    """Stands in for a SandboxedKernelManager: alive until discarded (or killed)."""

    def __init__(self):
        self.exit_status = None
        self.relay_status = None
        self.discarded = 0


@pytest.fixture
def fake(monkeypatch):
    """Kernels made by ``start`` are FakeKernels; discarding one counts."""
    from autograder.sandbox import execute

    def discard(km):
        km.discarded += 1
        km.exit_status = -9

    monkeypatch.setattr(execute, "discard_kernel", discard)
    yield
    warm.close()


def _start(made):
    def start(scratch: Path):
        assert scratch.is_dir() and list(scratch.iterdir()) == []  # an empty folder of its own
        made.append(FakeKernel())
        return made[-1]
    return start


def test_a_waiting_kernel_is_handed_out_once_and_only_for_its_key(fake):
    made = []
    warm.prestart("k1", _start(made))
    assert warm.waiting() == 1
    got = warm.take("k1")
    assert got is not None and got.km is made[0] and got.scratch.is_dir()
    assert warm.take("k1") is None, "a kernel serves exactly one submission"
    got.discard()
    assert not got.folder.exists() and made[0].discarded == 1

    warm.prestart("k1", _start(made))
    assert warm.take("other limits") is None  # started otherwise: thrown away, not used
    assert made[1].discarded == 1 and warm.waiting() == 0


def test_a_kernel_that_died_while_waiting_is_never_used(fake):
    made = []
    warm.prestart("k", _start(made))
    made[0].exit_status = 137  # killed while it waited
    assert warm.take("k") is None and made[0].discarded == 1


def test_starting_the_next_kernel_replaces_the_one_waiting(fake):
    made = []
    warm.prestart("k", _start(made))
    warm.prestart("k", _start(made))
    assert made[0].discarded == 1 and warm.waiting() == 1
    assert warm.take("k").km is made[1]


def test_a_kernel_that_cannot_start_leaves_nothing_waiting(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(warm.tempfile, "tempdir", str(tmp_path))

    def broken(scratch):
        raise RuntimeError("no sandbox today")

    warm.prestart("k", broken)
    assert warm.waiting() == 0 and list(tmp_path.iterdir()) == []


def test_each_thread_has_its_own_and_close_ends_them_all(fake):
    made = []
    thread = threading.Thread(target=warm.prestart, args=("k", _start(made)))
    thread.start()
    thread.join()
    assert warm.take("k") is None, "another thread's kernel is not this thread's"
    warm.prestart("k", _start(made))
    assert warm.waiting() == 2
    warm.close()
    assert warm.waiting() == 0 and [k.discarded for k in made] == [1, 1]


def test_a_forked_process_does_not_own_its_parents_kernel(fake):
    made = []
    warm.prestart("k", _start(made))
    pid = os.fork()
    if pid == 0:  # the child: nothing waits here, and its exit must not end the parent's
        os._exit(0 if warm.waiting() == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert warm.waiting() == 1 and made[0].discarded == 0


def test_the_runner_starts_kernels_ahead_only_for_jobs_that_will_come():
    local = Runner(3, None, Config())
    local.capacity = 4  # 3 workers, one job queued
    assert [local._warm_next(i, 12) for i in range(1, 13)] == [True] * 9 + [False] * 3
    assert local._warm_next(50, None), "the grading service: more may come"
    assert not Runner(3, "tcp://scheduler:8786", Config())._warm_next(1, 12)


def test_no_kernel_waits_on_the_shared_fallback_uid(course, monkeypatch):
    """When every pool account is leased, a kernel started ahead would run as the shared
    fallback uid next to running kernels: it is shut down instead of kept waiting."""
    from autograder.pipeline.worker import execution
    from autograder.sandbox import execute

    made = []

    class Shared(FakeKernel):
        shares_uid = True

    def start(*args, **kwargs):
        made.append(Shared())
        return made[-1]

    monkeypatch.setattr(execute, "start_kernel", start)
    monkeypatch.setattr(execute, "discard_kernel",
                        lambda km: setattr(km, "discarded", km.discarded + 1))
    fx.submit(course, "ann", fx.student_notebook(course))
    job, _ = fx.job_for(course, "ann", unsafe=False)
    warm.prestart("k", lambda folder: execution.start_kernel(job, job.config, folder))
    assert [k.discarded for k in made] == [1] and warm.waiting() == 0


def test_config_turns_it_off():
    cfg = Config()
    assert warm.enabled(cfg)
    cfg.WarmKernels.enabled = False
    assert not warm.enabled(cfg)


# --------------------------------------------------------------------------- real kernels
LIST_FILES = ("import os\nprint('FILES', sorted(os.listdir('.')))\n"
              "open('left-by-' + os.environ.get('USER', 'student'), 'w').write('x')\n"
              "def add(a, b):\n    return a + b")


def _answer_output(result) -> str:
    import nbformat

    nb = nbformat.reads(result.notebooks[A], as_version=4)
    [cell] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "add_impl"]
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_the_next_submission_runs_in_the_kernel_started_for_it(course):
    """Two sandboxed jobs in a row, as on one pool worker: the second gets the kernel the
    first started, sees its own files only, and scores as a kernel started on demand."""
    for student, extra in (("ann", b"ann's data"), ("bob", b"bob's data")):
        fx.submit(course, student, fx.student_notebook(course, {"add_impl": LIST_FILES}),
                  files={f"{student}.txt": extra})
    ann, _ = fx.job_for(course, "ann", unsafe=False)
    bob, _ = fx.job_for(course, "bob", unsafe=False)
    try:
        first = grade_submission(dataclasses.replace(ann, warm_next=True))
        assert warm.waiting() == 1, "the first job started a kernel for the next"
        second = grade_submission(bob)
        assert warm.waiting() == 0, "the second used it (and started none: no job follows)"
        cold = grade_submission(bob)  # the same submission, its kernel started on demand
    finally:
        warm.close()
    for result in (first, second, cold):
        assert result.status == "graded" and result.score == result.max_score == 4.0, \
            (result.flags, result.error)
    assert "'ann.txt'" in _answer_output(first)
    shown = _answer_output(second)
    # neither the first student's files nor what their kernel wrote
    assert "'bob.txt'" in shown and "ann" not in shown and "left-by" not in shown, shown
    assert shown == _answer_output(cold)
    assert second.timings["sandbox_start"] < cold.timings["sandbox_start"]


@pytest.mark.slow
def test_no_kernel_waits_when_it_is_turned_off(course):
    fx.submit(course, "ann", fx.student_notebook(course))
    job, _ = fx.job_for(course, "ann", unsafe=False)
    cfg = Config(job.config)
    cfg.WarmKernels.enabled = False
    result = grade_submission(dataclasses.replace(job, warm_next=True, config=cfg))
    assert result.status == "graded" and warm.waiting() == 0


def test_a_kernel_on_the_fallback_uid_says_it_shares_it():
    from autograder.sandbox import SandboxedKernelManager, uids

    km = SandboxedKernelManager()
    assert not km.shares_uid  # no lease: not root, or not started
    km._lease = uids.Lease(65534, 65534)  # the fallback: no lock held
    assert km.shares_uid
    km._lease = uids.Lease(990, 990, fd=-1)  # a pool account, its lock held
    assert not km.shares_uid
    km._lease = None


def test_folders_of_workers_that_died_are_swept(tmp_path, monkeypatch):
    import tempfile

    from autograder.pipeline.worker import folders

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(folders, "memory_dir", lambda: None)
    dead = tmp_path / f"{warm.PREFIX}{fx.dead_pid()}-abc"
    (dead / warm.SCRATCH).mkdir(parents=True)
    (dead / warm.SCRATCH / "answer.py").write_text("a student's file")
    alive = tmp_path / f"{warm.PREFIX}{os.getppid()}-def"
    alive.mkdir()
    other = tmp_path / "rnn-warm-notapid"
    other.mkdir()
    folders.sweep_stale()
    assert not dead.exists() and alive.exists() and other.exists()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_ends_with_its_coordinator():
    """A coordinator killed outright (an OOM kill, a crashed service round) must not leave
    its pool workers waiting forever, each holding a kernel started ahead and its uid lease:
    the runner's pool initializer ties each worker's life to the coordinator's."""
    import subprocess
    import sys
    import time

    coordinator = (
        "import concurrent.futures, multiprocessing, os, signal\n"
        "from autograder.pipeline.coordinator.runner import _worker_start\n"
        "pool = concurrent.futures.ProcessPoolExecutor(\n"
        "    1, mp_context=multiprocessing.get_context('fork'),\n"
        "    initializer=_worker_start, initargs=(os.getpid(),))\n"
        "print(pool.submit(os.getpid).result(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.Popen([sys.executable, "-c", coordinator], stdout=subprocess.PIPE,
                            text=True)
    with proc.stdout:  # the first line only: a worker left alive keeps the pipe open
        worker = int(proc.stdout.readline())
    assert proc.wait(timeout=60) == -9
    deadline = time.monotonic() + 10
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(worker), "the worker outlived its coordinator"


def test_a_worker_runs_below_its_coordinator():
    """Pool workers (and the kernels they start) get the lowest CPU priority, so that the
    coordinator, the run's serial part, never waits behind them for a core."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from autograder.pipeline.coordinator.runner import WORKER_NICENESS, _worker_start

    base = os.nice(0)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                             initializer=_worker_start, initargs=(os.getpid(),)) as pool:
        assert pool.submit(os.nice, 0).result() == min(19, base + WORKER_NICENESS)
    assert os.nice(0) == base
