"""``python -m bench.report``: the class view and the similarity report on a synthetic class.

A class of 500 students of ``rnn_cell`` (``--students N``; ``--quick``: 12) is
recorded in a SQLite gradebook (``--postgres``: a throw-away PostgreSQL
server's) through the coordinator's own path (:mod:`planted_class`): the
planted bugs of ``tests/planted.py`` and honest students, round robin, their
verdicts computed by the checks once per bug and handed to every student with
it. Each student also hands in a notebook: each of the three functions written
in one of four styles (tests/plagiarism.py), with comments of their own, so
that similar pairs are common.

Timed, each on the whole class: the class view (reading the gradebook, the page
with its three pictures, the two CSV files) and the similarity report (reading
the notebooks, fingerprints, the candidate pairs, the side-by-side passages).
Targets: under 10 s and under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench import ROOT, loadavg, machine, table, verdict, write_json

sys.path.insert(0, str(ROOT / "tests"))
import plagiarism as P  # noqa: E402  (the tests' corpus and class builder: one home)
import planted_class as PC  # noqa: E402

ASSIGNMENT = "rnn_cell"
TARGETS = {"class view": 10.0, "similarity report": 60.0}
FULL = 500
QUICK = 12
BATCH = 100


def build(root: Path, students: int, db_url: str | None = None) -> None:
    """The synthetic class in ``root``: gradebook records (SQLite in ``root``, or the
    database at ``db_url``) and submitted notebooks."""
    _, url = PC.make_course(root, db_url, ASSIGNMENT)
    structure = PC.G.CourseGradebook(url, PC.COURSE_ID).structure(ASSIGNMENT)
    cases = [(name, code) for name, (a, code, _) in PC.BUGS.items() if a == ASSIGNMENT]
    cases += [("honest", "")] * max(1, len(cases) // 2)
    verdicts = {name: PC.verdicts_of(ASSIGNMENT, code, "bench") for name, code in cases}
    styles = [P.ORIGINAL, *P.INDEPENDENT]
    rng = random.Random(20261206)
    items = []
    for i in range(students):
        name, _ = cases[i % len(cases)]
        student = f"student{i:04d}"
        when = PC.DUE - timedelta(minutes=students - i)
        items.append((PC.result_for(structure, student, verdicts[name], timestamp=when), when))
        if len(items) == BATCH:
            PC.record(url, items)
            items = []
        solution = {f: f"    # {student}: my {f}\n" + rng.choice(styles)[f]
                    for f in P.FUNCTIONS}
        PC.write_submission(root, student, ASSIGNMENT, P.notebook(solution))
    if items:
        PC.record(url, items)


@contextlib.contextmanager
def _database(postgres: bool):
    """None (SQLite in the course folder), or the URL of a database in a PostgreSQL
    server of its own, stopped afterwards."""
    if not postgres:
        yield None
        return
    import postgres_cluster

    bin_dir = postgres_cluster.server_bin()
    if bin_dir is None:
        raise SystemExit(f"bench.report: {postgres_cluster.MISSING}")
    cluster = postgres_cluster.Cluster(bin_dir).start()
    try:
        yield cluster.new_database()
    finally:
        cluster.stop()


def run(quick: bool = False, students: int | None = None, out_dir=None,
        postgres: bool = False) -> dict:
    from autograder.classview import render, similarity
    from autograder.classview.data import collect
    from autograder.course import Course

    n = students or (QUICK if quick else FULL)
    with tempfile.TemporaryDirectory(prefix="rnn-bench-report-") as tmp, \
            _database(postgres) as db_url:
        root = Path(tmp) / "course"
        t0 = time.perf_counter()
        build(root, n, db_url)
        built = time.perf_counter() - t0
        course = Course(root)
        load = loadavg()
        t0 = time.perf_counter()
        view = collect(course.db_url, course.course_id, ASSIGNMENT)
        page = render.page(view)
        render.students_csv(view)
        render.bugs_csv(view)
        class_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = similarity.report(root, ASSIGNMENT, root / "release" / ASSIGNMENT)
        similarity.page(rep)
        sim_s = time.perf_counter() - t0
    rows = [
        {"what": "class view", "students": len(view.students), "seconds": class_s,
         "target": TARGETS["class view"], "verdict": verdict(class_s < TARGETS["class view"]),
         "detail": f"{len(view.bugs)} named bugs, page {len(page) // 1024} KiB"},
        {"what": "similarity report", "students": rep.students, "seconds": sim_s,
         "target": TARGETS["similarity report"],
         "verdict": verdict(sim_s < TARGETS["similarity report"]),
         "detail": f"{len(rep.pairs)} pairs listed"},
    ]
    info = machine()
    note = (f"{'PostgreSQL' if postgres else 'SQLite'} gradebook; "
            f"{info.get('cpu')}, {info.get('cores_usable', info.get('cores'))} usable core(s); "
            f"load average {load} when timing began; building the class took {built:.0f} s")
    text = table(f"Class view and similarity report, {n} students of {ASSIGNMENT}",
                 [("", "what", ""), ("students", "students", "d"), ("seconds", "seconds", ".2f"),
                  ("target s", "target", ".0f"), ("", "verdict", ""), ("", "detail", "")],
                 rows, note)
    print(text)
    targets = [{"target": f"{r['what']} of {n} students under {r['target']:g} s",
                "value": r["seconds"], "met": r["verdict"] == "MET"} for r in rows]
    result = {"machine": info, "load_at_start": load, "students": n, "rows": rows,
              "targets": targets, "table": text}
    write_json("report", result, out_dir)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help=f"{QUICK} students (smoke test)")
    p.add_argument("--students", type=int, default=None, help=f"class size (default {FULL})")
    p.add_argument("--out-dir", default=None, help="where the JSON goes (bench/results)")
    p.add_argument("--postgres", action="store_true", help="the gradebook in a throw-away "
                   "PostgreSQL server (tests/postgres_cluster.py)")
    args = p.parse_args(argv)
    result = run(args.quick, args.students, args.out_dir, args.postgres)
    return 0 if all(r["verdict"] == "MET" for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
