"""The service's main process: watch the inbound folder, run rounds, serve the status page.

The main process never grades.  It lists the exchange's inbound folder every
``poll`` seconds, journals what is new (:mod:`autograder.service.journal`),
and runs one round at a time (:func:`autograder.service.rounds.run_round`) in
a forked child process: a round that raises, or whose process dies, is one
line in the log and one more attempt for its rows (``max_attempts``, then
``failed``); rows retried after a crash go one at a time, so that a
submission that kills its round cannot take its neighbours with it.

A round stays open for the submissions of its assignment that arrive while
it runs (the main process keeps journaling them), so that a worker never
waits for the next round's start-up during a rush.

SIGTERM or SIGINT: no new round starts; the running one is interrupted
(what it recorded is kept), given ``grace`` seconds, then killed; the
process exits 0.  A second service on the same course directory refuses to
start (a POSIX lock on ``.autograder-serve.lock``, released with the process).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder.course import Course, student_id_problem
from autograder.errors import UsageError
from autograder.pipeline.coordinator.runner import die_with_parent
from autograder.pipeline.scoring import parse_timestamp
from autograder.pipeline.worker.precheck import SECRET_FILE, TIMESTAMP_FILE
from autograder.service import journal as J
from autograder.service.rounds import Options, event, first_line, run_round

log = logging.getLogger("autograder.serve")
LOCK_NAME = ".autograder-serve.lock"
HELD_EVERY = 10.0  # seconds between two readings of the held feedback's due dates
WRITTEN_LAST = (TIMESTAMP_FILE, SECRET_FILE)
"""What ``nbgrader submit`` writes into an inbound entry after copying the notebooks."""
UNFINISHED_GRACE = 120.0
"""Seconds after which an entry still without :data:`WRITTEN_LAST` is taken as it is."""
RELEASE_RETRY = 60.0  # seconds between two tries to hand out an assignment that opened


def setup_logging(verbose: bool = False) -> None:
    """One line per event on stderr: ``2026-01-10T12:00:00Z <event> <text>``."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger("autograder.serve")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def inbound_folder(course: Course) -> Path:
    exchange = course.config.get("Exchange", {}).get("root", "/srv/nbgrader/exchange")
    return Path(exchange) / course.course_id / "inbound"


def parse_entry(name: str):
    """``(student, assignment, timestamp)`` of an inbound folder name, or None."""
    parts = name.rsplit("+", 3)
    if len(parts) < 3 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1], parts[2]


def _round_main(opts: Options, assignment: str, grade_ids, release_ids, follow) -> None:
    """The body of a round's child process."""
    die_with_parent()  # no round outlives its service
    signal.set_wakeup_fd(-1)  # the parent's event loop's, inherited by the fork

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    os.setpgid(0, 0)  # the parent signals the round (and its workers) as a group
    try:
        run_round(opts, assignment, grade_ids, release_ids, follow=follow)
    except KeyboardInterrupt:
        event("interrupted", f"{assignment}: what was recorded is kept")
        os._exit(3)
    except BaseException as exc:  # noqa: BLE001 - a round's crash is one line, never the service's
        event("round-error", f"{assignment}: {first_line(exc)}")
        log.debug("round error", exc_info=True)
        logging.shutdown()
        os._exit(1)
    os._exit(0)


class Service:
    """The main process's state: options, journal, the round in flight."""

    def __init__(self, opts: Options, *, poll: float = 2.0, grace: float = 30.0,
                 retry_failed: bool = False, release_on_open: bool = False):
        self.opts = opts
        self.poll = poll
        self.grace = grace
        self.course = Course(opts.course_dir)
        self.policies = {a: self.course.feedback_policy(a) for a in self.course.assignments}
        self.inbound = inbound_folder(self.course)
        self.journal = J.Journal(self.course.db_url)
        self.http = None  # the exchange over HTTP, when the course chooses it
        from autograder.service.http_exchange import Exchange, HttpExchangeService

        if HttpExchangeService(config=self.course.config).enabled:
            self.http = Exchange(self)
        self.retry_failed = retry_failed
        self.release_on_open = release_on_open
        self._release_tried: dict[str, float] = {}
        self.started = time.time()
        self.stopping = False
        self.round = None  # (process, assignment, row ids, started)
        self.rounds = 0
        self.crashed_rounds = 0
        self._lock_fd = None
        self._ignored: set[str] = set()
        self._known: set[str] = set()
        self._wake = None
        self._held_next = 0.0

    # ----------------------------------------------------------------- start-up
    def check(self) -> None:
        """One-line UsageErrors for what a person must fix before the service can run."""
        from nbgrader.api import Gradebook

        from autograder.pipeline.coordinator.assignment import _require_oracles, _require_sandbox
        from autograder.pipeline.coordinator.gradebook import _sqlite_path

        if self.opts.workers is not None and self.opts.workers < 1:
            raise UsageError("--workers must be at least 1")
        if not self.opts.unsafe_no_sandbox:
            _require_sandbox()
        _require_oracles(self.course.assignments)
        path = _sqlite_path(self.course.db_url)
        if path is not None and not path.is_file():
            raise UsageError(f"no gradebook at {path}: release the assignments first "
                             "(nbgrader generate_assignment / release_assignment)")
        try:
            with Gradebook(self.course.db_url, self.course.course_id):
                pass
            self.journal.counts()
        except Exception as exc:
            raise UsageError(f"cannot open the gradebook {self.course.db_url}: "
                             f"{first_line(exc)}") from None
        self.course.schedule  # noqa: B018  (validated: a UsageError in one line)
        if self.http is not None:
            self.http.prepare_storage()  # private to this account, or a UsageError
        if not self.inbound.is_dir():
            raise UsageError(f"no inbound folder {self.inbound}: release an assignment of "
                             f"course {self.course.course_id!r} to the exchange first "
                             "(nbgrader release_assignment), or set RNN_COURSE_EXCHANGE")

    def lock(self) -> None:
        path = self.course.root / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UsageError(f"another grading service runs on {self.course.root} "
                             f"(it holds {path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the file releases its POSIX lock
            self._lock_fd = None

    # ----------------------------------------------------------------- releases
    def outbound(self, assignment: str) -> Path:
        return self.inbound.parent / "outbound" / assignment

    def release_opened(self, now=None) -> list[str]:
        """With ``--release-on-open``: hand out, in course order, each assignment that is open
        by ``c.RnnCourse.schedule`` and not in the exchange yet; the ones released.

        ``python -m autograder release`` (release/ rebuilt and checked, the gradebook
        told) then ``nbgrader release_assignment``, each in a child process; a failure
        is one event and is tried again a minute later.
        """
        if not self.release_on_open:
            return []
        done = []
        for name in self.course.open_assignments(now):
            if self.outbound(name).is_dir():
                continue
            if time.monotonic() - self._release_tried.get(name, -RELEASE_RETRY) < RELEASE_RETRY:
                break  # in course order: no later one before this one is out
            self._release_tried[name] = time.monotonic()
            for argv in (["-m", "autograder", "release", name],
                         ["-m", "nbgrader", "release_assignment", name]):
                proc = subprocess.run([sys.executable, *argv], cwd=self.course.root,
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
                    event("warning", f"{name} opened but {' '.join(argv[1:3])} failed "
                                     f"(exit {proc.returncode}): {tail[0]}; trying again in "
                                     f"{RELEASE_RETRY:g} s")
                    return done
            event("released", f"{name}: opened {self.course.schedule[name].opens} UTC, "
                              "handed out to the exchange")
            done.append(name)
        return done

    # -------------------------------------------------------------------- scan
    def scan(self) -> int:
        """Journal the new inbound entries; how many were queued."""
        try:
            names = sorted(e.name for e in os.scandir(self.inbound) if e.is_dir())
        except OSError as exc:
            event("warning", f"cannot list {self.inbound}: {first_line(exc)}")
            return 0
        if not self._known:
            self._known = self.journal.entries()
        queued = 0
        for name in names:
            if name in self._known or name in self._ignored:
                continue
            parsed = parse_entry(name)
            if parsed is None:
                self._ignored.add(name)
                event("ignored", f"{name!r}: not a submission's name (student+assignment+time)")
                continue
            problem = student_id_problem(parsed[0])
            if problem is not None:  # a student id enters here: refused, in one line
                self._ignored.add(name)
                event("ignored", f"{name[:200]!r}: {problem}")
                continue
            if not self._written(name):
                continue  # nbgrader submit is still copying it: the next scan looks again
            student, assignment, stamp = parsed
            submitted_at = parse_timestamp(stamp)
            state, note = J.QUEUED, ""
            if assignment not in self.course.assignments:
                state, note = J.REJECTED, "not an assignment of this course"
            row = self.journal.add(student, assignment, stamp, name, submitted_at, state, note)
            self._known.add(name)
            if row is None:  # the same submission under another name
                continue
            if state == J.REJECTED:
                event("rejected", f"{student} {assignment} ({stamp}): {note}")
            else:
                queued += 1
                event("queued", f"{student} {assignment} ({stamp})")
        return queued

    def journalled(self, name: str) -> None:
        """An entry the HTTP exchange has just journalled: known, and a round may start now."""
        self._known.add(name)
        if self._wake is not None:
            self._wake.set()

    def _written(self, name: str) -> bool:
        """Whether ``nbgrader submit`` has finished the entry ``name``.

        It copies the notebooks into the inbound folder itself, not into a
        folder renamed in once whole, and writes :data:`WRITTEN_LAST` after
        them: an entry without those files is still being copied, and
        collecting it now would grade part of a submission.  One that stays
        so for :data:`UNFINISHED_GRACE` seconds (a submit that died halfway)
        is taken as it is, so that it is not lost.
        """
        entry = self.inbound / name
        if all(os.path.lexists(entry / f) for f in WRITTEN_LAST):
            return True
        try:
            age = time.time() - entry.stat().st_mtime
        except OSError:
            return False
        if age < UNFINISHED_GRACE:
            return False
        missing = ", ".join(f for f in WRITTEN_LAST if not os.path.lexists(entry / f))
        event("unfinished", f"{name!r}: still no {missing} after {UNFINISHED_GRACE:g} s; "
                            "taken as it is")
        return True

    # ------------------------------------------------------------------ rounds
    def next_round(self):
        """``(assignment, grade_ids, release_ids)`` of the next round, or None."""
        now = J.utcnow()
        held = []
        if time.monotonic() >= self._held_next:  # due dates are read every HELD_EVERY s
            self._held_next = time.monotonic() + HELD_EVERY
            held = self.journal.rows(states=(J.HELD,))
        if held:
            from autograder.service.rounds import due_dates

            dues = due_dates(self.course, [(r.assignment, r.student_id) for r in held])
            by_assignment: dict[str, list[int]] = {}
            for row in held:
                due = dues[(row.assignment, row.student_id)]
                if due is None or due <= now:
                    by_assignment.setdefault(row.assignment, []).append(row.id)
            for assignment, ids in by_assignment.items():
                self._held_next = 0.0  # more may be due: look again next time
                return assignment, [], ids
        pending = [r for r in self.journal.rows(states=J.PENDING)
                   if r.attempts < self.opts.max_attempts]
        if not pending:
            return None
        fresh = [r for r in pending if r.attempts == 0]
        if fresh:
            assignment = fresh[0].assignment
            return assignment, [r.id for r in fresh if r.assignment == assignment], []
        return pending[0].assignment, [pending[0].id], []  # after a crash: one at a time

    def start_round(self, assignment: str, grade_ids, release_ids) -> None:
        # a round that retries a submission after a crash grades it alone; others follow
        alone = any(r.attempts > 0 for r in self.journal.rows(ids=grade_ids))
        ctx = multiprocessing.get_context("fork")
        proc = ctx.Process(target=_round_main, name=f"round-{assignment}",
                           args=(self.opts, assignment, list(grade_ids), list(release_ids),
                                 not alone))
        proc.start()
        self.round = (proc, assignment, list(grade_ids), time.time(), not alone)
        self.rounds += 1

    def finish_round(self) -> None:
        proc, assignment = self.round[:2]
        left = self.round_rows()
        proc.join()
        self.round = None
        code = proc.exitcode
        if code == 0 or (self.stopping and code in (3, -signal.SIGKILL, -signal.SIGTERM)):
            return
        self.crashed_rounds += 1
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        left = [r for r in self.journal.rows(ids=[r.id for r in left], states=J.PENDING)]
        failed = 0
        for row in left:
            state = self.journal.fail_attempt(row.id, self.opts.max_attempts,
                                              f"its grading round crashed ({how})")
            failed += state == J.FAILED
        event("crashed", f"{assignment}: the grading round ended with {how}; "
                         f"{len(left) - failed} submission(s) back in the queue, "
                         f"{failed} failed for good")

    def round_rows(self, rows=None) -> list:
        """The pending rows the running round has taken: its own, and those it collected since."""
        if self.round is None:
            return []
        _, assignment, ids, _, follows = self.round
        rows = self.journal.rows(states=J.PENDING) if rows is None else rows
        # what a following round took since: fresh rows of its assignment it collected
        return [r for r in rows if r.state in J.PENDING and (r.id in ids or (
            follows and r.assignment == assignment and r.state == J.COLLECTED
            and r.attempts == 0))]

    def running_ids(self, rows=None) -> list[int]:
        return [r.id for r in self.round_rows(rows)]

    # -------------------------------------------------------------------- loop
    async def run(self) -> None:
        if self.retry_failed:
            n = self.journal.retry_failed()
            if n:
                event("retry", f"{n} failed submission(s) back in the queue")
        if self.http is not None:  # submissions come over HTTP, straight into the journal
            self.http.recover()
            event("exchange", f"over HTTP; private storage {self.http.root}")
        event("watching", f"{self.inbound} every {self.poll:g} s; feedback: "
                          + ", ".join(f"{a} {p}" for a, p in self.policies.items()))
        self._wake = asyncio.Event()
        scanned = 0.0
        while not self.stopping:
            try:
                if time.monotonic() - scanned >= self.poll:  # also while a round runs:
                    scanned = time.monotonic()              # it takes what arrives
                    self.release_opened()
                    if self.http is None:
                        self.scan()
                if self.round is not None and not self.round[0].is_alive():
                    self.finish_round()
                work = self.next_round() if self.round is None else None
            except Exception as exc:  # the database went away...: say so, try again
                event("warning", f"{first_line(exc)}; trying again in {self.poll:g} s")
                work = None
                await self._sleep(self.poll)
            if work is not None:
                self.start_round(*work)
                continue
            await self._sleep(0.2 if self.round is not None else self.poll)
        await self._stop_round()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        if not self.stopping:
            self._wake.clear()

    def stop(self, signame: str) -> None:
        if not self.stopping:
            event("stopping", f"{signame}: no new round; the running one is interrupted")
        self.stopping = True
        if self._wake is not None:
            self._wake.set()

    async def _stop_round(self) -> None:
        if self.round is None:
            return
        proc = self.round[0]
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass
        deadline = time.monotonic() + self.grace
        while proc.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if proc.is_alive():
            event("killing", f"the round did not stop within {self.grace:g} s")
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its workers and kernels too
        except OSError:
            pass
        self.finish_round()
