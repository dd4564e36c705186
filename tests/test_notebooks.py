"""The course notebooks, for every assignment whose source notebook exists.

1. source notebooks carry no outputs, ``execution_count: null`` and minimal
   metadata (kernelspec only; nbgrader metadata only on cells);
2. ``nbgrader validate`` passes on each source notebook and
   ``nbgrader validate --invert`` on each release notebook;
3. ``release/`` is exactly what ``nbgrader generate_assignment`` rebuilds from
   ``source/`` in a temporary copy of the course;
4. no line of a solution or of a hidden test appears in ``release/`` or in
   ``rnn_course/`` (``autograder.commands.release.all_leaks`` and an independent check);
5. every source notebook executes headless with its widgets, within 30 s and
   500 MB, and every grade cell passes;
6. every grade cell calls its registered check (a hidden one inside the hidden
   block), every graded function has a hidden check, and no registered check
   is orphaned.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.course import Course
from autograder.ungraded import MARK_FIELD, MARK_KEY
from rnn_course import checks
from rnn_course.grading import GRADING_DIR_ENV
from rnn_course.widgets import STATIC_ENV

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = Course(REPO).assignments  # the course's list, from nbgrader_config.py
_MISSING = [a for a in ASSIGNMENTS if not (REPO / "source" / a / f"{a}.ipynb").is_file()]
if _MISSING:  # an assignment of the course without its notebook fails, never skips
    pytest.fail(f"nbgrader_config.py lists {_MISSING} without source/<a>/<a>.ipynb", pytrace=False)
MAX_SECONDS = 30.0
MAX_RSS_MB = 500.0
MIN_LEAK_CHARS = 16  # the same threshold as autograder.commands.release
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
NBGRADER_KEYS = {"grade", "grade_id", "locked", "schema_version", "solution", "task"}
SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"



def source_path(a: str) -> Path:
    return REPO / "source" / a / f"{a}.ipynb"


def release_path(a: str) -> Path:
    return REPO / "release" / a / f"{a}.ipynb"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade")]


def run_env() -> dict:
    """Environment of every notebook run: the venv first on PATH, static widgets, Agg."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update({"MPLBACKEND": "Agg", STATIC_ENV: "1", "OPENBLAS_NUM_THREADS": "1"})
    for var in (GRADING_DIR_ENV, "RNN_COURSE_ROOT", "RNN_COURSE_DB_URL"):
        env.pop(var, None)
    return env


def regions(source: str, begin: str, end: str) -> list[str]:
    """The lines between ``begin`` and ``end`` markers (markers excluded)."""
    out, inside = [], False
    for raw in source.splitlines():
        line = raw.strip()
        if line.startswith(begin):
            inside = True
        elif line.startswith(end):
            inside = False
        elif inside:
            out.append(raw)
    return out


# --------------------------------------------------------------------------- #
# 1. clean source notebooks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_is_clean(assignment):
    raw = json.loads(source_path(assignment).read_text())
    assert raw["nbformat"] == 4
    assert raw["metadata"] == {"kernelspec": KERNELSPEC}, "notebook metadata: kernelspec only"
    ids = []
    for i, cell in enumerate(raw["cells"]):
        where = f"{assignment} cell {i}"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{where} has outputs"
            assert cell["execution_count"] is None, f"{where} has an execution_count"
        assert set(cell["metadata"]) <= {"nbgrader", MARK_KEY}, \
            f"{where}: metadata {set(cell['metadata'])}"
        assert cell["metadata"].get(MARK_KEY, {MARK_FIELD: True}) == {MARK_FIELD: True}, \
            f"{where}: {MARK_KEY} metadata is only the mark {MARK_FIELD}"
        meta = cell["metadata"].get("nbgrader")
        if meta is None:
            continue
        expected = NBGRADER_KEYS | ({"points"} if meta.get("grade") else set())
        assert set(meta) == expected, f"{where}: nbgrader keys {sorted(meta)}"
        assert meta["schema_version"] == 3 and meta["task"] is False
        if meta["solution"]:
            assert not meta["grade"] and not meta["locked"], f"{where}: solution cell flags"
        if meta["grade"]:
            assert meta["locked"] and not meta["solution"], f"{where}: test cell flags"
            assert meta["points"] > 0, f"{where}: no points"
        ids.append(meta["grade_id"])
    assert len(ids) == len(set(ids)), "grade_ids must be unique"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_signatures_and_docstrings_stay_outside_solutions(assignment):
    for cell in read(source_path(assignment)).cells:
        if not nbgrader_meta(cell).get("solution") or cell.cell_type != "code":
            continue
        head = cell.source.split(SOLUTION_BEGIN)[0]
        assert SOLUTION_BEGIN in cell.source
        for name in re.findall(r"^def (\w+)\(", cell.source, flags=re.M):
            assert f"def {name}(" in head, f"{name}: signature inside the solution"
            doc = head.split(f"def {name}(", 1)[1]
            assert '"""' in doc and "shape" in doc, f"{name}: no shape docstring outside"


def test_grade_ids_are_unique_course_wide():
    seen = {}
    for a in ASSIGNMENTS:
        for cell in read(source_path(a)).cells:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid and nbgrader_meta(cell).get("grade"):
                assert gid not in seen, f"{gid} in both {seen.get(gid)} and {a}"
                seen[gid] = a


# --------------------------------------------------------------------------- #
# 2. nbgrader validate, both ways (one nbgrader process per direction)
# --------------------------------------------------------------------------- #
def nbgrader_validate(paths, invert: bool) -> str:
    """Run ``nbgrader validate`` on several notebooks at once; return its stdout.

    nbgrader 0.9.6 exits 0 whatever the result.  For each notebook it prints
    "Success! Your notebook passes all the tests." (with --invert: "Success! The
    notebook does not pass any tests."), or else "VALIDATION FAILED ON n CELL(S)!"
    (with --invert: "NOTEBOOK PASSED ON n CELL(S)!") followed by "The following cell
    failed:" / "The following cell passed:" blocks; a changed checksum prints "THE
    CONTENTS OF n TEST CELL(S) HAVE CHANGED!" and a changed cell type "THE TYPES OF".
    Its log (stderr) names each notebook as it goes.
    """
    cmd = [sys.executable, "-m", "nbgrader", "validate", *map(str, paths)]
    cmd += ["--invert"] if invert else []
    proc = subprocess.run(cmd, cwd=REPO, env=run_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_nbgrader_validate_sources():
    out = nbgrader_validate([source_path(a) for a in ASSIGNMENTS], invert=False)
    assert out.count("Success! Your notebook passes all the tests.") == len(ASSIGNMENTS), out
    for bad in ("VALIDATION FAILED", "The following cell failed", "HAVE CHANGED",
                "THE TYPES OF"):
        assert bad not in out, out


@pytest.mark.slow
def test_nbgrader_validate_invert_releases():
    out = nbgrader_validate([release_path(a) for a in ASSIGNMENTS], invert=True)
    assert out.count("Success! The notebook does not pass any tests.") == len(ASSIGNMENTS), out
    for bad in ("NOTEBOOK PASSED ON", "The following cell passed", "HAVE CHANGED",
                "THE TYPES OF"):
        assert bad not in out, out


# --------------------------------------------------------------------------- #
# 3. release/ is up to date
# --------------------------------------------------------------------------- #
GENERATE_ALL = r"""
import sys
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader

config = PyFileConfigLoader("nbgrader_config.py", path=".").load_config()
api = NbGraderAPI(CourseDirectory(config=config), config=config)
for assignment in sys.argv[1:]:
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        sys.exit(f"{assignment}: {result.get('error')}\n{result.get('log')}")
"""


@pytest.mark.slow
def test_release_matches_a_rebuild(tmp_path):
    """A temporary copy of the course (config + source/) rebuilt with nbgrader's own
    ``generate_assignment`` (through its Python API, one process for every assignment).

    Nothing is ignored in the comparison: generate_assignment is deterministic
    (checksums are of the cell sources, cell ids are kept).
    """
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    for a in ASSIGNMENTS:
        shutil.copytree(REPO / "source" / a, course / "source" / a)
    proc = subprocess.run([sys.executable, "-c", GENERATE_ALL, *ASSIGNMENTS], cwd=course,
                          env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for a in ASSIGNMENTS:
        built, committed = course / "release" / a, REPO / "release" / a
        files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(committed)
                               for p in committed.rglob("*") if p.is_file())
        for rel in files:
            new, old = built / rel, committed / rel
            if rel.suffix == ".ipynb":
                assert json.loads(new.read_text()) == json.loads(old.read_text()), (
                    f"release/{a}/{rel} is stale: run `python -m autograder release {a}`")
            else:
                assert new.read_bytes() == old.read_bytes(), rel


# --------------------------------------------------------------------------- #
# 4. no solution or hidden-test line leaks
# --------------------------------------------------------------------------- #
def test_release_command_finds_no_leaks():
    from autograder.commands.release import all_leaks
    from autograder.course import Course

    assert all_leaks(Course(REPO), ASSIGNMENTS) == []


def _protected(a: str) -> set[str]:
    lines = set()
    for cell in read(source_path(a)).cells:
        if cell.cell_type != "code":
            continue
        for raw in (regions(cell.source, SOLUTION_BEGIN, SOLUTION_END)
                    + regions(cell.source, HIDDEN_BEGIN, HIDDEN_END)):
            line = raw.strip()
            if len(line) >= MIN_LEAK_CHARS and not line.startswith("#"):
                lines.add(line)
    return lines


def test_no_protected_line_anywhere_students_can_read():
    """Independent of autograder.commands.release: every source's secrets against every release
    notebook and every file of the student-facing package (not only its own)."""
    readable = {}
    for a in ASSIGNMENTS:
        if release_path(a).is_file():
            for cell in read(release_path(a)).cells:
                for line in cell.source.splitlines():
                    readable.setdefault(line.strip(), f"release/{a}")
    for path in sorted((REPO / "rnn_course").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".md", ".txt", ".json", ".cfg"):
            for line in path.read_text().splitlines():
                readable.setdefault(line.strip(), str(path.relative_to(REPO)))
    leaks = [f"{where}: {line!r} (from {a})" for a in ASSIGNMENTS for line in sorted(_protected(a))
             if (where := readable.get(line))]
    assert leaks == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_markers_outputs_or_hidden_calls(assignment):
    nb = read(release_path(assignment))
    hidden_calls = [f"checks.{cid}(" for cid, c in checks.assignment_checks(assignment).items()
                    if c.hidden]
    assert hidden_calls
    for cell in nb.cells:
        for marker in (SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END,
                       "grading.inputs(", "grading.submit(", *hidden_calls):
            assert marker not in cell.source
        assert not cell.get("outputs")


# --------------------------------------------------------------------------- #
# 5. headless execution, time and memory
# --------------------------------------------------------------------------- #
def _peak_rss_mb(pid: int) -> float:
    """The kernel's peak resident memory (VmHWM), read before it shuts down."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the kernel and its waited-for children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _wall_limit() -> float:
    """MAX_SECONDS, stretched only while the machine runs more than one job per core
    (the test suite runs beside other work; the notebook's own CPU time is held to
    MAX_SECONDS regardless)."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return MAX_SECONDS * max(1.0, load)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_executes_within_budget(assignment, monkeypatch):
    from nbclient import NotebookClient

    for key, value in run_env().items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    for var in (GRADING_DIR_ENV, "RNN_COURSE_ROOT", "RNN_COURSE_DB_URL"):
        monkeypatch.delenv(var, raising=False)
    nb = read(source_path(assignment))
    client = NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(source_path(assignment).parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        rss, cpu = _peak_rss_mb(pid), _cpu_seconds(pid)
    print(f"{assignment}: {seconds:.1f} s wall, {cpu:.1f} s CPU, peak kernel RSS {rss:.0f} MB")
    failures = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            bad = out.output_type == "error" or (out.output_type == "stream"
                                                 and out.name == "stderr")
            if bad and (nbgrader_meta(cell).get("grade") or out.output_type == "error"):
                text = out.get("evalue") or out.get("text", "")
                failures.append(f"{nbgrader_meta(cell).get('grade_id')}: {text[:300]}")
    assert failures == []
    assert cpu <= MAX_SECONDS, f"{assignment} used {cpu:.1f} s of CPU"
    limit = _wall_limit()
    assert seconds <= limit, f"{assignment} took {seconds:.1f} s (limit {limit:.0f} s)"
    assert rss <= MAX_RSS_MB, f"{assignment} peaked at {rss:.0f} MB"


# --------------------------------------------------------------------------- #
# 6. every grade cell is a registered check; every graded function is hidden-tested
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grade_cells_call_their_registered_checks(assignment):
    registered = checks.assignment_checks(assignment)
    nb = read(source_path(assignment))
    ids = [nbgrader_meta(c)["grade_id"] for c in grade_cells(nb)]
    unknown = [i for i in ids if i not in registered]
    assert unknown == [], f"grade cells without a check: {unknown}"
    for cell in grade_cells(nb):
        gid = nbgrader_meta(cell)["grade_id"]
        check = registered[gid]
        call = f"checks.{gid}({', '.join(check.functions)})"
        hidden_code = "\n".join(regions(cell.source, HIDDEN_BEGIN, HIDDEN_END))
        if check.hidden:
            assert hidden_code.strip() == call, f"{gid}: the hidden block is one call"
            visible = cell.source.split(HIDDEN_BEGIN)[0]
            assert "checks." in visible, f"{gid}: a visible line runs before the hidden block"
        else:
            assert HIDDEN_BEGIN not in cell.source, f"{gid}: hidden code in a visible check"
            assert call in cell.source, f"{gid}: the cell must call its check"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_function_has_a_hidden_check(assignment):
    registered = checks.assignment_checks(assignment)
    nb = read(source_path(assignment))
    functions = [name for c in nb.cells if nbgrader_meta(c).get("solution")
                 for name in re.findall(r"^def (\w+)\(", c.source, flags=re.M)]
    assert functions, "no graded function found"
    used = {nbgrader_meta(c)["grade_id"] for c in grade_cells(nb)}
    hidden_tested = {name for cid, c in registered.items() if c.hidden and cid in used
                     for name in c.functions}
    for name in functions:
        assert name in hidden_tested, f"{name} has no hidden check"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_registered_check_is_orphaned(assignment):
    """Every check defined for the assignment is called by a grade cell of its notebook."""
    ids = {nbgrader_meta(c)["grade_id"] for c in grade_cells(read(source_path(assignment)))}
    defined = set(checks.assignment_checks(assignment))
    assert defined <= ids, f"not used by any cell: {sorted(defined - ids)}"
