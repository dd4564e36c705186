"""The check protocol: kernel-side submission, grader-side judging, safe loading."""

from __future__ import annotations

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder import reference
from autograder.pipeline import verify
from autograder.protocol import hidden, secrets
from rnn_course import checks, grading

SECRET = b"test-secret"


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


STEP_SPEC = hidden.HiddenSpec(
    id="proto_step_hidden",
    make_inputs=lambda rng: dict(
        x=rng.standard_normal((3, 4)), prev_h=rng.standard_normal((3, 5)),
        Wx=rng.standard_normal((4, 5)), Wh=rng.standard_normal((5, 5)),
        b=rng.standard_normal(5)),
    expected=lambda ref, inp: {"next_h": ref.rnn_step_forward(**inp)[0]},
)

SHAPE_CHECK = checks.Check(
    id="proto_step_shape",
    make_inputs=lambda rng: dict(x=rng.standard_normal((2, 3)), prev_h=np.zeros((2, 4)),
                                 Wx=np.zeros((3, 4)), Wh=np.zeros((4, 4)), b=np.ones(4)),
    run=lambda inp, f: {"next_h": f(**inp)[0]},
    verdict=lambda inp, out: checks.value_problem(
        "next_h", out["next_h"], np.tanh(np.ones((2, 4))), hint="with zero weights h = tanh(b)"),
)


@pytest.fixture
def registries(monkeypatch):
    monkeypatch.setattr(hidden, "registry", lambda: {STEP_SPEC.id: STEP_SPEC})
    monkeypatch.setattr(checks, "registry", lambda: {SHAPE_CHECK.id: SHAPE_CHECK})


def _graded_cell(grade_id, source="pass", outputs=()):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True,
                                 "points": 2, "schema_version": 3, "solution": False,
                                 "task": False}
    cell.outputs = list(outputs)
    return cell


def _resources():
    return {"nbgrader": {"assignment": "a1", "student": "s1"}}


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
    for bad in ["../../etc/passwd", "", "a b", 3]:
        with pytest.raises(ValueError):
            grading.submit(bad, x=np.zeros(1))


def test_submit_in_grading_mode_writes_results_only(grading_mode):
    grading.submit("proto_step_hidden", next_h=np.ones((2, 2)))
    with np.load(grading_mode / "results" / "proto_step_hidden.npz") as data:
        assert data.files == ["next_h"]
        np.testing.assert_array_equal(data["next_h"], np.ones((2, 2)))


def test_grading_dir_is_fixed_once_resolved(grading_mode, monkeypatch, tmp_path):
    first = grading.grading_dir()
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(tmp_path / "elsewhere"))
    assert grading.grading_dir() == first


def test_interactive_visible_check_raises_with_message(interactive_mode, capsys):
    SHAPE_CHECK(reference.rnn_step_forward)
    assert "passed" in capsys.readouterr().out

    def no_bias(x, prev_h, Wx, Wh, b):
        return np.tanh(x @ Wx + prev_h @ Wh), None

    with pytest.raises(AssertionError, match="tanh\\(b\\)"):
        SHAPE_CHECK(no_bias)


def test_interactive_hidden_check_uses_grader_spec(interactive_mode, registries, capsys):
    inp = grading.inputs("proto_step_hidden")
    grading.submit("proto_step_hidden", next_h=reference.rnn_step_forward(**inp)[0])
    assert "passed" in capsys.readouterr().out
    inp = grading.inputs("proto_step_hidden")
    with pytest.raises(AssertionError, match="differs"):
        grading.submit("proto_step_hidden", next_h=reference.rnn_step_forward(**inp)[0] + 1e-3)


def test_seed_is_deterministic_and_secret_dependent():
    a = secrets.seed_for(b"k1", "a", "s", "c")
    assert a == secrets.seed_for(b"k1", "a", "s", "c")
    assert a != secrets.seed_for(b"k2", "a", "s", "c")
    assert a != secrets.seed_for(b"k1", "a", "s2", "c")


def test_hidden_judge_messages_do_not_reveal_values():
    inp = STEP_SPEC.draw(np.random.default_rng(1))
    good = {"next_h": reference.rnn_step_forward(**inp)[0]}
    assert STEP_SPEC.judge(inp, good) is None
    bad = {"next_h": good["next_h"] * 2}
    message = STEP_SPEC.judge(inp, bad)
    assert "next_h" in message and "differs" in message
    assert "[" not in message  # no array printed
    assert "shape" in STEP_SPEC.judge(inp, {"next_h": np.zeros((1, 1))})
    assert "NaN" in STEP_SPEC.judge(inp, {"next_h": np.full_like(good["next_h"], np.nan)})
    assert "no value" in STEP_SPEC.judge(inp, {})


def _run_kernel_side(grading_dir, student_fn, monkeypatch):
    """What the kernel does while grading: read inputs, call, submit."""
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(grading_dir))
    monkeypatch.setattr(grading, "_grading_dir", None)
    SHAPE_CHECK(student_fn)
    inp = grading.inputs("proto_step_hidden")
    grading.submit("proto_step_hidden", next_h=student_fn(**inp)[0])


@pytest.mark.parametrize("correct", [True, False])
def test_verify_end_to_end(tmp_path, monkeypatch, registries, correct):
    nb = new_notebook(cells=[_graded_cell("proto_step_shape"), _graded_cell("proto_step_hidden"),
                             _graded_cell("not_a_check")])
    gdir = tmp_path / "scratch" / ".grading"
    prepared = verify.prepare_grading_dir(nb, gdir, SECRET, "a1", "s1")
    assert prepared == ["proto_step_hidden"]

    def wrong(x, prev_h, Wx, Wh, b):
        return np.tanh(x @ Wx + prev_h @ Wh), None

    _run_kernel_side(gdir, reference.rnn_step_forward if correct else wrong, monkeypatch)
    # the kernel's own (untrusted) view of the cells is irrelevant: pretend it claimed success
    for cell in nb.cells:
        cell.outputs = [new_output("stream", name="stdout", text="all good\n")]
    pre = verify.VerifyChecks(grading_dir=str(gdir), secret=SECRET)
    nb, res = pre.preprocess(nb, _resources())
    verdicts = res["rnn_course"]["checks"]
    assert verdicts["proto_step_shape"]["passed"] is correct
    assert verdicts["proto_step_hidden"]["passed"] is correct
    assert verdicts["not_a_check"]["kind"] == "unverified"
    kinds = [o.output_type for o in nb.cells[1].outputs]
    assert kinds == (["stream"] if correct else ["error"])


def test_verify_regenerates_inputs_instead_of_trusting_the_kernel(tmp_path, monkeypatch,
                                                                  registries):
    nb = new_notebook(cells=[_graded_cell("proto_step_hidden")])
    gdir = tmp_path / ".grading"
    verify.prepare_grading_dir(nb, gdir, SECRET, "a1", "s1")
    # the student overwrites the inputs with zeros, for which a wrong function is right
    zeros = {k: np.zeros_like(v) for k, v in STEP_SPEC.draw(np.random.default_rng(0)).items()}
    np.savez(gdir / "inputs" / "proto_step_hidden.npz", **zeros)
    monkeypatch.setenv(grading.GRADING_DIR_ENV, str(gdir))
    monkeypatch.setattr(grading, "_grading_dir", None)
    inp = grading.inputs("proto_step_hidden")
    grading.submit("proto_step_hidden", next_h=np.zeros((inp["x"].shape[0], 5)))
    nb, res = verify.VerifyChecks(grading_dir=str(gdir), secret=SECRET).preprocess(
        nb, _resources())
    assert res["rnn_course"]["checks"]["proto_step_hidden"]["passed"] is False


def test_verify_missing_result_reports_kernel_error(tmp_path, registries):
    err = new_output("error", ename="NotImplementedError", evalue="", traceback=["secret src"])
    nb = new_notebook(cells=[_graded_cell("proto_step_hidden", outputs=[err])])
    nb, res = verify.VerifyChecks(grading_dir=str(tmp_path), secret=SECRET).preprocess(
        nb, _resources())
    message = res["rnn_course"]["checks"]["proto_step_hidden"]["message"]
    assert "NotImplementedError" in message
    assert "secret src" not in str(nb.cells[0].outputs)


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
        verify.load_result(path, limit)


def test_course_secret_file_is_private_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv(secrets.SECRET_ENV, raising=False)
    first = secrets.course_secret(tmp_path)
    assert first == secrets.course_secret(tmp_path)
    assert (tmp_path / secrets.SECRET_FILE).stat().st_mode & 0o077 == 0
    monkeypatch.setenv(secrets.SECRET_ENV, "from-env")
    assert secrets.course_secret(tmp_path) == b"from-env"
