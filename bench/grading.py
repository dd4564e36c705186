"""Grading benchmark: ``python -m autograder grade`` against stock nbgrader.

    python -m bench.grading [--quick] [--assignments A,B,...] [--ks 6,12,24] [--workers 2]

A class of K solution submissions (the release notebook with every solution
cell filled in from the source, :func:`autograder.commands.demo.fill_solutions`) is
written into two identical temporary course directories, made from the
repository's ``source/`` with :func:`autograder.commands.demo.make_course_dir`.  Then,
in the same run:

- **autograder**: ``grade_assignment(dir, assignment, workers=W)``, what
  ``python -m autograder grade ASSIGNMENT [--workers W]`` runs (by default
  with the command's own number of workers), in a fresh Python
  process (interpreter start and imports included), sandboxed: precheck,
  bubblewrap sandbox + kernel start, execution, verification outside the
  kernel, gradebook, feedback HTML, grades.csv;
- **stock**: ``nbgrader autograde ASSIGNMENT``, ``nbgrader generate_feedback
  ASSIGNMENT`` and ``nbgrader export``, one after the other, unsandboxed (the
  hidden cells judge in the kernel, with no RNN_COURSE_GRADING_DIR set, via
  the importable ``autograder`` package).

Every assignment of the course by default, one after another (``--quick``: the
first only; ``--assignments`` picks): the first at K = 6, 12 and 24, the others
at K = 12 (``--ks`` sets them all).  Stock nbgrader
executes every cell; the autograder skips the cells the instructor marked as
no grade's (:mod:`autograder.ungraded`).

Reported, per assignment: wall seconds of each side (per command for stock,
per stage for the autograder from ``GradeReport.stage_seconds``), seconds per
submission, the speed-up, and whether both sides gave every student the same
score; the stages per submission (seconds summed over the submissions, / K:
with W workers they add up to about W times the wall time per submission).
Then one table across the assignments at the largest K: per submission, the
wall time, a worker's time (its stages summed) and its execute stage, each
beside the first assignment's (``rnn_cell``), and stock nbgrader's.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.pipeline.types import STAGES, WORKER_STAGES
from bench import (
    ROOT,
    TARGET_SERIAL_S,
    clean_env,
    course_template,
    loadavg,
    machine,
    median,
    serial_share,
    solution_notebook,
    table,
    verdict,
    write_json,
)

# workers None: the command's default; assignments None: every one, an int: the first ones;
# other_ks: the class sizes of the assignments after the first (unless --ks is given)
FULL = dict(ks=(6, 12, 24), other_ks=(12,), workers=None, reps=3, assignments=None)
QUICK = dict(ks=(1,), other_ks=(1,), workers=1, reps=1, assignments=1)
TARGET_SPEEDUP = 3.0  # issue 15: at K=12 on 2 cores, sandbox included
TARGET_K = 12
FLAT_SLACK = 1.15  # "flat": the largest class costs at most 15% more per submission
TARGET_FLOOR = 1.5  # issue 28: every assignment's worker s/sub within 1.5x of the first's
STAGE_LABELS = {"intake": "intake (read+hash)", "precheck": "precheck", "sanitize": "sanitize",
                "sandbox_start": "sandbox+kernel start",
                "execute": "execution", "verify": "verification", "score": "scoring",
                "gradebook": "gradebook write", "feedback": "feedback"}
STAGE_NAMES = STAGES  # autograder.pipeline.coordinator.report: the stages, in pipeline order


# --------------------------------------------------------------------------- #
# the class
# --------------------------------------------------------------------------- #
def make_class(template: Path, dest: Path, assignment: str, k: int, nb=None) -> list[str]:
    """Copy ``template`` to ``dest`` and hand in ``k`` solution submissions; returns the ids."""
    from autograder.commands.demo import write_submission

    shutil.copytree(template, dest)
    nb = nb if nb is not None else solution_notebook(dest, assignment)
    students = [f"s{i:03d}" for i in range(1, k + 1)]
    for s in students:
        write_submission(dest, s, assignment, nb)
    return students


# --------------------------------------------------------------------------- #
# the two graders
# --------------------------------------------------------------------------- #
def run_autograder(course_dir: Path, assignment: str, workers=None, scheduler=None,
                   log=None, unsafe_no_sandbox=False) -> dict:
    """``grade_assignment`` in a fresh process; returns wall seconds, stages and scores."""
    out = course_dir / ".bench-grade.json"
    cmd = [sys.executable, "-m", "bench.grading", "--child-grade", str(course_dir), assignment,
           "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    if scheduler:
        cmd += ["--scheduler", scheduler]
    if unsafe_no_sandbox:
        cmd += ["--unsafe-no-sandbox"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if log:
        Path(log).write_text(proc.stdout + proc.stderr)
    if proc.returncode not in (0, 1) or not out.exists():
        raise RuntimeError(f"autograder grading failed ({proc.returncode}):\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    data = json.loads(out.read_text())
    data["wall"] = wall
    return data


def _child_grade(course_dir, assignment, workers, scheduler, out, unsafe_no_sandbox=False):
    t0 = time.perf_counter()
    from autograder.pipeline.coordinator.assignment import grade_assignment

    report = grade_assignment(course_dir, assignment, workers=workers, scheduler=scheduler,
                              progress=False, force=True, unsafe_no_sandbox=unsafe_no_sandbox)
    data = {
        "seconds": report.seconds,
        "in_process": time.perf_counter() - t0,
        "stage_seconds": dict(report.stage_seconds),
        "workers": report.workers,
        "scores": {r.student: [r.score, r.max_score] for r in report.results},
        "flags": {r.student: r.flags for r in report.results if r.flags},
        "errors": [r.student for r in report.errors],
    }
    Path(out).write_text(json.dumps(data))
    return 1 if report.errors else 0


def run_stock(course_dir: Path, assignment: str, log=None) -> dict:
    """Stock nbgrader: autograde, generate_feedback, export; returns seconds and scores."""
    env = clean_env()
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    steps = {}
    logs = []
    t_all = time.perf_counter()
    for name, args in (("autograde", ["autograde", assignment]),
                       ("generate_feedback", ["generate_feedback", assignment]),
                       ("export", ["export"])):
        t0 = time.perf_counter()
        proc = subprocess.run([nbgrader, *args], cwd=course_dir, env=env, capture_output=True,
                              text=True)
        steps[name] = time.perf_counter() - t0
        logs.append(f"$ nbgrader {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise RuntimeError(f"nbgrader {name} failed ({proc.returncode}):\n"
                               + (proc.stdout + proc.stderr)[-3000:])
    wall = time.perf_counter() - t_all
    if log:
        Path(log).write_text("\n".join(logs))
    scores = {}
    with open(course_dir / "grades.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["assignment"] == assignment:
                scores[row["student_id"]] = [float(row["score"]), float(row["max_score"])]
    return {"wall": wall, "steps": steps, "scores": scores}


# --------------------------------------------------------------------------- #
# the benchmark
# --------------------------------------------------------------------------- #
def course_assignments() -> list[str]:
    """The course's assignments, in order (``nbgrader_config.py``)."""
    from autograder.course import Course

    return Course(ROOT).assignments


def run(quick=False, assignments=None, ks=None, workers=None, out_dir=None, keep=False,
        reps=None):
    P = QUICK if quick else FULL
    other_ks = tuple(ks or P["other_ks"])
    ks = tuple(ks or P["ks"])
    workers = workers or P["workers"]
    reps = reps or P["reps"]
    if isinstance(assignments, str):
        assignments = [assignments]
    if not assignments:
        every = course_assignments()
        assignments = every[:P["assignments"]] if P["assignments"] else every
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    rows = []
    try:
        template = course_template(assignments)
        for i, assignment in enumerate(assignments):
            rows += _run_assignment(template, work, assignment, other_ks if i else ks, workers,
                                    reps, keep)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    texts = [render([r for r in rows if r["assignment"] == a], a, workers, quick)
             for a in assignments]
    text = "\n".join(texts) + ("\n" + render_summary(rows) if len(assignments) > 1 else "")
    print(text, flush=True)
    data = {"benchmark": "grading", "quick": quick, "assignments": list(assignments),
            "workers": workers, "machine": machine(), "rows": rows,
            "targets": [t for a in assignments
                        for t in targets([r for r in rows if r["assignment"] == a], a)]
            + summary_targets(rows),
            "table": text, "seconds": time.perf_counter() - t_start}
    if keep:
        data["workdir"] = str(work)
    write_json("grading", data, out_dir)
    return data


def _run_assignment(template, work, assignment, ks, workers, reps, keep) -> list[dict]:
    """The rows of one assignment: one per class size K."""
    rows = []
    nb = solution_notebook(template, assignment)
    for k in ks:
        ours_runs, stock_runs, loads = [], [], []
        for rep in range(reps):
            a_dir = work / f"autograder-{assignment}-K{k}-{rep}"
            b_dir = work / f"stock-{assignment}-K{k}-{rep}"
            make_class(template, a_dir, assignment, k, nb)
            make_class(template, b_dir, assignment, k, nb)
            loads.append(loadavg())
            # alternate which side goes first: a machine's drift falls on both
            sides = [("ours", a_dir), ("stock", b_dir)]
            for side, folder in sides if rep % 2 == 0 else sides[::-1]:
                log = work / f"{side}-{assignment}-K{k}-{rep}.log"
                if side == "ours":
                    ours_runs.append(run_autograder(folder, assignment, workers, log=log))
                else:
                    stock_runs.append(run_stock(folder, assignment, log=log))
            if not keep:
                shutil.rmtree(a_dir, ignore_errors=True)
                shutil.rmtree(b_dir, ignore_errors=True)
            print(f"  {assignment} K={k}, run {rep + 1}/{reps}: "
                  f"autograder {ours_runs[-1]['wall']:.1f}s, "
                  f"stock nbgrader {stock_runs[-1]['wall']:.1f}s", flush=True)
        ours = _median_run(ours_runs)
        stock = _median_run(stock_runs)
        same = all(o["scores"] == s["scores"] for o in ours_runs for s in stock_runs)
        row = {"assignment": assignment, "K": k, "workers": workers, "loadavg": median(loads),
               "reps": reps,
               "serial_s_per_sub": serial_share(ours["stage_seconds"], k),
               "ours_s": ours["wall"], "ours_per_sub": ours["wall"] / k,
               "ours_report_s": ours["seconds"],
               "ours_walls": [r["wall"] for r in ours_runs],
               "stock_walls": [r["wall"] for r in stock_runs],
               "stock_s": stock["wall"], "stock_per_sub": stock["wall"] / k,
               "speedup": stock["wall"] / ours["wall"], "same_scores": same,
               "ours_scores": ours["scores"], "stock_scores": stock["scores"],
               "ours_flags": ours["flags"], "ours_errors": ours["errors"],
               "stock_steps": stock["steps"], "stages": ours["stage_seconds"],
               "workers_text": ours["workers"]}
        for st in STAGE_NAMES:  # per submission
            row[f"st_{st}"] = ours["stage_seconds"].get(st, 0.0) / k
        row["worker_per_sub"] = sum(ours["stage_seconds"].get(st, 0.0)
                                    for st in WORKER_STAGES) / k
        for st, v in stock["steps"].items():
            row[f"stock_{st}"] = v / k
        rows.append(row)
    return rows


def _median_run(runs):
    """The run of median wall time (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r["wall"])
    return ordered[(len(ordered) - 1) // 2]


def targets(rows, assignment=""):
    """The targets of one assignment's rows (each named after ``assignment`` when given)."""
    out = []
    at = [r for r in rows if r["K"] == TARGET_K]
    if at:
        r = at[0]
        out.append({"target": f"K={TARGET_K}: autograder >= {TARGET_SPEEDUP:g}x faster than "
                              "stock nbgrader (sandbox included)",
                    "value": r["speedup"], "met": r["speedup"] >= TARGET_SPEEDUP})
        out.append({"target": f"K={TARGET_K}: the coordinator's serial share <= "
                              f"{TARGET_SERIAL_S:g} s per submission",
                    "value": r["serial_s_per_sub"],
                    "met": r["serial_s_per_sub"] <= TARGET_SERIAL_S})
    if len(rows) > 1:
        small, big = min(rows, key=lambda r: r["K"]), max(rows, key=lambda r: r["K"])
        ratio = big["ours_per_sub"] / small["ours_per_sub"]
        out.append({"target": f"autograder cost per submission flat as K grows (s/sub at "
                              f"K={big['K']} <= {FLAT_SLACK:g} x s/sub at K={small['K']})",
                    "value": ratio, "met": ratio <= FLAT_SLACK})
    out.append({"target": "both give every student the same score",
                "value": all(r["same_scores"] for r in rows),
                "met": all(r["same_scores"] for r in rows)})
    if assignment:
        for t in out:
            t["target"] = f"{assignment}: {t['target']}"
    return out


def _largest_k(rows) -> dict[str, dict]:
    """assignment -> its row of the largest class, in the rows' order."""
    out: dict[str, dict] = {}
    for r in rows:
        if r["assignment"] not in out or r["K"] > out[r["assignment"]]["K"]:
            out[r["assignment"]] = r
    return out


def summary_targets(rows):
    """Across assignments (issue 28): each one's worker time per submission within
    :data:`TARGET_FLOOR` x the first assignment's."""
    last = _largest_k(rows)
    if len(last) < 2:
        return []
    first = next(iter(last.values()))
    out = []
    for a, r in list(last.items())[1:]:
        ratio = r["worker_per_sub"] / first["worker_per_sub"]
        out.append({"target": f"{a}: a worker's s/sub <= {TARGET_FLOOR:g} x "
                              f"{first['assignment']}'s (K={r['K']})",
                    "value": ratio, "met": ratio <= TARGET_FLOOR})
    return out


def render_summary(rows):
    """One table across the assignments, at each one's largest K, per submission."""
    last = _largest_k(rows)
    first = next(iter(last.values()))
    table_rows = []
    for r in last.values():
        table_rows.append({
            **r, "x_first": r["ours_per_sub"] / first["ours_per_sub"],
            "worker_x_first": r["worker_per_sub"] / first["worker_per_sub"],
            "exec_per_sub": r["st_execute"]})
    cols = [("assignment", "assignment", ""), ("K", "K", "d"),
            ("autograder s/sub", "ours_per_sub", ".2f"),
            (f"x {first['assignment']}", "x_first", ".2f"),
            ("worker s/sub", "worker_per_sub", ".2f"),
            (f"x {first['assignment']}", "worker_x_first", ".2f"),
            ("execute s/sub", "exec_per_sub", ".2f"),
            ("stock s/sub", "stock_per_sub", ".2f"), ("speed-up", "speedup", ".2f"),
            ("same scores", "same_scores", "")]
    note = ["worker s/sub: the worker's stages (precheck to feedback) summed over the "
            "submissions / K, what a worker spends on one submission.", "", "Targets:"]
    for t in summary_targets(rows):
        note.append(f"  {t['target']}: {t['value']:.2f} -> {verdict(t['met'])}")
    return (table("Grading per submission, every assignment (autograder vs stock nbgrader)",
                  cols, table_rows) + "\n" + "\n".join(note) + "\n")


def linear_fit(xs, ys):
    """(intercept, slope) of the least-squares line through the points."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - slope * mx, slope


def _scores_line(scores):
    vals = sorted({f"{s:g}/{m:g}" for s, m in scores.values()})
    return ", ".join(f"{v} x{sum(1 for s, m in scores.values() if f'{s:g}/{m:g}' == v)}"
                     for v in vals) or "-"


def render(rows, assignment, workers, quick=False):
    cols = [("K", "K", "d"), ("autograder s", "ours_s", ".1f"), ("s/sub", "ours_per_sub", ".2f"),
            ("stock s", "stock_s", ".1f"), ("s/sub", "stock_per_sub", ".2f"),
            ("speed-up", "speedup", ".2f"), ("serial s/sub", "serial_s_per_sub", ".3f"),
            ("same scores", "same_scores", ""),
            ("load", "loadavg", ".1f")]
    stage_cols = [("K", "K", "d")] + [(STAGE_LABELS[s], f"st_{s}", ".1f") for s in STAGE_NAMES]
    stage_cols += [("| nbgrader autograde", "stock_autograde", ".1f"),
                   ("generate_feedback", "stock_generate_feedback", ".1f"),
                   ("export", "stock_export", ".1f")]
    flag = f" --workers {workers}" if workers else ""
    used = sorted({r.get("workers_text", "") for r in rows} - {""})
    note = [f"{assignment}: K solution submissions, two identical course copies; autograder = "
            f"grade_assignment in a fresh process (= python -m autograder grade {assignment}"
            f"{flag}: {', '.join(used) or '?'}), sandboxed;",
            "stock = nbgrader autograde + generate_feedback + export, sequential, unsandboxed. "
            "Wall seconds; load = 1-min load average before the pairs (median).",
            "Scores (autograder | stock):"]
    for r in rows:
        note.append(f"  K={r['K']}: {_scores_line(r['ours_scores'])} | "
                    f"{_scores_line(r['stock_scores'])}"
                    + ("" if not r["ours_flags"] else f"  flags: {r['ours_flags']}"))
    for r in rows:
        if r.get("reps", 1) > 1:
            note.append(f"  K={r['K']}, {r['reps']} runs each (the table: medians), wall s: "
                        f"autograder {', '.join(f'{w:.1f}' for w in r['ours_walls'])} | "
                        f"stock {', '.join(f'{w:.1f}' for w in r['stock_walls'])}")
    if len(rows) > 1:
        for side, key in (("autograder", "ours_s"), ("stock", "stock_s")):
            fixed, marginal = linear_fit([r["K"] for r in rows], [r[key] for r in rows])
            note.append(f"Least-squares fit, {side}: wall = {fixed:.1f} s + K x {marginal:.2f} s")
    note += ["", "Targets:"]
    for t in targets(rows):
        v = t["value"]
        val = (f"{v:.2f}x" if "faster" in t["target"] else
               f"{v:.3f} s" if "serial" in t["target"] else
               f"{v:.2f}" if isinstance(v, float) else str(v))
        note.append(f"  {t['target']}: {val} -> {verdict(t['met'])}")
    main = table(f"Grading: autograder vs stock nbgrader ({assignment})", cols, rows)
    stages = table("Per-stage seconds per submission (autograder: summed over the submissions, "
                   "/ K; stock: per command, / K)", stage_cols, rows)
    return main + "\n" + stages + "\n" + "\n".join(note) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="K=1, one worker (smoke test)")
    p.add_argument("--assignments", default=None,
                   help="assignments, comma-separated (default: every one; --quick: the first)")
    p.add_argument("--ks", default=None, help="class sizes, comma-separated (6,12,24)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the temporary course folders")
    p.add_argument("--reps", type=int, default=None,
                   help="pairs of runs per class size, medians reported (3)")
    p.add_argument("--out-dir", default=None)
    p.add_argument("--child-grade", nargs=2, metavar=("COURSE_DIR", "ASSIGNMENT"),
                   help=argparse.SUPPRESS)
    p.add_argument("--scheduler", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--unsafe-no-sandbox", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_grade:
        return _child_grade(*args.child_grade, args.workers, args.scheduler, args.out,
                            args.unsafe_no_sandbox)
    ks = tuple(int(k) for k in args.ks.split(",")) if args.ks else None
    assignments = args.assignments.split(",") if args.assignments else None
    run(args.quick, assignments, ks, args.workers, args.out_dir, args.keep, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
