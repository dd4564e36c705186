"""Scale benchmark: grading throughput by worker count and executor, on this machine.

    python -m bench.scale [--quick] [--workers 1,2,4] [--k K] [--no-dask]
                          [--assignment rnn_cell] [--markdown FILE] [--out-dir DIR]

The same class (K solution submissions of one assignment, as in
:mod:`bench.grading`) is graded by ``grade_assignment`` (= ``python -m
autograder grade``) in a fresh process, each time in a fresh copy of the course
directory, for each worker count N:

- by N local worker processes (``--workers N``);
- on a ``dask.distributed.LocalCluster`` of N single-threaded worker processes
  on the loopback interface (``--scheduler tcp://127.0.0.1:PORT``), the
  cluster started beforehand (its start-up time is reported apart), then a
  second class on the same cluster, whose workers have already imported
  everything (a long-lived cluster's steady state: the "warm" row).  Skipped,
  with the reason, when ``distributed`` does not import, or with ``--no-dask``.

The worker counts are 1, 2, 4, 8, ... up to the machine's last count: all its
cores on one or two, ``cores - 1`` above that (the coordinator keeps a core),
plus :data:`TARGET_WORKERS` where the machine has more cores than that (the
efficiency target's count).  K defaults to enough submissions to keep every
worker busy.  ``--quick``: K=2, counts 1 and 2, dask at 2 only.

Reported per row: wall seconds (the whole command, interpreter start
included), submissions per minute, speed-up over the 1-worker local row,
parallel efficiency (speed-up / workers), the coordinator's serial share per
submission (its own stages, :data:`autograder.pipeline.types.COORDINATOR_STAGES`,
summed over the class / K), whether every student got the same full score, and
the 1-minute load average before the row.  From the largest local row the
benchmark projects a 1000-student class on more cores (Amdahl, pipelined: the
workers' share spreads over the cores, the coordinator's does not).  The table
is also written as markdown (``--markdown FILE``, and ``markdown`` in the
JSON) for ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from autograder.pipeline.types import COORDINATOR_STAGES
from bench import (
    TARGET_SERIAL_S,
    clean_env,
    course_template,
    describe_machine,
    fmt,
    loadavg,
    machine,
    serial_share,
    solution_notebook,
    table,
    verdict,
    write_json,
)

MIN_K = 12
"""The smallest full-run class (``bench.grading``'s target class)."""
K_PER_WORKER = 3
"""Default K = max(MIN_K, K_PER_WORKER x the largest worker count): every worker stays busy."""
QUICK = dict(k=2, workers=(1, 2))
CLASS = 1000
CLUSTER_CORES = (16, 64, 256)
TARGET_WORKERS = 15
TARGET_EFFICIENCY = 0.80
"""Issue 15: at least 80% parallel efficiency at 15 workers, on a machine with more cores."""

LOCAL, DASK, WARM = "local", "dask", "dask (warm)"
"""The executors of the rows: local process pool, a fresh LocalCluster, the same again."""


# --------------------------------------------------------------------------- #
# what to run
# --------------------------------------------------------------------------- #
def default_workers(cores):
    """1, 2, 4, ... doubling, up to the last count: ``cores`` on one or two cores,
    ``cores - 1`` above (the coordinator keeps a core); :data:`TARGET_WORKERS` added
    where the last count exceeds it."""
    top = cores - 1 if cores > 2 else max(cores, 1)
    counts, n = [], 1
    while n < top:
        counts.append(n)
        n *= 2
    counts.append(top)
    if top > TARGET_WORKERS:
        counts.append(TARGET_WORKERS)
    return sorted(set(counts))


def default_k(counts):
    return max(MIN_K, K_PER_WORKER * max(counts))


def dask_missing():
    """None when ``distributed`` imports, else why not (one line)."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        return f"distributed is not importable ({exc})"
    return None


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


# --------------------------------------------------------------------------- #
# the run
# --------------------------------------------------------------------------- #
def run(quick=False, assignment="rnn_cell", k=None, out_dir=None, workers=None, dask=True,
        markdown=None):
    from bench.grading import make_class, run_autograder

    t_start = time.perf_counter()
    info = machine()
    cores = info["cores_usable"]
    counts = sorted(set(workers)) if workers else list(
        QUICK["workers"] if quick else default_workers(cores))
    k = k or (QUICK["k"] if quick else default_k(counts))
    skipped = None if dask else "--no-dask"
    skipped = skipped or dask_missing()
    dask_counts = [] if skipped else [max(counts)] if quick else counts
    template = course_template([assignment])
    nb = solution_notebook(template, assignment)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    rows = []

    def grade(executor, n, scheduler=None, start_s=None):
        course = work / ("".join(c if c.isalnum() else "-" for c in executor) + f"-{n}")
        make_class(template, course, assignment, k, nb)
        la = loadavg()
        try:
            res = run_autograder(course, assignment, workers=None if scheduler else n,
                                 scheduler=scheduler)
        finally:
            shutil.rmtree(course, ignore_errors=True)  # K x rows copies add up on big machines
        st = res["stage_seconds"]
        scores = res["scores"]
        rows.append({
            "executor": executor, "workers": n, "K": k, "loadavg": la,
            "wall": res["wall"], "per_min": 60.0 * k / res["wall"],
            "grading_s": res["seconds"], "startup_s": res["wall"] - res["seconds"],
            "worker_s_per_sub": res["seconds"] * n / k,
            "coordinator_s_per_sub": serial_share(st, k),
            "cluster_start_s": start_s,
            "same_full_score": (not res["errors"] and len(scores) == k
                                and len({tuple(v) for v in scores.values()}) == 1
                                and all(s == m for s, m in scores.values())),
            "scores": sorted({f"{s:g}/{m:g}" for s, m in scores.values()}),
            "errors": res["errors"], "stages": st, "workers_text": res["workers"]})
        print(f"  {executor}, {n} worker(s): {res['wall']:.1f}s for {k}", flush=True)

    print(f"bench.scale on {describe_machine(info)}: workers {counts}, K={k}"
          + (f"; dask at {dask_counts}" if dask_counts else f"; no dask rows ({skipped})"),
          flush=True)
    try:
        for n in counts:
            grade(LOCAL, n)
            if n not in dask_counts:
                continue
            t0 = time.perf_counter()
            cluster = start_cluster(n)
            try:
                grade(DASK, n, cluster.scheduler_address, time.perf_counter() - t0)
                # a long-lived cluster: its workers have imported everything by now
                grade(WARM, n, cluster.scheduler_address)
            finally:
                _quiet_close(cluster)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    add_speedups(rows)
    proj = projection(rows)
    tgts = targets(rows, cores)
    notes = notes_for(counts, cores, COORDINATOR_STAGES, skipped)
    text = render(rows, assignment, proj, tgts, notes, info)
    md = render_markdown(rows, assignment, tgts, notes, info, proj)
    print(text, flush=True)
    if markdown:
        Path(markdown).write_text(md)
    data = {"benchmark": "scale", "quick": quick, "assignment": assignment, "K": k,
            "workers": counts, "dask_skipped": skipped,
            "coordinator_stages": list(COORDINATOR_STAGES),
            "machine": info, "rows": rows, "projection": proj, "targets": tgts,
            "table": text, "markdown": md, "seconds": time.perf_counter() - t_start}
    write_json("scale", data, out_dir)
    return data


def add_speedups(rows):
    """Speed-up over the 1-worker local row and parallel efficiency, in place (None without
    that row)."""
    base = next((r for r in rows if r["executor"] == LOCAL and r["workers"] == 1), None)
    for r in rows:
        r["speedup"] = r["per_min"] / base["per_min"] if base else None
        r["efficiency"] = r["speedup"] / r["workers"] if base else None
    return rows


def notes_for(counts, cores, stages, skipped):
    """The lines under the table that say how it was measured."""
    top = max(counts)
    out = [f"wall s: the whole grading command (interpreter start included); speed-up: "
           f"over the 1-worker local row; efficiency = speed-up / workers; serial s/sub = "
           f"coordinator's ({' + '.join(stages)}) seconds / K; load = 1-min load average "
           "before the row."]
    if cores > 2 and top < cores:
        out.append(f"Largest count {top} on {cores} cores: the coordinator keeps a core.")
    elif top >= cores:
        out.append(f"Largest count {top} on {cores} cores: the workers share the cores with "
                   "the coordinator.")
    out.append(f"dask rows skipped: {skipped}." if skipped else
               "dask: a LocalCluster of N single-threaded worker processes, started before "
               "its row (cluster start s, apart); dask (warm): a second class on it.")
    return out


# --------------------------------------------------------------------------- #
# the projection and the targets
# --------------------------------------------------------------------------- #
def projection(rows):
    """A 1000-student class on C worker cores, from the largest local row.

    minutes = (fixed + max(1000 x worker-s/sub / C, 1000 x serial s/sub)) / 60: the
    workers' share spreads over C cores, the coordinator's serial share does not (it
    overlaps with the workers, so the larger of the two bounds the run); fixed is the
    grading command's start-up.
    """
    local = [r for r in rows if r["executor"] == LOCAL] or rows
    base = max(local, key=lambda r: r["workers"])
    worker_s, coord, fixed = (base["worker_s_per_sub"], base["coordinator_s_per_sub"],
                              base["startup_s"])
    out = {"class": CLASS, "base": f"{base['executor']}, {base['workers']} workers",
           "worker_s_per_sub": worker_s, "coordinator_s_per_sub": coord, "fixed_s": fixed,
           "coordinator_bound_per_min": 60.0 / coord if coord else None,
           "cores_to_saturate": worker_s / coord if coord else None, "cores": {}}
    for cores in CLUSTER_CORES:
        t = fixed + max(CLASS * worker_s / cores, CLASS * coord)
        out["cores"][cores] = {"minutes": t / 60.0, "per_min": CLASS / t * 60.0}
    return out


def targets(rows, cores):
    """Issue 15's two targets on the measured rows (``met`` None where not measurable)."""
    out = []
    name = (f"parallel efficiency >= {TARGET_EFFICIENCY:.0%} at {TARGET_WORKERS} workers "
            "(on more cores than that)")
    for executor in (LOCAL, WARM):
        r = next((r for r in rows if r["executor"] == executor
                  and r["workers"] == TARGET_WORKERS), None)
        if cores <= TARGET_WORKERS:
            out.append({"target": name, "value": None, "met": None,
                        "why": f"not measurable here ({cores} cores)"})
            break
        if r is None or r["efficiency"] is None:
            if executor == LOCAL:
                out.append({"target": f"{name}, {executor}", "value": None, "met": None,
                            "why": f"not measured (no {TARGET_WORKERS}-worker or 1-worker "
                                   "local row)"})
            continue
        out.append({"target": f"{name}, {executor}", "value": r["efficiency"],
                    "met": r["efficiency"] >= TARGET_EFFICIENCY})
    local = [r for r in rows if r["executor"] == LOCAL]
    if local:
        base = max(local, key=lambda r: r["workers"])
        v = base["coordinator_s_per_sub"]
        out.append({"target": f"coordinator serial share <= {TARGET_SERIAL_S:g} s/submission "
                              f"(local, {base['workers']} workers)",
                    "value": v, "met": v <= TARGET_SERIAL_S})
    return out


def _target_lines(tgts):
    lines = []
    for t in tgts:
        if t["met"] is None:
            lines.append(f"{t['target']}: {t['why']}")
        else:
            v = t["value"]
            val = f"{v:.0%}" if "efficiency" in t["target"] else f"{v:.3f} s"
            lines.append(f"{t['target']}: {val} -> {verdict(t['met'])}")
    return lines


# --------------------------------------------------------------------------- #
# output
# --------------------------------------------------------------------------- #
COLUMNS = [("executor", "executor", ""), ("workers", "workers", "d"), ("K", "K", "d"),
           ("wall s", "wall", ".1f"), ("subs/min", "per_min", ".1f"),
           ("speed-up", "speedup", ".2f"), ("efficiency", "efficiency", ".0%"),
           ("serial s/sub", "coordinator_s_per_sub", ".3f"),
           ("cluster start s", "cluster_start_s", ".1f"),
           ("same full score", "same_full_score", ""), ("load", "loadavg", ".2f")]


def _title(assignment, rows):
    return (f"Scale: {assignment}, K={rows[0]['K'] if rows else '-'} solution submissions, "
            "sandboxed, a fresh copy of the class per row")


def render(rows, assignment, proj, tgts, notes, info):
    p = proj
    bound = p["coordinator_bound_per_min"]
    lines = [f"Machine: {describe_machine(info)}; load at start "
             f"{info['loadavg_at_start'][0]:.2f}.", *notes, "", "Targets:"]
    lines += ["  " + t for t in _target_lines(tgts)]
    lines += ["",
              f"Projection to {p['class']} students ({p['base']}): minutes = (fixed + "
              f"max({p['class']} x worker-s/sub / cores, {p['class']} x serial s/sub)) / 60",
              f"  worker cost {p['worker_s_per_sub']:.2f} core-s/submission, serial share "
              f"{p['coordinator_s_per_sub']:.3f} s/submission (one coordinator caps a run at "
              + (f"{bound:.0f} submissions/min, reached at about {p['cores_to_saturate']:.0f} "
                 "worker cores)" if bound else "- submissions/min)")
              + f", fixed {p['fixed_s']:.1f} s per run"]
    for cores, v in p["cores"].items():
        lines.append(f"  {cores:>4} worker cores: {v['minutes']:.1f} min "
                     f"({v['per_min']:.0f} submissions/min)")
    return table(_title(assignment, rows), COLUMNS, rows, "\n".join(lines))


def projection_line(proj):
    """The projection in one sentence (for the markdown)."""
    p, bound = proj, proj["coordinator_bound_per_min"]
    cores = ", ".join(f"{v['minutes']:.1f} min on {c}" for c, v in p["cores"].items())
    return (f"Projection to {p['class']} students from the '{p['base']}' row (Amdahl: "
            f"{p['worker_s_per_sub']:.2f} worker core-s and {p['coordinator_s_per_sub']:.3f} "
            f"serial s per submission, {p['fixed_s']:.1f} s fixed): {cores} worker cores"
            + (f"; one coordinator caps a run at {bound:.0f} submissions/min." if bound else "."))


def render_markdown(rows, assignment, tgts, notes, info, proj=None):
    """The table as markdown, with the machine, the targets and the projection: verbatim
    for docs/."""
    head = "| " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    sep = "| " + " | ".join("---" for _ in COLUMNS) + " |"
    body = ["| " + " | ".join(fmt(r.get(key), spec) for _, key, spec in COLUMNS) + " |"
            for r in rows]
    out = [f"{_title(assignment, rows)}; measured on {describe_machine(info)}, 1-min load "
           f"{info['loadavg_at_start'][0]:.2f} at start.", "", head, sep, *body, ""]
    out += ["- " + n for n in notes] + ["- Target: " + t for t in _target_lines(tgts)]
    if proj:
        out.append("- " + projection_line(proj))
    return "\n".join(out) + "\n"


def _counts(text):
    try:
        counts = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        msg = f"not a comma-separated list of integers: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be >= 1: {text!r}")
    return counts


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return n


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"K={QUICK['k']}, workers 1 and 2, dask at 2 only (smoke test)")
    p.add_argument("--workers", type=_counts, default=None,
                   help="comma-separated worker counts (1,2,4,... up to this machine's cores)")
    p.add_argument("--k", type=_positive, default=None,
                   help=f"class size (max({MIN_K}, {K_PER_WORKER} x the largest worker count))")
    p.add_argument("--no-dask", action="store_true", help="local worker rows only")
    p.add_argument("--assignment", default="rnn_cell")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help="also write the table as markdown to FILE")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    run(args.quick, args.assignment, args.k, args.out_dir, workers=args.workers,
        dask=not args.no_dask, markdown=args.markdown)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
