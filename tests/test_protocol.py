"""The check protocol: the channel, the one Check type, the one judge, fail-closed release."""

from __future__ import annotations

import os
import re
import sys
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder import cli, reference
from autograder.course import Course
from autograder.pipeline.worker import verify
from autograder.protocol import secrets
from rnn_course import checks, grading

REPO = Path(__file__).resolve().parents[1]
SECRET = b"test-secret"
PROTO = "proto"  # a test-only assignment whose checks module is installed by a fixture


@pytest.fixture
def grading_mode(tmp_path, monkeypatch):
    """Kernel-side grading mode pointed at a fresh folder."""
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(tmp_path / "g"))
    monkeypatch.setattr(grading, "_grading_dir", None)
    yield tmp_path / "g"
    grading._grading_dir = None


@pytest.fixture
def interactive_mode(monkeypatch):
    monkeypatch.delenv(grading.GRADING_DIR_ENV, raising=False)
    monkeypatch.setattr(grading, "_grading_dir", None)


def _draw_step(rng):
    return dict(x=rng.standard_normal((3, 4)), prev_h=rng.standard_normal((3, 5)),
                Wx=rng.standard_normal((4, 5)), Wh=rng.standard_normal((5, 5)),
                b=rng.standard_normal(5))


@checks.check("proto_step_hidden", _draw_step, hidden=True, outputs=("next_h",))
def STEP_HIDDEN(inputs, rnn_step_forward):  # noqa: N802 - a module-level check object
    return {"next_h": rnn_step_forward(**inputs)[0]}


SHAPE_CHECK = checks.Check(
    id="proto_step_shape",
    make_inputs=lambda rng: dict(x=rng.standard_normal((2, 3)), prev_h=np.zeros((2, 4)),
                                 Wx=np.zeros((3, 4)), Wh=np.zeros((4, 4)), b=np.ones(4)),
    run=lambda inp, rnn_step_forward: {"next_h": rnn_step_forward(**inp)[0]},
    verdict=lambda inp, out: checks.value_problem(
        "next_h", out["next_h"], np.tanh(np.ones((2, 4))), hint="with zero weights h = tanh(b)"),
)


@pytest.fixture
def proto_assignment(monkeypatch):
    """``rnn_course.checks.proto``: the checks of a test-only assignment."""
    module = types.ModuleType(checks.module_name(PROTO))
    module.shape = SHAPE_CHECK
    module.hidden = STEP_HIDDEN
    monkeypatch.setitem(sys.modules, checks.module_name(PROTO), module)
    return module


def _graded_cell(grade_id, source="pass", outputs=()):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True,
                                 "points": 2, "schema_version": 3, "solution": False,
                                 "task": False}
    cell.outputs = list(outputs)
    return cell


def _resources(assignment=PROTO):
    return {"nbgrader": {"assignment": assignment, "student": "s1"}}


def wrong_step(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + prev_h @ Wh), None


# --------------------------------------------------------------------------- #
# The channel (rnn_course.grading)
# --------------------------------------------------------------------------- #
def test_plain_arrays_reject_objects_and_strip_subclasses():
    class Liar(np.ndarray):
        def __eq__(self, other):  # noqa: D105 - a lying comparison
            return True

    lying = np.zeros(3).view(Liar)
    plain = grading.as_plain_arrays({"a": lying, "b": [1, 2], "c": 3.0})
    assert type(plain["a"]) is np.ndarray
    assert plain["c"].dtype == np.float64
    with pytest.raises(TypeError, match="numeric"):
        grading.as_plain_arrays({"a": np.array([object()])})
    with pytest.raises(TypeError):
        grading.as_plain_arrays({"a": "text"})
    with pytest.raises(ValueError):
        grading.as_plain_arrays({"../x": np.zeros(1)})


def test_check_ids_are_validated(grading_mode):
    for bad in ["../../etc/passwd", "", "a b", "..", 3]:
        with pytest.raises(ValueError):
            grading.submit(bad, x=np.zeros(1))
        with pytest.raises(ValueError):
            grading.result_path(grading_mode, bad)


def test_layout_is_inputs_and_results_npz(tmp_path):
    folder = grading.prepare(tmp_path / "g")
    assert (folder / grading.INPUTS_DIR).is_dir() and (folder / grading.RESULTS_DIR).is_dir()
    assert grading.input_path(folder, "c1") == folder / "inputs" / "c1.npz"
    assert grading.result_path(folder, "c1") == folder / "results" / "c1.npz"
    (folder / "results" / "c2.npz").write_bytes(b"planted")
    grading.deliver(folder, "c1", {"a": np.arange(3.0), "k": np.array(2)})
    with np.load(folder / "inputs" / "c1.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["a.a", "a.k"] and data["a.k"].dtype.kind == "i"
    nested = {"grads": {"W": np.ones((2, 2))}, "c": 1.5, "x": np.arange(2)}
    back = grading.decode_inputs(grading.encode_inputs(nested))
    assert back["c"] == 1.5 and type(back["c"]) is float and back["grads"]["W"].shape == (2, 2)
    assert list((folder / "results").iterdir()) == []  # nothing planted survives a delivery
    grading.clear(folder)
    assert list((folder / "inputs").iterdir()) == []


def test_collect_takes_only_a_regular_file_and_empties_the_folder(tmp_path):
    """The kernel owns the shared folder: links, fifos and a swapped folder get nowhere."""
    folder = grading.prepare(tmp_path / "g")
    outside = tmp_path / "outside.npz"
    outside.write_bytes(grading.npz_bytes({"x": np.ones(2)}))
    (folder / "results" / "c1.npz").symlink_to(outside)
    assert grading.collect(folder, "c1", tmp_path / "got.npz") is False
    os.mkfifo(folder / "results" / "c1.npz")  # would block a reader that opens it plainly
    assert grading.collect(folder, "c1", tmp_path / "got.npz") is False
    assert outside.is_file() and not (tmp_path / "got.npz").exists()
    (tmp_path / "g").rename(tmp_path / "moved")
    (tmp_path / "g").symlink_to(tmp_path / "moved")  # the kernel swapped the folder for a link
    grading.deliver(tmp_path / "g", "c1", {"a": np.zeros(1)})
    assert not (tmp_path / "g").is_symlink() and (tmp_path / "g" / "inputs" / "c1.npz").is_file()
    assert list((tmp_path / "moved" / "inputs").iterdir()) == []
    (tmp_path / "g" / "results" / "c1.npz").write_bytes(grading.npz_bytes({"y": np.ones(3)}))
    assert grading.collect(tmp_path / "g", "c1", tmp_path / "got.npz") is True
    assert grading.load_result(tmp_path / "got.npz")["y"].shape == (3,)
    assert [list((tmp_path / "g" / d).iterdir()) for d in ("inputs", "results")] == [[], []]


def test_submit_in_grading_mode_writes_results_only(grading_mode):
    grading.submit("proto_step_hidden", next_h=np.ones((2, 2)))
    with np.load(grading_mode / "results" / "proto_step_hidden.npz") as data:
        assert data.files == ["next_h"]
        np.testing.assert_array_equal(data["next_h"], np.ones((2, 2)))
    assert grading.load_result(grading_mode / "results" / "proto_step_hidden.npz")["next_h"] \
        .shape == (2, 2)


def test_the_channel_exists_only_while_grading(interactive_mode):
    with pytest.raises(RuntimeError, match="only while the notebook is graded"):
        grading.inputs("proto_step_hidden")
    with pytest.raises(RuntimeError, match="only while the notebook is graded"):
        grading.submit("proto_step_hidden", next_h=np.zeros(1))


def test_grading_dir_is_fixed_once_resolved(grading_mode, monkeypatch, tmp_path):
    first = grading.grading_dir()
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(tmp_path / "elsewhere"))
    assert grading.grading_dir() == first


@pytest.mark.parametrize("payload", ["pickle", "garbage", "huge", "bomb"])
def test_load_result_refuses_unsafe_files(tmp_path, payload):
    path = tmp_path / "r.npz"
    if payload == "pickle":
        np.savez(path, x=np.array([object()], dtype=object))
    elif payload == "garbage":
        path.write_bytes(b"not a zip at all")
    elif payload == "huge":
        np.savez(path, x=np.zeros(1000))
    else:  # a compressed zip that inflates far beyond the limit
        np.savez_compressed(path, x=np.zeros(2_000_000))
    limit = 4000 if payload == "huge" else 1_000_000
    with pytest.raises(ValueError):
        grading.load_result(path, limit)


def test_only_the_channel_spells_its_names():
    """The variable and the folder names are string literals of grading.py only (the demo's
    cheating student, whose code is a string in demo.py, is not the project's code)."""
    pattern = re.compile(r"""["'](RNN_COURSE_GRADING_DIR|inputs|results)["']""")
    spelled = []
    for root in ("rnn_course", "autograder"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.relative_to(REPO).as_posix() in ("rnn_course/grading.py",
                                                     "autograder/commands/demo.py"):
                continue
            spelled += [f"{path.relative_to(REPO)}: {m.group(0)}"
                        for m in pattern.finditer(path.read_text())]
    assert spelled == []


# --------------------------------------------------------------------------- #
# The one Check type
# --------------------------------------------------------------------------- #
def test_a_check_declares_what_its_kind_needs():
    run = lambda inputs, f: {"y": f(inputs["x"])}  # noqa: E731
    with pytest.raises(ValueError, match="declares its outputs"):
        checks.Check("h1", lambda rng: {}, run, hidden=True)
    with pytest.raises(ValueError, match="comparison with the reference"):
        checks.Check("h2", lambda rng: {}, run, verdict=lambda i, o: None, outputs=("y",),
                     hidden=True)
    with pytest.raises(ValueError, match="needs a verdict"):
        checks.Check("v1", lambda rng: {}, run)
    with pytest.raises(ValueError, match="not the other way round"):
        checks.Check("h3", lambda rng: {}, run, outputs=("y",), hidden=True, oracle=run)
    with pytest.raises(ValueError, match="not the other way round"):
        checks.Check("v2", lambda rng: {}, run, verdict=lambda i, o: None, expected=run)
    with pytest.raises(ValueError, match="invalid check id"):
        checks.Check("../v", lambda rng: {}, run, verdict=lambda i, o: None)
    assert STEP_HIDDEN.kind == "hidden" and SHAPE_CHECK.kind == "visible"
    assert STEP_HIDDEN.functions == ["rnn_step_forward"]


def test_interactive_visible_check_raises_with_message(interactive_mode, capsys):
    SHAPE_CHECK(reference.rnn_step_forward)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="tanh\\(b\\)"):
        SHAPE_CHECK(wrong_step)


def test_a_verdict_is_its_message_and_the_share_it_earns(interactive_mode):
    """One Verdict from the check to the kernel's AssertionError and the grader's record."""
    verdict = checks.Verdict("next_h is wrong", 1.5)
    assert (verdict.message, verdict.fraction, str(verdict)) == ("next_h is wrong", 1.0,
                                                                "next_h is wrong")
    assert checks.Verdict("x", -0.2).fraction == 0.0
    assert checks.Verdict.of(None) is None and checks.Verdict.of(verdict) is verdict
    assert checks.Verdict.of("plain") == checks.Verdict("plain", 0.0)
    shares = checks.per_output({"a": None, "b": "b is wrong", "c": None, "d": "d too"})
    assert shares == checks.Verdict("b is wrong (also wrong: d)", 0.5, general=True)
    assert verify.verdict_record("hidden", shares) == {
        "kind": "hidden", "passed": False, "message": shares.message, "fraction": 0.5}
    assert verify.verdict_record("visible", None)["fraction"] == 1.0
    judged = SHAPE_CHECK.judge(grading.as_plain_arrays(SHAPE_CHECK.run(SHAPE_CHECK.inputs(),
                                                                        wrong_step)))
    with pytest.raises(AssertionError) as raised:
        SHAPE_CHECK(wrong_step)
    assert str(raised.value) == f"{SHAPE_CHECK.id}: {judged.message}"


def test_interactive_hidden_check_judges_against_the_reference(interactive_mode, capsys):
    """The instructor's source notebook: fresh inputs, judged against autograder.reference."""
    STEP_HIDDEN(reference.rnn_step_forward)
    assert "proto_step_hidden: passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="proto_step_hidden: next_h differs"):
        STEP_HIDDEN(wrong_step)


def test_interactive_hidden_check_without_the_reference_says_so(interactive_mode, monkeypatch,
                                                                 capsys):
    """A student's environment (no reference to import): one line, nothing judged."""
    monkeypatch.setattr(checks, "REFERENCE_MODULE", "no_such_reference_module")
    STEP_HIDDEN(wrong_step)
    out = capsys.readouterr().out
    assert out == "proto_step_hidden: a hidden check; it runs only when the notebook is graded\n"


def test_grading_mode_hidden_check_reads_inputs_and_submits(grading_mode, capsys):
    drawn = STEP_HIDDEN.draw(np.random.default_rng(3))
    grading.prepare(grading_mode)
    grading.deliver(grading_mode, STEP_HIDDEN.id, drawn)
    STEP_HIDDEN(wrong_step)  # judged later, by the grader: nothing raised, nothing printed
    assert capsys.readouterr().out == ""
    got = grading.load_result(grading.result_path(grading_mode, STEP_HIDDEN.id))
    np.testing.assert_array_equal(got["next_h"], wrong_step(**drawn)[0])
    message = STEP_HIDDEN.judge(got, drawn, reference).message
    assert message.startswith("next_h differs from the expected values")


def test_the_quick_line_of_another_cell_never_fails_it(grading_mode):
    """While grading, a visible check called outside its own graded cell (the first line
    of a hidden cell) has no stand-ins: an unfinished helper must not fail that cell."""
    grading.prepare(grading_mode)

    def unfinished(**kwargs):
        raise NotImplementedError()

    SHAPE_CHECK(unfinished)  # nothing raised
    with pytest.raises(RuntimeError, match="only in its own graded cell"):
        STEP_HIDDEN(reference.rnn_step_forward)


def test_every_hidden_case_is_said_in_a_students_words():
    """No message names an internal case (generic_dx, kmid_dx, big_after_Wx): every
    output of a hidden check over several cases is said with its case's words."""
    from autograder.course import Course
    for check in checks.registry(Course(REPO).assignments).values():
        if not check.hidden:
            continue
        tags = getattr(check.make_inputs, "tags", ())
        for name in check.outputs:
            said, bare = checks.plain_output(name), checks.bare_output(name)
            assert not any(bare.startswith(f"{t}_") for t in tags), (check.id, name)
            if bare != name:
                words = said[len(bare):]
                assert said.startswith(f"{bare} ("), said
                assert not any(f"{t.rstrip('_')}_" in words for t in checks.CASE_WORDS), said


def test_a_function_wrong_in_general_keeps_at_most_half():
    """checks.capped_by_function: a general verdict caps its function's points at half;
    a check that passed keeps its points; an edge-case verdict is not capped."""
    registered = {i: checks.Check(id=i, make_inputs=_draw_step, outputs=("next_h",),
                                  hidden=True, run=lambda inp, rnn_step_forward: {})
                  for i in ("rnn_step_forward_shapes", "rnn_step_forward_values",
                            "rnn_step_forward_hidden")}
    points = {"rnn_step_forward_shapes": 1.0, "rnn_step_forward_values": 1.0,
              "rnn_step_forward_hidden": 2.0}
    verdicts = {"rnn_step_forward_shapes": None,
                "rnn_step_forward_values": checks.Verdict("v", 0.5),
                "rnn_step_forward_hidden": checks.per_output(
                    {"generic_next_h": "wrong", "edge_next_h": None})}
    assert verdicts["rnn_step_forward_hidden"].general
    capped = checks.capped_by_function(verdicts, points, registered)
    earned = sum(points[i] * (1.0 if v is None else v.fraction) for i, v in capped.items())
    assert earned == pytest.approx(2.0)  # 1 + 0.5 + 1 before, at most half of 4 after
    assert capped["rnn_step_forward_shapes"] is None
    edge_only = dict(verdicts, rnn_step_forward_hidden=checks.per_output(
        {"generic_next_h": None, "edge_next_h": "wrong"}))
    assert not edge_only["rnn_step_forward_hidden"].general
    assert checks.capped_by_function(edge_only, points, registered) == edge_only


def test_hidden_expected_is_run_on_the_reference_or_its_expected():
    inputs = STEP_HIDDEN.draw(np.random.default_rng(0))
    want = STEP_HIDDEN.expected_outputs(inputs, reference)
    np.testing.assert_array_equal(want["next_h"], reference.rnn_step_forward(**inputs)[0])
    with_expected = checks.Check(
        "proto_expected_hidden", _draw_step, STEP_HIDDEN.run, outputs=("next_h",), hidden=True,
        expected=lambda inp, rnn_step_forward, not_in_reference: {
            "next_h": rnn_step_forward(**inp)[0] if not_in_reference is None else None})
    np.testing.assert_array_equal(with_expected.expected_outputs(inputs, reference)["next_h"],
                                  want["next_h"])


def test_hidden_judge_messages_do_not_reveal_values():
    inp = STEP_HIDDEN.draw(np.random.default_rng(1))
    good = {"next_h": reference.rnn_step_forward(**inp)[0]}
    assert STEP_HIDDEN.judge(good, inp, reference) is None
    message = STEP_HIDDEN.judge({"next_h": good["next_h"] * 2}, inp, reference).message
    assert "next_h" in message and "differs" in message
    assert "[" not in message  # no array printed
    assert "shape" in STEP_HIDDEN.judge({"next_h": np.zeros((1, 1))}, inp, reference).message
    nan = {"next_h": np.full_like(good["next_h"], np.nan)}
    assert "NaN" in STEP_HIDDEN.judge(nan, inp, reference).message
    assert "no value" in STEP_HIDDEN.judge({}, inp, reference).message
    with pytest.raises(ValueError, match="against the reference"):
        STEP_HIDDEN.judge(good)


def test_seed_is_deterministic_and_secret_dependent():
    a = secrets.seed_for(b"k1", "a", "s", "c")
    assert a == secrets.seed_for(b"k1", "a", "s", "c")
    assert a != secrets.seed_for(b"k2", "a", "s", "c")
    assert a != secrets.seed_for(b"k1", "a", "s2", "c")


def test_a_changed_submission_draws_new_inputs_the_same_one_the_same():
    """The digest is part of the submission's seed material: every check's inputs change
    when the submitted bytes change, and a regrade of the same bytes draws the same."""
    nb = new_notebook(cells=[_graded_cell("rnn_step_forward_bias"),
                             _graded_cell("rnn_step_forward_hidden")])

    def plan(digest):
        secret = secrets.submission_secret(b"course", "rnn_cell", "s1", digest)
        return verify.grading_plan(nb, secret, "rnn_cell", "s1")

    first, again, changed = plan("d1"), plan("d1"), plan("d2")
    for gid in first:
        for name, value in first[gid].inputs.items():
            np.testing.assert_array_equal(value, again[gid].inputs[name])
        assert any(np.shape(v) != np.shape(changed[gid].inputs[k]) or not np.array_equal(
            v, changed[gid].inputs[k]) for k, v in first[gid].inputs.items()), gid


# --------------------------------------------------------------------------- #
# Registry: the course's assignment list, one module per assignment
# --------------------------------------------------------------------------- #
def test_registry_reads_the_assignments_it_is_given(proto_assignment):
    assert checks.registry([PROTO]) == {SHAPE_CHECK.id: SHAPE_CHECK, STEP_HIDDEN.id: STEP_HIDDEN}
    course = Course(REPO).assignments
    everything = checks.registry(course)
    assert SHAPE_CHECK.id not in everything
    assert set(everything) == {cid for a in course for cid in checks.assignment_checks(a)}
    with pytest.raises(checks.NoChecksModule, match="rnn_course.checks.no_such_assignment"):
        checks.registry([*course, "no_such_assignment"])
    with pytest.raises(TypeError):
        checks.registry(PROTO)


def test_two_checks_with_one_id_are_an_error(proto_assignment):
    proto_assignment.again = checks.Check(SHAPE_CHECK.id, SHAPE_CHECK.make_inputs,
                                          SHAPE_CHECK.run, verdict=SHAPE_CHECK.verdict)
    with pytest.raises(RuntimeError, match="two checks named"):
        checks.registry([PROTO])


# --------------------------------------------------------------------------- #
# The one judge: VerifyChecks
# --------------------------------------------------------------------------- #
def run_graded_cells(plan, grading_dir, collect_dir, calls, monkeypatch):
    """What GradedCells and the kernel do while grading: for each graded cell of
    ``plan``, deliver its inputs, let the kernel call ``calls[grade_id]``, collect."""
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(grading_dir))
    monkeypatch.setattr(grading, "_grading_dir", None)
    collect_dir.mkdir(exist_ok=True)
    for grade_id, cell in plan.items():
        grading.deliver(grading_dir, grade_id, cell.inputs)
        calls[grade_id]()
        grading.collect(grading_dir, grade_id, collect_dir / f"{grade_id}.npz")


def _run_kernel_side(nb, grading_dir, collect_dir, student_fn, monkeypatch):
    """Each graded cell calls its check on ``student_fn``."""
    plan = verify.grading_plan(nb, SECRET, PROTO, "s1")
    calls = {SHAPE_CHECK.id: lambda: SHAPE_CHECK(student_fn),
             STEP_HIDDEN.id: lambda: STEP_HIDDEN(student_fn)}
    run_graded_cells(plan, grading_dir, collect_dir, calls, monkeypatch)


@pytest.mark.parametrize("correct", [True, False])
def test_verify_end_to_end(tmp_path, monkeypatch, proto_assignment, correct):
    nb = new_notebook(cells=[_graded_cell("proto_step_shape"), _graded_cell("proto_step_hidden"),
                             _graded_cell("not_a_check")])
    gdir = tmp_path / "scratch" / ".grading"
    verify.prepare_grading_dir(gdir)
    plan = verify.grading_plan(nb, SECRET, PROTO, "s1")
    assert sorted(plan) == ["proto_step_hidden", "proto_step_shape"]
    assert plan["proto_step_hidden"].hidden_code and not plan["proto_step_shape"].hidden_code
    collected = tmp_path / "collected"
    _run_kernel_side(nb, gdir, collected, reference.rnn_step_forward if correct else wrong_step,
                     monkeypatch)
    # the kernel's own (untrusted) view of the cells is irrelevant: pretend it claimed success
    for cell in nb.cells:
        cell.outputs = [new_output("stream", name="stdout", text="all good\n")]
    nb, res = verify.VerifyChecks(grading_dir=str(collected), secret=SECRET).preprocess(
        nb, _resources())
    verdicts = res["rnn_course"]["checks"]
    assert verdicts["proto_step_shape"] == {"kind": "visible", "passed": correct,
                                            "message": verdicts["proto_step_shape"]["message"],
                                            "fraction": 1.0 if correct else 0.0}
    assert verdicts["proto_step_hidden"]["kind"] == "hidden"
    assert verdicts["proto_step_hidden"]["passed"] is correct
    kinds = [o.output_type for o in nb.cells[1].outputs]
    assert kinds == (["stream"] if correct else ["error"])


def test_verify_fails_a_graded_cell_without_a_check(tmp_path, proto_assignment):
    """Fail closed: whatever the kernel printed, an unregistered graded cell fails."""
    printed = new_output("stream", name="stdout", text="not_a_check: passed\n")
    nb = new_notebook(cells=[_graded_cell("not_a_check", outputs=[printed])])
    nb, res = verify.VerifyChecks(grading_dir=str(tmp_path), secret=SECRET).preprocess(
        nb, _resources())
    assert res["rnn_course"]["checks"]["not_a_check"] == {
        "kind": verify.UNREGISTERED, "passed": False,
        "message": "no check is registered for graded cell 'not_a_check'", "fraction": 0.0}
    [out] = nb.cells[0].outputs
    assert out.output_type == "error" and out.ename == verify.FAILED_ENAME


def test_verify_without_a_checks_module_fails_every_cell(tmp_path):
    nb = new_notebook(cells=[_graded_cell("rnn_step_forward_shapes")])
    nb, res = verify.VerifyChecks(grading_dir=str(tmp_path), secret=SECRET).preprocess(
        nb, _resources("no_such_assignment"))
    assert res["rnn_course"]["checks"]["rnn_step_forward_shapes"]["passed"] is False
    assert verify.grading_plan(nb, SECRET, "no_such_assignment", "s1") == {}


def test_verify_regenerates_inputs_instead_of_trusting_the_kernel(tmp_path, monkeypatch,
                                                                  proto_assignment):
    nb = new_notebook(cells=[_graded_cell("proto_step_hidden")])
    gdir = tmp_path / ".grading"
    verify.prepare_grading_dir(gdir)
    # the student overwrites the inputs with zeros, for which a wrong function is right
    zeros = {k: np.zeros_like(v) for k, v in STEP_HIDDEN.draw(np.random.default_rng(0)).items()}

    def overwrite_then_run():
        grading.input_path(gdir, STEP_HIDDEN.id).write_bytes(
            grading.npz_bytes(grading.encode_inputs(zeros)))
        STEP_HIDDEN(wrong_step)

    run_graded_cells(verify.grading_plan(nb, SECRET, PROTO, "s1"), gdir, tmp_path / "c",
                     {STEP_HIDDEN.id: overwrite_then_run}, monkeypatch)
    nb, res = verify.VerifyChecks(grading_dir=str(tmp_path / "c"), secret=SECRET).preprocess(
        nb, _resources())
    assert res["rnn_course"]["checks"]["proto_step_hidden"]["passed"] is False


def test_verify_missing_result_reports_kernel_error(tmp_path, proto_assignment):
    err = new_output("error", ename="NotImplementedError", evalue="", traceback=["secret src"])
    nb = new_notebook(cells=[_graded_cell("proto_step_hidden", outputs=[err])])
    nb, res = verify.VerifyChecks(grading_dir=str(tmp_path), secret=SECRET).preprocess(
        nb, _resources())
    message = res["rnn_course"]["checks"]["proto_step_hidden"]["message"]
    assert "NotImplementedError" in message
    assert "secret src" not in str(nb.cells[0].outputs)


# --------------------------------------------------------------------------- #
# Fail closed at release
# --------------------------------------------------------------------------- #
def _course_with(tmp_path, assignments, extra_cell=None) -> Path:
    root = tmp_path / "course"
    root.mkdir()
    config = (REPO / "nbgrader_config.py").read_text()
    (root / "nbgrader_config.py").write_text(
        config + f"\nc.RnnCourse.assignments = {list(assignments)!r}\n")
    src = root / "source" / "rnn_cell"
    src.mkdir(parents=True)
    nb = nbformat.read(REPO / "source" / "rnn_cell" / "rnn_cell.ipynb", as_version=4)
    if extra_cell is not None:
        nb.cells.append(extra_cell)
    nbformat.write(nb, src / "rnn_cell.ipynb")
    return root


def _release(root, capsys, *assignments) -> tuple[int, str]:
    code = cli.main(["release", *assignments, "--course-dir", str(root)])
    return code, capsys.readouterr().err


def test_release_refuses_a_graded_cell_without_a_check(tmp_path, capsys):
    root = _course_with(tmp_path, ["rnn_cell"], _graded_cell("foo", "assert True"))
    code, err = _release(root, capsys)
    assert code == 2
    assert err == ("error: source/rnn_cell/rnn_cell.ipynb: graded cell 'foo' has no "
                   "registered check in rnn_course.checks.rnn_cell\n")
    assert not (root / "release").exists() and not (root / "gradebook.db").exists()


def test_release_refuses_an_assignment_without_a_checks_module(tmp_path, capsys):
    root = _course_with(tmp_path, ["rnn_cell", "no_such_assignment"])
    code, err = _release(root, capsys, "rnn_cell")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: assignment 'no_such_assignment' has no checks module "
                          "rnn_course.checks.no_such_assignment")
    assert not (root / "release").exists() and not (root / "gradebook.db").exists()


def test_every_course_notebook_passes_the_release_refusal():
    from autograder.commands import release

    course = Course(REPO)
    release.refuse_unchecked(course, course.assignments)  # raises if one cell lacks a check
    for a in course.assignments:
        assert release.unregistered_cells(course, a) == []
