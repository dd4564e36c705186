"""``python -m autograder release [ASSIGNMENT...]``: build release/ and prove it leaks nothing.

nbgrader's ``generate_assignment`` does the work (stubs, hidden-test removal,
checksums, locked cells); this command runs it for each assignment and then
refuses to finish (exit status 1) if any release notebook, or any module of
the student-facing ``rnn_course`` package, still contains a line of a solution
or of a hidden test, or a marker of one.  It also rebuilds the visible checks'
stored oracle values (:mod:`autograder.protocol.oracles`) from the reference.

Before anything is built it refuses (exit status 2, one line) a course whose
assignment has no checks module, or a source notebook with a graded cell that
no check is registered for: grading would fail such a cell, whatever it prints.
It also proves safe the cells marked as no grade's (:mod:`autograder.ungraded`,
which grading does not execute): it refuses, one line naming the cell, a marked
cell that is not a locked instructor cell or that defines a name a later cell
run in grading uses, and, once the oracle values are up to date, a notebook
that no longer passes every check with the reference solution when its marked
cells are skipped (it runs each such source notebook so).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from autograder.course import Course
from autograder.errors import UsageError
from autograder.ungraded import failures_when_skipped, marked_ids, refusals
from rnn_course import checks

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKERS = (SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END)
# A line shorter than this (after stripping) is too generic to count as a leak:
# "return h, cache" or "pass" may legitimately appear in a stub or a helper.
MIN_LEAK_CHARS = 16


def add_arguments(parser) -> None:
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                        help="assignments to release (default: all, in course order)")
    parser.add_argument("--course-dir", default=".", help="the nbgrader course directory")


def nbgrader_env() -> dict:
    """Environment for nbgrader subprocesses: this interpreter's bin/ first on PATH.

    nbgrader runs ``alembic`` by name when it creates a gradebook.
    """
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + os.pathsep + path
    return env


def generate(course_dir: Path, assignment: str) -> None:
    """Run ``nbgrader generate_assignment`` for one assignment (raises UsageError on failure)."""
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
         "--log-level=WARN"],
        cwd=course_dir, env=nbgrader_env(), capture_output=True, text=True,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise UsageError(f"nbgrader generate_assignment {assignment} failed: " + " | ".join(tail))


def protected_lines(nb) -> list[str]:
    """Non-trivial lines inside solution and hidden-test regions of a source notebook."""
    lines = []
    for cell in nb.cells:
        inside = False
        for raw in cell.source.splitlines():
            line = raw.strip()
            if line.startswith((SOLUTION_BEGIN, HIDDEN_BEGIN)):
                inside = True
                continue
            if line.startswith((SOLUTION_END, HIDDEN_END)):
                inside = False
                continue
            if inside and len(line) >= MIN_LEAK_CHARS and not line.startswith("#"):
                lines.append(line)
    return lines


def graded_cell_ids(nb) -> list[str]:
    """grade_ids of a notebook's graded code cells, in order."""
    return [cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells
            if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {})
            .get("grade")]


def unregistered_cells(course: Course, assignment: str) -> list[str]:
    """Graded cells of ``assignment``'s source notebook that no registered check judges."""
    registered = checks.assignment_checks(assignment)
    nb = nbformat.read(course.source_notebook(assignment), as_version=4)
    return [gid for gid in graded_cell_ids(nb) if gid not in registered]


def refuse_unchecked(course: Course, assignments) -> None:
    """A :class:`UsageError` naming the first assignment without a checks module, or the
    first graded cell of ``assignments`` without a registered check."""
    for a in course.assignments:
        try:
            checks.assignment_checks(a)
        except checks.NoChecksModule as exc:
            raise UsageError(f"{exc}; nbgrader_config.py lists it") from None
    for a in assignments:
        missing = unregistered_cells(course, a)
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UsageError(
                f"{course.source_notebook(a).relative_to(course.root)}: graded cell "
                f"{missing[0]!r} has no registered check in {checks.module_name(a)}{more}")


def refuse_unsafe_marks(course: Course, assignments) -> None:
    """A :class:`UsageError` naming the first unsafe mark of ``assignments`` (static)."""
    for a in assignments:
        path = course.source_notebook(a)
        problems = refusals(nbformat.read(path, as_version=4))
        if problems:
            raise UsageError(f"{path.relative_to(course.root)}: {problems[0]}")


def prove_marks(course: Course, assignments) -> int:
    """Run each source notebook with marks, its marked cells skipped: a :class:`UsageError`
    naming the first cell that then fails; returns how many notebooks were run."""
    ran = 0
    for a in assignments:
        path = course.source_notebook(a)
        if not marked_ids(nbformat.read(path, as_version=4)):
            continue
        failed = failures_when_skipped(path)
        ran += 1
        if failed:
            raise UsageError(f"{path.relative_to(course.root)}: {failed[0]}")
    return ran


def _text_lines(text: str) -> set[str]:
    return {raw.strip() for raw in text.splitlines()}


def leaks(course: Course, assignment: str) -> list[str]:
    """Every leak of ``assignment``'s solutions or hidden tests, one message each."""
    rel_path = course.release_notebook(assignment)
    problems = []
    if not rel_path.exists():
        return [f"{rel_path}: missing"]
    release_nb = nbformat.read(rel_path, as_version=4)
    try:
        registered = checks.assignment_checks(assignment)
    except checks.NoChecksModule:  # refused before building (refuse_unchecked)
        registered = {}
    hidden_calls = [f".{cid}(" for cid, c in registered.items() if c.hidden]
    hidden_calls.append("grading.inputs(")  # the channel's call, as a raw hidden cell makes it
    release_lines = set()
    for i, cell in enumerate(release_nb.cells):
        release_lines |= _text_lines(cell.source)
        for marker in MARKERS:
            if marker in cell.source:
                problems.append(f"{rel_path} cell {i}: contains '{marker}'")
        if any(call in cell.source for call in hidden_calls):
            problems.append(f"{rel_path} cell {i}: contains a hidden-test call")
        if cell.get("outputs"):
            problems.append(f"{rel_path} cell {i}: has outputs")
    package_lines = {}
    for path in sorted((course.root / "rnn_course").rglob("*.py")):
        package_lines[path] = _text_lines(path.read_text())
    # every assignment's secrets, not only this one's: a later notebook's
    # provided cells must not reveal an earlier solution verbatim either
    for other in course.assignments:
        if not course.source_notebook(other).exists():
            continue
        for line in protected_lines(nbformat.read(course.source_notebook(other), as_version=4)):
            if line in release_lines:
                problems.append(f"{rel_path}: leaks protected line of {other} {line!r}")
            for path, lines in package_lines.items():
                if line in lines:
                    problems.append(f"{path}: contains protected line of {other} {line!r}")
    return problems


def all_leaks(course: Course, assignments=None) -> list[str]:
    """Leaks of every assignment: each release against every assignment's source."""
    problems = []
    for a in assignments or course.assignments:
        problems += leaks(course, a)
    return problems


def run(args) -> int:
    course = Course(args.course_dir)
    wanted = args.assignments or course.assignments
    unknown = [a for a in wanted if a not in course.assignments]
    if unknown:
        raise UsageError(f"unknown assignment(s) {', '.join(unknown)}; "
                         f"this course has {', '.join(course.assignments)}")
    for a in wanted:
        if not course.source_notebook(a).exists():
            raise UsageError(f"{course.source_notebook(a)} does not exist")
    refuse_unchecked(course, wanted)
    refuse_unsafe_marks(course, wanted)
    from autograder.protocol import oracles

    changed = oracles.write_all(course.assignments)
    print(f"oracle values of {len(oracles.with_oracle(course.assignments))} visible checks: "
          + (f"rewrote {', '.join(changed)}" if changed else "up to date"))
    proved = prove_marks(course, wanted)
    if proved:
        print(f"ran {proved} source notebook(s) with their marked cells skipped: "
              "every check passes")
    for a in wanted:
        generate(course.root, a)
        print(f"released {a} -> {course.release_notebook(a).relative_to(course.root)}")
    problems = all_leaks(course, wanted)
    if problems:
        for p in problems:
            print(f"LEAK: {p}", file=sys.stderr)
        print(f"release refused: {len(problems)} leak(s) found", file=sys.stderr)
        return 1
    print(f"checked {len(wanted)} release(s): no solution or hidden-test text leaked")
    return 0
