"""Precheck: every kind of bad submission folder becomes a flag, never an exception."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat.common import SchemaTooOldError
from nbgrader.preprocessors import CheckCellMetadata, DeduplicateIds

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbfixtures as fx  # noqa: E402

from autograder.pipeline.flags import FLAGS  # noqa: E402
from autograder.pipeline.worker.precheck import Precheck, parse_notebook  # noqa: E402

A = "rnn_cell"
KNOWN = {"setup", "add_impl", "add_plain", fx.VISIBLE_ID, fx.HIDDEN_ID}
EXPECTED = {A: KNOWN}


def good_nb():
    return fx.fixture_source()


def folder_with(tmp_path: Path, files: dict[str, bytes | str | None]) -> Path:
    """A submission folder: relative path -> content (None: a directory)."""
    root = tmp_path / "submitted" / "s1" / A
    root.mkdir(parents=True)
    for rel, data in files.items():
        path = root / rel
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def check(folder: Path, **traits):
    return Precheck(**traits).check(folder, "s1", A, EXPECTED)


def nb_bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def test_clean_submission_has_no_flags(tmp_path):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb()),
                                       "timestamp.txt": "2026-01-10 12:00:00 UTC",
                                       "helper.py": "X = 1\n", "data/x.csv": "1,2\n"}))
    assert sub.flags == []
    assert sub.notebooks[A] is not None
    assert set(sub.files) == {"helper.py", "data/x.csv"}  # timestamp and notebooks excluded
    assert sub.timestamp == "2026-01-10 12:00:00 UTC"
    assert len(sub.digest) == 64


GARBAGE = {
    "empty file": b"",
    "whitespace": b"  \n",
    "binary": bytes(range(256)) * 10,
    "JSON list": b"[1, 2, 3]",
    "JSON string": b'"notebook"',
    "missing cells key": json.dumps({"metadata": {}, "nbformat": 4,
                                     "nbformat_minor": 5}).encode(),
    "cells not a list": json.dumps({"cells": {}, "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}).encode(),
    "wrong nbformat": json.dumps({"cells": [], "metadata": {}, "nbformat": 99,
                                  "nbformat_minor": 0}).encode(),
    "nbformat missing": json.dumps({"cells": [], "metadata": {}}).encode(),
    "truncated JSON": nb_bytes(fx.fixture_source())[:200],
    "cell without source": json.dumps({"cells": [{"cell_type": "code", "metadata": {}}],
                                       "metadata": {}, "nbformat": 4,
                                       "nbformat_minor": 4}).encode(),
    "deep nesting": b"[" * 100000 + b"]" * 100000,
    "latin-1 text": "{\"cells\": \"\xe9\"}".encode("latin-1"),
}


@pytest.mark.parametrize("what", list(GARBAGE))
def test_garbage_notebook_is_flagged_not_raised(tmp_path, what):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": GARBAGE[what]}))
    assert sub.flag_names == ["invalid_notebook"], sub.flags
    assert sub.notebooks[A] is None
    assert all(len(reason.splitlines()) == 1 for _, reason in sub.flags)


@pytest.mark.parametrize("what", list(GARBAGE))
def test_parse_notebook_never_raises(what):
    nb, problem = parse_notebook(GARBAGE[what])
    assert nb is None and problem


def test_directory_named_like_the_notebook(tmp_path):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": None, f"{A}.ipynb/inner.txt": "x"}))
    assert "invalid_notebook" in sub.flag_names
    assert sub.notebooks[A] is None


def test_missing_notebook(tmp_path):
    sub = check(folder_with(tmp_path, {"timestamp.txt": "2026-01-10 12:00:00 UTC"}))
    assert sub.flag_names == ["missing_notebook"]
    assert sub.notebooks[A] is None


def test_empty_folder(tmp_path):
    sub = check(folder_with(tmp_path, {}))
    assert sub.flag_names == ["missing_notebook"]


def test_single_other_notebook_is_renamed(tmp_path):
    sub = check(folder_with(tmp_path, {"My copy of rnn_cell.ipynb": nb_bytes(good_nb())}))
    assert sub.flag_names == ["renamed_notebook"]
    assert "My copy of rnn_cell.ipynb" in sub.flags[0][1]
    assert sub.notebooks[A] is not None


def test_renamed_picks_the_notebook_with_the_assignments_cells(tmp_path):
    other = fx.notebook([fx.code("print('scratch')")])
    sub = check(folder_with(tmp_path, {"a_scratch.ipynb": nb_bytes(other),
                                       "b_answers.ipynb": nb_bytes(good_nb())}))
    assert sub.flag_names == ["renamed_notebook"]
    assert "b_answers.ipynb" in sub.flags[0][1]


def test_notebook_in_an_uploaded_folder(tmp_path):
    sub = check(folder_with(tmp_path, {f"upload/{A}.ipynb": nb_bytes(good_nb())}))
    assert sub.flag_names == ["renamed_notebook"]
    assert sub.notebooks[A] is not None


def _grade_ids(nb_json: str) -> list:
    nb = nbformat.reads(nb_json, as_version=4)
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def test_duplicate_grade_id_keeps_the_first_and_cannot_abort_nbgrader(tmp_path):
    nb = good_nb()
    copy = fx.grade_cell("assert True  # my copy", "add_plain", 1)
    nb.cells.append(copy)
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(nb)}))
    assert sub.flag_names == ["duplicate_grade_id"]
    ids = _grade_ids(sub.notebooks[A])
    assert ids.count("add_plain") == 1
    assert ids.index("add_plain") < len(ids) - 1  # the first (instructor's) one kept
    # what nbgrader's sanitize steps do with it no longer raises
    clean = nbformat.reads(sub.notebooks[A], as_version=4)
    clean, _ = DeduplicateIds().preprocess(clean, {})
    CheckCellMetadata().preprocess(clean, {})


def test_nbgraders_own_deduplication_would_abort(tmp_path):
    """Why the precheck resolves duplicates itself (see autograder.pipeline.worker.precheck)."""
    nb = good_nb()
    nb.cells.append(fx.grade_cell("assert True", "add_plain", 1))
    nb, _ = DeduplicateIds().preprocess(nb, {})
    with pytest.raises(SchemaTooOldError):
        CheckCellMetadata().preprocess(nb, {})


def test_unknown_grade_id_becomes_a_plain_cell(tmp_path):
    nb = good_nb()
    nb.cells.append(fx.grade_cell("print('free points')", "bonus_cell", 100))
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(nb)}))
    assert sub.flag_names == ["unknown_grade_id"]
    assert "bonus_cell" not in _grade_ids(sub.notebooks[A])
    CheckCellMetadata().preprocess(nbformat.reads(sub.notebooks[A], as_version=4), {})


def test_corrupt_nbgrader_metadata_is_dropped(tmp_path):
    nb = good_nb()
    del nb.cells[3].metadata.nbgrader["points"]  # a grade cell without points
    nb.cells[2].metadata.nbgrader["schema_version"] = "three"
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(nb)}))
    assert sub.flag_names == ["tampered_cells_restored"]
    assert len(sub.flags) == 2
    CheckCellMetadata().preprocess(nbformat.reads(sub.notebooks[A], as_version=4), {})


@pytest.mark.parametrize("name", ["numpy.py", "rnn_course.py", "sitecustomize.py",
                                  "usercustomize.py", "json.py", "dask.py", "nbgrader.py",
                                  "autograder.py", "numpy.cpython-311-x86_64-linux-gnu.so"])
def test_shadowing_file_is_flagged_and_not_copied(tmp_path, name):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb()), name: "x = 1\n",
                                       "helper.py": "y = 2\n"}))
    assert sub.flag_names == ["shadowing_module"]
    assert name not in sub.files and "helper.py" in sub.files


@pytest.mark.parametrize("folder", ["matplotlib", "numpy", "IPython"])
def test_shadowing_folder_is_flagged_and_not_copied(tmp_path, folder):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb()),
                                       f"{folder}/__init__.py": "x = 1\n",
                                       f"{folder}/pyplot.py": "x = 1\n"}))
    assert sub.flag_names == ["shadowing_module"]
    assert not any(rel.startswith(folder) for rel in sub.files)


def test_file_over_the_size_limit(tmp_path):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb()),
                                       "big.bin": b"x" * 5000}), max_file_bytes=4000)
    assert sub.flag_names == ["too_large"]
    assert "big.bin" not in sub.files


def test_notebook_over_the_size_limit(tmp_path):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb())}), max_file_bytes=100)
    assert "too_large" in sub.flag_names
    assert sub.notebooks[A] is None


def test_too_large_notebook_is_not_replaced_by_another(tmp_path):
    other = fx.notebook([fx.code("print('scratch')")])
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb()),
                                       "scratch.ipynb": nb_bytes(other)}), max_file_bytes=1000)
    assert sub.flag_names == ["too_large"]
    assert sub.notebooks[A] is None


def test_submission_over_the_total_limit(tmp_path):
    files = {f"{A}.ipynb": nb_bytes(good_nb())}
    files.update({f"f{i}.txt": b"y" * 3000 for i in range(5)})
    size = len(files[f"{A}.ipynb"])
    sub = check(folder_with(tmp_path, files), max_submission_bytes=size + 7000)
    assert sub.flag_names == ["too_large"]
    assert sub.notebooks[A] is not None and len(sub.files) == 2


def test_too_many_files(tmp_path):
    files = {f"{A}.ipynb": nb_bytes(good_nb())}
    files.update({f"many/f{i:03d}.txt": b"z" for i in range(30)})
    sub = check(folder_with(tmp_path, files), max_files=10)
    assert "too_large" in sub.flag_names


def test_symlinks_and_fifos_are_never_read(tmp_path):
    folder = folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb())})
    secret = tmp_path / "secret.txt"
    secret.write_text("the grader's secret")
    os.symlink(secret, folder / "notes.txt")
    os.symlink("/etc", folder / "etc")
    os.mkfifo(folder / "pipe")
    sub = check(folder)
    assert sub.flag_names == ["unsafe_file"]
    assert sub.files == {}
    assert not any(b"secret" in data for data in sub.files.values())


def test_notebook_symlink_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.ipynb"
    target.write_bytes(nb_bytes(good_nb()))
    folder = folder_with(tmp_path, {})
    os.symlink(target, folder / f"{A}.ipynb")
    sub = check(folder)
    assert "invalid_notebook" in sub.flag_names and "unsafe_file" in sub.flag_names
    assert sub.notebooks[A] is None


@pytest.mark.parametrize("linked", ["notes.txt", f"{A}.ipynb", "deep/er/notes.txt"])
def test_a_hard_link_refuses_the_submission_and_is_never_read(tmp_path, linked):
    """A name in the submission for a file of the course (a hard link) reads as that file."""
    course_file = tmp_path / "source.ipynb"
    course_file.write_text("the instructor's solutions")
    files = {"own.txt": "mine", "deep/er": None}
    if linked != f"{A}.ipynb":
        files[f"{A}.ipynb"] = nb_bytes(good_nb())
    folder = folder_with(tmp_path, files)
    os.link(course_file, folder / linked)
    sub = check(folder)
    # the notebook not graded: "is a hard link, not a notebook file" when it is the link
    unread = "invalid_notebook" if linked == f"{A}.ipynb" else "missing_notebook"
    assert sub.flag_names == sorted([unread, "unsafe_file"])
    assert ("unsafe_file", f"{linked} is a hard link, a file with another name: not graded"
            ) in sub.flags
    assert sub.notebooks[A] is None and sub.raw == {} and sub.files == {}
    (folder / linked).unlink()  # the same folder without it is graded, with a new digest
    assert check(folder).digest != sub.digest


def test_a_hard_link_swapped_in_after_the_scan_is_not_read(tmp_path):
    course_file = tmp_path / "secret.txt"
    course_file.write_text("the grader's secret")
    folder = folder_with(tmp_path, {"notes.txt": "mine"})
    os.unlink(folder / "notes.txt")
    os.link(course_file, folder / "notes.txt")
    assert Precheck()._read(folder / "notes.txt") is None
    assert Precheck()._read(course_file) is None  # it has two names now: neither is read


@pytest.mark.parametrize("level", ["student", "assignment"])
def test_a_linked_student_or_submission_folder_is_refused_never_followed(tmp_path, level):
    other = folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb())})  # submitted/s1/<A>
    if level == "student":
        os.symlink(other.parent, tmp_path / "submitted" / "mallory")
    else:
        (tmp_path / "submitted" / "mallory").mkdir()
        os.symlink(other, tmp_path / "submitted" / "mallory" / A)
    sub = Precheck().check(tmp_path / "submitted" / "mallory" / A, "mallory", A, EXPECTED)
    what = "student folder mallory" if level == "student" else f"submission folder {A}"
    assert (("unsafe_file", f"the {what} is a symbolic link: not graded")
            in sub.flags), sub.flags
    assert sub.notebooks[A] is None and sub.raw == {} and sub.files == {}
    assert "missing_notebook" in sub.flag_names and len(sub.digest) == 64
    assert Precheck().check(other, "s1", A, EXPECTED).flags == []  # the genuine one


def test_digest_changes_with_any_file(tmp_path):
    folder = folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb()), "a.txt": "1",
                                    "timestamp.txt": "2026-01-10 12:00:00 UTC"})
    first = check(folder).digest
    assert check(folder).digest == first
    (folder / "a.txt").write_text("2")
    second = check(folder).digest
    (folder / "timestamp.txt").write_text("2026-01-11 12:00:00 UTC")
    third = check(folder).digest
    assert len({first, second, third}) == 3


def test_ignored_names_are_skipped(tmp_path):
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(good_nb()),
                                       ".ipynb_checkpoints/x-checkpoint.ipynb": "{}",
                                       "__pycache__/m.cpython-311.pyc": b"\0"}))
    assert sub.flags == [] and sub.files == {}


def test_unreadable_folder_is_a_flag(tmp_path):
    sub = Precheck().check(tmp_path / "does-not-exist", "s1", A, EXPECTED)
    assert sub.flag_names  # listed problems, no exception
    assert set(sub.flag_names) <= set(FLAGS)


@pytest.mark.parametrize("shape, traits, reason", [
    ("cells", {"max_cells": 10}, "cells (limit 10)"),
    ("deep", {"max_json_depth": 12}, "nested deeper than 12"),
    ("wide", {"max_json_items": 5000}, "more than 5000 JSON values"),
])
def test_notebook_over_the_structure_caps_is_not_graded(tmp_path, shape, traits, reason):
    nb = good_nb()
    if shape == "cells":
        nb.cells.extend(fx.code("") for _ in range(20))
    elif shape == "deep":
        deep = 1
        for _ in range(20):
            deep = [deep]
        nb.metadata["deep"] = deep
    else:
        nb.metadata["wide"] = list(range(6000))
    sub = check(folder_with(tmp_path, {f"{A}.ipynb": nb_bytes(nb)}), **traits)
    assert sub.flag_names == ["too_large"] and sub.notebooks[A] is None
    assert reason in sub.flags[0][1] and sub.flags[0][1].endswith("not graded")


def test_the_structure_caps_leave_the_courses_notebooks_alone():
    import json

    from autograder.course import Course
    from autograder.pipeline.worker.precheck import structure_problem

    for a in Course(fx.REPO).assignments:
        for folder in ("source", "release"):
            raw = json.loads((fx.REPO / folder / a / f"{a}.ipynb").read_text())
            assert structure_problem(raw) == "", (folder, a)
            # and a tenth of each cap would still be enough
            assert structure_problem(raw, max_cells=100, max_depth=7, max_items=20_000) == ""


def test_the_compiled_metadata_validator_says_what_nbgraders_says():
    """autograder's MetadataValidator (schema compiled once) against nbgrader's, rule by rule."""
    import copy

    from nbgrader.nbgraderformat import MetadataValidator as Nbgrader

    from autograder.pipeline.worker.preprocessors import metadata_validator

    nb = good_nb()
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    mutations = {
        "valid": lambda m: None,
        "points not a number": lambda m: m.__setitem__("points", "x"),
        "grade not a bool": lambda m: m.__setitem__("grade", "yes"),
        "old schema": lambda m: m.__setitem__("schema_version", 1),
        "new schema": lambda m: m.__setitem__("schema_version", 9),
        "no grade id": lambda m: m.pop("grade_id"),
        "extra key": lambda m: m.__setitem__("extra", 1),
        "no points": lambda m: m.pop("points"),
    }
    outcomes = set()
    for name, mutate in mutations.items():
        said = []
        for validator in (Nbgrader(), metadata_validator()):
            changed = copy.deepcopy(cell)
            mutate(changed.metadata.nbgrader)
            try:
                validator.validate_cell(changed)
                said.append("valid")
            except Exception as exc:
                said.append(f"{type(exc).__name__}: {exc}")
        assert said[0] == said[1], name
        outcomes.add(said[0].split(":")[0])
    assert outcomes >= {"valid", "ValidationError", "SchemaTooOldError", "SchemaTooNewError"}
