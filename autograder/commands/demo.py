"""``python -m autograder demo [--out DIR]``: build, hand out and grade a sample class.

What ``make demo`` runs.  In one go it shows a newcomer the whole grading flow:

1. builds ``release/`` from ``source/`` with ``autograder.commands.release`` (and proves
   that no solution or hidden test leaked);
2. makes a self-contained course directory ``DIR`` (default ``demo-out/``
   under the course root, recreated on every run, git-ignored) with its own
   ``nbgrader_config.py``, ``source/``, ``release/``, gradebook and secret;
3. hands out every assignment to five made-up students (:data:`STUDENTS`):
   a perfect submission, a partial one, an untouched release, a file that is
   not a notebook and a cheating attempt;
4. grades every assignment of the course (``c.RnnCourse.assignments`` in
   ``nbgrader_config.py``, read through :class:`autograder.course.Course`) with the real pipeline
   (:func:`autograder.pipeline.coordinator.assignment.grade_assignment`, sandboxed, in
   parallel workers)
   and prints, per assignment, the table of scores and flags, the grades CSV
   and the feedback folder, then what the cheater's attempts met inside the
   sandbox and whether every grade is the one expected.

The notebook builders here (:func:`fill_solutions`, :func:`cheat_cell`, ...)
are also what the end-to-end tests use to build their classes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from autograder.commands import release
from autograder.course import Course
from autograder.errors import UsageError

STUDENTS = {
    "perfect": "every solution cell filled in from the instructor's solution, run before "
               "submitting",
    "partial": "the first half of the solution cells filled in, the rest left as stubs",
    "untouched": "the release notebook exactly as handed out",
    "broken": "a file that is not a notebook (invalid JSON)",
    "cheater": "the partial submission plus a cell that patches numpy, reads the instructor's "
               "files and the grader secret, fakes result files and opens a socket to 127.0.0.1",
}
SOLUTION_MARKERS = (release.SOLUTION_BEGIN, release.SOLUTION_END)
REPORT_TAG = "CHEATER-REPORT "
# Written into DIR so that a later run only ever deletes a folder the demo made itself.
DEMO_STAMP = ".rnn-course-demo"
# Environment variables that would point the demo at a real course's gradebook,
# exchange or secret (see nbgrader_config.py): the demo's class must stay in DIR.
REDIRECTING_ENV = ("RNN_COURSE_ROOT", "RNN_COURSE_DB_URL", "RNN_COURSE_EXCHANGE",
                   "RNN_COURSE_SECRET", "RNN_COURSE_ID")


# --------------------------------------------------------------------------- #
# Notebook builders
# --------------------------------------------------------------------------- #
def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def strip_solution_markers(text: str) -> str:
    """``text`` without its ``### BEGIN/END SOLUTION`` lines (what a student would type)."""
    return "\n".join(line for line in text.splitlines()
                     if not line.strip().startswith(SOLUTION_MARKERS))


def solution_ids(nb) -> list[str]:
    """grade_ids of the notebook's solution code cells, in notebook order."""
    return [_nbgrader(c)["grade_id"] for c in nb.cells
            if c.cell_type == "code" and _nbgrader(c).get("solution")]


def fill_solutions(release_nb, source_nb, count: int | None = None):
    """A copy of ``release_nb`` with solution code cells filled in from ``source_nb``.

    Cells are matched by ``grade_id``; only the first ``count`` solution cells
    (all when None) are filled, with the solution markers removed, as if a
    student had typed the instructor's answer into the stub.
    """
    solutions = {_nbgrader(c)["grade_id"]: strip_solution_markers(c.source)
                 for c in source_nb.cells if c.cell_type == "code" and _nbgrader(c).get("solution")}
    wanted = solution_ids(release_nb)
    wanted = set(wanted if count is None else wanted[:count])
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))  # deep copy
    for cell in nb.cells:
        gid = _nbgrader(cell).get("grade_id")
        if cell.cell_type == "code" and gid in wanted and gid in solutions:
            cell.source = solutions[gid]
    return nb


def partial_count(nb) -> int:
    """How many solution cells the partial submission fills: half, rounded up, never all."""
    n = len(solution_ids(nb))
    return max(1, min(n - 1, (n + 1) // 2)) if n > 1 else n


def graded_ids(nb) -> list[str]:
    """grade_ids of the notebook's graded (test) code cells, in order."""
    return [_nbgrader(c)["grade_id"] for c in nb.cells
            if c.cell_type == "code" and _nbgrader(c).get("grade")
            and not _nbgrader(c).get("solution")]


def insert_after_first_solution(nb, cell):
    """Insert ``cell`` right after the first solution cell (so before every test cell)."""
    index = next((i for i, c in enumerate(nb.cells) if _nbgrader(c).get("solution")), 0)
    nb.cells.insert(index + 1, cell)
    return nb


def cheat_cell(course_root: Path, assignment: str, check_ids: list[str], port: int):
    """A student-added code cell that tries to cheat in every way the demo shows.

    Every attempt is wrapped so that the notebook goes on; the cell prints one
    line ``CHEATER-REPORT {json}`` saying what each attempt met (read back by
    :func:`kernel_report`).  Writes are append-only opens of zero bytes, so the
    demo never damages anything even where a write would succeed.
    """
    root = str(course_root)
    code = f'''\
# A cheating attempt.  None of it may change this student's grade or touch
# anything outside the scratch copy of the submission the grader made.
import json as _json, os as _os, socket as _socket
import numpy as _np
_report = {{}}
def _attempt(name, action):
    try:
        result = action()
        _report[name] = "SUCCEEDED" + (f" ({{result}})" if result else "")
    except BaseException as exc:  # the sandbox refusing is the expected outcome
        _report[name] = f"blocked ({{type(exc).__name__}})"
def _read(path):
    with open(path, "rb") as fh:
        return f"read {{len(fh.read(64))}} bytes"
def _append(path):
    with open(path, "ab"):
        return "opened for writing"

# 1. make every comparison pass: harmless, the grader compares outside this kernel
_np.allclose = lambda *a, **k: True
_np.testing.assert_allclose = lambda *a, **k: None
_report["patch numpy.allclose"] = "done, but the grader does not compare in this kernel"
# 2. read what no student may see
_SOURCE = {root!r} + "/source/{assignment}/{assignment}.ipynb"
_attempt("read ../../source", lambda: _read("../../source/{assignment}/{assignment}.ipynb"))
_attempt("read the instructor notebook", lambda: _read(_SOURCE))
_attempt("read the gradebook", lambda: _read({root!r} + "/gradebook.db"))
_attempt("read the grader secret", lambda: _read({root!r} + "/.grader_secret"))
_attempt("secret in the environment", lambda: _os.environ["RNN_COURSE_SECRET"])
_attempt("import the reference solutions", lambda: __import__("autograder.reference").__name__)
# 3. write where no student may write
_attempt("write the gradebook", lambda: _append({root!r} + "/gradebook.db"))
_attempt("write the instructor notebook", lambda: _append(_SOURCE))
# 4. fake the results the grader reads (and a grades file of its own)
def _fake_results():
    folder = _os.path.join(_os.environ.get("RNN_COURSE_GRADING_DIR", "."), "results")
    _os.makedirs(folder, exist_ok=True)
    for check_id in {check_ids!r}:
        _np.savez(_os.path.join(folder, check_id + ".npz"), out=_np.zeros(3))
    with open("grades.csv", "w") as fh:
        fh.write("student,score\\ncheater,1000\\n")
    return "written, but the grader judges them against its own reference"
_attempt("fake result files", _fake_results)
# 5. the network, loopback included
def _connect():
    _socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
_attempt("connect to 127.0.0.1:{port}", _connect)
print({REPORT_TAG!r} + _json.dumps(_report))
'''
    return new_code_cell(code)


def kernel_report(notebook_path: Path, tag: str = REPORT_TAG) -> dict | None:
    """The JSON a submission printed after ``tag`` in an executed notebook, if any."""
    try:
        nb = nbformat.read(notebook_path, as_version=4)
    except Exception:
        return None
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream":
                continue
            for line in str(out.get("text", "")).splitlines():
                if line.startswith(tag):
                    try:
                        return json.loads(line[len(tag):])
                    except ValueError:
                        return None
    return None


def write_submission(course_root: Path, student: str, assignment: str, nb=None,
                     raw: str | None = None, name: str | None = None) -> Path:
    """Put a submission where ``nbgrader collect`` would: ``submitted/<student>/<assignment>/``."""
    folder = course_root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{assignment}.ipynb")
    if raw is not None:
        path.write_text(raw)
    else:
        nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------- #
# A loopback listener that records whoever connects
# --------------------------------------------------------------------------- #
class LoopbackListener:
    """A server on 127.0.0.1 that counts what reaches it (student code must never reach it).

    TCP by default (``connections`` counts accepted connections); with
    ``udp=True`` it counts datagrams instead, in the same attribute.  With
    ``path``, a unix stream socket of that path and ``mode`` instead (a socket
    of the host that no sandbox, nor anything acting for one, may reach).
    """

    def __init__(self, udp: bool = False, path: str | None = None, mode: int = 0o600):
        self.udp = udp
        family = socket.AF_UNIX if path else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        if path:
            self.sock.bind(path)
            os.chmod(path, mode)
        else:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
        if not udp:
            self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = None if path else self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self._stop.is_set():
            try:
                if self.udp:
                    self.sock.recv(65536)
                else:
                    conn, _ = self.sock.accept()
                    conn.close()
            except (TimeoutError, OSError):
                continue
            self.connections += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


# --------------------------------------------------------------------------- #
# The sample class
# --------------------------------------------------------------------------- #
def prepare_out_dir(course: Course, out: Path) -> None:
    """Recreate ``out``, refusing to delete any folder the demo did not make."""
    out = out.resolve()
    if out == course.root or course.root.is_relative_to(out):
        raise UsageError(f"--out {out} would contain the course itself; choose another folder")
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / DEMO_STAMP).exists():
            raise UsageError(f"--out {out} is not empty and was not made by the demo; "
                             "choose an empty or new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_STAMP).write_text("made by `python -m autograder demo`; deleted on its next run\n")


def build_release(course: Course, out: Path, assignments: list[str]) -> None:
    """A self-contained course directory in ``out``, its release built by ``release``.

    ``out`` gets the course's ``nbgrader_config.py`` and ``source/``; nbgrader's
    ``generate_assignment`` then builds ``out/release/`` and records each
    assignment's graded cells in ``out``'s own gradebook, and the release is
    checked for leaks exactly as ``python -m autograder release`` does
    (against the student package too).  Building in ``out`` rather than in the
    course leaves the committed ``release/`` untouched.
    """
    shutil.copy2(course.root / "nbgrader_config.py", out / "nbgrader_config.py")
    for a in assignments:
        shutil.copytree(course.root / "source" / a, out / "source" / a)
    package = course.root / "rnn_course"
    if package.is_dir():  # what the leak check scans besides the notebooks
        (out / "rnn_course").symlink_to(package, target_is_directory=True)
    for a in assignments:
        release.generate(out, a)
    problems = release.all_leaks(Course(out), assignments)
    if problems:
        raise UsageError(f"the release leaks solutions or hidden tests ({problems[0]}); "
                         "run `python -m autograder release` for the full list")


def make_class(out: Path, assignment: str, port: int) -> dict[str, str]:
    """Write the five submissions of ``assignment`` into ``out/submitted``; returns STUDENTS."""
    source_nb = nbformat.read(out / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    release_nb = nbformat.read(out / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    half = partial_count(release_nb)
    write_submission(out, "perfect", assignment,
                     run_before_submitting(fill_solutions(release_nb, source_nb)))
    write_submission(out, "partial", assignment, fill_solutions(release_nb, source_nb, half))
    write_submission(out, "untouched", assignment, release_nb)
    write_submission(out, "broken", assignment, raw='{"cells": [ this is not JSON\n')
    cheater = fill_solutions(release_nb, source_nb, half)
    insert_after_first_solution(
        cheater, cheat_cell(out, assignment, graded_ids(release_nb), port))
    write_submission(out, "cheater", assignment, cheater)
    return STUDENTS


def run_before_submitting(nb, timeout: int = 600):
    """``nb`` with its outputs, as a student who ran it before submitting hands it in: the
    cells that grading skips (``autograder/ungraded.py``) show these outputs, the widgets'
    drawings among them, in the graded copy and the feedback.  The code is the
    instructor's own solution, run in a plain kernel of this environment."""
    import copy
    import tempfile

    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    with tempfile.TemporaryDirectory(prefix="rnn-demo-run-") as folder:
        # ipc sockets in the private folder: no TCP port, nothing sent in plain text
        km = KernelManager(kernel_name="python3", transport="ipc",
                           ip=os.path.join(folder, "kernel"))
        try:
            NotebookClient(nb, km=km, timeout=timeout,
                           resources={"metadata": {"path": folder}}).execute()
        finally:  # the client shuts down only a kernel it started itself
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    return nb


def expectations(results: dict) -> list[str]:
    """What the demo promises, checked on one assignment's results (student -> result)."""
    problems = []
    perfect, partial = results.get("perfect"), results.get("partial")
    untouched, broken, cheater = (results.get(s) for s in ("untouched", "broken", "cheater"))
    if perfect is None or perfect.score != perfect.max_score or perfect.max_score <= 0:
        problems.append("the perfect submission did not get full marks")
    if untouched is None or untouched.score != 0:
        problems.append("the untouched release did not get 0")
    if partial is None or not 0 < partial.score < partial.max_score:
        problems.append("the partial submission is not strictly between 0 and full marks")
    if broken is None or "invalid_notebook" not in broken.flags:
        problems.append("the broken file was not flagged invalid_notebook")
    if cheater is None or partial is None or cheater.score > partial.score:
        problems.append("the cheater scored more than the same functions without the cheating")
    return problems


def _sandbox_problem() -> str | None:
    """Why student code cannot be sandboxed here, or None when it can."""
    try:
        from autograder.sandbox import sandbox_available
    except ImportError as exc:
        return f"the sandbox module cannot be imported ({exc})"
    ok, reason = sandbox_available()
    return None if ok else reason


def add_arguments(parser) -> None:
    parser.add_argument("--out", default=None,
                        help="folder for the sample class (default: demo-out/ under the course; "
                             "recreated on every run)")
    parser.add_argument("--course-dir", default=".", help="the nbgrader course directory")
    parser.add_argument("--workers", type=int, default=None,
                        help="grading workers (default: one per core)")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run student code without the sandbox (only on a machine you "
                             "do not care about)")


def run(args) -> int:
    started = time.monotonic()
    course = Course(args.course_dir)
    out = Path(args.out).resolve() if args.out else course.root / "demo-out"
    if not args.unsafe_no_sandbox:
        problem = _sandbox_problem()
        if problem:
            raise UsageError(f"cannot sandbox student code: {problem}; install bubblewrap "
                             "(tools/install-system-deps.sh) or pass --unsafe-no-sandbox")
    assignments = course.assignments
    missing = [a for a in assignments if not course.source_notebook(a).exists()]
    if missing:
        raise UsageError(f"nbgrader_config.py lists {', '.join(missing)} but "
                         f"{course.source_notebook(missing[0]).relative_to(course.root)} "
                         "does not exist; add the notebook or remove it from the list")
    for name in REDIRECTING_ENV:  # the demo grades its own class, never a real one
        os.environ.pop(name, None)
    # the pipeline, imported once the arguments are known to be usable
    from autograder.pipeline.coordinator.assignment import grade_assignment

    print("rnn-course demo: build the release, hand it to a sample class, grade it.\n")
    prepare_out_dir(course, out)
    print(f"1. made a self-contained course directory in {out}")
    build_release(course, out, assignments)
    print(f"2. built its release/ for {', '.join(assignments)} (autograder.commands.release): "
          "no solution or hidden test leaked")
    print("3. five students hand in each assignment:")
    for student, what in STUDENTS.items():
        print(f"     {student:<10} {what}")
    with LoopbackListener() as listener:
        for a in assignments:
            make_class(out, a, listener.port)
        print("4. grading (each notebook runs in its own sandboxed kernel) ...\n", flush=True)
        reports = {}
        for a in assignments:
            reports[a] = grade_assignment(out, a, workers=args.workers,
                                          unsafe_no_sandbox=args.unsafe_no_sandbox,
                                          progress=False)
        time.sleep(0.3)  # let the listener thread count a late connection
        loopback = listener.connections

    problems = []
    shown = None
    for a, report in reports.items():
        print(f"== {a}  ({report.seconds:.0f} s)")
        print(report.table())
        print(f"   grades:   {report.csv_path}")
        print(f"   feedback: {report.feedback_dir}")
        results = {r.student: r for r in report.results}
        notebook = Path(report.autograded_dir) / "cheater" / a / f"{a}.ipynb"
        attempts = kernel_report(notebook)
        if attempts and not shown:
            print("   what the cheater's attempts met inside the sandbox:")
            for name, outcome in attempts.items():
                print(f"     - {name}: {outcome}")
            shown = attempts
        elif attempts:
            same = "the same outcomes as above" if attempts == shown else f"{attempts}"
            print(f"   the cheater's attempts: {same}")
        else:
            problems.append(f"{a}: the cheater's report is missing from its notebook")
        problems += [f"{a}: {p}" for p in expectations(results)]
        print()
    print(f"connections that reached the loopback listener on 127.0.0.1: {loopback}")
    if loopback:
        problems.append(f"student code reached 127.0.0.1 ({loopback} connection(s))")
    print(f"the whole demo took {time.monotonic() - started:.0f} s; "
          f"open the feedback HTML files above to see what students get back.")
    if problems:
        print("\nUNEXPECTED:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("every grade is the expected one: perfect = full marks, untouched = 0, partial in "
          "between,\nbroken flagged invalid_notebook, cheater no better than partial.")
    return 0
