"""``python -m bench`` (``make bench``): run the benchmarks, print their tables.

    python -m bench [--quick] [--only numerics,grading,notebooks,scale,sandbox,report]
        [--out-dir DIR]

Each benchmark prints its table as it finishes and writes
``bench/results/<name>.json``; at the end the tables are printed again
together, with every target's verdict, and ``bench/results/summary.json``
lists them.  One benchmark failing (say, no sandbox on this machine) is
reported and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

from bench import machine, write_json

BENCHMARKS = ("numerics", "grading", "notebooks", "scale", "sandbox", "report")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes everywhere (smoke test)")
    p.add_argument("--only", default=",".join(BENCHMARKS),
                   help="comma-separated subset of " + ", ".join(BENCHMARKS))
    p.add_argument("--out-dir", default=None, help="where the JSON goes (bench/results)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}")
    os.environ.setdefault("MPLBACKEND", "Agg")

    started = time.perf_counter()
    if not args.quick and "notebooks" in names and {"grading", "scale"} & set(names):
        # one course template with every assignment, copied by the three benchmarks
        from bench import course_template
        from bench.notebooks import ASSIGNMENTS

        course_template(ASSIGNMENTS)
    tables, summary, failed = [], {"machine": machine(), "quick": args.quick, "benchmarks": {}}, []
    for name in names:
        print(f"\n### bench.{name}{' (quick)' if args.quick else ''}\n", flush=True)
        t0 = time.perf_counter()
        try:
            data = importlib.import_module(f"bench.{name}").run(quick=args.quick,
                                                                 out_dir=args.out_dir)
        except Exception:  # noqa: BLE001  (report it, run the others)
            failed.append(name)
            tb = traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
            summary["benchmarks"][name] = {"error": tb.strip().splitlines()[-1]}
            continue
        tables.append(data["table"])
        summary["benchmarks"][name] = {"seconds": time.perf_counter() - t0,
                                       "targets": data.get("targets", [])}
    summary["seconds"] = time.perf_counter() - started
    write_json("summary", summary, args.out_dir)

    print("\n" + "#" * 100 + "\n# all tables\n" + "#" * 100 + "\n")
    print("\n".join(tables))
    print(f"bench: {len(names) - len(failed)}/{len(names)} benchmark(s) ran in "
          f"{summary['seconds'] / 60:.1f} min"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
