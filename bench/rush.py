"""The deadline rush through the real path: students' own tokens, the hub, the HTTP exchange.

    python -m bench.rush [--quick] [--students 500] [--minutes 10] [--workers N]
        [--scheduler ADDR] [--clients 2] [--poll-interval 3] [--bins 10]
        [--no-warm-kernels] [--out-dir DIR]

A real JupyterHub (:class:`bench.minihub.BenchHub`: free ports, no Unix
accounts, no spawner) with ``--students`` users in the course's student group,
each with an API token of their own issued through the hub's REST API; the
course's grading service (``python -m autograder serve``, local workers or
``--scheduler``, sandboxed) registered with the hub as its service and run by
the bench, with ``rnn_cell`` released through it.  Each simulated student, at
their moment of a deadline window of ``--minutes`` (evenly spread), calls
nbgrader's exchange classes as their own server would, with the HTTP exchange
plugin configured and their own token: list, fetch ``rnn_cell``, submit (a
complete solution; every fourth student only two solutions filled in), then
fetch_feedback every ``--poll-interval`` seconds until their feedback is there.

The students' calls run in ``--clients`` processes of their own (each call
in-process, one at a time: nbgrader's classes read the token from the
environment as a student's server does); their CPU time is measured and
reported, since on one machine it is taken from the service's cores.

Measured, per student: the time from their submit being accepted to their
feedback being available (released, by the service's journal: the same
machine's clock), and to their fetching it (so up to one poll interval
later); printed as median, 95th percentile and worst, over the whole window
and per bin of it (``--bins``, by the moment of submitting), with the
service's own side (submitted to graded, to released), the CPU seconds the
service used per submission (its whole process tree, the sandboxed kernels
included: orphans come back to the bench, a child subreaper, and are
counted), split into its serial part (its main process and its rounds) and
its workers, the CPU of the hub and its proxy and of the client processes,
and the machine's 1-minute load before and after (it may be shared).  Every
submission must be graded exactly once (the service's journal and its log).
The target: a 95th percentile under 30 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import timezone
from pathlib import Path

from autograder.pipeline.coordinator.runner import default_workers
from autograder.roles import exchange_url, grading_service, staff_group, student_group
from bench import (
    RESULTS,
    clean_env,
    course_template,
    loadavg,
    machine,
    solution_notebook,
    table,
    verdict,
    write_json,
)
from bench.minihub import BenchHub, hubtools

ASSIGNMENT = "rnn_cell"
COURSE_ID = "rnn-course-rush"
TARGET_P95 = 30.0
FULL = dict(students=500, minutes=10.0)
QUICK = dict(students=10, minutes=0.5)
PARTIAL_EVERY = 4  # every fourth student hands in only PARTIAL_SOLUTIONS solutions
PARTIAL_SOLUTIONS = 2
INSTRUCTOR = "instructor"
POLL_INTERVAL = 3.0  # a student asks again for their feedback every few seconds
PROGRESS_EVERY = 30.0  # seconds between two progress lines on stderr
SERVICE_SCOPES = ["read:users:groups"]  # the exchange reads its callers' course groups


def percentile(values, q):
    """The ``q`` quantile (nearest rank) of ``values``; None when there are none."""
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def summary(values) -> dict:
    """``{"n", "median", "p95", "worst"}`` of ``values`` (seconds, rounded to 0.1)."""
    values = list(values)
    if not values:
        return {"n": 0, "median": None, "p95": None, "worst": None}
    return {"n": len(values), "median": round(percentile(values, 0.5), 1),
            "p95": round(percentile(values, 0.95), 1), "worst": round(max(values), 1)}


def bins(offsets: dict[str, float], waits: dict[str, float], window: float, count: int) -> list:
    """Per bin of the window (by the moment each student submitted): how many, and their waits."""
    width = window / count if window > 0 else 1.0
    out = []
    for i in range(count):
        lo, hi = i * width, (i + 1) * width
        last = i == count - 1
        names = [n for n, t in offsets.items() if lo <= t < hi or (last and t >= hi)]
        out.append({"from_s": round(lo, 1), "to_s": round(hi, 1),
                    **summary(waits[n] for n in names if n in waits),
                    "submitted": len(names)})
    return out


# --------------------------------------------------------------------------- #
# the grading service, as the hub's service
# --------------------------------------------------------------------------- #
class Service:
    """``python -m autograder serve`` on the rush's course, as its own process group."""

    def __init__(self, course: Path, env: dict, log: Path, url: str, workers=None,
                 scheduler=None):
        cmd = [sys.executable, "-m", "autograder", "serve", "--course-dir", str(course),
               "--poll", "1"]
        if workers:
            cmd += ["--workers", str(workers)]
        if scheduler:
            cmd += ["--scheduler", scheduler]
        self.log, self.url = log, url
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while not re.search(r" status +http://", log.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def status(self, token: str) -> dict:
        req = urllib.request.Request(f"{self.url}api/status",
                                     headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
        finally:
            self._fh.close()


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's children that have been waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def subreaper(on: bool) -> bool:
    """Orphans of our descendants come to us (Linux's PR_SET_CHILD_SUBREAPER) while ``on``, so
    that the CPU of a pool worker or kernel whose parent was killed first is still counted
    when we reap it; whether it worked."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def my_children() -> set[int]:
    """The processes whose parent is this one (zombies included)."""
    me, out = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        out.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


def reap_orphans(keep: set[int], wait_s: float = 10.0) -> None:
    """Reap the service's processes handed to us (our children not in ``keep``: those we had
    before it started, the hub); any still alive after ``wait_s`` is killed first."""
    end = time.monotonic() + wait_s
    while left := my_children() - keep:
        for pid in left:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0 and time.monotonic() > end:
                    os.kill(pid, signal.SIGKILL)
            except (ChildProcessError, ProcessLookupError):
                keep.add(pid)  # not ours to wait for after all
        time.sleep(0.1)


class CpuSampler:
    """Where the service's CPU goes: its main process, its rounds (the coordinator), the rest.

    Reads ``/proc`` every ``every`` seconds: the main process's own CPU time,
    and that of each round (a direct child of the main process; its workers'
    and kernels' time is theirs, not the round's).  A round's last second
    after its last reading goes to the rest.  Linux only; zeros elsewhere.
    """

    def __init__(self, pid: int, every: float = 1.0):
        self.pid, self.every = pid, every
        self.main = 0.0
        self.rounds: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _stat(self, pid: int):
        """``(ppid, starttime, own cpu seconds)`` of ``pid``, or None once it is gone."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / self._tick

    def sample(self) -> None:
        me = self._stat(self.pid)
        if me is None:
            return
        self.main = me[2]
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return
        for pid in pids:
            st = self._stat(pid)
            if st is not None and st[0] == self.pid:
                self.rounds[(pid, st[1])] = st[2]

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> dict:
        """The last readings: ``{"main": s, "rounds": s}`` (taken before the service stops)."""
        self._stop.set()
        self._thread.join()
        self.sample()
        return {"main": round(self.main, 1), "rounds": round(sum(self.rounds.values()), 1)}


# --------------------------------------------------------------------------- #
# a student: nbgrader's exchange classes, as their server calls them
# --------------------------------------------------------------------------- #
_CLIENT: dict = {}


def _client_init(service_url: str, env: dict) -> None:
    """A client process: where the exchange is, the students' environment."""
    os.environ.update(env)
    _CLIENT["url"] = service_url
    # nbgrader's exchange classes log through traitlets' logger: "no feedback yet" on every
    # poll is not news
    logging.getLogger("traitlets").setLevel(logging.ERROR)


def _exchange(kind: str, student: dict, assignment: str = ""):
    """One exchange action as the student's server runs it, with their own token."""
    from rnn_exchange.plugin import run as exchange

    return exchange(kind, service_url=_CLIENT["url"], token=student["token"],
                    assignment_dir=student["home"], course=COURSE_ID, assignment=assignment)


def student_submits(student: dict, notebook: str) -> dict:
    """List, fetch ``rnn_cell``, put ``notebook`` in place, submit; the moments (monotonic)."""
    cpu = time.process_time()
    out = {"start": time.monotonic()}
    released = [a["assignment_id"] for a in _exchange("List", student)]
    if ASSIGNMENT not in released:
        raise RuntimeError(f"{student['name']}: {ASSIGNMENT} is not listed ({released})")
    _exchange("FetchAssignment", student, ASSIGNMENT)
    path = Path(student["home"]) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    if not path.is_file():
        raise RuntimeError(f"{student['name']}: fetch left no {path}")
    path.write_text(notebook)
    out["submit"] = time.monotonic()
    _exchange("Submit", student, ASSIGNMENT)
    out["accepted"] = time.monotonic()
    out["accepted_wall"] = time.time()  # the journal's clock: when its feedback is released
    out["cpu"] = time.process_time() - cpu
    return out


def student_polls(student: dict) -> dict:
    """One fetch_feedback; whether the feedback is there now."""
    cpu = time.process_time()
    _exchange("FetchFeedback", student, ASSIGNMENT)
    found = any((Path(student["home"]) / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
    return {"found": found, "at": time.monotonic(), "cpu": time.process_time() - cpu}


# --------------------------------------------------------------------------- #
# the course and its exchange
# --------------------------------------------------------------------------- #
def service_url(hub_url: str) -> str:
    """The exchange's URL as servers on the hub are given it (``RNN_EXCHANGE_URL``): the
    course's grading service, through the hub's proxy."""
    return exchange_url(hub_url)


def prepare_course(base: Path, warm_kernels: bool) -> Path:
    course = base / "course"
    shutil.copytree(course_template([ASSIGNMENT]), course)
    if not warm_kernels:
        with open(course / "nbgrader_config.py", "a") as fh:
            fh.write("\nc.WarmKernels.enabled = False\n")
    return course


def release(course: Path, hub: BenchHub) -> None:
    """Hand ``rnn_cell`` out over HTTP, as an instructor's formgrader would."""
    from rnn_exchange.plugin import run as exchange

    hub.add_users([INSTRUCTOR], groups=[staff_group(COURSE_ID)])
    token = hub.issue_tokens([INSTRUCTOR])[INSTRUCTOR]
    exchange("ReleaseAssignment", service_url=service_url(hub.url), token=token,
             assignment_dir=course, course=COURSE_ID, assignment=ASSIGNMENT, course_root=course)


# --------------------------------------------------------------------------- #
# one rush
# --------------------------------------------------------------------------- #
def drive(students: list[dict], notebooks: list[str], window: float, clients: int,
          poll_interval: float, timeout: float, url: str, client_env: dict,
          alive, progress: bool = True) -> dict:
    """Each student submits at their moment of the window, then polls until feedback."""
    n = len(students)
    at = {s["name"]: i * window / n for i, s in enumerate(students)}
    done: dict[str, dict] = {}
    seen: dict[str, float] = {}
    polls: Counter = Counter()
    client_cpu = 0.0
    with ProcessPoolExecutor(clients, initializer=_client_init,
                             initargs=(url, client_env)) as pool:
        # warm the clients (imports) before the window opens
        list(pool.map(time.sleep, [0.01] * clients))
        started = time.monotonic()
        pending: dict = {}
        next_poll: dict[str, float] = {}
        next_note = started + PROGRESS_EVERY
        i = 0
        while len(seen) < n:
            now = time.monotonic()
            if now - started > timeout:
                raise RuntimeError(f"only {len(seen)} of {n} feedbacks after {timeout:g} s")
            alive()
            while i < n and now - started >= at[students[i]["name"]]:
                fut = pool.submit(student_submits, students[i], notebooks[i])
                pending[fut] = ("submit", students[i])
                i += 1
            busy = {s["name"] for kind, s in pending.values() if kind == "poll"}
            for s in students:
                name = s["name"]
                if name in next_poll and name not in seen and name not in busy \
                        and now >= next_poll[name]:
                    pending[pool.submit(student_polls, s)] = ("poll", s)
                    polls[name] += 1
            finished, _ = wait(list(pending), timeout=0.05, return_when=FIRST_COMPLETED)
            for fut in finished:
                kind, s = pending.pop(fut)
                name = s["name"]
                result = fut.result()  # a client's error ends the rush, with its message
                client_cpu += result["cpu"]
                if kind == "submit":
                    done[name] = result
                    next_poll[name] = result["accepted"] + poll_interval
                elif result["found"]:
                    seen[name] = result["at"]
                else:
                    next_poll[name] = result["at"] + poll_interval
            if not pending:
                time.sleep(0.02)
            if progress and now >= next_note:
                next_note = now + PROGRESS_EVERY
                print(f"[rush] {now - started:5.0f} s: {i} submitting or submitted, "
                      f"{len(done)} accepted, {len(seen)} with feedback; "
                      f"load {loadavg()}", file=sys.stderr, flush=True)
        wall = time.monotonic() - started
    return {"started": started, "at": at, "done": done, "seen": seen, "polls": polls,
            "client_cpu_s": client_cpu, "wall_s": wall}


def graded_once(log: str, journal_rows, names) -> dict:
    """Whether every student's one submission was graded exactly once, by the service's journal
    (one row each, released) and its log (one ``graded`` event each, none ``already recorded``)."""
    events = Counter(m.group(1) for m in re.finditer(
        rf" graded +(\S+) {ASSIGNMENT}: .*\(graded", log))
    rows = Counter(r.student_id for r in journal_rows)
    states = Counter(r.state for r in journal_rows)
    twice = sorted(n for n in names if events[n] > 1 or rows[n] > 1)
    missing = sorted(n for n in names if events[n] == 0 or rows[n] == 0)
    unreleased = sorted(r.student_id for r in journal_rows if r.state != "released")
    return {"ok": not twice and not missing and not unreleased, "twice": twice,
            "missing": missing, "unreleased": unreleased, "journal_states": dict(states),
            "graded_events": sum(events.values())}


def rush(students=500, minutes=10.0, workers=None, scheduler=None, clients=2,
         poll_interval=POLL_INTERVAL, nbins=10, timeout=None, warm_kernels=True,
         log_copy=None) -> dict:
    """Run one rush; the measured times and facts (see the module docstring).

    ``log_copy``: where the service's log is copied to (its events, one a line)."""
    from autograder.course import Course
    from autograder.service.journal import Journal

    window = minutes * 60.0
    timeout = timeout or window + 600.0
    base = Path(tempfile.mkdtemp(prefix="bench-rush-"))
    base.chmod(0o755)
    name = grading_service(COURSE_ID)
    port = hubtools.free_ports(("grading_service",))["grading_service"]
    hub = BenchHub({name: {"url": f"http://127.0.0.1:{port}", "token": secrets.token_hex(32),
                           "scopes": SERVICE_SCOPES}}, base=base / "hub")
    (base / "hub").mkdir()
    had = my_children()
    reaping = subreaper(True)
    cpu0 = children_cpu()
    try:
        course = prepare_course(base, warm_kernels)
        t = time.monotonic()
        hub.start()
        hub_start_s = time.monotonic() - t
        print(f"[rush] hub on {hub.url} ({hub_start_s:.1f} s); {students} users and tokens ...",
              file=sys.stderr, flush=True)
        names = [f"r{i:03d}" for i in range(students)]
        t = time.monotonic()
        hub.add_users(names, groups=[student_group(COURSE_ID)])
        tokens = hub.issue_tokens(names)
        users_s = time.monotonic() - t
        homes = base / "students"
        people = []
        for n in names:
            (homes / n).mkdir(parents=True)
            people.append({"name": n, "token": tokens[n], "home": str(homes / n)})
        full = json.dumps(solution_notebook(course, ASSIGNMENT))
        partial = json.dumps(solution_notebook(course, ASSIGNMENT, count=PARTIAL_SOLUTIONS))
        notebooks = [partial if i % PARTIAL_EVERY == PARTIAL_EVERY - 1 else full
                     for i in range(students)]
        env = dict(clean_env(), RNN_COURSE_ID=COURSE_ID, RNN_COURSE_EXCHANGE_MODE="http",
                   RNN_COURSE_EXCHANGE=str(base / "private"), **hub.service_env(name))
        service = Service(course, env, base / "serve.log", f"{hub.url}/services/{name}/",
                          workers, scheduler)
        release(course, hub)
        load_before = loadavg()
        cpu1 = children_cpu()  # hub set-up's children (release) are counted before this

        def alive():
            if service.proc.poll() is not None:
                raise RuntimeError(f"the service stopped:\n{service.log.read_text()[-3000:]}")

        sampler = CpuSampler(service.proc.pid).start()
        own = time.process_time()
        try:
            run = drive(people, notebooks, window, clients, poll_interval, timeout,
                        service_url(hub.url), clean_env(), alive)
            load_after = loadavg()
            own = time.process_time() - own
            cpu2 = children_cpu()  # + the client processes, now waited for
            status = service.status(hub.admin_token)
            split = sampler.stop()
        finally:
            service.stop()
            try:
                os.killpg(service.proc.pid, signal.SIGKILL)  # what is left of its group
            except OSError:
                pass
            if reaping:
                reap_orphans(keep=had | {hub.proc.pid})
                subreaper(False)
        cpu3 = children_cpu()  # + the service's whole tree
        log = service.log.read_text()
        if log_copy is not None:
            Path(log_copy).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(service.log, log_copy)
        journal = Journal(Course(course).db_url)
        try:
            rows = [r for r in journal.rows() if r.assignment == ASSIGNMENT]
        finally:
            journal.close()
    finally:
        hub.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    hub_cpu = children_cpu() - cpu3  # the hub and its proxy, waited for at its stop

    started = run["started"]
    offsets = {n: run["done"][n]["accepted"] - started for n in names}
    fetched = {n: run["seen"][n] - run["done"][n]["accepted"] for n in names}
    released = {r.student_id: r.released_at.replace(tzinfo=timezone.utc).timestamp()
                for r in rows if r.released_at is not None}
    waits = {n: released[n] - run["done"][n]["accepted_wall"] for n in names if n in released}
    lag = [run["done"][n]["start"] - started - run["at"][n] for n in names]
    service_side = {
        "graded": summary((r.graded_at - r.submitted_at).total_seconds() for r in rows
                          if r.graded_at is not None and r.submitted_at is not None),
        "released": summary((r.released_at - r.submitted_at).total_seconds() for r in rows
                            if r.released_at is not None and r.submitted_at is not None),
    }
    rounds = [int(n) for n in re.findall(r" grading +\S+: (\d+) (?:submission\(s\)|more)", log)]
    service_cpu = cpu3 - cpu2
    return {
        "students": students, "minutes": minutes, "window_s": window,
        "workers": workers or default_workers(), "scheduler": scheduler,
        "warm_kernels": warm_kernels, "clients": clients, "poll_interval_s": poll_interval,
        "hub_start_s": round(hub_start_s, 1), "users_and_tokens_s": round(users_s, 1),
        "wall_s": round(run["wall_s"], 1),
        **{k: v for k, v in summary(waits.values()).items() if k != "n"},
        "waits_s": {n: round(w, 2) for n, w in waits.items()},
        "fetched_s": summary(fetched.values()),
        "bins": bins(offsets, waits, window, nbins),
        "service_side_s": service_side,
        "submit_lag_s": summary(lag),
        "submit_call_s": summary(run["done"][n]["accepted"] - run["done"][n]["submit"]
                                 for n in names),
        "polls": sum(run["polls"].values()),
        "graded_once": graded_once(log, rows, names),
        "rounds": status["throughput"]["rounds"], "handed_out": rounds,
        "graded": status["throughput"]["graded"], "failures": len(status["failures"]),
        "scores": sorted({(r.score, r.max_score) for r in rows}),
        "cpu_s": {"service": round(service_cpu, 1), "service_main": split["main"],
                  "service_rounds": split["rounds"],
                  "service_workers": round(service_cpu - split["main"] - split["rounds"], 1),
                  "clients": round(run["client_cpu_s"], 1),
                  "clients_processes": round(cpu2 - cpu1, 1), "driver": round(own, 1),
                  "hub": round(hub_cpu, 1), "setup": round(cpu1 - cpu0, 1)},
        "per_submission_cpu_s": {
            "service": round(service_cpu / students, 3),
            "serial": round((split["main"] + split["rounds"]) / students, 3),
            "workers": round((service_cpu - split["main"] - split["rounds"]) / students, 3)},
        "load_before": load_before, "load_after": load_after,
    }


# --------------------------------------------------------------------------- #
# the report
# --------------------------------------------------------------------------- #
def report(result: dict) -> str:
    cols = [("", "what", ""), ("n", "n", ""), ("median", "median", ".1f"),
            ("p95", "p95", ".1f"), ("worst", "worst", ".1f")]
    rows = [{"what": "submit accepted -> feedback available", "n": len(result["waits_s"]),
             "median": result["median"], "p95": result["p95"], "worst": result["worst"]},
            {"what": f"submit accepted -> fetched (polls every {result['poll_interval_s']:g} s)",
             **result["fetched_s"]}]
    side = result["service_side_s"]
    rows += [{"what": "service: submitted -> graded", **side["graded"]},
             {"what": "service: submitted -> released", **side["released"]}]
    text = table("Deadline rush through the hub (seconds)", cols, rows)
    bin_rows = [{**b, "what": f"{b['from_s']:g}-{b['to_s']:g} s"} for b in result["bins"]]
    text += "\n" + table("Over the window, by the moment of submitting (seconds)",
                         [("window", "what", ""), ("submitted", "submitted", ""),
                          ("median", "median", ".1f"), ("p95", "p95", ".1f"),
                          ("worst", "worst", ".1f")], bin_rows)
    once = result["graded_once"]
    cpu, per = result["cpu_s"], result["per_submission_cpu_s"]
    how = (f"dask {result['scheduler']}" if result["scheduler"]
           else f"{result['workers']} local workers")
    text += (
        f"\n{result['students']} rnn_cell submissions over {result['minutes']:g} min, each "
        f"by its student's own hub token through the HTTP exchange; graded by `python -m "
        f"autograder serve` ({how}, sandboxed, kernels started ahead: "
        f"{'yes' if result['warm_kernels'] else 'no'}) in {result['wall_s']:g} s; "
        f"{result['rounds']} round(s), handing out "
        f"{', '.join(map(str, result['handed_out'][:12]))}"
        f"{' ...' if len(result['handed_out']) > 12 else ''} at a time.\n"
        f"graded once each: {'yes' if once['ok'] else 'NO'} ({once['graded_events']} gradings, "
        f"journal {once['journal_states']}"
        + (f", twice {once['twice'][:5]}" if once["twice"] else "")
        + (f", missing {once['missing'][:5]}" if once["missing"] else "")
        + (f", unreleased {once['unreleased'][:5]}" if once["unreleased"] else "")
        + f"); scores {result['scores']}; failures {result['failures']}.\n"
        f"CPU: the service {cpu['service']:g} s, {per['service']:g} s per submission (main "
        f"process {cpu['service_main']:g} s + rounds {cpu['service_rounds']:g} s = "
        f"{per['serial']:g} s per submission serial; workers and their kernels "
        f"{cpu['service_workers']:g} s = {per['workers']:g} s per submission); the hub and its "
        f"proxy {cpu['hub']:g} s; the {result['clients']} client processes "
        f"{cpu['clients_processes']:g} s ({cpu['clients']:g} s in the students' calls, "
        f"{result['polls']} polls every {result['poll_interval_s']:g} s), this driver "
        f"{cpu['driver']:g} s; "
        f"submits started up to {result['submit_lag_s']['worst']} s late.\n"
        f"hub start {result['hub_start_s']:g} s, {result['students']} users and tokens "
        f"{result['users_and_tokens_s']:g} s; 1-minute load {result['load_before']} before, "
        f"{result['load_after']} after (the machine may be shared).\n"
        f"target: 95th percentile under {TARGET_P95:g} s and every submission graded once: "
        f"{verdict(result['p95'] is not None and result['p95'] < TARGET_P95 and once['ok'])}\n"
    )
    return text


def run(quick=False, out_dir=None, workers=None, scheduler=None, students=None,
        minutes=None, clients=2, poll_interval=POLL_INTERVAL, nbins=None,
        warm_kernels=True) -> dict:
    sizes = dict(QUICK if quick else FULL)
    if students:
        sizes["students"] = students
    if minutes is not None:
        sizes["minutes"] = minutes
    result = rush(workers=workers, scheduler=scheduler, clients=clients,
                  poll_interval=poll_interval, nbins=nbins or (5 if quick else 10),
                  warm_kernels=warm_kernels,
                  log_copy=Path(out_dir or RESULTS) / "rush-serve.log", **sizes)
    result["machine"] = machine()
    print(report(result))
    write_json("rush", result, out_dir)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rush", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['students']} students over {QUICK['minutes']:g} min (smoke test)")
    p.add_argument("--students", type=int, default=None,
                   help=f"simulated students, one submission each (default {FULL['students']})")
    p.add_argument("--minutes", type=float, default=None,
                   help=f"the deadline window they submit in (default {FULL['minutes']:g})")
    p.add_argument("--workers", type=int, default=None, help="the service's --workers")
    p.add_argument("--scheduler", default=None, help="the service's --scheduler")
    p.add_argument("--clients", type=int, default=2,
                   help="processes the students' calls run in (default 2)")
    p.add_argument("--poll-interval", type=float, default=POLL_INTERVAL,
                   help="seconds between a student's fetch_feedback calls "
                        f"(default {POLL_INTERVAL:g})")
    p.add_argument("--bins", type=int, default=None,
                   help="rows of the table over the window (default 10; --quick 5)")
    p.add_argument("--no-warm-kernels", action="store_true",
                   help="the workers start no kernel ahead of need (to compare)")
    p.add_argument("--out-dir", default=None, help="where rush.json goes (bench/results)")
    args = p.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    run(quick=args.quick, out_dir=args.out_dir, workers=args.workers,
        scheduler=args.scheduler, students=args.students, minutes=args.minutes,
        clients=args.clients, poll_interval=args.poll_interval, nbins=args.bins,
        warm_kernels=not args.no_warm_kernels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
