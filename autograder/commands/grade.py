"""``python -m autograder grade ASSIGNMENT``: grade every submission of an assignment.

::

    python -m autograder grade ASSIGNMENT [--workers N] [--scheduler ADDR]
        [--course-dir DIR] [--student ID ...] [--force] [--unsafe-no-sandbox]

The work is :func:`autograder.pipeline.coordinator.assignment.grade_assignment`; this
module only reads the command line and prints the report.  Exit status: 0 when
the pipeline did its job (even if students failed), 1 when a submission could
not be graded (``grader_error``) or its files could not be written
(``files_not_written``: its grade is recorded), 2 for usage errors.
"""

from __future__ import annotations

import sys

from autograder.pipeline.coordinator.assignment import grade_assignment
from autograder.pipeline.coordinator.export import canvas_csv


def add_grading_options(parser) -> None:
    """The options of every command that grades (``grade``, ``serve``): where, with what."""
    parser.add_argument("--course-dir", default=".", help="the nbgrader course directory")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="submissions graded at once (default: 1.5 per core)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="grade on this dask.distributed cluster (e.g. tcp://host:8786)")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run student code without the sandbox (trusted code only!)")


def add_arguments(parser) -> None:
    parser.add_argument("assignment", metavar="ASSIGNMENT", help="the assignment to grade")
    add_grading_options(parser)
    parser.add_argument("--student", nargs="+", action="extend", default=None, metavar="ID",
                        help="grade only these students")
    parser.add_argument("--force", action="store_true",
                        help="regrade submissions that are already recorded")


def run(args) -> int:
    report = grade_assignment(
        args.course_dir, args.assignment, workers=args.workers, scheduler=args.scheduler,
        students=args.student, force=args.force, unsafe_no_sandbox=args.unsafe_no_sandbox,
        progress=True,
    )
    if args.unsafe_no_sandbox:
        print("warning: student code ran WITHOUT the sandbox (--unsafe-no-sandbox)",
              file=sys.stderr)
    print(report.table())
    print(report.stages())
    print(report.usage())
    print(f"workers:    {report.workers}")
    print(f"gradebook:  {report.gradebook}")
    print(f"autograded: {report.autograded_dir}")
    print(f"feedback:   {report.feedback_dir}")
    print(f"grades:     {report.csv_path}")
    print(f"canvas:     {canvas_csv(report.csv_path)}")
    status = 0
    if report.errors:
        print(f"error: {len(report.errors)} submission(s) could not be graded (grader_error): "
              f"{', '.join(r.student for r in report.errors)}; run again to retry them",
              file=sys.stderr)
        status = 1
    if report.unwritten:
        print(f"error: {len(report.unwritten)} submission(s) graded and recorded, but their "
              f"files could not be written (files_not_written): "
              f"{', '.join(r.student for r in report.unwritten)}; run again to write them",
              file=sys.stderr)
        status = 1
    return status
