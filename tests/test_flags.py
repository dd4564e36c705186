"""The flag vocabulary (``autograder.pipeline.flags``): one home for every flag."""

from __future__ import annotations

import pytest

import autograder.sandbox as sandbox
from autograder.pipeline import flags as F
from autograder.pipeline.worker.precheck import Submission


def test_every_sandbox_outcome_is_in_the_vocabulary():
    assert set(sandbox.FLAGS) <= set(F.FLAGS)
    # the outcomes that stop a kernel stop execution; a cut output or a failed
    # write (the kernel goes on, with an error in that cell) does not
    for name in sandbox.FLAGS:
        goes_on = name in (sandbox.OUTPUT_TRUNCATED, sandbox.DISK_LIMIT)
        assert F.VOCABULARY[name].stops == (not goes_on), name


def test_every_flag_is_named_once_and_explained():
    assert len(F.FLAGS) == len(set(F.FLAGS))
    for name, flag in F.VOCABULARY.items():
        assert flag.name == name and name.isidentifier() and name == name.lower()
        assert flag.text and "\n" not in flag.text
    assert F.STOPPING == {n for n, f in F.VOCABULARY.items() if f.stops}
    assert F.STOPPING and F.STOPPING < set(F.FLAGS)


def test_one_flag_method_for_precheck_and_worker():
    from autograder.pipeline.types import GradeResult

    for holder in (Submission("s", "a", path=None), GradeResult("s", "a")):
        holder.flag(F.TOO_LARGE, "big.bin   is\nhuge")
        holder.flag(F.TOO_LARGE, "big.bin is huge")  # the same reason once
        holder.flag(F.LATE)
        assert holder.flags == [(F.TOO_LARGE, "big.bin is huge"), (F.LATE, "")]
        assert holder.flag_names == [F.LATE, F.TOO_LARGE]
        with pytest.raises(ValueError, match="unknown flag"):
            holder.flag("no_such_flag", "x")


def test_a_reason_is_one_short_line_any_utf8_writer_accepts():
    flags: list[tuple[str, str]] = []
    name = "caf\udce9.txt"  # a file name with an invalid byte, as os.listdir returns it
    F.add_flag(flags, F.SHADOWING_MODULE, f"{name}\n" + "x" * 1000)
    (_, reason), = flags
    reason.encode("utf-8")  # no lone surrogate left
    assert reason.startswith("caf\\udce9.txt x") and len(reason) <= F.REASON_CHARS + 10
