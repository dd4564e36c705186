"""The deadline rush (bench/rush.py): its figures from canned times, and a small rush for real.

The fast tests feed the rush's arithmetic (percentiles, the bins over the
window, the graded-once check) canned values; the slow one runs ``python -m
bench.rush --quick`` end to end: a real JupyterHub on free ports, students
with tokens of their own, the HTTP exchange, the grading service grading in
the sandbox.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from bench import rush


def test_summary_is_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert rush.summary(values) == {"n": 20, "median": 10.0, "p95": 19.0, "worst": 20.0}
    assert rush.summary([]) == {"n": 0, "median": None, "p95": None, "worst": None}


def test_bins_split_the_window_by_submit_moment():
    offsets = {"a": 0.0, "b": 5.0, "c": 10.0, "d": 19.9, "e": 20.5}  # e: after the window
    waits = {"a": 1.0, "b": 3.0, "c": 2.0, "d": 8.0, "e": 4.0}
    got = rush.bins(offsets, waits, window=20.0, count=2)
    assert [(b["from_s"], b["to_s"], b["submitted"]) for b in got] == [(0, 10, 2), (10, 20, 3)]
    assert got[0]["median"] == 1.0 and got[0]["worst"] == 3.0
    assert got[1]["p95"] == 8.0 and got[1]["n"] == 3
    assert sum(b["submitted"] for b in got) == len(offsets)


def _row(student, state="released"):
    return SimpleNamespace(student_id=student, state=state)


def test_graded_once_reads_the_journal_and_the_log():
    log = ("2026-12-06T05:00:00Z graded     r000 rnn_cell: 19/19 flags=- (graded 3.1 s after "
           "submit)\n"
           "2026-12-06T05:00:01Z graded     r001 rnn_cell: 13/19 flags=- (graded 4.0 s after "
           "submit)\n")
    ok = rush.graded_once(log, [_row("r000"), _row("r001")], ["r000", "r001"])
    assert ok["ok"] and ok["graded_events"] == 2 and ok["journal_states"] == {"released": 2}
    twice = rush.graded_once(log + log.splitlines()[0] + "\n",
                             [_row("r000"), _row("r001")], ["r000", "r001"])
    assert not twice["ok"] and twice["twice"] == ["r000"]
    missing = rush.graded_once(log, [_row("r000"), _row("r001", "collected")],
                               ["r000", "r001", "r002"])
    assert not missing["ok"] and missing["missing"] == ["r002"]
    assert missing["unreleased"] == ["r001"]
    recorded = log.replace("(graded 4.0", "(already recorded 4.0")
    assert rush.graded_once(recorded, [_row("r000"), _row("r001")],
                            ["r000", "r001"])["missing"] == ["r001"]


@pytest.mark.slow
def test_a_quick_rush_through_the_hub(tmp_path, capsys):
    result = rush.run(quick=True, out_dir=tmp_path)
    n = rush.QUICK["students"]
    assert result["students"] == n and sorted(result["waits_s"]) == [
        f"r{i:03d}" for i in range(n)]
    assert result["graded_once"]["ok"], result["graded_once"]
    assert result["graded"] == n and result["failures"] == 0
    assert 0 < result["median"] <= result["p95"] <= result["worst"]
    assert result["fetched_s"]["n"] == n and result["fetched_s"]["median"] >= result["median"]
    assert len(result["bins"]) == 5 and sum(b["submitted"] for b in result["bins"]) == n
    per = result["per_submission_cpu_s"]
    assert per["service"] > 0 and per["serial"] > 0 and per["workers"] > 0
    saved = json.loads((tmp_path / "rush.json").read_text())
    assert saved["graded_once"]["ok"] and saved["students"] == n
    out = capsys.readouterr().out
    assert "submit accepted -> feedback available" in out and "Over the window" in out
    assert len(re.findall(r"^[0-9.]+-[0-9.]+ s ", out, re.M)) == 5  # one row per bin


def test_report_prints_the_window_and_the_cost():
    offsets = {"r000": 1.0, "r001": 16.0, "r002": 31.0, "r003": 46.0}
    waits = {"r000": 3.0, "r001": 4.0, "r002": 5.5, "r003": 9.0}
    result = {
        "students": 4, "minutes": 1.0, "workers": 3, "scheduler": None, "warm_kernels": True,
        "clients": 2, "poll_interval_s": 1.0, "wall_s": 55.2, "hub_start_s": 4.1,
        "users_and_tokens_s": 0.4, **{k: v for k, v in rush.summary(waits.values()).items()
                                      if k != "n"},
        "waits_s": waits, "fetched_s": rush.summary([4.0, 5.0, 7.0, 11.0]),
        "bins": rush.bins(offsets, waits, 60.0, 4),
        "service_side_s": {"graded": rush.summary([2.0, 3.0, 4.0, 8.0]),
                           "released": rush.summary([2.2, 3.1, 4.5, 8.1])},
        "submit_lag_s": rush.summary([0.0, 0.1, 0.0, 0.2]), "polls": 21,
        "graded_once": rush.graded_once("", [], []) | {"ok": True, "graded_events": 4,
                                                      "journal_states": {"released": 4}},
        "rounds": 1, "handed_out": [1, 1, 1, 1], "graded": 4, "failures": 0,
        "scores": [(13.0, 19.0), (19.0, 19.0)],
        "cpu_s": {"service": 8.0, "service_main": 1.0, "service_rounds": 1.0,
                  "service_workers": 6.0, "clients": 1.5, "clients_processes": 2.5,
                  "driver": 0.5, "hub": 1.2, "setup": 3.0},
        "per_submission_cpu_s": {"service": 2.0, "serial": 0.5, "workers": 1.5},
        "load_before": 1.5, "load_after": 2.0,
    }
    text = rush.report(result)
    assert len(re.findall(r"^[0-9.]+-[0-9.]+ s ", text, re.M)) == 4
    assert "submit accepted -> feedback available" in text and "MET" in text
    assert "fetched (polls every 1 s)" in text
    assert "2 s per submission" in text and "0.5 s per submission serial" in text
    result["p95"] = rush.TARGET_P95 + 1
    assert "MISSED" in rush.report(result)
