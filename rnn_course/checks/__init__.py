"""Checks: the graded test cells of the course, visible and hidden, one type for both.

A check is a few small pure functions (see :class:`Check`):

* ``make_inputs(rng)`` builds its inputs;
* ``run(inputs, *functions)`` calls the student's functions and returns a dict
  of plain arrays; this is the only part that runs the student's code;
* a **visible** check (students read and rerun it) has fixed inputs (its
  ``seed``) and a ``verdict(inputs, outputs)`` that returns None when the
  behaviour is right, else a message that names the likely bug (or a
  :class:`Verdict`, a message worth a share of the points);
* a **hidden** check (``hidden=True``) draws new inputs for every submission
  (from a seed the student cannot know) and declares its ``outputs``; its
  verdict compares them with the **same** ``run`` applied to the reference
  solutions (``autograder.reference``, looked up by parameter name) on the
  same inputs, so the calls and output names are written once.  Its message
  names the output and the kind of mismatch, never an input or an expected
  value.

Two functions run on the reference, never in the student's kernel; their
parameters name the reference functions they receive (a name the reference
lacks gets None):

* a visible check's ``oracle(inputs, *reference functions)`` computes what its
  verdict needs to know and the student's kernel must not be trusted with (the
  finite differences of a correct forward pass, the states of a sequence).
  ``python -m autograder release`` runs it once on the fixed inputs and stores
  its **oracle values** in ``rnn_course/checks/oracles/<id>.npz``; the grader
  computes it for the inputs it drew; :meth:`Check.judge` merges them over the
  outputs of ``run``, so a kernel that forges its "finite differences" gains
  nothing;
* a hidden check's ``expected(inputs, *reference functions)`` computes its
  **expected outputs** in place of ``run`` when the reference has no function for
  ``run`` to call (:meth:`Check.expected_outputs`); it is never stored.

In a notebook a check is called with the student's functions, in the visible
part of a cell or inside its hidden block alike::

    checks.rnn_step_forward_shapes(rnn_step_forward)

* while grading (``rnn_course.grading``): only ``run`` happens in the kernel, on
  the inputs the grader drew for this submission and delivered for the graded
  cell that calls the check (visible checks too: their fixed inputs are public,
  so a kernel could recognise them and replay known answers); the outputs go
  to the grader, which judges them in its own process, a visible check's
  oracle computed there on the reference for those inputs.  The functions the
  checked one is built on are stand-ins for the duration of ``run``
  (:meth:`Check.graded_run`, :mod:`rnn_course.standins`), and a failed check
  that compares several outputs still earns the share of the right ones
  (:class:`Verdict`'s ``fraction``); a hidden check's draw holds one case of each of its
  regimes (:func:`regimes`).  A check called
  in grading mode outside its own graded cell (the quick visible line at the
  top of a hidden test cell) runs on its fixed inputs, the grader ignores what
  it submits, and an error there (it has no stand-ins: an unfinished helper) is
  swallowed, so that it never fails that other cell;
* interactively: a visible check judges right away and raises
  ``AssertionError`` with its message; a hidden check draws fresh inputs and
  judges against the reference where the reference is importable (the
  instructor's source notebook), and otherwise says that it runs only when the
  notebook is graded.

A check's ``id`` is the ``grade_id`` of the cell that calls it.  Each
assignment's checks, visible and hidden, live together in
``rnn_course/checks/<assignment>.py``; :func:`registry` collects them for a
list of assignments (the course's, read by the grader from
``nbgrader_config.py``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rnn_course import grading, standins
from rnn_course.contract import checked_function, gradient_names
from rnn_course.gradcheck import (
    EXACT_RTOL,
    HIDDEN_ATOL,
    HIDDEN_RTOL,
    VALUE_ATOL,
    VALUE_RTOL,
    OutputShapeError,
    gradient_matches,
    gradient_problem,
    numeric_gradient,
)

VISIBLE_SEED = 20261121  # visible checks use fixed inputs: students may rerun them
ORACLE_DIR = Path(__file__).parent / "oracles"
REFERENCE_MODULE = "autograder.reference"  # grader side; importable in the instructor's setup


class OracleMissing(RuntimeError):
    """A check's stored oracle values are missing (``python -m autograder release``)."""


class NoChecksModule(LookupError):
    """An assignment of the course has no ``rnn_course.checks.<assignment>`` module."""


@functools.lru_cache(maxsize=None)
def _stored_oracle(check_id: str) -> tuple:
    path = ORACLE_DIR / f"{check_id}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return tuple((k, np.array(data[k])) for k in data.files)
    except OSError:
        raise OracleMissing(
            f"{check_id}: the stored oracle values {path.name} are missing; "
            "rebuild them with `python -m autograder release`") from None


def parameter_names(fn: Callable) -> list[str]:
    """The names of ``fn``'s parameters after the first (the inputs)."""
    return list(inspect.signature(fn).parameters)[1:]


def functions_named(fn: Callable, namespace) -> list:
    """The attributes of ``namespace`` named like ``fn``'s parameters after the first
    (None where it has none): the functions ``fn`` is called with."""
    return [getattr(namespace, name, None) for name in parameter_names(fn)]


def fresh_copies(inputs: dict) -> dict:
    """Copies of every input (so that the code being run cannot change the originals):
    arrays, dicts of arrays and numbers (see :func:`rnn_course.grading.encode_inputs`)."""
    def copy(value):
        if isinstance(value, dict):
            return {k: np.array(v, copy=True) for k, v in value.items()}
        if isinstance(value, (bool, int, float)) and not isinstance(value, np.ndarray):
            return value
        return np.array(value, copy=True)
    return {k: copy(v) for k, v in inputs.items()}


@dataclass(frozen=True)
class Check:
    """One check, visible or hidden; its ``id`` is the grade_id of the cell that calls it."""

    id: str
    make_inputs: Callable[[np.random.Generator], dict]
    run: Callable[..., dict]
    verdict: "Callable[[dict, dict], str | None] | None" = None
    outputs: tuple = ()
    """The names of what ``run`` returns (required for a hidden check)."""
    hidden: bool = False
    oracle: "Callable[..., dict] | None" = None
    """A visible check's oracle, whose values are stored at release (module docstring)."""
    doc: str = ""
    seed: int = VISIBLE_SEED
    """Seed of a visible check's fixed inputs (a hidden check's comes from the grader)."""
    expected: "Callable[..., dict] | None" = None
    """A hidden check's computation of its expected outputs, when not ``run``'s."""

    def __post_init__(self):
        grading.check_id(self.id)
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.hidden and not self.outputs:
            raise ValueError(f"{self.id}: a hidden check declares its outputs")
        if self.hidden and self.verdict is not None:
            raise ValueError(f"{self.id}: a hidden check's verdict is the comparison with "
                             "the reference (it never shows inputs or expected values)")
        if not self.hidden and self.verdict is None:
            raise ValueError(f"{self.id}: a visible check needs a verdict")
        if self.hidden and self.oracle is not None or not self.hidden and self.expected:
            raise ValueError(f"{self.id}: a visible check may have an oracle, a hidden check "
                             "an expected computation, not the other way round")

    @property
    def kind(self) -> str:
        """"hidden" or "visible"."""
        return "hidden" if self.hidden else "visible"

    @property
    def functions(self) -> list[str]:
        """The names of the functions the check is called with (``run``'s parameters)."""
        return parameter_names(self.run)

    # ---- inputs ---------------------------------------------------------- #
    def inputs(self) -> dict:
        """A visible check's inputs, rebuilt from its fixed seed (fresh copies every call)."""
        return self.make_inputs(np.random.default_rng(self.seed))

    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Inputs drawn from ``rng``, as plain arrays (they cross the channel).

        The grader draws every check's inputs this way, from a per-submission
        seed: a hidden check's always, a visible check's while grading (the
        same structure as its fixed inputs, values the student cannot know).
        """
        return grading.decode_inputs(grading.encode_inputs(self.make_inputs(rng)))

    # ---- judging --------------------------------------------------------- #
    def oracle_values(self) -> dict:
        """A visible check's stored ``oracle`` outputs (fresh copies), or {} without one."""
        if self.oracle is None:
            return {}
        return {k: v.copy() for k, v in _stored_oracle(self.id)}

    def computed_oracle(self, inputs: dict, reference) -> dict:
        """A visible check's ``oracle`` computed on ``reference`` for ``inputs`` ({} without one).

        What the grader uses for inputs it drew (the stored values are for the
        fixed inputs only).
        """
        if self.oracle is None:
            return {}
        return grading.as_plain_arrays(
            self.oracle(fresh_copies(inputs), *functions_named(self.oracle, reference)))

    def expected_outputs(self, inputs: dict, reference) -> dict[str, np.ndarray]:
        """A hidden check's declared outputs computed by the ``reference`` on ``inputs``
        (``expected``, else ``run``)."""
        compute = self.expected or self.run
        values = grading.as_plain_arrays(
            compute(fresh_copies(inputs), *functions_named(compute, reference)))
        missing = [name for name in self.outputs if name not in values]
        if missing:
            raise RuntimeError(f"{self.id}: the reference gave no {', '.join(missing)}")
        return {name: values[name] for name in self.outputs}

    def judge(self, outputs: dict, inputs: "dict | None" = None,
              reference=None) -> "Verdict | None":
        """Judge plain-array ``outputs``: None when right, else a :class:`Verdict`.

        A visible check merges its oracle values over ``outputs`` (only
        ``run``'s own results come from the code being judged): without
        ``inputs``, on its fixed inputs with the stored oracle values; with the
        ``inputs`` the grader drew, with the oracle computed on ``reference``
        for them.  A hidden check needs the ``inputs`` the outputs were
        computed from and the ``reference`` module.
        """
        if self.hidden:
            if inputs is None or reference is None:
                raise ValueError(f"{self.id}: a hidden check is judged on its inputs, "
                                 "against the reference")
            return outputs_problem(self.outputs, outputs,
                                   self.expected_outputs(inputs, reference))
        if inputs is None:
            inputs, oracle = self.inputs(), self.oracle_values()
        else:
            if self.oracle is not None and reference is None:
                raise ValueError(f"{self.id}: drawn inputs need the reference for the oracle")
            inputs = fresh_copies(inputs)
            oracle = self.computed_oracle(inputs, reference)
        try:
            return Verdict.of(self.verdict(inputs, {**outputs, **oracle}))
        except KeyError as exc:
            return Verdict(f"missing output {exc}")

    def graded_run(self, inputs: dict, *functions) -> dict[str, np.ndarray]:
        """``run`` as while grading: on the delivered ``inputs``, with the stand-ins of
        their ``standins`` tables in place of the functions the checked one is built on
        (:mod:`rnn_course.standins`); the plain arrays to submit."""
        inputs = dict(inputs)
        flat = inputs.pop(standins.INPUT_NAME, None)
        tables = standins.Tables(flat) if isinstance(flat, dict) else None
        with standins.installed(tables, self.functions, list(functions),
                                checked_function(self.id)) as passed:
            return grading.as_plain_arrays(self.run(inputs, *passed))

    # ---- in a notebook --------------------------------------------------- #
    def __call__(self, *functions):
        """Run the check on the student's functions (see the module docstring): while
        grading, run it and submit the arrays; otherwise judge them here."""
        if grading.grading_dir() is not None:
            inputs = grading.delivered(self.id)  # None outside its own graded cell
            if inputs is None and self.hidden:
                raise RuntimeError(f"{self.id}: a hidden check runs only in its own "
                                   "graded cell")
            if inputs is not None:
                grading.submit(self.id, **self.graded_run(inputs, *functions))
                return
            try:  # the quick visible line at the top of another graded cell, on fixed
                grading.submit(self.id, **self.graded_run(self.inputs(), *functions))
            except Exception:  # noqa: BLE001 - inputs and without stand-ins: the grader
                pass  # ignores it, and an unfinished helper must not fail that other cell
            return
        inputs = reference = None  # a visible check: fixed inputs, stored oracle values
        if self.hidden:  # fresh inputs, against the reference where it is importable
            reference = _instructor_reference()
            if reference is None:
                print(f"{self.id}: a hidden check; it runs only when the notebook is graded")
                return
            inputs = self.draw(np.random.default_rng())
        outputs = self.run(self.inputs() if inputs is None else fresh_copies(inputs), *functions)
        verdict = self.judge(grading.as_plain_arrays(outputs), inputs, reference)
        if verdict is not None:
            raise AssertionError(f"{self.id}: {verdict.message}")
        print(f"{self.id}: passed" + (f" ({self.doc})" if self.doc else ""))


def _instructor_reference():
    """The reference module where it is importable (an instructor's setup), else None."""
    try:
        return importlib.import_module(REFERENCE_MODULE)
    except ImportError:
        return None


EDGE, GENERIC = "edge", "generic"
"""The two size regimes of a hidden check: every size 1, and distinct sizes of at least 2."""

CASE_WORDS: dict[str, str] = {
    GENERIC: "random sizes, all different and at least 2",
    EDGE: "every size 1: one sequence, one step, one input, one unit",
}
"""A hidden check's cases and parts of its outputs (``<tag>_<output>``), in a student's
words: what the messages say instead of the tag.  Each checks module adds its own
(:func:`case_words`)."""

EDGE_CASES = {EDGE}
"""The cases of a hidden check that are an edge regime (sizes 1, an argument modified in
place, ...): a bug that shows only there costs only their share (:func:`per_output`)."""


def case_words(edge=(), **words: str) -> None:
    """Add the plain-language words of a checks module's own cases (tag -> words), and
    which of them are edge cases (:data:`EDGE_CASES`)."""
    CASE_WORDS.update(words)
    EDGE_CASES.update(edge)


def _tags(name: str) -> tuple[list, str]:
    tags, rest = [], name
    while True:
        tag = next((t for t in sorted(CASE_WORDS, key=len, reverse=True)
                    if rest.startswith(f"{t}_") or rest.startswith(t) and t.endswith("_")),
                   None)
        if tag is None:
            return tags, rest
        tags.append(tag)
        rest = rest[len(tag):].lstrip("_")


def _split_cases(name: str) -> tuple[list, str]:
    tags, rest = _tags(name)
    return [CASE_WORDS[t] for t in tags], rest


def on_general_inputs(name: str) -> bool:
    """Whether output ``name`` (``<tag>_<output>`` or plain) is computed from general
    inputs, not from an edge case (:data:`EDGE_CASES`)."""
    return not set(_tags(name)[0]) & EDGE_CASES


def bare_output(name: str) -> str:
    """A hidden check's output ``<tag>_<output>`` without its cases (``dx``)."""
    return _split_cases(name)[1]


def plain_output(name: str) -> str:
    """A hidden check's output ``<tag>_<output>`` said as a student would read it:
    ``dx (on random sizes ...)``, ``grads['Wx'] after the call (...)``."""
    cases, rest = _split_cases(name)
    return f"{rest} ({'; '.join(cases)})" if cases else rest


def regime_sizes(rng: np.random.Generator, regime: str, names: str = "NTDH") -> dict:
    """Sizes for a regime: all 1 (``EDGE``), or distinct values in 2..7 (``GENERIC``: a
    swapped or transposed axis cannot go unnoticed)."""
    if regime == EDGE:
        return {n: 1 for n in names}
    values = rng.choice(np.arange(2, 8), size=len(names), replace=False)
    return {n: int(v) for n, v in zip(names, values, strict=True)}


def _over_regimes(tags, fn):
    """``fn(inputs, *functions)`` applied to each regime's inputs (``<tag>_<name>``), its
    outputs prefixed the same way.  A regime whose call raises gives no outputs (they
    fail as missing), unless every regime raises."""
    @functools.wraps(fn)
    def over(inputs, *functions):
        out, errors = {}, []
        for tag in tags:
            case = {k[len(tag) + 1:]: v for k, v in inputs.items() if k.startswith(f"{tag}_")}
            try:
                result = fn(case, *functions)
            except Exception as exc:  # noqa: BLE001 - the others still count
                errors.append(exc)
                continue
            out.update({f"{tag}_{k}": v for k, v in result.items()})
        if errors and not out:
            raise errors[-1]
        return out
    return over


def regimes(draws: dict):
    """``make_inputs`` of a check over several regimes (tag -> draw): each regime's inputs,
    prefixed ``<tag>_``, so that every draw covers every regime."""
    def make(rng):
        out = {}
        for tag, draw in draws.items():
            out.update({f"{tag}_{k}": v for k, v in draw(rng).items()})
        return out
    make.tags = tuple(draws)
    return make


def check(id: str, make_inputs, doc: str = "", seed: int = VISIBLE_SEED, oracle=None,
          hidden: bool = False, outputs=(), expected=None):
    """Decorator form, on ``run``.

    A visible check: ``@check(id, make_inputs)`` on ``run``, then
    ``@<run>.verdict`` on the verdict, so each check reads top to bottom:
    inputs, run, verdict.  A hidden check: ``@check(id, draw, hidden=True,
    outputs=(...))`` on ``run`` gives the finished :class:`Check` at once; with
    ``draw`` a dict of regimes (tag -> draw), every submission's inputs hold one
    case of each, and each output of each regime (``<tag>_<output>``) is worth the
    same share; ``expected`` computes its expected outputs when ``run`` cannot.
    """
    if isinstance(make_inputs, dict):
        make_inputs = regimes(make_inputs)
    tags = getattr(make_inputs, "tags", None)

    def wrap(run):
        nonlocal oracle, expected, outputs
        if tags:
            run = _over_regimes(tags, run)
            oracle, expected = (_over_regimes(tags, f) if f is not None else None
                                for f in (oracle, expected))
            outputs = tuple(f"{t}_{o}" for t in tags for o in outputs)
        if hidden:
            return Check(id=id, make_inputs=make_inputs, run=run, outputs=outputs,
                         hidden=True, expected=expected, doc=doc)

        class _Builder:
            def verdict(self, fn) -> Check:
                return Check(id=id, make_inputs=make_inputs, run=run, verdict=fn,
                             outputs=outputs, oracle=oracle, doc=doc, seed=seed)

        return _Builder()

    return wrap


# --------------------------------------------------------------------------- #
# Registry: the checks of a list of assignments
# --------------------------------------------------------------------------- #
def module_name(assignment: str) -> str:
    """The module that holds ``assignment``'s checks."""
    return f"{__name__}.{assignment}"


def assignment_checks(assignment: str) -> dict[str, Check]:
    """The checks (visible and hidden) defined in ``rnn_course.checks.<assignment>``, by id.

    Raises :class:`NoChecksModule` when there is no such module.
    """
    name = module_name(assignment)
    if not isinstance(assignment, str) or not assignment.isidentifier():
        raise NoChecksModule(f"assignment {assignment!r} has no checks module")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise NoChecksModule(f"assignment {assignment!r} has no checks module "
                                 f"{name} (rnn_course/checks/{assignment}.py)") from None
        raise
    found: dict[str, Check] = {}
    for value in vars(module).values():
        if isinstance(value, Check):
            if value.id in found and found[value.id] is not value:
                raise RuntimeError(f"{name}: two checks named {value.id!r}")
            found[value.id] = value
    return found


def registry(assignments) -> dict[str, Check]:
    """Every check of the given assignments, by id (ids are unique course-wide).

    ``assignments`` is the course's list (``Course(...).assignments``, read
    from ``nbgrader_config.py`` by the grader).
    """
    if isinstance(assignments, str):
        raise TypeError("registry() takes a list of assignments, not one name")
    found: dict[str, Check] = {}
    for assignment in assignments:
        for check_id, value in assignment_checks(assignment).items():
            if check_id in found and found[check_id] is not value:
                raise RuntimeError(f"two checks named {check_id!r} ({module_name(assignment)})")
            found[check_id] = value
    return found


# --------------------------------------------------------------------------- #
# Kernel-side helpers (used in ``run``)
# --------------------------------------------------------------------------- #
def copies(inputs: dict, names) -> dict:
    """Fresh float64 copies of the named inputs (the student's code may write into them)."""
    return {k: np.array(inputs[k], dtype=np.float64, copy=True) for k in names}


def modified_flags(before: dict, after: dict) -> np.ndarray:
    """0/1 per argument (in ``before``'s order): 1 where the call changed the array."""
    return np.array([0 if np.array_equal(before[k], after[k], equal_nan=True) else 1
                     for k in before], dtype=np.int64)


_SHAPE_ERRORS = ("matmul", "not aligned", "could not be broadcast", "shapes")


def call(fn, fn_name: str, *args, **kwargs):
    """``fn(*args, **kwargs)``; a numpy shape mismatch raised inside a backward pass becomes
    a ValueError that starts with its likely cause (a missing or extra transpose)."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        text = " ".join(str(exc).split())
        if not any(word in text for word in _SHAPE_ERRORS):
            raise
        raise ValueError(
            f"{fn_name}: the shapes of a product do not fit, a transpose is missing or extra "
            f"(for Y = X @ W: dX = dY @ W.T, dW = X.T @ dY); numpy said: {text[:120]}"
        ) from None


def unpack(result, names, fn_name: str) -> tuple:
    """``result`` as a tuple of ``len(names)`` items, or a readable TypeError."""
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = (f"a {type(result).__name__} of {len(result)} items"
               if isinstance(result, (tuple, list)) else f"a {type(result).__name__}")
        raise TypeError(f"{fn_name} must return a tuple ({', '.join(names)}), got {got}")
    return tuple(result)


# --------------------------------------------------------------------------- #
# Verdict helpers: shapes first, then values, then gradients (rnn_course.gradcheck)
# --------------------------------------------------------------------------- #
def shape_problem(name: str, arr: np.ndarray, expected: tuple) -> "str | None":
    """A message when ``arr`` is not of shape ``expected``, else None."""
    if np.shape(arr) != tuple(expected):
        return f"{name} has shape {np.shape(arr)}, expected {tuple(expected)}"
    return None


def close(got, want, rtol: float = VALUE_RTOL, atol: float = VALUE_ATOL) -> bool:
    """True when ``got`` has ``want``'s shape and ``np.allclose`` values."""
    got = np.asarray(got)
    return got.shape == np.shape(want) and bool(np.allclose(got, want, rtol=rtol, atol=atol))


def exactly_close(got, want) -> bool:
    """:func:`close` for a closed form of a few operations (relative tolerance only)."""
    return close(got, want, rtol=EXACT_RTOL, atol=0.0)


def value_problem(name: str, got: np.ndarray, want: np.ndarray, hint: str = "",
                  rtol: float = VALUE_RTOL, atol: float = VALUE_ATOL) -> "str | None":
    """A message when ``got`` differs from ``want`` (shape, finiteness, then values)."""
    problem = shape_problem(name, got, want.shape)
    if problem:
        return problem
    if not np.all(np.isfinite(got)):
        return f"{name} contains NaN or inf"
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        err = float(np.max(np.abs(got - want)))
        return f"{name} is wrong (max abs error {err:.3g})" + (f": {hint}" if hint else "")
    return None


def first_wrong_step(got: np.ndarray, want: np.ndarray) -> tuple:
    """States h (N, T, H) against a correct forward's ``want``: (a message, None) when their
    shape is wrong or they are not finite, (None, None) when right, else (None, t), t the
    first step where they differ."""
    problem = shape_problem("h", got, want.shape)
    if problem or not np.all(np.isfinite(got)):
        return problem or "h contains NaN or inf", None
    if close(got, want):
        return None, None
    return None, next(t for t in range(want.shape[1]) if not close(got[:, t], want[:, t]))


def upstream_modified(fn_name: str, upstream: dict, out: dict) -> "str | None":
    """A message when a backward pass changed one of its upstream gradients (``upstream``:
    name -> the original array) in place, judged from ``out``'s ``modified_<name>`` flags
    (kernel side: :func:`upstream_flags`)."""
    changed = [n for n in upstream if int(np.ravel(out.get(f"modified_{n}", [0]))[0])]
    if changed:
        return (f"{fn_name} modified {', '.join(changed)} in place; compute into a new array "
                f"(e.g. d = {changed[0]} + ..., not {changed[0]} += ...): the caller still "
                "needs it")
    return None


def upstream_flags(before: dict, after: dict) -> dict:
    """``modified_<name>``: 1 where the call changed the upstream gradient ``name``."""
    return {f"modified_{n}": np.array([int(not np.array_equal(before[n], after[n],
                                                                equal_nan=True))])
            for n in before}


def modified_problem(out: dict, key: str, names, fn_name: str) -> "str | None":
    """A message if the ``key`` flags of ``run`` say that an argument was modified in place."""
    flags = np.asarray(out[key]).ravel()
    changed = [n for n, f in zip(names, flags, strict=False) if f]
    if changed:
        return (f"{fn_name} modified its argument(s) {', '.join(changed)} in place; compute "
                "into new arrays (e.g. a = x @ Wx, then a = a + ..., not x += ...)")
    return None


def wrong_forward(function: str, got, want) -> "str | None":
    """A message when a forward pass's outputs ``got`` (reported by the kernel) differ
    from a correct forward's ``want`` (stored by an oracle), else None.

    A backward pass works from the cache of the student's own forward pass, so a
    gradient check that fails may be the forward's fault.  This only chooses the
    message: the verdict never rests on numbers the kernel reports about itself.
    """
    if close(np.asarray(got, dtype=np.float64), want):
        return None
    return (f"your {function} gives wrong outputs for these inputs, and your backward pass "
            f"works from its cache: fix {function} first (see its checks), then run this "
            "check again")


@dataclass(frozen=True)
class Verdict:
    """A failed check: its ``message`` (it names the likely bug) and the ``fraction`` of the
    check's points it still earns (the share of its right outputs, when it compares
    several; 0 otherwise).  A check that passed has no verdict (None)."""

    message: str
    fraction: float = 0.0
    general: bool = False
    """A hidden check's verdict only: the function is wrong on general inputs, not only
    in an edge case (:func:`per_output`)."""

    def __post_init__(self):
        object.__setattr__(self, "message", str(self.message))
        object.__setattr__(self, "fraction", float(min(max(self.fraction, 0.0), 1.0)))
        object.__setattr__(self, "general", bool(self.general))

    def __str__(self) -> str:
        return self.message

    @classmethod
    def of(cls, result: "Verdict | str | None") -> "Verdict | None":
        """What a verdict function returned (None, a message or a Verdict) as a Verdict."""
        return result if result is None or isinstance(result, cls) else cls(result)


def per_output(problems: dict, suffix: str = "") -> "Verdict | None":
    """One verdict from the problems of several outputs (name -> message or None): None
    when all are right, else the first problem (and the names of the other wrong
    outputs) as a :class:`Verdict`.

    It earns the share of the right outputs, each worth the same; it is ``general``
    when an output computed from general inputs is wrong (:func:`on_general_inputs`),
    not only one of an edge case (sizes 1, an argument modified in place): then
    :func:`capped_by_function` leaves the function at most half of its points.
    """
    wrong = [name for name, m in problems.items() if m]
    if not wrong:
        return None
    general = any(on_general_inputs(n) for n in wrong)
    message = problems[wrong[0]] + suffix
    first = bare_output(wrong[0])
    others = [n for n in dict.fromkeys(bare_output(n) for n in wrong[1:]) if n != first]
    if len(others) < len(wrong) - 1 and any(bare_output(n) == first for n in wrong[1:]):
        others.append(f"{first} in another case")
    if others:
        message += f" (also wrong: {', '.join(others)})"
    return Verdict(message, 1.0 - len(wrong) / len(problems), general=general)


MAX_KEPT_WHEN_WRONG = 0.5
"""The most of its points a function keeps when its hidden check finds it wrong on general
inputs (:func:`capped_by_function`)."""


def function_of(check_id: str, functions) -> "str | None":
    """Which of ``functions`` (names) check ``check_id`` is about: the one sharing the most
    leading words with it, at least two (``gradient_norms_hidden`` is about
    ``gradient_norms_through_time``) or all of a one-word name's (``affine_values`` is
    about ``affine``), else None."""
    words = check_id.split("_")

    def shared(name: str) -> int:
        n = 0
        for a, b in zip(words, name.split("_"), strict=False):
            if a != b:
                break
            n += 1
        return n

    best = max(functions, key=lambda f: (shared(f), -len(f)), default=None)
    if best is None or shared(best) < min(2, len(best.split("_"))):
        return None
    return best


def checked_functions(registered: dict) -> list[str]:
    """The functions that the checks ``registered`` (id -> Check) are called with, sorted:
    what :func:`function_of` chooses from."""
    return sorted({f for c in registered.values() for f in c.functions})


def capped_by_function(verdicts: dict, points: dict, registered: dict) -> dict:
    """``verdicts`` (check id -> Verdict or None) with the shares of each function's failed
    checks lowered, so that a function whose hidden check found it wrong on general inputs
    (a ``general`` verdict) keeps at most :data:`MAX_KEPT_WHEN_WRONG` of its points
    (``points``: check id -> points), whichever output is wrong: a missing transpose in
    ``dprev_h`` alone fails the course's BPTT.  A check that passed keeps its points; a
    bug that shows only in an edge case keeps costing that case's share only.
    ``registered`` (check id -> Check) names the functions the checks are about."""
    functions = checked_functions(registered)
    by_function: dict = {}
    for check_id in verdicts:
        by_function.setdefault(function_of(check_id, functions), []).append(check_id)
    capped = dict(verdicts)
    for function, ids in by_function.items():
        if function is None or not any(
                verdicts[i] is not None and verdicts[i].general for i in ids):
            continue
        allowed = MAX_KEPT_WHEN_WRONG * sum(points[i] for i in ids)
        passed = sum(points[i] for i in ids if verdicts[i] is None)
        partial = sum(points[i] * verdicts[i].fraction for i in ids if verdicts[i] is not None)
        if passed + partial <= allowed or partial == 0:
            continue
        scale = max(allowed - passed, 0.0) / partial
        for i in ids:
            if verdicts[i] is not None:
                capped[i] = Verdict(verdicts[i].message, verdicts[i].fraction * scale,
                                    verdicts[i].general)
    return capped


def keep_share(message: "str | None", verdict: "Verdict | None") -> "Verdict | None":
    """``message`` (a better diagnosis) worth the share that ``verdict`` earns."""
    if message is None or verdict is None:
        return Verdict.of(message) if verdict is not None else None
    return Verdict(message, verdict.fraction)


def carry_problem(inputs: dict, outputs: dict, tol: float, carries: str) -> "str | None":
    """A sequence backward whose ``dx`` is right at the last step (where nothing is
    carried) and wrong before it misses what is carried back between steps (``carries``
    says what that is); None otherwise.  ``outputs`` holds the oracle's tables for x."""
    try:
        numeric = numeric_gradient(outputs, "x", inputs["dh"].ravel(), inputs["x"].shape)
    except (OutputShapeError, KeyError):
        return None
    got = np.asarray(outputs.get("dx", np.zeros(0)))
    if got.shape != numeric.shape or got.shape[1] < 2 or gradient_matches(got, numeric, tol):
        return None
    if not gradient_matches(got[:, -1], numeric[:, -1], tol):
        return None
    return ("dx[:, T-1] is right but earlier steps are not: something carried back from step "
            f"t + 1 is missing or wrong: {carries}")


def gradients_verdict(inputs: dict, outputs: dict, names, upstream, hints: dict,
                      tol: float) -> "Verdict | str | None":
    """Each analytic gradient ``d<name>`` of ``outputs`` against the finite differences of a
    correct forward (the oracle's tables in ``outputs``), each worth the same share
    (:func:`per_output`); a value problem gets ``hints[name]``."""
    problems = {}
    for name, grad in zip(names, gradient_names(names), strict=True):
        try:
            numeric = numeric_gradient(outputs, name, upstream, inputs[name].shape)
        except OutputShapeError:
            return ("the forward pass returned outputs of unexpected shapes "
                    "(see the shapes checks first)")
        got = outputs[grad]
        problem = gradient_problem(grad, got, numeric, tol)
        if problem and np.shape(got) == numeric.shape and np.all(np.isfinite(got)):
            problem += f": {hints[name]}"  # a value problem, not a shape or NaN one
        problems[grad] = problem
    return per_output(problems)


def _output_problem(name: str, got: dict, want) -> "str | None":
    w = np.asarray(want)
    said = plain_output(name)
    if name not in got:
        return f"no value for {said} was produced (an error on this case?)"
    g = np.asarray(got[name])
    if g.dtype.kind not in "fiub":
        return f"{said} is not a numeric array"
    if g.shape != w.shape:
        return f"{said} has shape {g.shape}, expected {w.shape}"
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        return f"{said} contains NaN or inf"
    if not np.allclose(g.astype(np.float64), w, rtol=HIDDEN_RTOL, atol=HIDDEN_ATOL):
        err = float(np.max(np.abs(g.astype(np.float64) - w)))
        return f"{said} differs from the expected values (max abs error {err:.3g})"
    return None


def outputs_problem(names, got: dict, want: dict) -> "Verdict | None":
    """A hidden check's verdict: None when every declared output matches, else a message.

    Each output is worth the same share of the check's points (:func:`per_output`).
    The message names the first wrong output and the kind of mismatch; it never
    shows the inputs or the expected values.
    """
    return per_output({name: _output_problem(name, got, want[name]) for name in names})
