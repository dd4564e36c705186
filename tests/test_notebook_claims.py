"""What each notebook's text says about its own outputs is what the outputs show (issue 26).

All five source notebooks (with their solutions) run headless three times in a row
under ``jupyter nbconvert --to notebook --execute`` with a 60 s cell timeout:

* the first time in the grader's environment (matplotlib's Agg, static widgets), the
  next two as CI runs them (no front end, widgets available, the inline backend);
* no run waits on a widget: every widget cell finishes within WIDGET_SECONDS, and
  every widget cell holds exactly one image (its static drawing);
* the first run's printed numbers are then held against the claims of the text:
  trends, factors, thresholds, and which model wins at which lag.  Where the text
  quotes a number, the test reads it from the text too (``_quoted``), so text and
  output cannot drift apart.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_notebooks import ASSIGNMENTS, nbgrader_meta, run_env, source_path

from rnn_course import checks
from rnn_course.training import SUCCESS
from rnn_course.widgets import STATIC_ENV

CELL_TIMEOUT = 60  # seconds, nbconvert's per-cell limit
ROUNDS = 3
WIDGET_SECONDS = 20.0  # a widget cell that takes longer is waiting, not drawing
WIDGET_CALL = re.compile(r"demos\.\w+_widget\(")
NEAR_CHANCE = 0.1  # "at chance": held-out accuracy within this of the chance level

slow = pytest.mark.slow  # every test that executes the notebooks


def _env(grader: bool) -> dict:
    env = run_env()
    if not grader:  # as CI runs a notebook: nothing static forced, the default backend
        env.pop(STATIC_ENV, None)
        env.pop("MPLBACKEND", None)
    return env


def _execute(assignment: str, out_dir: Path, grader: bool) -> nbformat.NotebookNode:
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}", "--output-dir", str(out_dir),
         str(source_path(assignment))],
        env=_env(grader), capture_output=True, text=True, timeout=20 * CELL_TIMEOUT)
    assert proc.returncode == 0, f"{assignment}: {proc.stderr[-3000:]}"
    return nbformat.read(out_dir / f"{assignment}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[dict[str, nbformat.NotebookNode]]:
    """ROUNDS runs of every notebook, one round after the other."""
    rounds = []
    for r in range(ROUNDS):
        out = tmp_path_factory.mktemp(f"round{r}")
        rounds.append({a: _execute(a, out, grader=(r == 0)) for a in ASSIGNMENTS})
    return rounds


@pytest.fixture(scope="module")
def executed(runs) -> dict[str, nbformat.NotebookNode]:
    return runs[0]


# --------------------------------------------------------------------------- #
# widgets: never waited on, one image each
# --------------------------------------------------------------------------- #
def _seconds(cell) -> float:
    timing = cell.metadata.execution
    start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.outputs)


@slow
def test_no_run_waits_on_a_widget_and_each_widget_shows_one_image(runs):
    widget_cells = 0
    for r, notebooks in enumerate(runs):
        for assignment, nb in notebooks.items():
            for cell in nb.cells:
                if cell.cell_type != "code" or not WIDGET_CALL.search(cell.source):
                    continue
                widget_cells += 1
                where = f"round {r}, {assignment} {nbgrader_meta(cell).get('grade_id')}"
                assert _seconds(cell) <= WIDGET_SECONDS, f"{where}: {_seconds(cell):.1f} s"
                assert _images(cell) == 1, f"{where}: {_images(cell)} images"
                assert not [o for o in cell.outputs if o.output_type == "error"], where
    assert widget_cells == ROUNDS * 4  # bptt, clipping, lstm and gru each have one


# --------------------------------------------------------------------------- #
# reading outputs and texts
# --------------------------------------------------------------------------- #
def _cell(nb, grade_id: str):
    found = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id]
    assert len(found) == 1, grade_id
    return found[0]


def _stdout(nb, grade_id: str) -> str:
    return "".join(o.get("text", "") for o in _cell(nb, grade_id).outputs
                   if o.output_type == "stream" and o.name == "stdout")


def _text(nb, grade_id: str) -> str:
    return " ".join(_cell(nb, grade_id).source.split())


def _quoted(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found, f"the text no longer says {pattern!r}: update this test"
    return found.group(1)


def _table(stdout: str, first: str) -> list[dict[str, str]]:
    """The rows of the last table whose header starts with ``first``: column -> value."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.split()[:1] == [first]]
    assert starts, f"no table headed {first!r} in\n{stdout}"
    header = re.split(r"\s{2,}", lines[starts[-1]].strip())
    rows = []
    for line in lines[starts[-1] + 1:]:
        values = line.split()
        if len(values) != len(header):
            break
        rows.append({h: v.rstrip("*") for h, v in zip(header, values, strict=True)})
    assert rows, f"empty table headed {first!r}"
    return rows


def _accuracies(stdout: str) -> dict[tuple[int, str], float]:
    """(lag, model) -> held-out accuracy, from an experiment's summary table; also chance."""
    out = {}
    for row in _table(stdout, "task"):
        for model in ("rnn", "lstm", "gru"):
            if model in row:
                out[int(row["lag"]), model] = float(row[model])
        out[int(row["lag"]), "chance"] = float(row["chance"])
    return out


# --------------------------------------------------------------------------- #
# rnn_cell
# --------------------------------------------------------------------------- #
@slow
def test_rnn_cell_memory_claims(executed):
    nb = executed["rnn_cell"]
    spread = {float(g): (float(a), float(b)) for g, a, b in re.findall(
        r"gain ([\d.]+): spread after 3 words ([\d.e+-]+), after 30 words ([\d.e+-]+)",
        _stdout(nb, "memory_run"))}
    text = _text(nb, "memory_discussion")
    assert _quoted(r"ran a gain of ([\d.]+)", text) == "1.5" and 1.5 in spread
    for gain, (after3, after30) in spread.items():
        if gain < 1:  # shrinks, at least as fast as gain ** t
            assert after30 < after3 <= gain ** 3 and after30 <= gain ** 30, gain
    assert spread[float(_quoted(r"\(with gain ([\d.]+)\)", text))][0] >= 0.3  # a large part
    assert max(after30 for g, (_, after30) in spread.items() if g < 1) < 0.01  # almost nothing
    assert spread[1.5][1] >= 0.3  # no longer shrinks: of the order of its first value


# --------------------------------------------------------------------------- #
# bptt
# --------------------------------------------------------------------------- #
@slow
def test_bptt_measured_factors(executed):
    nb = executed["bptt"]
    rows = [line.split() for line in _stdout(nb, "measure_run").splitlines()
            if line.split()[:1] in (["tanh"], ["linear"])]
    factor = {(r[0], float(r[1])): (float(r[2]), float(r[3])) for r in rows}
    for (kind, gain), (measured, predicted) in factor.items():
        if kind == "linear":  # equals sigma_max exactly
            assert measured == pytest.approx(gain, abs=1e-3)
        else:  # matches sigma_max * rms(tanh') to a few percent
            assert measured == pytest.approx(predicted, rel=0.05)
    tanh = {g: m for (k, g), (m, _) in factor.items() if k == "tanh"}
    assert tanh[1.0] < 1  # vanishes even at sigma_max = 1
    quoted = float(_quoted(r"tanh RNN with \$\\sigma_\{\\max\} = ([\d.]+)\$ still vanished",
                           _text(nb, "bptt_summary")))
    assert tanh[quoted] < 1
    assert any(m > 1 for g, m in tanh.items() if g > quoted)  # explodes at a larger gain
    text = _text(nb, "measure_discussion")
    assert "$0.8^{60} \\approx 10^{-6}$" in text and round(np.log10(0.8 ** 60)) == -6
    assert "$1.25^{60} \\approx 10^{6}$" in text and round(np.log10(1.25 ** 60)) == 6


@slow
def test_bptt_france_claims(executed):
    nb = executed["bptt"]
    out = _stdout(nb, "france_run")
    rows = [line.split() for line in out.splitlines() if re.fullmatch(r"\s*\d+(\s+\S+){4}", line)]
    gaps = [int(r[0]) for r in rows]
    full08, full1, trunc, full15 = (np.array([float(r[i]) for r in rows]) for i in range(1, 5))
    assert "full, gain 0.8" in out and "truncate=10, gain 1.0" in out and "full, gain 1.5" in out
    assert np.all(np.diff(full1) < 0)  # shrinks with the gap
    assert full1[gaps.index(40)] < 0.05  # a small fraction after 40 fillers
    assert np.all(full08[1:] < full1[1:])  # 0.8 vanishes faster still
    assert np.all(np.diff(full15) > 0) and full15[-1] > 10  # grows, more than ten times
    window = int(_quoted(r"exactly zero once the gap reaches (\d+)", _text(nb, "bptt_summary")))
    for gap, t, f in zip(gaps, trunc, full1, strict=True):
        assert (t == 0) == (gap >= window) and (gap >= window or t == f), gap


# --------------------------------------------------------------------------- #
# clipping
# --------------------------------------------------------------------------- #
@slow
def test_clipping_explosion_plot_claims(executed):
    nb = executed["clipping"]
    ratio = {float(s): float(r) for s, r in re.findall(
        r"Wh = ([\d.]+) x orthogonal: gradient 60 steps back / at the last step = (\S+)",
        _stdout(nb, "clipping_explode_plot"))}
    assert 0.4 <= ratio[0.5] ** (1 / 60) <= 0.6  # loses a factor of about 2 per step
    assert 1.3 <= ratio[3.0] ** (1 / 60) <= 1.5  # gains about 1.4 per step ...
    assert round(np.log10(ratio[3.0])) == 8  # ... and is about 10^8 larger
    assert 0.4 <= ratio[1.0] ** (5 / 60) <= 0.6  # a factor 2 every 5 steps
    assert "$10^{8}$" in _text(nb, "clipping_explode_read")
    # the vanishing section quotes the s = 1 ratio: "a few 10^-4"
    assert "a few $10^{-4}$" in _text(nb, "clipping_vanish_md")
    assert 1e-4 <= ratio[1.0] < 1e-3


# the lines of demos.clipping.run_summary: a run that overflowed, and one that ran to the end
OVERFLOWED = re.compile(
    r"(.+?): first gradient norm (\S+), largest finite (\S+); loss (\S+) at step (\d+), then loss "
    r"(\S+) and gradient norm (\S+): overflow at step (\d+), training stopped(?:; "
    r"\|\|Wh\|\| (\S+) -> (\S+))?$", re.M)
FINISHED = re.compile(
    r"(.+?): first gradient norm (\S+), largest (\S+); held-out loss (\S+) -> (\S+) \(best "
    r"constant answer (\S+)\) after (\d+) steps(?:; \|\|Wh\|\| (\S+) -> (\S+))?$", re.M)


def _runs(stdout: str) -> dict[str, dict[str, float]]:
    """name -> numbers of every run_summary line printed."""
    runs = {}
    for m in OVERFLOWED.finditer(stdout):
        runs[m[1]] = dict(zip(("first", "largest", "last_loss", "last_step", "stop_loss",
                               "stop_norm", "step", "wh_before", "wh_after"),
                              (float(v) if v else None for v in m.groups()[1:]), strict=True))
        runs[m[1]]["overflow"] = True
    for m in FINISHED.finditer(stdout):
        runs[m[1]] = dict(zip(("first", "largest", "start", "end", "constant", "steps",
                               "wh_before", "wh_after"),
                              (float(v) if v else None for v in m.groups()[1:]), strict=True))
        runs[m[1]]["overflow"] = False
    return runs


@slow
def test_clipping_training_overflows_without_clipping_and_learns_with_it(executed):
    nb = executed["clipping"]
    runs = _runs(_stdout(nb, "clipping_train"))
    bad, good, healthy = runs["no clipping"], runs["clipping"], runs["Wh = Q, no clipping"]
    text = _text(nb, "clipping_train_read")
    assert bad["overflow"] and not good["overflow"] and not healthy["overflow"]
    # same start; "almost 40 times the threshold" of 1
    assert bad["first"] == good["first"] and 30 <= good["first"] <= 40
    assert "almost 40 times the threshold" in text
    # without clipping: the gradient norm overflows "around step 230", the loss above 10^300
    assert bad["stop_norm"] == np.inf or np.isnan(bad["stop_norm"])
    assert bad["step"] == bad["last_step"] + 1
    quoted = int(_quoted(r"around step (\d+)", text))
    assert abs(bad["step"] - quoted) <= 0.1 * quoted, (bad["step"], quoted)
    assert bad["last_loss"] > 1e300 and bad["largest"] > 1e150
    assert "with the loss itself above $10^{300}$" in text
    assert bad["wh_after"] >= 1e6 * bad["wh_before"]  # "more than a million-fold"
    assert "more than a million-fold" in text
    # with clipping: Wh hardly moves, the held-out loss falls to "about a third" of 0.167
    assert good["wh_after"] <= 1.2 * good["wh_before"]
    assert good["constant"] == pytest.approx(1 / 6, abs=1e-3) and "0.167" in text
    assert 0.25 <= good["end"] / good["constant"] <= 0.45 and good["end"] < good["start"]
    assert "about a third of the 0.167 of the best constant answer" in text
    # Wh = Q at the same learning rate, no clipping: no overflow, and it learns
    assert healthy["end"] <= 0.5 * healthy["constant"] and healthy["first"] < good["first"]
    assert "it does not overflow and it learns" in text


@slow
def test_clipping_widget_thresholds(executed):
    nb = executed["clipping"]
    runs = _runs(_stdout(nb, "clipping_widget"))
    text = _text(nb, "clipping_train_read")
    assert "`max_norm` = 0.01 and 100" in text
    large, small = runs["max_norm = 100"], runs["max_norm = 0.01"]
    # 100: never overflows, but the loss ends far above the best constant answer's
    assert not large["overflow"] and large["end"] >= 10 * large["constant"]
    # 0.01: steps of lr * max_norm = 0.0009, the loss still about the best constant answer's
    assert not small["overflow"] and 0.5 <= small["end"] / small["constant"] <= 2
    assert "= 0.0009" in text and "0.09" in _text(nb, "clipping_train_md")


@slow
def test_clipping_text_quotes_the_check(executed):
    nb = executed["clipping"]
    doc = checks.assignment_checks("clipping")["clip_by_global_norm_total_norm"].doc
    printed = _stdout(nb, "clip_by_global_norm_total_norm")
    phrase = "3s, 4s, 12s is 13s"
    assert phrase in doc and phrase in printed and phrase in _text(nb, "clipping_norm_checks_md")
    assert "final assignment" not in _text(nb, "clipping_summary")


# --------------------------------------------------------------------------- #
# lstm and gru: who wins at which lag
# --------------------------------------------------------------------------- #
@slow
def test_lstm_experiment_claims(executed):
    nb = executed["lstm"]
    acc = _accuracies(_stdout(nb, "lstm_experiment"))
    text = _text(nb, "lstm_experiment_read")
    short = [int(g) for g in re.findall(r"with (\d+) or (\d+) fillers", text)[0]]
    for gap in short:  # both models learn the short gaps
        assert acc[gap, "rnn"] >= SUCCESS and acc[gap, "lstm"] >= SUCCESS, gap
    far = int(_quoted(r"correctly at a gap of (\d+)", text))
    assert acc[far, "rnn"] <= acc[far, "chance"] + NEAR_CHANCE  # falls to the chance line
    assert acc[far, "lstm"] >= SUCCESS


@slow
def test_gru_experiment_claims(executed):
    nb = executed["gru"]
    acc = _accuracies(_stdout(nb, "gru_experiment"))
    gap = int(_quoted(r"At a gap of (\d+) the RNN is at \(or near\) the chance line",
                      _text(nb, "gru_experiment_read")))
    assert acc[gap, "rnn"] <= acc[gap, "chance"] + NEAR_CHANCE
    assert acc[gap, "lstm"] >= SUCCESS and acc[gap, "gru"] >= SUCCESS


@slow
def test_gru_lag_study_claims(executed):
    nb = executed["gru"]
    acc = _accuracies(_stdout(nb, "gru_lag_study"))
    text = _text(nb, "gru_lag_study_read")
    short = int(_quoted(r"At \$T = (\d+)\$ all three cells learn", text))
    long = int(_quoted(r"At \$T = (\d+)\$ the first symbol", text))
    assert all(acc[short, m] >= SUCCESS for m in ("rnn", "lstm", "gru"))
    assert acc[long, "gru"] >= SUCCESS  # your GRU still reaches the success line
    assert 0.5 <= acc[long, "rnn"] < SUCCESS  # below it, above the second symbol's 50 %
    assert acc[long, "rnn"] <= acc[long, "lstm"] < acc[long, "gru"]  # the LSTM in between


@slow
def test_gru_gradient_at_lag_claims(executed):
    nb = executed["gru"]
    rows = _table(_stdout(nb, "gru_gradient_lag"), "k")
    lags = [int(r["k"]) for r in rows]
    g = {m: np.array([float(r[m]) for r in rows]) for m in ("rnn", "lstm", "gru")}
    assert lags[-1] == 60
    assert np.all(np.diff(g["rnn"]) < 0) and 1e-4 <= g["rnn"][-1] < 1e-3  # a few 10^-4
    assert np.all(np.diff(g["gru"]) < 0) and 0.03 <= g["gru"][-1] <= 0.3  # one order
    assert g["lstm"][-1] > 2 and g["lstm"][-1] > g["lstm"][0]  # grows, several times
    assert min(g["lstm"][-1], g["gru"][-1]) >= 100 * g["rnn"][-1]  # orders of magnitude more
    text = _text(nb, "gru_gradient_lag_md")
    assert "a few $10^{-4}$" in text and "one order of magnitude" in text
    assert "several times its lag-0 value at lag 60" in text


@slow
def test_gru_truncation_claims(executed):
    learned = re.findall(r"truncate=(\d+): longest gap learned (\d+)",
                         _stdout(executed["gru"], "gru_truncation"))
    assert learned and all(int(gap) == int(k) - 2 for k, gap in learned)


@slow
def test_gru_carrier_claims(executed):
    nb = executed["gru"]
    found = re.search(r"carrier unit \d+: lowest separation score over the gap (\S+); spread of "
                      r"the country means (\S+) at the first word, (\S+) ten steps later, "
                      r"(\S+) at 'speak'", _stdout(nb, "gru_look_inside"))
    assert found, _stdout(nb, "gru_look_inside")
    worst, first, ten, last = map(float, found.groups())
    assert worst >= 10  # separates the countries at every step of the gap
    assert last >= 3 * first  # distinct but close at the first word, then drift apart
    assert ten >= 0.6 * last  # over the first ten or so steps, then stay apart
    text = _text(nb, "gru_lag_study_read")
    assert "drift apart over the first ten or so steps" in text


def test_no_text_sends_students_where_they_cannot_go():
    """Students have the release notebooks and rnn_course, not autograder/ or docs/."""
    for assignment in ASSIGNMENTS:
        for cell in nbformat.read(source_path(assignment), as_version=4).cells:
            if cell.cell_type == "markdown":
                where = f"{assignment} {nbgrader_meta(cell).get('grade_id')}"
                assert "autograder" not in cell.source and "docs/" not in cell.source, where
                assert "a new cell" not in cell.source, where  # "do not add cells"



@slow
def test_bptt_worked_example_matches_by_hand(executed):
    """With the solutions every line of the worked example says ok."""
    from test_worked import BPTT_LINES

    out = _stdout(executed["bptt"], "worked_example_run")
    assert "differs" not in out and out.count(" ok") == BPTT_LINES, out


def test_lstm_widget_claims():
    """The numbers lstm_widget_md and lstm_experiment_read quote from the widget's drawings
    at b_f = 0, 1 and 3: the same demo function on the same batch, with the reference."""
    from autograder import reference
    from rnn_course import data, training
    from rnn_course.demos.lstm import forget_bias_widget, gradient_reach

    nb = nbformat.read(source_path("lstm"), as_version=4)
    widget = _text(nb, "lstm_widget")
    call = "demos.forget_bias_widget(lstm_forward, lstm_backward, rnn_forward, rnn_backward"
    assert widget.startswith(call)
    gap = int(_quoted(r"gap=(\d+)\)$", widget))  # the other arguments: the defaults
    _, hidden, batch, seed, static = forget_bias_widget.__defaults__
    assert static == (0.0, 1.0, 3.0)
    task = data.CountryLanguageTask(gap=gap)
    x, _ = task.batch(batch, seed=seed)

    def reach(forward, backward, params):
        r = gradient_reach(forward, backward, params, x, seed=seed)
        return r[-1] / r[0]  # at the country, relative to k = 0

    rnn = reach(reference.rnn_forward, reference.rnn_backward,
                training.init_rnn(task.input_size, hidden, task.output_size, seed=seed))
    full, cell = {}, {}
    for bias in static:
        lstm = training.init_lstm(task.input_size, hidden, task.output_size, seed=seed,
                                  forget_bias=bias)
        full[bias] = reach(reference.lstm_forward, reference.lstm_backward, lstm)
        cell[bias] = reach(reference.lstm_forward, reference.lstm_backward,
                           dict(lstm, Wh=np.zeros_like(lstm["Wh"])))
    text = _text(nb, "lstm_widget_md")
    assert "gap of 100 fillers" in text and gap == 100
    assert 0.4 <= cell[0.0] ** (1 / (gap + 1)) <= 0.6  # b_f = 0: a factor 2 per step
    assert "thousands of times more gradient" in text and 1e3 <= full[1.0] / rnn < 1e4
    assert "down to $10^{-12}$" in text and round(np.log10(cell[1.0])) == -12
    assert "carries about 1 % over 100 steps" in text and 0.003 <= cell[3.0] <= 0.03
    assert full[3.0] > 1  # the full LSTM's gradient grows with k
    assert "put it at $10^{-6}$" in _text(nb, "lstm_experiment_read")
    assert round(np.log10(rnn)) == -6


@slow
@pytest.mark.parametrize("assignment", ["lstm", "gru"])
def test_gated_worked_examples_match_by_hand(executed, assignment):
    """With the solutions every line of the LSTM's and the GRU's worked example says ok."""
    from test_worked import GRU_LINES, LSTM_LINES

    out = _stdout(executed[assignment], f"{assignment}_worked_example_run")
    lines = {"lstm": LSTM_LINES, "gru": GRU_LINES}[assignment]
    assert "differs" not in out and out.count(" ok\n") == lines, out


def test_gated_worked_example_texts():
    """What lstm_ and gru_worked_example_md say about the printed numbers (the stored ones,
    which tests/test_worked.py holds against the reference and finite differences)."""
    from rnn_course.worked import GRU_EXPECTED, GRU_INPUTS, LSTM_EXPECTED, LSTM_INPUTS

    rounding = 0.5e-4  # the printed numbers have 4 decimals
    text = _text(nbformat.read(source_path("lstm"), as_version=4), "lstm_worked_example_md")
    E = {k: np.asarray(v) for k, v in LSTM_EXPECTED.items()}
    assert "$a_0$ is the first row of $W_x$ plus $b$ (as $x_0 = [1, 0]$)" in text
    assert np.array_equal(LSTM_INPUTS["x"][0, 0], [1, 0]) and not LSTM_INPUTS["h0"].any()
    assert np.allclose(E["a"][0], LSTM_INPUTS["Wx"][0] + LSTM_INPUTS["b"], atol=0)
    assert "$c_0 = i_0 \\odot g_0$" in text
    assert np.abs(E["c"][0] - E["i"][0] * E["g"][0]).max() <= 2 * rounding
    assert "the forget gate gets no gradient at step 0" in text
    assert np.array_equal(E["da"][0][2:4], [0, 0])  # the f block, order i, f, o, g

    text = _text(nbformat.read(source_path("gru"), as_version=4), "gru_worked_example_md")
    E = {k: np.asarray(v) for k, v in GRU_EXPECTED.items()}
    assert "$h_0 = (1 - z_0) \\odot n_0$" in text and not GRU_INPUTS["h0"].any()
    assert np.abs(E["h"][0] - (1 - E["z"][0]) * E["n"][0]).max() <= 2 * rounding
    assert "the reset gate has nothing to reset at step 0" in text
    assert np.array_equal(E["da"][0][:2], [0, 0])  # the r block, order r, z, n
    assert "the other paths take some of the first unit's gradient away" in text
    assert E["dh0"][0] < E["copy_path"][0]


def test_gru_widget_claims():
    """gru_widget_md against the curves of its drawings (b_z = 0 and 3): the same demo
    function's traces on the same batch, with the reference."""
    from autograder import reference
    from rnn_course import data, training
    from rnn_course.demos.gru import _other_country, first_token_trace, update_bias_widget

    nb = nbformat.read(source_path("gru"), as_version=4)
    widget = _text(nb, "gru_widget")
    assert widget == "demos.update_bias_widget(gru_forward, rnn_forward, gap=60)"
    _, hidden, batch, seed, static = update_bias_widget.__defaults__
    assert static == (0.0, 3.0)
    task = data.CountryLanguageTask(gap=60)
    x, _ = task.batch(batch, seed=seed)
    x_other = _other_country(x, task.n_countries)
    rnn = first_token_trace(reference.rnn_forward,
                            training.init_rnn(task.input_size, hidden, task.output_size,
                                              seed=seed), x, x_other)
    copy = {}
    for bias in static:
        gru = training.init_gru(task.input_size, hidden, task.output_size, seed=seed,
                                update_bias=bias)
        copy[bias] = first_token_trace(reference.gru_forward,
                                       dict(gru, Wh=np.zeros_like(gru["Wh"])), x, x_other)
    text = _text(nb, "gru_widget_md")
    assert "leaves less than 1 % of the country after 40 steps, a few $10^{-4}$ at the query" \
        in text
    assert np.all(np.diff(rnn) < 0) and rnn[40] < 0.01 and 1e-4 <= rnn[-1] < 1e-3
    assert "$b_z = 0$ ($z = 0.5$) halves what is left at every step" in text
    assert 0.45 <= copy[0.0][-1] ** (1 / 60) <= 0.55
    assert "keeps a few percent across 60 steps" in text and 0.01 <= copy[3.0][-1] <= 0.1


def test_bptt_widget_never_crosses_its_bound():
    """measure_discussion: the widget's curve never crosses the dashed bound sigma_max^d;
    the linear RNN's lies on it, the tanh RNN's below.  A grid over the sliders' ranges
    that holds every static drawing, with the bptt notebook's solution."""
    from gradesim import student_namespace

    from rnn_course.demos.bptt import NONLINEARITIES, measure_gradient_norms

    assert "(it never does: the linear RNN's curve lies on it, the tanh RNN's below it)" in \
        _text(nbformat.read(source_path("bptt"), as_version=4), "measure_discussion")
    ns = student_namespace("bptt")
    assert _text(nbformat.read(source_path("bptt"), as_version=4), "widget_run") == \
        "_widget = demos.gradient_norm_widget(gradient_norms_through_time, rnn_forward)"
    # the slider's ends, both sides of 1, and the static drawings (0.9 and 1.1 linear,
    # 1.5 tanh, at the T slider's first value of 60)
    cases = [(g, T, kind) for g in (0.25, 0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 4.0)
             for T in (5, 60, 200) for kind in NONLINEARITIES]
    for gain, T, kind in cases:
        norms, _ = measure_gradient_norms(ns["gradient_norms_through_time"], ns["rnn_forward"],
                                          gain, T, kind)
        bound = gain ** np.arange(T + 1.0)
        assert norms[0] == pytest.approx(1.0) and np.all(norms <= bound * (1 + 1e-9)), (gain, T)
        if kind == "linear":
            assert np.allclose(norms, bound, rtol=1e-9, atol=0), (gain, T)
        else:
            assert np.all(norms[1:] < bound[1:]), (gain, T)
