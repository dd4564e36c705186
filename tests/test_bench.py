"""Smoke tests of the benchmarks (bench/): they run, print a table and write JSON.

A benchmark is a script that prints a table, so nothing here checks a time.
The fast tests (about a second) run ``bench.numerics`` for real on tiny sizes
and feed the other three benchmarks' renderers canned rows; the ``slow`` ones
run ``bench.grading``, ``bench.notebooks`` and ``bench.scale`` in their
``--quick`` mode end to end (they build a course with nbgrader and execute
notebooks in the sandbox: a minute or two).
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from bench import grading, notebooks, numerics, scale, table


def _load(path):
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- #
# fast
# --------------------------------------------------------------------------- #
def test_table_renders_columns_and_missing_values():
    text = table("T", [("name", "a", ""), ("x", "b", ".2f")], [{"a": "row", "b": 1.0}, {"a": "r2"}])
    lines = text.splitlines()
    assert lines[0] == "T" and lines[2].split() == ["name", "x"]
    assert lines[4].split() == ["row", "1.00"] and lines[5].split() == ["r2", "-"]


def test_numerics_quick(tmp_path, capsys):
    data = numerics.run(quick=True, threads=(1,), out_dir=tmp_path, use_torch=False)
    assert _load(tmp_path / "numerics.json")["benchmark"] == "numerics"
    (res,) = data["results"]
    assert res["threads"] == 1 and res["peak_gflops"] > 0
    H = numerics.QUICK["Hs"]
    assert [(r["cell"], r["H"]) for r in res["rows"]] == [(c, h) for h in H for c in numerics.CELLS]
    for r in res["rows"]:
        assert r["reference_ms"] > 0 and r["naive_ms"] > 0 and r["gflops"] > 0
        assert "torch_ms" not in r  # use_torch=False
        assert r["max_rel_diff"]["naive"] < 1e-10  # the naive loop computes the same thing
        assert r["gflop"] == pytest.approx(numerics.flops(r["cell"], r["N"], r["T"], r["D"], r["H"])
                                           / 1e9)
    out = capsys.readouterr().out
    assert "Numerics" in out and "GFLOP/s" in out and "Targets:" in out
    assert len(data["targets"]) == 2 * len(numerics.CELLS)


def test_flop_formula():
    # forward: 2NT(D+H)GH; backward twice that
    assert numerics.flops("rnn", 1, 1, 1, 1) == 12
    assert numerics.flops("lstm", 2, 3, 4, 5) == 6 * 4 * 2 * 3 * 5 * 9


def test_renderers_on_canned_rows(tmp_path):
    g = {"K": 12, "workers": 2, "loadavg": 1.0, "ours_s": 12.0, "ours_per_sub": 1.0,
         "stock_s": 40.0, "stock_per_sub": 3.33, "speedup": 40.0 / 12.0, "same_scores": True,
         "serial_s_per_sub": 0.04, "reps": 3, "ours_walls": [11.0, 12.0, 13.0],
         "stock_walls": [38.0, 40.0, 41.0],
         "ours_scores": {"s001": [19, 19]}, "stock_scores": {"s001": [19.0, 19.0]},
         "ours_flags": {}, **{f"st_{s}": 1.0 for s in grading.STAGE_NAMES},
         "stock_autograde": 30.0, "stock_generate_feedback": 6.0, "stock_export": 4.0}
    text = grading.render([g], "rnn_cell", 2)
    assert "speed-up" in text and "19/19 x1" in text and "MET" in text
    assert [t["met"] for t in grading.targets([g])] == [True, True, True]
    assert [t["met"] for t in grading.targets([{**g, "speedup": 2.9, "serial_s_per_sub": 0.06}])
            ] == [False, False, True]
    assert "0.040 s" in text and "3 runs each" in text and "stock 38.0, 40.0, 41.0" in text
    runs = [{"wall": w} for w in (14.0, 11.0, 12.0, 13.0)]
    assert grading._median_run(runs)["wall"] == 12.0
    # across assignments: each one's largest K, a worker's s/sub against the first's
    first = {**g, "assignment": "rnn_cell", "worker_per_sub": 1.0}
    rows = [{**first, "K": 6, "worker_per_sub": 9.0}, first,
            {**g, "assignment": "gru", "worker_per_sub": 1.4, "ours_per_sub": 1.5},
            {**g, "assignment": "lstm", "worker_per_sub": 1.6}]
    summary = grading.summary_targets(rows)
    assert [(t["target"].split(":")[0], round(t["value"], 2), t["met"]) for t in summary] == [
        ("gru", 1.4, True), ("lstm", 1.6, False)]
    text = grading.render_summary(rows)
    assert "every assignment" in text and "worker s/sub" in text and "MISSED" in text
    assert grading.targets([g], "gru")[0]["target"].startswith("gru: K=12")

    rows = [{"what": "lstm.ipynb (instructor)", "kind": "notebook", "assignment": "lstm",
             "wall": 12.0, "cells_s": 10.0, "mb": 200.0, "error": None},
            {"what": "grade one lstm submission", "kind": "grade", "assignment": "lstm",
             "wall": 70.0, "mb": 210.0, "score": "38/38"}]
    text = notebooks.render(rows)
    assert "kernel peak MB" in text and "MISSED" in text
    assert [t["met"] for t in notebooks.targets(rows)] == [True, False]



def test_scale_worker_counts_double_up_to_the_machine():
    assert scale.default_workers(1) == [1]
    assert scale.default_workers(2) == [1, 2]
    assert scale.default_workers(4) == [1, 2, 3]  # cores - 1: the coordinator keeps a core
    assert scale.default_workers(16) == [1, 2, 4, 8, 15]
    assert scale.default_workers(32) == [1, 2, 4, 8, 15, 16, 31]  # the target's 15 added
    assert scale.default_k([1, 2]) == scale.MIN_K
    assert scale.default_k([1, 2, 4, 8, 15]) == 3 * 15


def test_scale_cli_rejects_bad_counts(capsys):
    for argv in (["--workers", "1,x"], ["--workers", "0,2"], ["--k", "0"]):
        with pytest.raises(SystemExit) as exc:
            scale.main(argv)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not a comma-separated list of integers: '1,x'" in err
    assert "worker counts must be >= 1" in err and "not a positive integer: '0'" in err


def _scale_rows(wall_by_workers, coord=0.1):
    return scale.add_speedups(
        [{"executor": e, "workers": w, "K": 48, "wall": wall, "per_min": 48 * 60.0 / wall,
          "startup_s": 2.0, "worker_s_per_sub": 4.0, "coordinator_s_per_sub": coord,
          "cluster_start_s": 3.0 if e == scale.DASK else None, "same_full_score": True,
          "loadavg": 1.0}
         for e in (scale.LOCAL, scale.DASK, scale.WARM) for w, wall in wall_by_workers.items()])


def test_scale_rows_projection_targets_and_markdown():
    from autograder.pipeline.types import COORDINATOR_STAGES

    info = {"cpu": "Test CPU", "cores": 16, "cores_usable": 16, "os": "TestOS",
            "python": "3.x", "mem_gb": 64.0, "loadavg_at_start": (0.5, 0.5, 0.5)}
    rows = _scale_rows({1: 120.0, 2: 60.0, 15: 10.0})
    by = {(r["executor"], r["workers"]): r for r in rows}
    assert by[scale.LOCAL, 1]["speedup"] == pytest.approx(1.0)
    assert by[scale.LOCAL, 15]["speedup"] == pytest.approx(12.0)
    assert by[scale.LOCAL, 15]["efficiency"] == pytest.approx(0.8)

    proj = scale.projection(rows)
    assert proj["base"] == "local, 15 workers"
    assert proj["coordinator_bound_per_min"] == pytest.approx(600.0)
    assert proj["cores_to_saturate"] == pytest.approx(40.0)
    assert proj["cores"][16]["minutes"] == pytest.approx((2.0 + 1000 * 4.0 / 16) / 60)
    assert proj["cores"][256]["minutes"] == pytest.approx((2.0 + 1000 * 0.1) / 60)

    tgts = scale.targets(rows, cores=16)
    assert [t["met"] for t in tgts] == [True, True, False]  # 80% local, 80% warm, 0.1 > 0.05
    slower = _scale_rows({1: 120.0, 15: 11.0}, coord=0.04)
    assert [t["met"] for t in scale.targets(slower, cores=16)] == [False, False, True]
    (here, serial) = scale.targets(rows, cores=2)
    assert here["met"] is None and here["why"] == "not measurable here (2 cores)"
    assert serial["met"] is False

    notes = scale.notes_for([1, 2, 4, 8, 15], 16, COORDINATOR_STAGES, None)
    assert "the coordinator keeps a core" in notes[1]
    assert " + ".join(COORDINATOR_STAGES) in notes[0]
    assert scale.notes_for([1, 2], 2, COORDINATOR_STAGES, "--no-dask")[-1] == \
        "dask rows skipped: --no-dask."
    text = scale.render(rows, "rnn_cell", proj, tgts, notes, info)
    assert "Projection to 1000 students" in text and "efficiency" in text
    assert "Test CPU, 16 cores, 64 GiB memory, TestOS" in text and "-> MET" in text
    md = scale.render_markdown(rows, "rnn_cell", tgts, notes, info, proj)
    table_lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table_lines) == 2 + len(rows)
    assert {ln.count("|") for ln in table_lines} == {len(scale.COLUMNS) + 1}
    assert "| local | 15 | 48 | 10.0 | 288.0 | 12.00 | 80% |" in md
    assert "Test CPU" in md and "- Target: parallel efficiency >= 80% at 15 workers" in md
    assert md.rstrip().endswith("one coordinator caps a run at 600 submissions/min.")
    assert "4.2 min on 16, " in md  # (2 + 1000 x 4 / 16) / 60


def test_scale_says_why_dask_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert scale.dask_missing().startswith("distributed is not importable (")


# --------------------------------------------------------------------------- #
# slow: the three grading benchmarks end to end, quick mode
# --------------------------------------------------------------------------- #
needs_sandbox = pytest.mark.skipif(shutil.which("bwrap") is None,
                                   reason="bubblewrap (the grading sandbox) is not installed")
# one xdist worker for the three: they share the course template it builds once
same_worker = pytest.mark.xdist_group("bench-grading")


@pytest.mark.slow
@needs_sandbox
@same_worker
def test_grading_quick(tmp_path):
    data = grading.run(quick=True, out_dir=tmp_path)
    assert _load(tmp_path / "grading.json")["rows"][0]["K"] == 1
    (row,) = data["rows"]
    assert row["same_scores"] and row["ours_errors"] == []
    assert set(row["stages"]) >= set(grading.STAGE_NAMES)
    assert "Per-stage seconds" in data["table"]


@pytest.mark.slow
@needs_sandbox
@same_worker
def test_notebooks_quick(tmp_path):
    data = notebooks.run(quick=True, out_dir=tmp_path)
    assert _load(tmp_path / "notebooks.json")["benchmark"] == "notebooks"
    kinds = [(r["kind"], r["assignment"]) for r in data["rows"]]
    assert kinds == [("notebook", "rnn_cell"), ("grade", "rnn_cell")]
    for r in data["rows"]:
        assert r["wall"] > 0 and r["mb"] and r["mb"] > 10
    assert data["rows"][0]["error"] is None
    assert data["rows"][1]["score"].split("/")[0] == data["rows"][1]["score"].split("/")[1]


@pytest.mark.slow
@needs_sandbox
@same_worker
def test_scale_quick(tmp_path):
    md = tmp_path / "scale.md"
    data = scale.run(quick=True, out_dir=tmp_path, markdown=md)
    saved = _load(tmp_path / "scale.json")
    assert saved["K"] == scale.QUICK["k"] and saved["machine"]["cores_usable"] >= 1
    assert [(r["executor"], r["workers"]) for r in data["rows"]] == [
        (scale.LOCAL, 1), (scale.LOCAL, 2), (scale.DASK, 2), (scale.WARM, 2)]
    assert all(r["same_full_score"] and not r["errors"] for r in data["rows"])
    assert data["rows"][0]["speedup"] == pytest.approx(1.0)
    assert all(r["efficiency"] > 0 and r["coordinator_s_per_sub"] > 0 for r in data["rows"])
    assert data["rows"][2]["cluster_start_s"] > 0 and data["rows"][3]["cluster_start_s"] is None
    assert set(data["projection"]["cores"]) == set(scale.CLUSTER_CORES)
    assert md.read_text() == data["markdown"] == saved["markdown"]
    assert f"parallel efficiency >= 80% at {scale.TARGET_WORKERS} workers" in data["table"]


@pytest.mark.slow
@needs_sandbox
@same_worker
def test_sandbox_overhead_quick(tmp_path):
    from bench import sandbox

    data = sandbox.run(quick=True, out_dir=tmp_path)
    assert _load(tmp_path / "sandbox.json")["ratio"] == data["ratio"]
    assert [r["mode"] for r in data["rows"]] == ["sandboxed", "no sandbox"]
    assert data["same_scores"] and not any(r["errors"] for r in data["rows"])
    assert data["ratio"] > 0 and "ratio" in data["table"]


@pytest.mark.slow
def test_report_quick(tmp_path):
    from bench import report

    data = report.run(quick=True, out_dir=tmp_path)
    assert [r["students"] for r in data["rows"]] == [report.QUICK, report.QUICK]
    saved = _load(tmp_path / "report.json")["targets"]
    assert [t["value"] for t in saved] == [r["seconds"] for r in data["rows"]]
    assert all(r["seconds"] > 0 for r in data["rows"])
    assert "similarity report" in data["table"]
