"""The deadline rush: submit-to-feedback times under a burst, with the grading service running.

    python -m bench.rush [--quick] [--students 40] [--spread 60] [--workers N]
        [--scheduler ADDR] [--no-warm-kernels] [--out-dir DIR]

A course with ``rnn_cell`` released (:func:`bench.course_template`), an nbgrader
exchange in a temporary folder, and ``python -m autograder serve`` running on
them (local workers, or ``--scheduler``; sandboxed; polling the inbound folder
every second).  Then ``--students`` submissions arrive through the exchange's
inbound folder, evenly spread over ``--spread`` seconds, each as ``nbgrader
submit`` leaves one (folder name, notebook, ``timestamp.txt``,
``submission_secret.txt``: :func:`exchange_hub.drop_submission`; a quarter of
them with only some solutions filled in).  For each student the time from the
moment their submission is in the inbound folder to the moment their feedback
is visible in the exchange (the file ``nbgrader fetch_feedback`` would copy,
named from the submission's secret) is measured.

``--no-warm-kernels`` turns off the kernels the service's workers start ahead
of need (``c.WarmKernels.enabled = False``, :mod:`autograder.pipeline.worker.warm`),
to compare.

Printed: median, 95th percentile and worst of those times, the whole rush's
wall time, the service's rounds, and the machine's 1-minute load before and
after (the machine may be shared).  The target: a 95th percentile under 90 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from autograder.pipeline.coordinator.runner import default_workers
from bench import (
    ROOT,
    clean_env,
    course_template,
    loadavg,
    machine,
    solution_notebook,
    table,
    verdict,
    write_json,
)

sys.path.insert(0, str(ROOT / "tests"))
import exchange_hub as eh  # noqa: E402  (the tests' one-machine hub: one home)

ASSIGNMENT = "rnn_cell"
COURSE_ID = "rnn-course-rush"
TARGET_P95 = 90.0
FULL = dict(students=40, spread=60.0)
QUICK = dict(students=3, spread=3.0)


def percentile(values, q):
    """The ``q`` quantile (nearest rank) of ``values``."""
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


class Service:
    """``python -m autograder serve`` on the rush's course, as its own process group."""

    def __init__(self, course: Path, env: dict, log: Path, workers=None, scheduler=None):
        cmd = [sys.executable, "-m", "autograder", "serve", "--course-dir", str(course),
               "--bind", "127.0.0.1:0", "--poll", "1"]
        if workers:
            cmd += ["--workers", str(workers)]
        if scheduler:
            cmd += ["--scheduler", scheduler]
        self.log = log
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        self.port = None
        while self.port is None:
            m = re.search(r" status +http://127\.0\.0\.1:(\d+)/", log.read_text())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/status", timeout=30) as r:
            return json.load(r)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
        finally:
            self._fh.close()


def rush(students=40, spread=60.0, workers=None, scheduler=None, timeout=900.0,
         warm_kernels=True) -> dict:
    """Run one rush; the measured times and facts (see the module docstring)."""
    template = course_template([ASSIGNMENT])
    hub = eh.make_hub(lambda path: shutil.copytree(template, path), course_id=COURSE_ID)
    try:
        course = hub["course"]
        if not warm_kernels:
            with open(course / "nbgrader_config.py", "a") as fh:
                fh.write("\nc.WarmKernels.enabled = False\n")
        inbound = eh.inbound(hub)
        inbound.mkdir(parents=True)
        inbound.chmod(0o2733)
        env = dict(clean_env(), RNN_COURSE_EXCHANGE=str(hub["exchange"]), RNN_COURSE_ID=COURSE_ID)
        full = solution_notebook(course, ASSIGNMENT)
        partial = solution_notebook(course, ASSIGNMENT, count=2)
        service = Service(course, env, hub["base"] / "serve.log", workers, scheduler)
        load_before = loadavg()
        names = [f"r{i:03d}" for i in range(students)]
        submitted: dict[str, float] = {}
        visible: dict[str, float] = {}
        expect: dict[str, Path] = {}
        started = time.monotonic()
        try:
            i = 0
            while len(visible) < students:
                now = time.monotonic()
                while i < students and now - started >= i * spread / students:
                    nb = partial if i % 4 == 3 else full
                    entry = eh.drop_submission(hub, names[i], nb)
                    submitted[names[i]] = time.monotonic()
                    expect[names[i]] = eh.feedback_folder(hub) / eh.feedback_name(entry)
                    i += 1
                for name, path in expect.items():
                    if name not in visible and path.is_file():
                        visible[name] = time.monotonic()
                if now - started > timeout:
                    raise RuntimeError(f"only {len(visible)} of {students} feedbacks visible "
                                       f"after {timeout:g} s:\n{service.log.read_text()[-3000:]}")
                if service.proc.poll() is not None:
                    raise RuntimeError(f"the service stopped:\n{service.log.read_text()[-3000:]}")
                time.sleep(0.1)
            wall = time.monotonic() - started
            status = service.status()
        finally:
            load_after = loadavg()
            service.stop()
        log = service.log.read_text()
        rounds = [int(n) for n in re.findall(r" grading +\S+: (\d+) (?:submission\(s\)|more)",
                                              log)]
        waits = {n: visible[n] - submitted[n] for n in names}
        return {
            "students": students, "spread_s": spread, "workers": workers or default_workers(),
            "scheduler": scheduler, "warm_kernels": warm_kernels, "wall_s": round(wall, 1),
            "median_s": round(percentile(waits.values(), 0.5), 1),
            "p95_s": round(percentile(waits.values(), 0.95), 1),
            "worst_s": round(max(waits.values()), 1),
            "waits_s": {n: round(w, 2) for n, w in waits.items()},
            "rounds": status["throughput"]["rounds"], "handed_out": rounds,
            "graded": status["throughput"]["graded"],
            "failures": len(status["failures"]),
            "scores": sorted({(r["score"], r["max_score"]) for r in status["students"]}),
            "load_before": load_before, "load_after": load_after,
        }
    finally:
        shutil.rmtree(hub["base"], ignore_errors=True)


def run(quick=False, out_dir=None, workers=None, scheduler=None, students=None,
        spread=None, warm_kernels=True) -> dict:
    sizes = dict(QUICK if quick else FULL)
    if students:
        sizes["students"] = students
    if spread is not None:
        sizes["spread"] = spread
    result = rush(workers=workers, scheduler=scheduler, warm_kernels=warm_kernels, **sizes)
    result["machine"] = machine()
    rows = [{"what": "submit -> feedback visible", "median": result["median_s"],
             "p95": result["p95_s"], "worst": result["worst_s"]}]
    note = (f"{result['students']} rnn_cell submissions over {result['spread_s']:g} s, "
            f"graded by `python -m autograder serve` "
            f"({'dask ' + scheduler if scheduler else str(result['workers']) + ' local workers'}, "
            f"sandboxed, kernels started ahead: {'yes' if warm_kernels else 'no'}) "
            f"in {result['wall_s']:g} s; {result['rounds']} grading round(s), "
            f"handing out {', '.join(map(str, result['handed_out']))} submission(s) at a time; "
            f"1-minute load {result['load_before']} before, {result['load_after']} after.\n"
            f"target: 95th percentile under {TARGET_P95:g} s: "
            f"{verdict(result['p95_s'] < TARGET_P95)}")
    print(table("Deadline rush (seconds)", [("", "what", ""), ("median", "median", ".1f"),
                                             ("p95", "p95", ".1f"), ("worst", "worst", ".1f")],
                rows, note))
    write_json("rush", result, out_dir)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rush", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 submissions over 3 s (smoke test)")
    p.add_argument("--students", type=int, default=None, help="submissions (default 40)")
    p.add_argument("--spread", type=float, default=None,
                   help="seconds over which they arrive (default 60)")
    p.add_argument("--workers", type=int, default=None, help="the service's --workers")
    p.add_argument("--scheduler", default=None, help="the service's --scheduler")
    p.add_argument("--no-warm-kernels", action="store_true",
                   help="the workers start no kernel ahead of need (to compare)")
    p.add_argument("--out-dir", default=None, help="where rush.json goes (bench/results)")
    args = p.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    run(quick=args.quick, out_dir=args.out_dir, workers=args.workers,
        scheduler=args.scheduler, students=args.students, spread=args.spread,
        warm_kernels=not args.no_warm_kernels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
