"""The grader's side of the stand-ins (see :mod:`rnn_course.standins`): their tables.

For a check of function F (its id names it: :func:`rnn_course.contract.checked_function`),
the stand-ins are every other contract function the check's ``run`` is called
with (the forward pass whose cache a backward pass reads) and every helper
those functions and F call (:data:`rnn_course.contract.CALLS`).  The grader
runs the check's ``run`` on the drawn inputs with the reference, F composed
from its helpers the way the notebooks decompose it (:data:`COMPOSED`), and
records every call of a stand-in function: its array arguments and the
reference's values.  Those calls become the sealed table delivered with the
inputs; the kernel's stand-ins answer exactly those calls.
"""

from __future__ import annotations

import secrets
import types

import numpy as np

from autograder import reference
from rnn_course import standins
from rnn_course.checks import Check, fresh_copies
from rnn_course.contract import CALLS, CONTRACT, checked_function, helpers_of


# --------------------------------------------------------------------------- #
# The reference, composed as the notebooks decompose it (F calls its helpers by
# name through ``ns``), so that the recorded calls are those a correct F makes.
# --------------------------------------------------------------------------- #
def _rnn_forward(ns):
    def rnn_forward(x, h0, Wx, Wh, b):
        h = np.zeros(x.shape[:2] + h0.shape[1:])
        cache, state = [], h0
        for t in range(x.shape[1]):
            state, step_cache = ns.rnn_step_forward(x[:, t, :], state, Wx, Wh, b)
            h[:, t, :] = state
            cache.append(step_cache)
        return h, cache
    return rnn_forward


def _lstm_step_forward(ns):
    def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
        i, f, o, g = ns.lstm_gates(x @ Wx + prev_h @ Wh + b)
        next_c = f * prev_c + i * g
        tanh_c = np.tanh(next_c)
        return o * tanh_c, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
    return lstm_step_forward


def _gated_forward(step_name, with_c):
    def compose(ns):
        def forward(x, h0, Wx, Wh, b):
            step = getattr(ns, step_name)
            h = np.empty(x.shape[:2] + h0.shape[1:])
            state, caches = h0, []
            state_c = np.zeros_like(h0)
            for t in range(x.shape[1]):
                if with_c:
                    state, state_c, step_cache = step(x[:, t], state, state_c, Wx, Wh, b)
                else:
                    state, step_cache = step(x[:, t], state, Wx, Wh, b)
                h[:, t] = state
                caches.append(step_cache)
            return h, caches
        return forward
    return compose


def _gated_backward(step_name, with_c):
    def compose(ns):
        def backward(dh, cache):
            step = getattr(ns, step_name)
            N, T, H = dh.shape
            dx = dWx = dWh = db = None
            carry_h, carry_c = np.zeros((N, H)), np.zeros((N, H))
            for t in reversed(range(T)):
                if with_c:
                    dx_t, carry_h, carry_c, dWx_t, dWh_t, db_t = step(
                        dh[:, t] + carry_h, carry_c, cache[t])
                else:
                    dx_t, carry_h, dWx_t, dWh_t, db_t = step(dh[:, t] + carry_h, cache[t])
                if dx is None:
                    dx = np.empty((N, T, dx_t.shape[1]))
                    dWx, dWh, db = np.zeros_like(dWx_t), np.zeros_like(dWh_t), np.zeros_like(db_t)
                dx[:, t] = dx_t
                dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
            return dx, carry_h, dWx, dWh, db
        return backward
    return compose


COMPOSED = {
    "rnn_forward": _rnn_forward,
    "lstm_step_forward": _lstm_step_forward,
    "lstm_forward": _gated_forward("lstm_step_forward", with_c=True),
    "lstm_backward": _gated_backward("lstm_step_backward", with_c=True),
    "gru_forward": _gated_forward("gru_step_forward", with_c=False),
    "gru_backward": _gated_backward("gru_step_backward", with_c=False),
}
"""F -> (namespace -> F calling its helpers through the namespace), for F in CALLS."""
assert set(COMPOSED) == set(CALLS), "every function with helpers has a composed reference"


def standin_functions(check: Check) -> tuple[str, ...]:
    """The contract functions that stand-ins answer while ``check`` runs (never the one
    it is about); empty for a check about no contract function."""
    tested = checked_function(check.id)
    if tested is None:
        return ()
    passed = [n for n in check.functions if n in CONTRACT]
    names = [n for n in passed if n != tested]
    names += [n for n in helpers_of(passed) if n not in names and n != tested]
    return tuple(names)


def _recording_namespace(names, calls: dict):
    """A namespace of the reference, composed where F has helpers; the functions in
    ``names`` record their calls (arguments, values) into ``calls``."""
    ns = types.SimpleNamespace()

    def recorder(name, fn):
        def record(*args, **kwargs):
            result = fn(*args, **kwargs)
            arrays = standins.key_arrays(name, args, kwargs)
            values = result
            if "cache" in CONTRACT[name][1]:  # the outputs, then the arrays of a right cache
                values = (*result[:-1], *standins.cache_arrays(result[-1]))
            if arrays is not None:
                calls.setdefault(name, []).append((arrays, tuple(values)))
            return result
        return record

    for name in CONTRACT:
        fn = COMPOSED[name](ns) if name in COMPOSED else getattr(reference, name)
        setattr(ns, name, recorder(name, fn) if name in names else fn)
    return ns


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(
        np.shape(x) == np.shape(y) and np.array_equal(x, y) for x, y in zip(a, b, strict=False))


def tables_for(check: Check, inputs: dict, salt: "bytes | None" = None) -> dict:
    """The ``standins`` input of ``check`` for ``inputs`` (flat arrays), or {} without any."""
    names = standin_functions(check)
    if not names:
        return {}
    calls: dict[str, list] = {}
    ns = _recording_namespace(names, calls)
    try:
        check.run(fresh_copies(inputs), *(getattr(ns, n, None) for n in check.functions))
    except Exception:  # noqa: BLE001 - the reference on odd inputs: no stand-ins, no crash
        return {}
    salt = secrets.token_bytes(16) if salt is None else salt
    tables: dict[str, list] = {}
    for name, recorded in calls.items():
        seen: dict[bytes, tuple] = {}
        ambiguous = set()
        for arrays, values in recorded:
            key = standins.digest(salt, name, arrays)
            if key in seen and not _same(seen[key][1], values):
                ambiguous.add(key)  # one call, two answers (another cache): answer neither
            seen.setdefault(key, (arrays, values))
        tables[name] = [standins.seal(salt, name, arrays, values)
                        for key, (arrays, values) in seen.items() if key not in ambiguous]
    return standins.flatten(salt, tables) if tables else {}
