"""The visible checks' stored oracle values: in sync with the reference, required, unforgeable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from autograder.course import Course
from autograder.protocol import oracles
from rnn_course import checks

ASSIGNMENTS = Course(Path(__file__).resolve().parents[1]).assignments
REGISTRY = checks.registry(ASSIGNMENTS)


def test_stored_oracles_match_the_reference():
    """What `python -m autograder release` stores is what the reference computes now."""
    assert oracles.with_oracle(ASSIGNMENTS), "no visible check declares an oracle"
    assert oracles.out_of_sync(ASSIGNMENTS) == []


def test_every_finite_difference_check_has_an_oracle():
    """No visible check may judge a gradient with tables its own kernel computed:
    every check whose verdict reads plus_/minus_ tables or a reference h has an oracle."""
    for cid, check in REGISTRY.items():
        if check.oracle is None:
            continue
        stored = check.oracle_values()
        assert stored, cid
    for cid in ("rnn_step_backward_bias", "rnn_step_backward_input",
                "rnn_step_backward_recurrent", "rnn_forward_values", "rnn_backward_weights",
                "rnn_backward_truncate_k", "gradient_norms_values",
                "lstm_step_backward_gradcheck", "lstm_backward_gradcheck",
                "lstm_forward_matches_steps"):
        assert REGISTRY[cid].oracle is not None, cid


def test_write_all_is_a_no_op_when_in_sync(tmp_path):
    folder = tmp_path / "oracles"
    shutil.copytree(checks.ORACLE_DIR, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert oracles.write_all(ASSIGNMENTS, folder) == []
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_stale_missing_and_extra_files_are_reported_and_repaired(tmp_path):
    folder = tmp_path / "oracles"
    shutil.copytree(checks.ORACLE_DIR, folder)
    (folder / "rnn_forward_values.npz").unlink()
    np.savez(folder / "rnn_step_backward_bias.npz", a_plus_b=np.zeros(3))
    np.savez(folder / "no_such_check.npz", x=np.zeros(1))
    problems = oracles.out_of_sync(ASSIGNMENTS, folder)
    assert any("rnn_forward_values.npz is missing" in p for p in problems)
    assert any("rnn_step_backward_bias.npz differs" in p for p in problems)
    assert any("no_such_check.npz belongs to no check" in p for p in problems)
    assert oracles.missing(ASSIGNMENTS, folder) == ["rnn_forward_values"]
    written = oracles.write_all(ASSIGNMENTS, folder)
    assert set(written) == {"rnn_forward_values.npz", "rnn_step_backward_bias.npz",
                            "no_such_check.npz"}
    assert oracles.out_of_sync(ASSIGNMENTS, folder) == []


def test_a_missing_oracle_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(checks, "ORACLE_DIR", tmp_path)
    checks._stored_oracle.cache_clear()
    try:
        with pytest.raises(checks.OracleMissing, match="python -m autograder release"):
            REGISTRY["rnn_step_backward_bias"].oracle_values()
    finally:
        checks._stored_oracle.cache_clear()


def test_hidden_checks_store_nothing():
    """A hidden check's ``expected`` computes its expected outputs per submission, never
    stored; only visible checks have oracle values."""
    with_expected = [c for c in REGISTRY.values() if c.expected is not None]
    assert with_expected, "gradient_norms_hidden composes its expected values"
    stored = oracles.with_oracle(ASSIGNMENTS)
    assert all(c.hidden and c.id not in stored and c.oracle_values() == {}
               for c in with_expected)
    assert all(not REGISTRY[cid].hidden for cid in stored)
