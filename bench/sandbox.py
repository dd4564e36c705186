"""Sandbox overhead: the same class graded with and without the sandbox.

    python -m bench.sandbox [--quick] [--k 12] [--workers 2] [--reps 2]

A class of K solution submissions of ``rnn_cell`` is graded by
``python -m autograder grade`` (in a fresh process each time, ``--force``),
alternately sandboxed and with ``--unsafe-no-sandbox``, ``reps`` times each.
Reported: every run's wall time, the medians and their ratio against the
target (sandboxed within 1.3x of unsandboxed), and whether both ways gave
every student the same score.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from bench import course_template, loadavg, solution_notebook, table, verdict, write_json

TARGET = 1.3  # issue 11: sandboxed grading within 1.3x of --unsafe-no-sandbox
FULL = {"k": 12, "reps": 2}
QUICK = {"k": 2, "reps": 1}


def run(quick=False, assignment="rnn_cell", k=None, workers=2, reps=None, out_dir=None):
    from bench.grading import make_class, run_autograder

    size = QUICK if quick else FULL
    k, reps = k or size["k"], reps or size["reps"]
    template = course_template([assignment])
    nb = solution_notebook(template, assignment)
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    rows, scores = [], {}
    try:
        course = work / "course"
        make_class(template, course, assignment, k, nb)
        for rep in range(reps):
            for label, unsafe in (("sandboxed", False), ("no sandbox", True)):
                la = loadavg()
                res = run_autograder(course, assignment, workers=workers,
                                     unsafe_no_sandbox=unsafe)
                scores.setdefault(label, res["scores"])
                rows.append({"mode": label, "rep": rep + 1, "K": k, "workers": workers,
                             "wall": res["wall"], "per_sub": res["wall"] / k, "loadavg": la,
                             "errors": len(res["errors"])})
                print(f"  {label} rep {rep + 1}: {res['wall']:.1f}s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {m: statistics.median(r["wall"] for r in rows if r["mode"] == m)
           for m in ("sandboxed", "no sandbox")}
    ratio = med["sandboxed"] / med["no sandbox"]
    same = scores.get("sandboxed") == scores.get("no sandbox")
    targets = [{"name": f"sandboxed within {TARGET}x of unsandboxed", "value": ratio,
                "met": ratio <= TARGET}]
    text = table(
        f"Sandbox overhead: {assignment}, K={k}, --workers {workers}",
        [("mode", "mode", ""), ("rep", "rep", "d"), ("wall s", "wall", ".1f"),
         ("s/submission", "per_sub", ".2f"), ("load", "loadavg", ".2f"),
         ("errors", "errors", "d")],
        rows,
        note=(f"median sandboxed {med['sandboxed']:.1f} s, no sandbox "
              f"{med['no sandbox']:.1f} s: ratio {ratio:.2f} (target <= {TARGET}: "
              f"{verdict(ratio <= TARGET)}); same scores both ways: {'yes' if same else 'NO'}"))
    print(text, flush=True)
    data = {"rows": rows, "medians": med, "ratio": ratio, "same_scores": same,
            "targets": targets, "table": text}
    write_json("sandbox", data, out_dir)
    return data


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.sandbox", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    run(args.quick, k=args.k, workers=args.workers, reps=args.reps, out_dir=args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
