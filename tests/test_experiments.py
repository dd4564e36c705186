"""Tests of rnn_course.experiments: the long-range experiment and its command line."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from autograder import reference as ref
from rnn_course.experiments import (
    PRESETS,
    REQUIRED,
    RESULT_KEYS,
    ImplError,
    main,
    run_long_range,
)


def _run_cli(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "rnn_course.experiments", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_tiny_budget_writes_json_and_prints_a_table(tmp_path, capsys):
    out = tmp_path / "results.json"
    status = main(["long-range", "--impl", "autograder.reference", "--gaps", "1", "4",
                   "--steps", "5", "--json", str(out)])
    assert status == 0
    results = json.loads(out.read_text())
    assert [(r["gap"], r["model"]) for r in results] == [
        (1, "rnn"), (1, "lstm"), (1, "gru"), (4, "rnn"), (4, "lstm"), (4, "gru")]
    for r in results:
        assert tuple(r) == RESULT_KEYS
        assert isinstance(r["gap"], int) and isinstance(r["steps"], int) and r["steps"] == 5
        assert 0.0 <= r["accuracy"] <= 1.0 and r["chance"] == 0.25 and r["seconds"] > 0
    lines = capsys.readouterr().out.splitlines()
    assert "gap  model  accuracy  chance  seconds" in lines[2]
    assert lines[3].split()[:2] == ["1", "rnn"] and lines[8].split()[:2] == ["4", "gru"]
    assert lines[-1].startswith("# total")


def test_cli_entry_point_and_bad_impl():
    proc = _run_cli("long-range", "--impl", "no_such_module_xyz", "--steps", "1")
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0  # one line ...
    assert proc.stderr.startswith("error: --impl no_such_module_xyz: cannot import")
    assert "Traceback" not in proc.stderr  # ... not a traceback


def test_cli_module_missing_a_function(tmp_path, capsys):
    partial = tmp_path / "half_done.py"
    partial.write_text("from autograder.reference import rnn_forward, rnn_backward\n")
    assert main(["long-range", "--impl", str(partial), "--steps", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: half_done lacks lstm_forward, lstm_backward, gru_forward, "
                          "gru_backward, clip_by_global_norm; the experiment needs")
    assert err.count("\n") == 1


def test_cli_import_error_inside_the_module(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('oops')\n")
    assert main(["long-range", "--impl", str(broken)]) == 1
    assert "importing it failed: RuntimeError: oops" in capsys.readouterr().err


def test_cli_bad_arguments(capsys):
    assert main(["long-range", "--impl", "autograder.reference", "--gaps", "3", "-2",
                 "--steps", "1"]) == 1
    assert "gap must be >= 0, got -2" in capsys.readouterr().err
    assert main(["long-range", "--impl", "autograder.reference", "--steps", "0"]) == 1
    assert "steps must be a positive int" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse usage error: exit status 2
        main(["long-range"])


def test_run_long_range_accepts_a_namespace_of_functions():
    impl = SimpleNamespace(**{name: getattr(ref, name) for name in REQUIRED})
    results = run_long_range(impl, gaps=[0], steps=3, models=("lstm",), verbose=False)
    assert len(results) == 1 and results[0]["model"] == "lstm" and results[0]["gap"] == 0
    with pytest.raises(ImplError, match="SimpleNamespace lacks clip_by_global_norm"):
        run_long_range(SimpleNamespace(rnn_forward=ref.rnn_forward,
                                       rnn_backward=ref.rnn_backward),
                       gaps=[0], steps=1, models=("rnn",), verbose=False)
    # without clipping, clip_by_global_norm is not needed
    no_clip = SimpleNamespace(rnn_forward=ref.rnn_forward, rnn_backward=ref.rnn_backward)
    assert run_long_range(no_clip, gaps=[0], steps=1, models=("rnn",), clip_norm=None,
                          verbose=False)[0]["steps"] == 1
    with pytest.raises(ValueError, match="unknown settings"):
        run_long_range(ref, gaps=[0], steps=1, learning_rate=0.1)
    with pytest.raises(ValueError, match="preset must be one of"):
        run_long_range(ref, preset="huge")


def test_presets_share_one_budget():
    # one config per preset, applied to both models: nothing model-specific except the
    # LSTM's forget bias, which the RNN has no counterpart of
    for config in PRESETS.values():
        assert set(config) == set(PRESETS["default"])
    assert max(PRESETS["notebook"]["gaps"]) >= 100 and max(PRESETS["default"]["gaps"]) >= 100


@pytest.mark.slow
def test_notebook_preset_shows_the_long_range_gap():
    """The cut-down experiment: the LSTM bridges gap 100, the RNN is at chance there."""
    results = run_long_range(ref, preset="notebook", verbose=False)
    acc = {(r["model"], r["gap"]): r["accuracy"] for r in results}
    assert acc["rnn", 2] > 0.95 and acc["lstm", 2] > 0.95
    assert acc["lstm", 100] > 0.95
    assert acc["rnn", 100] < 0.4  # chance is 0.25
