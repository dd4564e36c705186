"""``python -m autograder report ASSIGNMENT``: the class view and the similarity report.

::

    python -m autograder report ASSIGNMENT [--course-dir DIR] [--out DIR] [--no-similarity]

Writes into ``--out`` (default ``reports/<assignment>/`` in the course):
``class.html`` (the class view: scores, per-function and per-check results, the
named bugs, times, flags; no script), ``students.csv`` and ``bugs.csv`` (the
same, for a spreadsheet), and ``similarity.html`` (the most similar pairs of
students' code, starter code subtracted; it changes no grade).  It only reads
the gradebook and the submissions, so it runs from any course folder, with or
without the grading service.  See docs/jupyterhub.md, "What the class got wrong".
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

from autograder.errors import UsageError


def add_arguments(parser) -> None:
    parser.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment to report on")
    parser.add_argument("--course-dir", default=".", help="the nbgrader course directory")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where to write the pages (default: reports/ASSIGNMENT in the "
                             "course)")
    parser.add_argument("--no-similarity", action="store_true",
                        help="write the class view only")


def feedback_links(root: Path, out: Path, assignment: str):
    """``student -> href`` of their feedback page relative to ``out`` (None if there is none)."""
    base = root / "feedback"

    def href(student: str) -> str | None:
        if "/" in student or student in (".", ".."):
            return None
        page = base / student / assignment / f"{assignment}.html"
        if not page.is_file():
            return None
        return quote(os.path.relpath(page, out).replace(os.sep, "/"))

    return href


def run(args) -> int:
    from autograder.classview import render, similarity
    from autograder.classview.data import collect
    from autograder.course import Course

    course = Course(args.course_dir)
    course.check_assignment(args.assignment)
    out = Path(args.out) if args.out else course.root / "reports" / args.assignment
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror}") from None
    t0 = time.monotonic()
    view = collect(course.db_url, course.course_id, args.assignment)
    sim_name = None if args.no_similarity else "similarity.html"
    files = {
        "class.html": render.page(view, feedback_links(course.root, out.resolve(),
                                                       args.assignment), sim_name),
        "students.csv": render.students_csv(view),
        "bugs.csv": render.bugs_csv(view),
    }
    t1 = time.monotonic()
    if sim_name:
        rep = similarity.report(course.root, args.assignment,
                                course.root / "release" / args.assignment)
        files[sim_name] = similarity.page(rep, course.course_id)
    t2 = time.monotonic()
    for name, text in files.items():
        try:
            (out / name).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out / name}: {exc.strerror}") from None
    print(f"class view: {len(view.students)} submission(s), {len(view.bugs)} named bug(s) "
          f"({t1 - t0:.1f} s)")
    if sim_name:
        print(f"similarity: {rep.students} submission(s), {len(rep.pairs)} pair(s) listed "
              f"({t2 - t1:.1f} s)")
    for name in files:
        print(f"{name + ':':18s}{out / name}")
    return 0
