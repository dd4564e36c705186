"""Scale benchmark: grading throughput by executor, and a projection to a large class.

    python -m bench.scale [--quick] [--assignment rnn_cell] [--k 12]

The same class (K solution submissions of one assignment, as in
:mod:`bench.grading`) is graded, each time in a fresh copy of the course
directory, by ``grade_assignment`` (= ``python -m autograder grade``) in a
fresh process:

- with 1 local worker process, and with 2 (``--workers 1`` / ``--workers 2``);
- on a ``dask.distributed.LocalCluster`` of 2 single-threaded worker
  processes on the loopback interface (``--scheduler tcp://127.0.0.1:PORT``),
  the cluster started beforehand (its start-up time is reported apart), then
  a second class on the same cluster, whose workers have already imported
  everything (a long-lived cluster's steady state).

Reported: wall seconds, submissions per minute, worker-seconds per submission
(grading seconds x workers / K, the command's start-up apart), and the
coordinator's serial share (precheck +
gradebook write per submission: the part that does not spread over workers).
From these the benchmark prints a projection for a 1000-student class
(Amdahl: ``max(1000 * worker_s / cores, 1000 * coordinator_s)`` plus the fixed
cost of one run), which ``docs/scale.md`` turns into prose.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import (
    clean_env,
    course_template,
    loadavg,
    machine,
    solution_notebook,
    table,
    write_json,
)

FULL = dict(k=12)
QUICK = dict(k=2)
CLASS = 1000
CLUSTER_CORES = (16, 64, 256)


def start_cluster(n_workers=2):
    """A LocalCluster of single-threaded worker processes on 127.0.0.1 (no dashboard)."""
    from distributed import LocalCluster

    env = {k: v for k, v in clean_env().items()
           if k in ("PATH", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MPLBACKEND")}
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None, env=env)


def _quiet_close(cluster):
    """Close the cluster without the nanny's 'still alive, killing' warnings."""
    import logging

    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        cluster.close()
    finally:
        log.setLevel(level)


def run(quick=False, assignment="rnn_cell", k=None, out_dir=None):
    from bench.grading import make_class, run_autograder

    t_start = time.perf_counter()
    k = k or (QUICK if quick else FULL)["k"]
    template = course_template([assignment])
    nb = solution_notebook(template, assignment)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    rows = []
    cluster = None

    def grade(label, workers, scheduler=None, start_s=None):
        course = work / label.replace(",", "").replace("(", "").replace(")", "").replace(" ", "-")
        make_class(template, course, assignment, k, nb)
        la = loadavg()
        res = run_autograder(course, assignment, workers=None if scheduler else workers,
                             scheduler=scheduler)
        st = res["stage_seconds"]
        rows.append({
            "executor": label, "workers": workers, "K": k, "loadavg": la,
            "wall": res["wall"], "per_min": 60.0 * k / res["wall"],
            "grading_s": res["seconds"], "startup_s": res["wall"] - res["seconds"],
            "worker_s_per_sub": res["seconds"] * workers / k,
            "coordinator_s_per_sub": (st.get("precheck", 0.0) + st.get("gradebook", 0.0)) / k,
            "cluster_start_s": start_s,
            "all_full_marks": all(s == m for s, m in res["scores"].values()),
            "errors": res["errors"], "stages": st, "workers_text": res["workers"]})
        print(f"  {label}: {res['wall']:.1f}s for {k}", flush=True)

    try:
        grade("local, 1 worker", 1)
        grade("local, 2 workers", 2)
        t0 = time.perf_counter()
        cluster = start_cluster(2)
        start_s = time.perf_counter() - t0
        grade("dask LocalCluster, 2 procs", 2, cluster.scheduler_address, start_s)
        # a long-lived cluster: its workers have imported everything by now
        grade("dask, same cluster (warm)", 2, cluster.scheduler_address)
    finally:
        if cluster is not None:
            _quiet_close(cluster)
        shutil.rmtree(work, ignore_errors=True)
    proj = projection(rows)
    text = render(rows, assignment, proj)
    print(text, flush=True)
    data = {"benchmark": "scale", "quick": quick, "assignment": assignment, "K": k,
            "machine": machine(), "rows": rows, "projection": proj, "table": text,
            "seconds": time.perf_counter() - t_start}
    write_json("scale", data, out_dir)
    return data


def projection(rows):
    """A 1000-student class on C worker cores: Amdahl with the coordinator's serial share.

    minutes = (fixed + max(1000 * worker_s / C, 1000 * coordinator_s)) / 60, for the
    smallest coordinator share measured (the 1-worker run: the coordinator has a core
    to itself, as on a cluster) and the largest (sharing the cores with the workers).
    """
    by = {r["executor"]: r for r in rows}
    # a class-sized run is a long-lived cluster's steady state: the warm row
    base = by.get("dask, same cluster (warm)") or by.get("local, 2 workers") or rows[-1]
    worker_s = base["worker_s_per_sub"]
    coord = sorted(r["coordinator_s_per_sub"] for r in rows)
    fixed = base["startup_s"]  # interpreter start and imports of the grading command
    out = {"class": CLASS, "base": base["executor"], "worker_s_per_sub": worker_s,
           "coordinator_s_per_sub": [coord[0], coord[-1]], "fixed_s": fixed,
           "coordinator_bound_per_min": [60.0 / c if c else None for c in (coord[0], coord[-1])],
           "cores": {}}
    for cores in CLUSTER_CORES:
        ts = [fixed + max(CLASS * worker_s / cores, CLASS * c) for c in (coord[0], coord[-1])]
        out["cores"][cores] = {"minutes": [t / 60.0 for t in ts],
                               "per_min": [CLASS / t * 60.0 for t in ts]}
    return out


def render(rows, assignment, proj):
    cols = [("executor", "executor", ""), ("K", "K", "d"), ("wall s", "wall", ".1f"),
            ("subs/min", "per_min", ".1f"), ("start-up s", "startup_s", ".1f"),
            ("worker-s/sub", "worker_s_per_sub", ".2f"),
            ("coordinator s/sub", "coordinator_s_per_sub", ".2f"),
            ("cluster start s", "cluster_start_s", ".1f"),
            ("all full marks", "all_full_marks", ""), ("load", "loadavg", ".1f")]
    p = proj
    c_lo, c_hi = p["coordinator_s_per_sub"]
    b_hi, b_lo = p["coordinator_bound_per_min"]
    lines = [f"{assignment}: K solution submissions, grade_assignment in a fresh process, "
             "sandboxed; a fresh copy of the class per executor.",
             "worker-s/sub = (wall - start-up) x workers / K; coordinator s/sub = "
             "(precheck + gradebook write) / K, the serial part.",
             "",
             f"Projection to {p['class']} students: minutes = (fixed + max({p['class']} x "
             f"worker-s/sub / cores, {p['class']} x coordinator s/sub)) / 60",
             f"  worker cost {p['worker_s_per_sub']:.2f} core-s/submission ('{p['base']}'), "
             f"fixed {p['fixed_s']:.0f} s per run;",
             f"  coordinator {c_lo:.2f}-{c_hi:.2f} s/submission (own core - sharing the cores), "
             "which caps one coordinator at "
             + (f"{b_hi:.0f}-{b_lo:.0f}" if b_hi and b_lo else "-") + " submissions/min"]
    for cores, v in p["cores"].items():
        lo, hi = v["minutes"]
        lines.append(f"  {cores:>4} worker cores: {lo:.1f}-{hi:.1f} min")
    return table("Scale: grading throughput by executor", cols, rows, "\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="K=2 (smoke test)")
    p.add_argument("--assignment", default="rnn_cell")
    p.add_argument("--k", type=int, default=None, help="class size (12)")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    run(args.quick, args.assignment, args.k, args.out_dir)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
