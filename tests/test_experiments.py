"""Tests of rnn_course.experiments: the long-range experiment and its command line."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from autograder import reference as ref
from rnn_course.data import AddingTask1997
from rnn_course.experiments import (
    PRESETS,
    REQUIRED,
    RESULT_KEYS,
    SUCCESS,
    TASK_NAMES,
    ImplError,
    longest_learned,
    main,
    run_long_range,
    run_study,
    run_truncation,
    summary_table,
    truncation_table,
)


def _run_cli(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "rnn_course.experiments", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_tiny_budget_writes_json_and_prints_a_table(tmp_path, capsys):
    out = tmp_path / "results.json"
    status = main(["long-range", "--impl", "autograder.reference", "--tasks", "country",
                   "--gaps", "1", "4", "--steps", "5", "--jobs", "1", "--json", str(out)])
    assert status == 0
    results = json.loads(out.read_text())
    assert [(r["lag"], r["model"]) for r in results] == [
        (1, "rnn"), (1, "lstm"), (1, "gru"), (4, "rnn"), (4, "lstm"), (4, "gru")]
    for r in results:
        assert tuple(r) == RESULT_KEYS and r["task"] == "country"
        assert isinstance(r["lag"], int) and isinstance(r["steps"], int) and r["steps"] == 5
        assert r["min_lag"] == r["lag"] + 1
        assert 0.0 <= r["accuracy"] <= 1.0 and r["chance"] == 0.25 and r["seconds"] > 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# country (France -> French")
    assert lines[1].split() == ["task", "lag", "model", "accuracy", "chance", "seconds"]
    assert lines[2].split()[:3] == ["country", "1", "rnn"]
    assert lines[7].split()[:3] == ["country", "4", "gru"]
    # the summary: one row per lag, one column per model
    assert lines[8].split() == ["task", "lag", "min", "lag", "chance", "rnn", "lstm", "gru"]
    assert lines[9].split()[:4] == ["country", "1", "2", "0.250"]
    assert lines[-1].startswith("# total")


def test_study_runs_every_task_in_two_processes(capsys):
    """The three tasks, in a pool of two forked workers: rows come back in (task, lag,
    model) order whatever the order they finished in."""
    results = run_study(ref, ("country", "adding", "order"), lags=[20], steps=2, jobs=2,
                        eval_size=50)
    assert [(r["task"], r["model"]) for r in results] == [
        (t, m) for t in ("country", "adding", "order") for m in ("rnn", "lstm", "gru")]
    by_task = {r["task"]: r for r in results}
    assert by_task["adding"]["chance"] == pytest.approx(AddingTask1997(20).chance)
    assert by_task["adding"]["min_lag"] == 10 and by_task["order"]["min_lag"] == 7
    assert by_task["order"]["chance"] == 0.25
    out = capsys.readouterr().out
    assert "adding problem (1997)" in out and "temporal order (1997)" in out
    table = summary_table(results).splitlines()
    assert len(table) == 4 and table[2].split()[:3] == ["adding", "20", "10"]
    with pytest.raises(ValueError, match="task must be one of country, adding, order"):
        run_study(ref, ("parity",), steps=1, verbose=False)
    with pytest.raises(ValueError, match="seq_len must be >= 20"):
        run_study(ref, ("adding",), lags=[5], steps=1, verbose=False)
    with pytest.raises(ValueError, match="jobs must be a positive int"):
        run_study(ref, ("order",), lags=[10], steps=1, jobs=0, verbose=False)


def test_summary_table_marks_successes():
    rows = [{"task": "order", "lag": 100, "min_lag": 39, "chance": 0.25, "model": m,
             "accuracy": a} for m, a in (("rnn", 0.25), ("lstm", 0.95), ("gru", 0.949))]
    line = summary_table(rows).splitlines()[1]
    assert line.split() == ["order", "100", "39", "0.250", "0.250", "0.950*", "0.949"]
    assert SUCCESS == 0.95


def test_truncation_tiny_and_longest_learned(capsys):
    results = run_truncation(ref, truncates=[2, 5], lags=[1, 4], steps=2, eval_size=20,
                             hidden_size=4)
    assert [(r["input_init"], r["truncate"], r["lag"], r["model"]) for r in results] == [
        (init, k, g, "rnn") for init in ("zero", "xavier") for k in (2, 5) for g in (1, 4)]
    assert "longest gap learned" in capsys.readouterr().out
    fake = [{"truncate": k, "lag": g, "accuracy": a, "input_init": "zero"}
            for k, g, a in ((4, 2, 1.0), (4, 3, 0.3), (8, 2, 1.0), (8, 6, 0.97), (8, 7, 0.2),
                            (16, 2, 0.5))]
    fake.append({"truncate": 4, "lag": 9, "accuracy": 1.0, "input_init": "xavier"})
    assert longest_learned(fake) == {4: 2, 8: 6, 16: None}
    assert longest_learned(fake, "xavier") == {4: 9}
    table = truncation_table(fake).splitlines()
    assert table[0].startswith("Wx zero") and table[1].startswith("k = 4")
    assert table[1].endswith("2 (bound k - 2 = 2)") and table[4].startswith("Wx xavier")
    assert main(["truncation", "--impl", "autograder.reference", "--truncates", "0",
                 "--gaps", "1", "--steps", "1"]) == 1
    assert "truncate must be None or a positive int" in capsys.readouterr().err
    with pytest.raises(ValueError, match="input_inits must be a non-empty subset"):
        run_truncation(ref, input_inits=("orthogonal",), verbose=False)


@pytest.mark.slow
def test_zero_input_weights_cannot_learn_beyond_the_window():
    """Wx starting at zero: the RNN reads the country only where the gradient reaches it."""
    results = run_truncation(ref, truncates=[4], lags=[2, 6], steps=300, hidden_size=16,
                             input_inits=("zero",), eval_size=300, verbose=False)
    acc = {r["lag"]: r["accuracy"] for r in results}
    assert acc[2] >= SUCCESS and acc[6] < 0.35  # chance is 0.25


def test_gradients_command(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["gradients", "--impl", "autograder.reference", "--lag", "30",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["rnn", "lstm", "gru"]
    for r in rows:
        assert r["lags"] == list(range(32)) and r["gradient"][0] == 1.0
    printed = capsys.readouterr().out
    assert "gradient reaching lag k" in printed and printed.count("\n") >= 5


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
    assert len(results) == 1 and results[0]["model"] == "lstm" and results[0]["lag"] == 0
    with pytest.raises(ImplError, match="SimpleNamespace lacks clip_by_global_norm"):
        run_long_range(SimpleNamespace(rnn_forward=ref.rnn_forward,
                                       rnn_backward=ref.rnn_backward),
                       gaps=[0], steps=1, models=("rnn",), verbose=False)
    # without clipping, clip_by_global_norm is not needed
    no_clip = SimpleNamespace(rnn_forward=ref.rnn_forward, rnn_backward=ref.rnn_backward)
    assert run_long_range(no_clip, gaps=[0], steps=1, models=("rnn",), clip_norm=None,
                          verbose=False)[0]["steps"] == 1
    # the lstm notebook's namespace has no GRU: run_long_range trains an RNN and an LSTM
    lstm_notebook = SimpleNamespace(**{n: getattr(ref, n) for n in REQUIRED if "gru" not in n})
    rows = run_long_range(lstm_notebook, gaps=[0], steps=1, verbose=False)
    assert [r["model"] for r in rows] == ["rnn", "lstm"]
    with pytest.raises(ValueError, match="unknown settings"):
        run_long_range(ref, gaps=[0], steps=1, learning_rate=0.1)
    with pytest.raises(ValueError, match="preset must be one of"):
        run_long_range(ref, preset="huge")


def test_presets_share_one_budget():
    # one config per (preset, task), applied to every model: nothing model-specific except
    # the bias of the gate that keeps the old state, which the RNN has no counterpart of
    for preset in PRESETS.values():
        assert set(preset) == set(PRESETS["default"])
        for task, config in preset.items():
            assert set(config) == set(PRESETS["default"][task])
    default = PRESETS["default"]
    # the adding problem stops at T = 50: its LSTM needs more than the 5-minute budget at
    # T = 100 (docs/experiments.md)
    assert {t for t in TASK_NAMES if max(default[t]["lags"]) >= 100} == {"country", "order"}
    assert max(PRESETS["notebook"]["country"]["lags"]) >= 100


@pytest.mark.slow
def test_notebook_preset_shows_the_long_range_gap():
    """The cut-down experiment: the LSTM bridges gap 100, the RNN is at chance there."""
    results = run_long_range(ref, preset="notebook", models=("rnn", "lstm"), verbose=False)
    acc = {(r["model"], r["lag"]): r["accuracy"] for r in results}
    assert acc["rnn", 2] > 0.95 and acc["lstm", 2] > 0.95
    assert acc["lstm", 100] > 0.95
    assert acc["rnn", 100] < 0.4  # chance is 0.25


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path):
    """The command line, every task, two workers: the notebook preset's temporal order and
    short France -> French gaps are learnt by every cell; tiny adding runs score in [0, 1]."""
    out = tmp_path / "study.json"
    assert main(["long-range", "--impl", "autograder.reference", "--preset", "notebook",
                 "--tasks", "order", "country", "--lags", "10", "--jobs", "2",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {(r["task"], r["model"]) for r in rows} == {
        (t, m) for t in ("order", "country") for m in ("rnn", "lstm", "gru")}
    assert all(r["accuracy"] >= SUCCESS for r in rows), rows
    adding = run_study(ref, ("adding",), preset="notebook", steps=20, verbose=False)
    assert [r["model"] for r in adding] == ["rnn", "lstm", "gru"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["min_lag"] == 10 for r in adding)
