"""A planted class: students with known bugs (tests/planted.py) and honest ones, recorded
in a gradebook the way the pipeline records them, for the class view's tests and bench.

:func:`make_course` makes a course folder (this repository's ``nbgrader_config.py``,
a gradebook at ``db_url`` holding the assignment's graded cells as the source
notebook declares them, with a due date, and the release folder).
:func:`record_class` grades each student's functions in-process
(:func:`gradesim.grade`: the checks' real verdicts on the student's own drawn
inputs), scores them with :func:`autograder.pipeline.scoring.score_submission`
and records them with :func:`autograder.pipeline.coordinator.record.save_all`, the
coordinator's own path into the gradebook.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).parent))

import gradesim  # noqa: E402
from planted import BUGS  # noqa: E402

from autograder.pipeline.coordinator import gradebook as G  # noqa: E402
from autograder.pipeline.coordinator.record import save_all  # noqa: E402
from autograder.pipeline.scoring import NotebookRun, score_submission  # noqa: E402
from autograder.pipeline.types import GradeResult  # noqa: E402
from autograder.pipeline.worker import verify  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COURSE_ID = "rnn-course"
DUE = datetime(2026, 11, 20, 12, 0, 0)
LATE_CONFIG = {"LateSubmissionPlugin": {"penalty_method": "zero"}}
"""nbgrader's plugin that takes a late submission's points away: a visible penalty."""


def make_course(root: Path, db_url: str | None, assignment: str) -> tuple[Path, str]:
    """A course folder with ``assignment`` in its gradebook; (root, db_url)."""
    from nbgrader.api import Gradebook

    root.mkdir(parents=True, exist_ok=True)
    config = (REPO / "nbgrader_config.py").read_text()
    if db_url is None:
        db_url = f"sqlite:///{root / 'gradebook.db'}"
    else:
        config += f"\nc.CourseDirectory.db_url = {db_url!r}\n"
    (root / "nbgrader_config.py").write_text(config)
    shutil.copytree(REPO / "release" / assignment, root / "release" / assignment)
    with Gradebook(db_url, COURSE_ID) as gb:
        gb.add_assignment(assignment, duedate=DUE)
        gb.add_notebook(assignment, assignment)
        for grade_id, points in gradesim.graded_cells(assignment):
            gb.add_grade_cell(grade_id, assignment, assignment, max_score=points,
                              cell_type="code")
        G.ensure_tables(gb.engine)
    return root, db_url


def verdicts_of(assignment: str, planted_code: str, student: str) -> dict[str, dict]:
    """grade id -> the verdict the checks give ``student``'s functions (VerifyChecks' form)."""
    _, _, cells = gradesim.grade(assignment, gradesim.student_namespace(assignment, planted_code),
                                 student=student)
    return {gid: verify.verdict_record("hidden", verdict) for gid, (_, verdict) in cells.items()}


def result_for(structure, student: str, verdicts: dict | None, *, timestamp: datetime,
               flags=(), status: str = "graded") -> GradeResult:
    """A worker's result: ``verdicts`` scored as the worker scores them (None: not graded)."""
    from traitlets.config import Config

    result = GradeResult(student=student, assignment=structure.name, status=status,
                         worker="planted")
    for name, reason in flags:
        result.flag(name, reason)
    nb = next(iter(structure.notebooks))
    runs = {nb: NotebookRun(verdicts=verdicts)} if verdicts is not None else {}
    result.scores = score_submission(structure, runs, student=student, timestamp=timestamp,
                                     config=Config(LATE_CONFIG))
    return result


def record(db_url: str, items) -> None:
    """Record ``(result, timestamp)`` pairs through the coordinator's path (one transaction)."""
    book = G.CourseGradebook(db_url, COURSE_ID)
    try:
        save_all(book, [(r, SimpleNamespace(timestamp=t.isoformat(), digest=f"d-{r.student}"))
                        for r, t in items])
    finally:
        book.close()


def record_class(db_url: str, assignment: str, per_bug: int = 3, honest: int = 4,
                 late: int = 1) -> dict[str, list[str]]:
    """Grade and record a class: ``per_bug`` students for each planted bug of ``assignment``
    and ``honest`` students with right code (the first ``late`` of them after the due date);
    returns bug name (or ``"honest"``) -> its students."""
    structure = G.CourseGradebook(db_url, COURSE_ID).structure(assignment)
    groups: dict[str, list[str]] = {}
    items = []
    k = 0
    cases = [(name, code) for name, (a, code, _) in BUGS.items() if a == assignment]
    cases += [("honest", "")]
    for name, code in cases:
        count = honest if name == "honest" else per_bug
        for i in range(count):
            student = f"{name.split('/')[-1]}-{i}"
            groups.setdefault(name, []).append(student)
            when = DUE - timedelta(hours=30) + timedelta(minutes=k)  # all on time, in order
            if name == "honest" and i < late:
                when = DUE + timedelta(hours=2)
            k += 1
            items.append((result_for(structure, student,
                                     verdicts_of(assignment, code, student), timestamp=when),
                          when))
    record(db_url, items)
    return groups


def write_submission(root: Path, student: str, assignment: str, nb: dict) -> None:
    """``submitted/<student>/<assignment>/<assignment>.ipynb``."""
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.ipynb").write_text(json.dumps(nb))
