"""Notebook benchmark: every instructor notebook run headless, and grading one submission.

    python -m bench.notebooks [--quick] [--assignments A,B,...]

Every assignment of the course (``c.RnnCourse.assignments`` in ``nbgrader_config.py``)
by default; ``--quick``: the first one only.

1. **Instructor notebooks**: ``source/<a>/<a>.ipynb`` (solutions and hidden
   tests) executed top to bottom by nbclient in a fresh ``python3`` kernel, in
   a temporary copy of its folder, with ``RNN_COURSE_STATIC_WIDGETS=1`` (what a
   headless run uses: widgets drawn once, statically) and ``MPLBACKEND=Agg``.
   Wall time includes the kernel start; "cells" is the sum of the cells'
   execution times.  Peak memory is the kernel's own peak RSS
   (``getrusage(RUSAGE_SELF).ru_maxrss``, read by one extra cell appended in
   memory after the last cell).
2. **Grading one submission** of each assignment: a solution submission (the
   release with every solution cell filled in, plus the same extra cell at the
   end) graded by ``grade_assignment(workers=1)`` in a fresh process, sandbox
   included; the peak RSS is the grading kernel's, read from the autograded
   notebook.

Targets: every notebook <= 30 s and <= 500 MB; grading one ``lstm``
submission <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.course import Course
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

# The course's assignments, in order: read from nbgrader_config.py, written nowhere else.
ASSIGNMENTS = tuple(Course(ROOT).assignments)
QUICK_ASSIGNMENTS = ASSIGNMENTS[:1]
TARGET_NOTEBOOK_S = 30.0
TARGET_NOTEBOOK_MB = 500.0
TARGET_GRADE_LSTM_S = 60.0
MARK = "BENCH-KERNEL-MAXRSS-KB"
MAXRSS_CELL = ("import resource as _r\n"
               f"print('{MARK}', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss)")
# The instructor run also writes the figure to a file in the notebook's folder: on a
# loaded machine the last cell's stdout has been seen to miss the executed notebook.
MAXRSS_FILE = f"{MARK}.txt"
MAXRSS_FILE_CELL = (MAXRSS_CELL + "\n"
                    f"open('{MAXRSS_FILE}', 'w').write(str(_r.getrusage(_r.RUSAGE_SELF)"
                    ".ru_maxrss))")


def _maxrss_mb(nb) -> float | None:
    """The kernel's peak RSS (MB) printed by the appended cell, if it ran."""
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            m = re.search(MARK + r" (\d+)", out.get("text", "") if out.get("name") else "")
            if m:
                return int(m.group(1)) / 1024
    return None


# --------------------------------------------------------------------------- #
# 1. instructor notebooks
# --------------------------------------------------------------------------- #
def _child_exec(notebook, out):
    """Execute ``notebook`` (in a temporary copy of its folder); write timings as JSON."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    src = Path(notebook)
    with tempfile.TemporaryDirectory(prefix="bench-nb-") as tmp:
        work = Path(tmp) / src.parent.name
        shutil.copytree(src.parent, work)
        nb = nbformat.read(work / src.name, as_version=4)
        n_cells = sum(c.cell_type == "code" for c in nb.cells)
        nb.cells.append(nbformat.v4.new_code_cell(MAXRSS_FILE_CELL))
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(work)}})
        error = None
        t0 = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as exc:
            error = str(exc).strip().splitlines()[-1][:300]
        wall = time.perf_counter() - t0
        maxrss = _maxrss_mb(nb)
        if maxrss is None and (work / MAXRSS_FILE).is_file():
            maxrss = int((work / MAXRSS_FILE).read_text()) / 1024
    cells = 0.0
    slowest = (0.0, None)
    for i, cell in enumerate(nb.cells[:-1]):
        t = cell.get("metadata", {}).get("execution", {})
        a, b = t.get("iopub.execute_input"), t.get("shell.execute_reply")
        if a and b:
            from datetime import datetime

            d = (datetime.fromisoformat(b.replace("Z", "+00:00"))
                 - datetime.fromisoformat(a.replace("Z", "+00:00"))).total_seconds()
            cells += d
            slowest = max(slowest, (d, i))
    Path(out).write_text(json.dumps({
        "wall": wall, "cells_s": cells, "code_cells": n_cells, "error": error,
        "slowest_cell_s": slowest[0], "slowest_cell_index": slowest[1],
        "kernel_maxrss_mb": maxrss}))
    return 0


def run_notebook(assignment) -> dict:
    nb = ROOT / "source" / assignment / f"{assignment}.ipynb"
    with tempfile.TemporaryDirectory(prefix="bench-nbout-") as tmp:
        out = Path(tmp) / "out.json"
        proc = subprocess.run([sys.executable, "-m", "bench.notebooks", "--child-exec", str(nb),
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                              env=clean_env({"RNN_COURSE_STATIC_WIDGETS": "1",
                                             "MPLBACKEND": "Agg"}))
        if proc.returncode != 0 or not out.exists():
            return {"error": f"runner failed ({proc.returncode}): "
                             + (proc.stdout + proc.stderr)[-500:]}
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- #
# 2. grading one submission
# --------------------------------------------------------------------------- #
def grade_one(template: Path, workdir: Path, assignment: str) -> dict:
    import nbformat

    from autograder.commands.demo import write_submission
    from bench.grading import run_autograder

    course = workdir / f"grade-{assignment}"
    shutil.copytree(template, course)
    nb = solution_notebook(course, assignment)
    nb.cells.append(nbformat.v4.new_code_cell(MAXRSS_CELL))
    write_submission(course, "student", assignment, nb)
    res = run_autograder(course, assignment, workers=1)
    graded = course / "autograded" / "student" / assignment / f"{assignment}.ipynb"
    rss = _maxrss_mb(nbformat.read(graded, as_version=4)) if graded.exists() else None
    score, max_score = res["scores"].get("student", [None, None])
    return {"wall": res["wall"], "stages": res["stage_seconds"], "kernel_maxrss_mb": rss,
            "score": score, "max_score": max_score, "flags": res["flags"].get("student", [])}


# --------------------------------------------------------------------------- #
# the benchmark
# --------------------------------------------------------------------------- #
def run(quick=False, assignments=None, out_dir=None):
    t_start = time.perf_counter()
    wanted = tuple(assignments or (QUICK_ASSIGNMENTS if quick else ASSIGNMENTS))
    missing = [a for a in wanted if not (ROOT / "source" / a / f"{a}.ipynb").exists()]
    if missing:
        raise RuntimeError(f"no source notebook for {', '.join(missing)} "
                           f"(expected source/{missing[0]}/{missing[0]}.ipynb)")
    rows = []
    for a in wanted:
        la = loadavg()
        r = run_notebook(a)
        rows.append({"what": f"{a}.ipynb (instructor)", "kind": "notebook", "assignment": a,
                     "loadavg": la, "wall": r.get("wall"), "cells_s": r.get("cells_s"),
                     "mb": r.get("kernel_maxrss_mb"), "error": r.get("error"),
                     "slowest_cell_s": r.get("slowest_cell_s"), "code_cells": r.get("code_cells"),
                     "score": None})
        print(f"  {a}: notebook {r.get('wall') or 0:.1f}s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-notebooks-"))
    try:
        template = course_template(wanted)
        for a in wanted:
            la = loadavg()
            g = grade_one(template, work, a)
            rows.append({"what": f"grade one {a} submission", "kind": "grade", "assignment": a,
                         "loadavg": la, "wall": g["wall"], "mb": g["kernel_maxrss_mb"],
                         "execute_s": g["stages"].get("execute"),
                         "sandbox_s": g["stages"].get("sandbox_start"),
                         "score": f"{g['score']:g}/{g['max_score']:g}"
                         if g["score"] is not None else None,
                         "flags": g["flags"], "stages": g["stages"]})
            print(f"  {a}: grading {g['wall']:.1f}s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = render(rows)
    print(text, flush=True)
    data = {"benchmark": "notebooks", "quick": quick, "machine": machine(), "rows": rows,
            "targets": targets(rows), "table": text, "seconds": time.perf_counter() - t_start}
    write_json("notebooks", data, out_dir)
    return data


def targets(rows):
    out = []
    for r in rows:
        if r["kind"] == "notebook":
            ok = (r["error"] is None and r["wall"] is not None and r["mb"] is not None
                  and r["wall"] <= TARGET_NOTEBOOK_S and r["mb"] <= TARGET_NOTEBOOK_MB)
            out.append({"target": f"{r['assignment']}.ipynb <= {TARGET_NOTEBOOK_S:g} s and "
                                  f"<= {TARGET_NOTEBOOK_MB:g} MB"
                                  + ("" if r["error"] is None else " (and runs without error)"),
                        "value": [r["wall"], r["mb"]], "met": ok})
        elif r["assignment"] == "lstm":
            out.append({"target": f"grading one lstm submission <= {TARGET_GRADE_LSTM_S:g} s",
                        "value": r["wall"], "met": r["wall"] <= TARGET_GRADE_LSTM_S})
    return out


def render(rows):
    cols = [("what", "what", ""), ("wall s", "wall", ".1f"), ("cells s", "cells_s", ".1f"),
            ("slowest cell s", "slowest_cell_s", ".1f"), ("sandbox+start s", "sandbox_s", ".1f"),
            ("execute s", "execute_s", ".1f"), ("kernel peak MB", "mb", ".0f"),
            ("score", "score", ""), ("load", "loadavg", ".1f")]
    note = ["Instructor notebooks: nbclient, fresh python3 kernel, RNN_COURSE_STATIC_WIDGETS=1; "
            "wall includes kernel start, cells = sum of cell execution times.",
            "Grading: one solution submission, grade_assignment(workers=1) in a fresh process, "
            "sandboxed, wall = the whole command.",
            "kernel peak MB = the kernel process's peak RSS (getrusage ru_maxrss, from an "
            "appended cell); load = 1-min load average before the row."]
    for r in rows:
        if r.get("error"):
            note.append(f"ERROR in {r['what']}: {r['error']}")
        if r.get("flags"):
            note.append(f"flags of {r['what']}: {r['flags']}")
    note += ["", "Targets:"]
    for t in targets(rows):
        v = t["value"]
        val = (f"{v:.1f} s" if isinstance(v, float) else
               " / ".join("-" if x is None else f"{x:.1f}" for x in v) + " (s / MB)")
        note.append(f"  {t['target']}: {val} -> {verdict(t['met'])}")
    return table("Notebooks: instructor notebooks headless, and grading one submission",
                 cols, rows, "\n".join(note))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.notebooks",
                                description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_ASSIGNMENTS[0]} only (smoke test)")
    p.add_argument("--assignments", default=None,
                   help="comma-separated (default: every assignment of the course)")
    p.add_argument("--out-dir", default=None)
    p.add_argument("--child-exec", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_exec:
        return _child_exec(args.child_exec, args.out)
    run(args.quick, args.assignments.split(",") if args.assignments else None, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
