"""Grading a notebook's functions in-process, the way the grader scores them.

A *student namespace* is what a kernel holds after running a notebook: the
source notebook's solution and provided cells executed in one dict, so that
``lstm_step_forward`` calls ``lstm_gates`` by name as a student's does.  A
planted bug is a few lines executed after them (``def lstm_gates(a): ...``).

:func:`grade` then does, for every graded cell of the notebook, what the
pipeline does (``verify.grading_plan``, the kernel's ``Check.graded_run`` on the
delivered inputs with their stand-ins, ``VerifyChecks`` (its cap per function,
``checks.capped_by_function``) and ``scoring``) without
a kernel or nbgrader: a check's points times the share its verdict earns.  The
slow end-to-end tests (test_pipeline, test_demo, test_hostile) do the real thing.
"""

from __future__ import annotations

import json
import textwrap
from functools import lru_cache
from pathlib import Path

from autograder import reference
from autograder.pipeline.scoring import earned_fraction
from autograder.pipeline.worker import verify
from autograder.protocol import standins
from autograder.protocol.secrets import submission_secret
from rnn_course import checks, grading
from rnn_course import standins as rnn_standins

REPO = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=None)
def notebook_cells(assignment: str) -> tuple:
    """The source notebook's cells as (type, source, nbgrader metadata)."""
    nb = json.loads((REPO / "source" / assignment / f"{assignment}.ipynb").read_text())
    return tuple((c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("nbgrader", {}))
                 for c in nb["cells"])


def graded_cells(assignment: str) -> list[tuple[str, float]]:
    """(grade_id, points) of every graded code cell, in order."""
    return [(meta["grade_id"], float(meta.get("points", 0)))
            for kind, _, meta in notebook_cells(assignment)
            if kind == "code" and meta.get("grade") and not meta.get("solution")]


def graded_function(check) -> str:
    """The function ``check`` grades: of the functions it calls, the one its id is named
    after (``rnn_step_backward_shapes`` calls rnn_step_forward and rnn_step_backward and
    grades the second; ``gradient_norms_values`` grades gradient_norms_through_time)."""
    found = checks.function_of(check.id, check.functions)  # the grader's own rule
    if found is None:
        raise LookupError(f"{check.id} is named after none of {check.functions}")
    return found


def points_by_function(assignment: str) -> dict[str, float]:
    """The points of the notebook's graded cells, summed by the function each grades."""
    registered = checks.assignment_checks(assignment)
    points: dict[str, float] = {}
    for grade_id, p in graded_cells(assignment):
        name = graded_function(registered[grade_id])
        points[name] = points.get(name, 0.0) + p
    return points


@lru_cache(maxsize=None)
def graded_functions(assignment: str) -> tuple[str, ...]:
    """The functions students write in the notebook (those its solution cells define)."""
    import re
    return tuple(dict.fromkeys(
        name for kind, source, meta in notebook_cells(assignment)
        if kind == "code" and meta.get("solution")
        for name in re.findall(r"^def (\w+)\(", source, flags=re.M)))


def function_of(assignment: str, grade_id: str) -> str:
    """The notebook function a graded cell checks (its grade_id is ``<function>_<what>``)."""
    found = checks.function_of(grade_id, graded_functions(assignment))
    if found is None:
        raise LookupError(f"{assignment}: {grade_id} checks none of {graded_functions(assignment)}")
    return found


def by_function(assignment: str, cells: dict) -> dict[str, tuple[float, float]]:
    """{function: (points earned, points)} from :func:`grade`'s cells."""
    points = dict(graded_cells(assignment))
    out: dict[str, list] = {}
    for grade_id, (earned, _) in cells.items():
        total = out.setdefault(function_of(assignment, grade_id), [0.0, 0.0])
        total[0] += earned
        total[1] += points[grade_id]
    return {k: (v[0], v[1]) for k, v in out.items()}


def student_namespace(assignment: str, planted: str = "") -> dict:
    """The functions of the source notebook (solutions and provided cells), then ``planted``."""
    ns: dict = {"__name__": f"student_{assignment}"}
    exec("import numpy as np", ns)  # noqa: S102 - the course's own notebook code
    for kind, source, meta in notebook_cells(assignment):
        if kind != "code" or meta.get("grade") and not meta.get("solution"):
            continue
        if source.lstrip().startswith("def ") or meta.get("solution"):
            exec(compile(source, f"<{assignment}:{meta.get('grade_id')}>", "exec"), ns)  # noqa: S102
    if planted:
        exec(compile(textwrap.dedent(planted), "<planted>", "exec"), ns)  # noqa: S102
    return ns


def grade(assignment: str, ns: dict, student: str = "student", digest: str = "digest",
          use_standins: bool = True) -> tuple[float, float, dict]:
    """(score, max score, {grade_id: (points earned, message)}) of ``ns``'s functions."""
    secret = submission_secret(b"course-secret", assignment, student, digest)
    registered = checks.assignment_checks(assignment)
    total = maximum = 0.0
    cells, verdicts = {}, {}
    for grade_id, _ in graded_cells(assignment):
        check = registered[grade_id]
        inputs = verify.drawn_inputs(check, secret, assignment, student)
        delivered = dict(inputs)
        tables = standins.tables_for(check, inputs) if use_standins else {}
        if tables:
            delivered[rnn_standins.INPUT_NAME] = tables
        delivered = grading.decode_inputs(grading.encode_inputs(delivered))
        try:
            outputs = check.graded_run(delivered, *(ns.get(n) for n in check.functions))
        except Exception as exc:  # noqa: BLE001 - a crashing cell scores 0, as when graded
            message = f"no result ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        else:
            try:
                message = check.judge(outputs, inputs, reference)
            except Exception as exc:  # noqa: BLE001
                message = f"could not be judged ({type(exc).__name__}: {exc})"
        verdicts[grade_id] = checks.Verdict.of(message)
    points = dict(graded_cells(assignment))
    verdicts = checks.capped_by_function(verdicts, points, registered)
    for grade_id, verdict in verdicts.items():
        earned = points[grade_id] if verdict is None else points[grade_id] * earned_fraction(
            verify.verdict_record(registered[grade_id].kind, verdict))
        cells[grade_id] = (earned, verdict)
        total += earned
        maximum += points[grade_id]
    return total, maximum, cells


def cost(assignment: str, planted: str, **kwargs) -> float:
    """The share of the assignment's points that ``planted`` costs (0 = none)."""
    score, maximum, _ = grade(assignment, student_namespace(assignment, planted), **kwargs)
    return 1.0 - score / maximum


def main(argv=None) -> None:
    """``python tests/gradesim.py [--before]``: what each planted bug costs (tests/planted.py),
    and its scores under 20 student ids; ``--before`` without stand-ins and with every
    check all-or-nothing, as grading was before issue 13."""
    import argparse
    import sys
    import warnings

    sys.path.insert(0, str(Path(__file__).parent))
    from planted import BUGS

    args = argparse.ArgumentParser(description=main.__doc__).parse_known_args(argv)[1]
    before = "--before" in args
    warnings.simplefilter("ignore", RuntimeWarning)
    print(f"{'planted bug':36s} {'cost':>6s}  scores under 20 ids  first message")
    for name, (assignment, code, _) in BUGS.items():
        ns = student_namespace(assignment, code)
        points = dict(graded_cells(assignment))
        scores = set()
        for i in range(20):
            score, maximum, cells = grade(assignment, ns, student=f"student{i:02d}",
                                          use_standins=not before)
            if before:
                score = sum(points[k] for k, (_, m) in cells.items() if m is None)
            scores.add(round(score, 4))
        _, _, cells = grade(assignment, ns, use_standins=not before)
        first = next((str(m) for _, m in cells.values() if m), "")
        cost = 1.0 - min(scores) / maximum
        print(f"{name:36s} {cost:6.1%}  {sorted(scores)!s:19s}  {first[:70]}")


if __name__ == "__main__":
    main()
