"""``python -m autograder grade`` (``autograder.cli``, ``autograder.commands.grade``): usage errors.

A person's mistake ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import nbfixtures as fx
import pytest

from autograder import cli

A = fx.ASSIGNMENT


@pytest.mark.parametrize("case, argv, words", [
    ("wrong flag", ["grade", A, "--bogus"], "unrecognized arguments: --bogus"),
    ("no assignment", ["grade"], "the following arguments are required: ASSIGNMENT"),
    ("not a number", ["grade", A, "--workers", "two"], "invalid int value: 'two'"),
    ("unknown command", ["regrade", A], "invalid choice: 'regrade'"),
    ("unknown assignment", ["grade", "no_such_assignment"], "unknown assignment"),
    ("missing course folder", ["grade", A, "--course-dir", "{tmp}/nowhere"],
     "is not a course directory"),
    ("no submissions folder", ["grade", A], "no submissions folder"),
    ("unknown student", ["grade", A, "--student", "zed"], "no submission of rnn_cell"),
    ("no workers", ["grade", A, "--workers", "0"], "--workers must be at least 1"),
])
def test_a_usage_error_is_one_line_and_exit_2(course, tmp_path, capsys, case, argv, words):
    if case in ("unknown student", "no workers"):
        fx.submit(course, "ann", fx.student_notebook(course))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "grade" and "--course-dir" not in argv:
        argv += ["--course-dir", str(course)]
    argv.append("--unsafe-no-sandbox")
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert words in lines[0] and "Traceback" not in err
    assert out == ""
    assert not (course / "autograded").exists()


def test_help_exits_0(capsys):
    assert cli.main(["grade", "--help"]) == 0
    assert "--unsafe-no-sandbox" in capsys.readouterr().out
