"""The release schedule (``c.RnnCourse.schedule``): no notebook hands out an open answer.

Later notebooks provide, in locked cells, working versions of earlier assignments'
graded functions (bptt's ``rnn_forward``, ...).  So an assignment may be handed
out only once every assignment whose graded functions its release notebook ships
is past due.  The config's rule (each opens once the previous one is due) is
checked where the config is read (autograder.course.schedule_of); the test below
proves, for every pair of assignments, that the release notebooks and the
course's schedule keep to it, by scanning each notebook for each contract
function's implementation.
"""

from __future__ import annotations

import ast
import itertools
import sys
from datetime import datetime, timedelta

import nbformat
import pytest

from autograder.course import SCHEDULE_FORMAT, Course
from autograder.errors import UsageError
from rnn_course.checks import assignment_checks
from rnn_course.contract import CONTRACT, checked_function

COURSE = Course()


def graded_functions(assignment: str) -> set[str]:
    """The contract functions the checks of ``assignment`` grade."""
    return {checked_function(c) for c in assignment_checks(assignment)} - {None}


def _is_stub(fn: ast.FunctionDef) -> bool:
    """A student's stub: its body raises NotImplementedError (nbgrader's code_stub)."""
    return any(isinstance(node, ast.Raise) and "NotImplementedError" in ast.unparse(node)
               for node in ast.walk(fn))


def implementations(nb) -> set[str]:
    """The contract functions that code cells of ``nb`` define with a working body."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.FunctionDef) and node.name in CONTRACT \
                    and not _is_stub(node):
                found.add(node.name)
    return found


def released(assignment: str):
    return nbformat.read(COURSE.release_notebook(assignment), as_version=4)


def test_the_scan_finds_provided_functions_and_not_stubs():
    """The scanner itself, on a notebook of its own: a stub is not an implementation."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def rnn_forward(x, h0, Wx, Wh, b):\n"
                                  '    """doc"""\n    return x, None\n'),
        nbformat.v4.new_code_cell("def rnn_backward(dh, cache, truncate=None):\n"
                                  "    # YOUR CODE HERE\n    raise NotImplementedError()\n"),
        nbformat.v4.new_code_cell("def helper(x):\n    return x\n")])
    assert implementations(nb) == {"rnn_forward"}
    assert "rnn_forward" in implementations(released("bptt")), "bptt provides rnn_forward"


@pytest.mark.parametrize("earlier,later", list(itertools.permutations(COURSE.assignments, 2)))
def test_no_release_ships_an_open_assignments_answer(earlier, later):
    """For every pair: if ``later``'s release notebook ships a working version of one of
    ``earlier``'s graded functions, ``later`` opens only once ``earlier`` is past due."""
    schedule = COURSE.schedule
    shipped = implementations(released(later)) & graded_functions(earlier)
    if shipped:
        assert schedule[later].opens >= schedule[earlier].due, (
            f"{later} opens {schedule[later].opens} and ships {sorted(shipped)} of {earlier}, "
            f"due {schedule[earlier].due}")
    if COURSE.assignments.index(later) < COURSE.assignments.index(earlier):
        assert not shipped, f"{later} hands out {sorted(shipped)}, graded later in {earlier}"


def test_each_notebook_ships_earlier_answers_at_least_once():
    """The pair test is not empty: the course's later notebooks do provide earlier functions
    (the case the schedule exists for)."""
    pairs = [(a, b) for a, b in itertools.permutations(COURSE.assignments, 2)
             if implementations(released(b)) & graded_functions(a)]
    assert ("rnn_cell", "bptt") in pairs and ("lstm", "gru") in pairs


def test_open_assignments_follow_the_clock_in_course_order():
    schedule = COURSE.schedule
    first, second = COURSE.assignments[:2]
    assert COURSE.open_assignments(schedule[first].opens - timedelta(minutes=1)) == []
    assert COURSE.open_assignments(schedule[first].opens) == [first]
    assert COURSE.open_assignments(schedule[second].opens) == [first, second]
    assert COURSE.open_assignments(datetime(2100, 1, 1)) == COURSE.assignments


# --------------------------------------------------------------------------- the config's rule
def _config(tmp_path, schedule) -> Course:
    names = list(schedule) if isinstance(schedule, dict) else ["a", "b"]
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.RnnCourse.assignments = {names!r}\nc.RnnCourse.schedule = {schedule!r}\n")
    return Course(tmp_path)


def _window(opens: str, due: str) -> dict:
    return {"opens": opens, "due": due}


@pytest.mark.parametrize("schedule,message", [
    ({"a": _window("2027-01-01 00:00", "2027-01-10 00:00"),
      "b": _window("2027-01-05 00:00", "2027-01-20 00:00")},
     "b opens (2027-01-05 00:00) before a is due (2027-01-10 00:00)"),
    ({"a": _window("2027-01-10 00:00", "2027-01-01 00:00"),
      "b": _window("2027-01-11 00:00", "2027-01-20 00:00")}, "a opens (2027-01-10 00:00) after"),
    ({"a": _window("2027-01-01", "2027-01-10 00:00"),
      "b": _window("2027-01-11 00:00", "2027-01-20 00:00")}, "YYYY-MM-DD HH:MM"),
    ({"a": {"due": "2027-01-10 00:00"},
      "b": _window("2027-01-11 00:00", "2027-01-20 00:00")}, "a has"),
    ("next week", "must give every assignment"),
])
def test_a_schedule_that_could_hand_out_answers_is_refused_in_one_line(tmp_path, schedule,
                                                                       message):
    with pytest.raises(UsageError) as err:
        _config(tmp_path, schedule).open_assignments()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_sound_schedule_is_read(tmp_path):
    course = _config(tmp_path, {"a": _window("2027-01-01 00:00", "2027-01-10 00:00"),
                                "b": _window("2027-01-10 00:00", "2027-01-20 00:00")})
    assert course.schedule["b"].opens == datetime.strptime("2027-01-10 00:00", SCHEDULE_FORMAT)
    assert course.open_assignments(datetime(2027, 1, 5)) == ["a"]


# --------------------------------------------------------------------------- the service
def test_service_hands_out_each_assignment_when_it_opens_in_course_order(tmp_path, monkeypatch):
    """`serve --release-on-open`: what is open and not in the exchange is released, earlier
    first; nothing twice; a failed release is one warning, tried again a minute later."""
    from autograder.service import app
    from autograder.service.rounds import Options

    service = app.Service(Options(course_dir=str(COURSE.root)), release_on_open=True)
    service.inbound = tmp_path / "exchange" / COURSE.course_id / "inbound"
    calls, fail = [], set()

    class Done:
        def __init__(self, rc):
            self.returncode, self.stdout, self.stderr = rc, "", "boom"

    def fake_run(argv, cwd, **kw):
        assert cwd == COURSE.root and argv[0] == sys.executable
        calls.append(" ".join(argv[2:]))
        if argv[-1] in fail:
            return Done(1)
        if "release_assignment" in argv:
            service.outbound(argv[-1]).mkdir(parents=True)
        return Done(0)

    monkeypatch.setattr(app.subprocess, "run", fake_run)
    events = []
    monkeypatch.setattr(app, "event", lambda name, text: events.append(f"{name} {text}"))
    schedule = COURSE.schedule
    first, second, third = COURSE.assignments[:3]
    assert service.release_opened(schedule[first].opens - timedelta(seconds=1)) == []
    assert service.release_opened(schedule[second].opens) == [first, second]
    assert calls == [f"autograder release {first}", f"nbgrader release_assignment {first}",
                     f"autograder release {second}", f"nbgrader release_assignment {second}"]
    assert service.release_opened(schedule[second].opens) == [], "nothing twice"
    calls.clear()
    fail.add(third)
    assert service.release_opened(schedule[third].opens) == []
    assert events[-1].startswith(f"warning {third} opened but autograder release failed "
                                 "(exit 1): boom")
    assert events[0].startswith(f"released {first}: opened ")
    assert service.release_opened(schedule[third].opens) == [] and len(calls) == 1, \
        "tried again only after RELEASE_RETRY seconds"
    service.release_on_open = False
    fail.clear()
    service._release_tried.clear()
    assert service.release_opened(datetime(2100, 1, 1)) == [], "off unless asked for"
