"""Cells no grade depends on: the mark, its proof at release, and grading that skips them.

- :mod:`autograder.ungraded`: the names a cell binds and reads, the refusals;
- ``python -m autograder release``: refuses (one line naming the cell) a marked
  cell that defines a name a later cell uses, and one whose skipping makes a
  later cell fail; passes a safe marking;
- :class:`~autograder.pipeline.worker.preprocessors.SkipUngraded`: only the ids the
  instructor marked, only as the gradebook restored them (locked, the
  instructor's source), never a submission's metadata; the student's own
  outputs, reduced to text and images, with the note;
- grading the fixture assignment with a marked cell, skipping on and off: the
  same scores for an honest submission and for ones that edit the skipped
  cell, add cells, move their code into it, or tag their own cells.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil

import nbfixtures as fx
import nbformat
import pytest
from nbformat.v4 import new_output
from nbgrader.utils import compute_checksum
from test_protocol import _release
from traitlets.config import Config

from autograder.pipeline import flags as F
from autograder.pipeline.worker.preprocessors import SkipUngraded
from autograder.pipeline.worker.preprocessors.sanitize_outputs import SAFE_MIME
from autograder.pipeline.worker.submission import grade_submission
from autograder.ungraded import (
    MARK_FIELD,
    MARK_KEY,
    NOT_RERUN_NOTE,
    SKIP_TAG,
    bound_names,
    failures_when_skipped,
    refusals,
    source_marks,
    used_names,
)

A = fx.ASSIGNMENT
EXPERIMENT = "experiment"
EXPERIMENT_SOURCE = 'print("EXPERIMENT RAN")'
# a 1x1 PNG
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
       "RU5ErkJggg==")


def marked(cell):
    cell.metadata[MARK_KEY] = {MARK_FIELD: True}
    return cell


# --------------------------------------------------------------------------- #
# static analysis
# --------------------------------------------------------------------------- #
def test_bound_names_are_the_cells_globals_only():
    source = ("import numpy as np\nfrom a.b import c as d\nx, (y, *z) = 1, (2, 3)\n"
              "for i in range(3):\n    pass\nwith open('f') as fh:\n    pass\n"
              "def f(a):\n    local = a\n    global g\n    g = 1\n    return local\n"
              "class K:\n    attr = 1\n[w for w in range(3)]\nlambda q: q\n%matplotlib inline\n")
    assert bound_names(source) == {"np", "d", "x", "y", "z", "i", "fh", "f", "g", "K"}


def test_used_names_are_what_a_cell_reads_without_binding():
    source = "def f(a):\n    b = a + N\n    return b\nprint(f(H), np.pi)\nH2 = 1\nprint(H2)"
    assert used_names(source) == {"N", "H", "np", "print"}


def _notebook(marked_source: str, later_source: str = "print(helper)"):
    return fx.notebook([
        fx.locked_cell("import numpy as np", "setup"),
        marked(fx.locked_cell(marked_source, EXPERIMENT)),
        fx.locked_cell(later_source, "uses_helper"),
    ])


def test_a_marked_cell_defining_a_name_a_later_cell_uses_is_refused():
    assert refusals(_notebook("helper = 1")) == [
        f"cell {EXPERIMENT}: marked {MARK_FIELD} but defines helper, which cell uses_helper uses"]
    assert refusals(_notebook("import helper")) != []
    assert refusals(_notebook("def helper():\n    pass")) != []
    # a name the later cell binds itself, or one only another marked cell reads, is safe
    assert refusals(_notebook("helper = 1", "helper = 2\nprint(helper)")) == []
    nb = _notebook("helper = 1")
    marked(nb.cells[2])
    assert refusals(nb) == []


def test_only_locked_instructor_cells_may_be_marked():
    for cell in (fx.solution_cell("x = 1", "answer"), fx.grade_cell("pass", "test", 1),
                 fx.code("print(1)")):
        nb = fx.notebook([marked(cell)])
        assert len(refusals(nb)) == 1 and "not a locked instructor cell" in refusals(nb)[0]


def test_the_course_notebooks_are_marked_safely():
    from autograder.course import Course

    course = Course(fx.REPO)
    for a in course.assignments:
        nb = nbformat.read(course.source_notebook(a), as_version=4)
        assert refusals(nb) == [], a
    assert all(source_marks(course.source_notebook(a).parent, [a]) for a in course.assignments)


# --------------------------------------------------------------------------- #
# the release command
# --------------------------------------------------------------------------- #
def _course(tmp_path, nb):
    root = tmp_path / "course"
    (root / "source" / A).mkdir(parents=True)
    # the course's own assignment list: the release rewrites the oracle values of every
    # assignment it lists (and removes the others'), in this repository's package
    shutil.copy2(fx.REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(nb, root / "source" / A / f"{A}.ipynb")
    return root


def test_release_refuses_a_marked_cell_that_defines_a_used_name(tmp_path, capsys):
    root = _course(tmp_path, _notebook("helper = 1"))
    code, err = _release(root, capsys, A)
    assert code == 2 and len(err.splitlines()) == 1
    assert err == (f"error: source/{A}/{A}.ipynb: cell {EXPERIMENT}: marked {MARK_FIELD} "
                   "but defines helper, which cell uses_helper uses\n")
    assert not (root / "release").exists()


@pytest.mark.slow
def test_release_refuses_a_marking_whose_skipping_breaks_a_later_cell(tmp_path, capsys):
    # exec hides the binding from the static analysis: the run finds it
    root = _course(tmp_path, _notebook('exec("helper = 1")'))
    code, err = _release(root, capsys, A)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: source/{A}/{A}.ipynb: cell uses_helper fails with the "
                          "marked cells skipped (NameError: name 'helper' is not defined)")
    assert not (root / "release").exists()


@pytest.mark.slow
def test_release_passes_a_safe_marking_and_keeps_the_mark(tmp_path, capsys):
    root = _course(tmp_path, _notebook("helper = 1", "helper = 2\nprint(helper)"))
    code = fx_cli_release(root)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ran 1 source notebook(s) with their marked cells skipped: every check passes" in out
    release = nbformat.read(root / "release" / A / f"{A}.ipynb", as_version=4)
    assert source_marks(root / "release" / A, [A]) == {A: frozenset({EXPERIMENT})}
    assert len(release.cells) == 3


def fx_cli_release(root) -> int:
    from autograder import cli

    return cli.main(["release", A, "--course-dir", str(root)])


@pytest.mark.slow
def test_every_course_notebook_passes_its_checks_with_marked_cells_skipped():
    from autograder.course import Course

    course = Course(fx.REPO)
    for a in course.assignments:
        assert failures_when_skipped(course.source_notebook(a)) == [], a


# --------------------------------------------------------------------------- #
# the preprocessor, on a notebook as RestoreCells leaves it
# --------------------------------------------------------------------------- #
def _restored(cell):
    cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    return cell


def _student_outputs():
    return [
        new_output("stream", name="stdout", text="loss 0.1\n"),
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>",
                                         "text/html": "<script>alert(1)</script>",
                                         "application/javascript": "alert(2)"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {}}),
        new_output("display_data", data={"image/png": '"><script>alert(3)</script>'}),
        new_output("error", ename="E", evalue="boom", traceback=["boom"]),
    ]


def _skip(nb, submitted=None, cells=(EXPERIMENT,), **kw):
    pp = SkipUngraded(cells=set(cells), submitted=submitted, **kw)
    return pp.preprocess(nb, {})


def test_skips_the_marked_locked_cell_and_shows_the_students_outputs_as_text_and_images():
    submitted = fx.notebook([fx.locked_cell(EXPERIMENT_SOURCE, EXPERIMENT)])
    submitted.cells[0].outputs = _student_outputs()
    nb = fx.notebook([_restored(fx.locked_cell(EXPERIMENT_SOURCE, EXPERIMENT))])
    nb, resources = _skip(nb, nbformat.writes(submitted))
    cell = nb.cells[0]
    assert resources["rnn_course"]["skipped_cells"] == [EXPERIMENT]
    assert cell.metadata.tags == [SKIP_TAG]
    assert [o.output_type for o in cell.outputs] == ["stream", "display_data", "stream"]
    assert set(cell.outputs[1].data) == {"image/png", "text/plain"} <= set(SAFE_MIME)
    assert cell.outputs[-1].text == NOT_RERUN_NOTE


def test_a_submission_without_outputs_shows_nothing_there():
    nb = fx.notebook([_restored(fx.locked_cell(EXPERIMENT_SOURCE, EXPERIMENT))])
    submitted = nbformat.writes(copy.deepcopy(nb))
    nb, _ = _skip(nb, submitted)
    assert nb.cells[0].metadata.tags == [SKIP_TAG] and nb.cells[0].outputs == []


def test_only_instructor_ids_as_the_gradebook_restored_them_are_skipped():
    changed = _restored(fx.locked_cell(EXPERIMENT_SOURCE, EXPERIMENT))
    changed.source = "print('not the instructor source')"  # checksum no longer matches
    answer = _restored(fx.solution_cell("x = 1", "answer"))
    own = marked(fx.code("print('mine')"))  # the submission's own mark: ignored
    own.metadata.tags = [SKIP_TAG, "keep"]  # the submission's own skip tag: removed
    unmarked = _restored(fx.locked_cell("print(2)", "other"))
    nb = fx.notebook([changed, answer, own, unmarked])
    nb.cells[3].metadata.tags = SKIP_TAG  # a string: nbclient would find the tag in it
    nb, resources = _skip(nb, None, cells=(EXPERIMENT, "answer"))
    assert resources["rnn_course"]["skipped_cells"] == []
    assert [c.metadata.get("tags", []) for c in nb.cells] == [[], [], ["keep"], []]


def test_disabled_it_skips_nothing():
    nb = fx.notebook([_restored(fx.locked_cell(EXPERIMENT_SOURCE, EXPERIMENT))])
    config = Config()
    config.SkipUngraded.enabled = False
    nb, resources = _skip(nb, None, config=config)
    assert resources["rnn_course"]["skipped_cells"] == [] and "tags" not in nb.cells[0].metadata


# --------------------------------------------------------------------------- #
# grading, skipping on and off
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def marked_released(tmp_path_factory):
    """The fixture assignment with a marked cell between the answer and the tests."""
    source = fx.fixture_source()
    source.cells.insert(3, marked(fx.locked_cell(EXPERIMENT_SOURCE, EXPERIMENT)))
    with pytest.MonkeyPatch.context() as mp:
        for var in ("RNN_COURSE_ROOT", "RNN_COURSE_DB_URL"):
            mp.delenv(var, raising=False)
        return fx.make_course(tmp_path_factory.mktemp("marked") / "course", source)


@pytest.fixture
def marked_course(marked_released, tmp_path, monkeypatch):
    from conftest import SECRET

    for var in ("RNN_COURSE_ROOT", "RNN_COURSE_DB_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RNN_COURSE_SECRET", SECRET)
    fx.install_fixture_checks()
    yield shutil.copytree(marked_released, tmp_path / "course")
    fx.uninstall_fixture_checks()


def _grade_both(course, student):
    """The student's result with marked cells skipped, and with every cell executed."""
    job, _ = fx.job_for(course, student)
    assert job.structure.skipped == {A: frozenset({EXPERIMENT})}
    skipped = grade_submission(job)
    config = copy.deepcopy(job.config)
    config.SkipUngraded.enabled = False
    full = grade_submission(dataclasses.replace(job, config=config))
    assert skipped.status == full.status == "graded", skipped.error + full.error
    return skipped, full


def _cell(result, grade_id=None, index=None):
    nb = nbformat.reads(result.notebooks[A], as_version=4)
    if index is not None:
        return nb.cells[index]
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _texts(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


def _experiment_index(nb):
    return next(i for i, c in enumerate(nb.cells)
                if c.metadata.get("nbgrader", {}).get("grade_id") == EXPERIMENT)


@pytest.mark.slow
def test_honest_submission_same_score_and_shows_its_own_figure(marked_course):
    nb = fx.student_notebook(marked_course)
    nb.cells[_experiment_index(nb)].outputs = _student_outputs()
    fx.submit(marked_course, "ann", nb)
    skipped, full = _grade_both(marked_course, "ann")
    assert skipped.score == full.score == 4.0 and skipped.scores.cells == full.scores.cells
    assert skipped.flags == full.flags == []
    shown = _cell(skipped, EXPERIMENT)
    assert "EXPERIMENT RAN" not in _texts(shown) and "loss 0.1" in _texts(shown)
    assert any("image/png" in o.get("data", {}) for o in shown.outputs)
    assert "EXPERIMENT RAN" in _texts(_cell(full, EXPERIMENT))
    feedback = skipped.feedback[A]
    assert "not re-run when grading" in feedback and PNG[:40] in feedback
    assert "alert(" not in feedback and "alert(" not in skipped.notebooks[A]
    # without outputs handed in, the cell shows nothing
    fx.submit(marked_course, "bob", fx.student_notebook(marked_course))
    bob, _ = _grade_both(marked_course, "bob")
    assert _cell(bob, EXPERIMENT).outputs == [] and bob.score == 4.0


HOSTILE = {
    # edits the skipped cell: restored, skipped, flagged, as a full run restores it
    "edits": lambda nb, i: setattr(nb.cells[i], "source", 'print("STUDENT EDIT RAN")'),
    # adds a cell of its own carrying the mark: it runs
    "adds": lambda nb, i: nb.cells.insert(i + 1, marked(fx.code('print("ADDED RAN")'))),
    # moves its answer into the skipped cell: restored, so the answer is gone either way
    "moves": lambda nb, i: (setattr(nb.cells[i], "source", "def add(a, b):\n    return a + b"),
                            setattr(nb.cells[2], "source", "pass")),
    # tags its own answer for skipping: the tag is removed, it runs
    "tags": lambda nb, i: setattr(nb.cells[2].metadata, "tags", [SKIP_TAG]),
    # claims the skipped id for an answer cell of its own, after the real one
    "claims": lambda nb, i: nb.cells.insert(i + 1, _claiming_cell()),
}


def _claiming_cell():
    cell = fx.code('print("CLAIMED RAN")')
    cell.metadata.nbgrader = {"grade_id": EXPERIMENT, "solution": True, "grade": False,
                              "locked": False, "schema_version": 3}
    return marked(cell)


@pytest.mark.slow
def test_hostile_submissions_same_scores_graded_from_what_runs(marked_course):
    expected = {"edits": 4.0, "adds": 4.0, "moves": 0.0, "tags": 4.0, "claims": 4.0}
    for student, change in HOSTILE.items():
        nb = fx.student_notebook(marked_course)
        change(nb, _experiment_index(nb))
        fx.submit(marked_course, student, nb)
        skipped, full = _grade_both(marked_course, student)
        assert skipped.score == full.score == expected[student], student
        assert skipped.scores.cells == full.scores.cells, student
        assert sorted(F.flag_names(skipped.flags)) == sorted(F.flag_names(full.flags)), student
        text = "".join(_texts(c) for c in nbformat.reads(skipped.notebooks[A], 4).cells)
        assert "STUDENT EDIT RAN" not in text, student
        full_text = "".join(_texts(c) for c in nbformat.reads(full.notebooks[A], 4).cells)
        assert "EXPERIMENT RAN" not in text and "EXPERIMENT RAN" in full_text, student
        if student == "edits":
            assert F.TAMPERED_CELLS_RESTORED in F.flag_names(skipped.flags)
        if student == "adds":
            assert "ADDED RAN" in text
        if student == "claims":
            # the precheck leaves the id to the first cell: the later copy is the student's
            # own cell, and it runs, skipping or not
            assert "CLAIMED RAN" in text and "CLAIMED RAN" in full_text
