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
    g = {"K": 12, "workers": 2, "loadavg": 1.0, "ours_s": 20.0, "ours_per_sub": 1.67,
         "stock_s": 40.0, "stock_per_sub": 3.33, "speedup": 2.0, "same_scores": True,
         "ours_scores": {"s001": [19, 19]}, "stock_scores": {"s001": [19.0, 19.0]},
         "ours_flags": {}, **{f"st_{s}": 1.0 for s in grading.STAGE_NAMES},
         "stock_autograde": 30.0, "stock_generate_feedback": 6.0, "stock_export": 4.0}
    text = grading.render([g], "rnn_cell", 2)
    assert "speed-up" in text and "19/19 x1" in text and "MET" in text
    assert [t["met"] for t in grading.targets([g])] == [True, True]

    rows = [{"what": "lstm.ipynb (instructor)", "kind": "notebook", "assignment": "lstm",
             "wall": 12.0, "cells_s": 10.0, "mb": 200.0, "error": None},
            {"what": "grade one lstm submission", "kind": "grade", "assignment": "lstm",
             "wall": 70.0, "mb": 210.0, "score": "38/38"}]
    text = notebooks.render(rows)
    assert "kernel peak MB" in text and "MISSED" in text
    assert [t["met"] for t in notebooks.targets(rows)] == [True, False]

    srows = [{"executor": e, "workers": w, "K": 12, "wall": 60.0 / w, "per_min": 12.0 * w,
              "startup_s": 2.0, "worker_s_per_sub": 4.0, "coordinator_s_per_sub": 0.1,
              "cluster_start_s": None, "all_full_marks": True}
             for e, w in (("local, 1 worker", 1), ("local, 2 workers", 2))]
    proj = scale.projection(srows)
    assert proj["coordinator_bound_per_min"] == pytest.approx([600.0, 600.0])
    assert proj["base"] == "local, 2 workers"
    assert proj["cores"][16]["minutes"] == pytest.approx([(2.0 + 1000 * 4.0 / 16) / 60] * 2)
    assert "Projection to 1000 students" in scale.render(srows, "rnn_cell", proj)


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
    data = scale.run(quick=True, out_dir=tmp_path)
    assert _load(tmp_path / "scale.json")["K"] == scale.QUICK["k"]
    assert [r["executor"] for r in data["rows"]] == [
        "local, 1 worker", "local, 2 workers", "dask LocalCluster, 2 procs",
        "dask, same cluster (warm)"]
    assert all(r["all_full_marks"] and not r["errors"] for r in data["rows"])
    assert set(data["projection"]["cores"]) == set(scale.CLUSTER_CORES)


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
