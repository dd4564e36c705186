"""Stand-ins: correct helpers, supplied by the grader as data, while a check runs.

A check of function F (``rnn_forward``, ``lstm_step_backward``, ...) also runs
the functions F calls (:data:`rnn_course.contract.CALLS`: ``rnn_forward`` calls
``rnn_step_forward``, ``lstm_step_forward`` calls ``lstm_gates``, ...) and the
forward pass whose cache a backward pass reads.  So that a bug in one of those
costs its own points only, while grading each of them is replaced, for the
duration of the check's ``run``, by a **stand-in**: a lookup table of the
values the *reference* returns for exactly the calls a correct F makes on the
check's inputs.  The grader computes the table (:mod:`autograder.protocol.standins`)
and delivers it with the inputs; no reference code enters the kernel.

A table entry answers one call, identified by the exact bytes of its array
arguments (a cache argument is not part of the key).  Its values are encrypted
with a key derived from those same bytes (SHAKE-256 of a per-cell salt and the
arguments): reading the table reveals nothing; only presenting the very
arguments a correct F would pass decrypts the answer for that call, and
presenting them all in turn *is* running a correct F.  A call the table does
not answer (other arguments, another summation order) goes to the student's
own function, as without stand-ins.  A forward stand-in still calls the
student's function for its ``cache`` (the cache's layout is the student's),
and replaces, inside that cache, every array equal to one of the student's
returned values by the correct value (a backward pass reads the forward's
outputs from there).  When the student's forward is wrong for that call, the
rest of its cache is wrong too (a GRU's candidate n with the reset gate after
the product): each cached array that no correct value matches is replaced by
the correct cache's array of its shape nearest to it (the table also carries the
arrays of the reference's cache), so that a backward pass is judged on a correct
forward's cache and a forward's bug costs the forward's points only.  A forward
that raises (not written yet) has no cache: the stand-in gives the reference's
cache arrays, in the reference's layout (for a step, the notebook's too).

The stand-ins only ever feed the student's code; what is judged is what the
checked function itself returns, in the grader's process.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np

from rnn_course.contract import CONTRACT

INPUT_NAME = "standins"
"""The name, among a check's delivered inputs, of its stand-in tables (a dict of arrays)."""
_SALT = "salt"
_DIGEST_BYTES = 32


def key_arrays(function: str, args: tuple, kwargs: dict) -> "list[np.ndarray] | None":
    """The array arguments of a call of contract ``function`` that identify it (the
    cache is left out), as contiguous float64 arrays; None when they cannot be bound."""
    names = CONTRACT[function][0]
    if len(args) > len(names) or any(k not in names for k in kwargs):
        return None
    bound = dict(zip(names, args, strict=False))
    for k, v in kwargs.items():
        if k in bound:
            return None
        bound[k] = v
    if set(bound) != set(names):
        return None
    try:
        return [np.ascontiguousarray(np.asarray(bound[n], dtype=np.float64))
                for n in names if n != "cache"]
    except (TypeError, ValueError):
        return None


def _material(salt: bytes, function: str, arrays) -> bytes:
    parts = [salt, function.encode()]
    for a in arrays:
        parts.append(repr(a.shape).encode())
        parts.append(a.tobytes())
    return b"\0".join(parts)


def digest(salt: bytes, function: str, arrays) -> bytes:
    """The key of a table entry: SHA-256 of the salt, the function and the arguments."""
    return hashlib.sha256(b"key\0" + _material(salt, function, arrays)).digest()


def _stream(salt: bytes, function: str, arrays, size: int) -> np.ndarray:
    material = b"values\0" + _material(salt, function, arrays)
    return np.frombuffer(hashlib.shake_256(material).digest(size), dtype=np.uint8)


def seal(salt: bytes, function: str, arrays, values) -> dict[str, np.ndarray]:
    """One table entry (``k`` key, ``s`` shapes, ``v`` encrypted values), grader side."""
    values = [np.ascontiguousarray(np.asarray(v, dtype=np.float64)) for v in values]
    shapes = [len(values)]
    for v in values:
        shapes += [v.ndim, *v.shape]
    plain = np.frombuffer(b"".join(v.tobytes() for v in values), dtype=np.uint8)
    sealed = plain ^ _stream(salt, function, arrays, plain.size)
    return {"k": np.frombuffer(digest(salt, function, arrays), dtype=np.uint8).copy(),
            "s": np.array(shapes, dtype=np.int64), "v": sealed}


def _unseal(salt: bytes, function: str, arrays, entry: dict) -> tuple:
    plain = (np.asarray(entry["v"], dtype=np.uint8)
             ^ _stream(salt, function, arrays, int(np.size(entry["v"]))))
    data = plain.tobytes()
    shapes = [int(s) for s in np.asarray(entry["s"]).ravel()]
    values, pos, offset = [], 1, 0
    for _ in range(shapes[0]):
        ndim = shapes[pos]
        shape = tuple(shapes[pos + 1:pos + 1 + ndim])
        pos += 1 + ndim
        size = int(np.prod(shape, dtype=np.int64)) * 8
        values.append(np.frombuffer(data[offset:offset + size], dtype=np.float64)
                      .reshape(shape).copy())
        offset += size
    return tuple(values)


def flatten(salt: bytes, tables: dict[str, list[dict]]) -> dict[str, np.ndarray]:
    """``{function: [entry, ...]}`` as the flat arrays of the ``standins`` input."""
    flat = {_SALT: np.frombuffer(salt, dtype=np.uint8).copy()}
    for function, entries in tables.items():
        for i, entry in enumerate(entries):
            for part, value in entry.items():
                flat[f"{function}.{i}.{part}"] = value
    return flat


class Tables:
    """The delivered stand-in tables of one check (kernel side)."""

    def __init__(self, flat: dict):
        self.salt = np.asarray(flat.get(_SALT, np.zeros(0)), dtype=np.uint8).tobytes()
        self.entries: dict[str, dict[bytes, dict]] = {}
        groups: dict[tuple, dict] = {}
        for name, value in flat.items():
            parts = name.split(".")
            if len(parts) == 3 and parts[0] in CONTRACT:
                groups.setdefault((parts[0], parts[1]), {})[parts[2]] = value
        for (function, _), entry in groups.items():
            if {"k", "s", "v"} <= set(entry):
                key = np.asarray(entry["k"], dtype=np.uint8).tobytes()
                self.entries.setdefault(function, {})[key] = entry

    @property
    def functions(self) -> set[str]:
        return set(self.entries)

    def lookup(self, function: str, args: tuple, kwargs: dict) -> "tuple | None":
        """The correct values for this call, or None when the table does not answer it."""
        table = self.entries.get(function)
        if not table:
            return None
        arrays = key_arrays(function, args, kwargs)
        if arrays is None:
            return None
        entry = table.get(digest(self.salt, function, arrays))
        return None if entry is None else _unseal(self.salt, function, arrays, entry)


_DEPTH = 4  # how deep a cache's tuples, lists and dicts are searched for arrays
_SAME = dict(rtol=1e-9, atol=1e-12)  # one value, computed in another order


def cache_arrays(cache, depth: int = 0) -> list:
    """The float arrays of a cache (tuples, lists and dicts searched in order)."""
    if depth > _DEPTH:
        return []
    if isinstance(cache, np.ndarray):
        return [cache] if cache.dtype.kind == "f" else []
    if isinstance(cache, (tuple, list)):
        return [a for c in cache for a in cache_arrays(c, depth + 1)]
    if isinstance(cache, dict):
        return [a for c in cache.values() for a in cache_arrays(c, depth + 1)]
    return []


def _replace_arrays(cache, replace, depth: int = 0):
    """``cache`` with every float array ``a`` (in :func:`cache_arrays`'s order) replaced
    by ``replace(a)``."""
    if depth > _DEPTH:
        return cache
    if isinstance(cache, np.ndarray):
        return replace(cache) if cache.dtype.kind == "f" else cache
    if isinstance(cache, (tuple, list)):
        fixed = [_replace_arrays(c, replace, depth + 1) for c in cache]
        return type(cache)(fixed) if isinstance(cache, tuple) else fixed
    if isinstance(cache, dict):
        return {k: _replace_arrays(v, replace, depth + 1) for k, v in cache.items()}
    return cache


def _same(a, b) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, **_SAME))


def _candidates(right: tuple, right_cache: list) -> list:
    """A correct forward's values: its cache's arrays and, of an array whose last axis
    stacks blocks of H (gates r, z, n side by side), each block; then its outputs."""
    H = np.shape(right[0])[-1] if right and np.ndim(right[0]) else 0
    found = [np.asarray(a) for a in right_cache]
    for a in list(found):
        if H and a.ndim == 2 and a.shape[-1] != H and a.shape[-1] % H == 0:
            found += [a[:, j:j + H] for j in range(0, a.shape[-1], H)]
    return found + [np.asarray(a) for a in right]


def _by_position(cache, leaves: list, right_cache: list):
    """``cache`` with each array that differs from the right cache's array at its
    position replaced by that one (the student's layout is the reference's)."""
    fixes = {id(a): r for a, r in zip(leaves, right_cache, strict=True) if not _same(a, r)}
    return _replace_arrays(cache, lambda a: np.array(fixes[id(a)]) if id(a) in fixes else a)


def _right_intermediates(cache, right: tuple, right_cache: list):
    """``cache`` (a wrong forward's) with each array that no right value matches replaced
    by the right value of the same shape that is left unmatched and nearest to it
    (:func:`_candidates`): the intermediates (gates, candidates) a correct forward would
    have cached, in the student's own layout."""
    leaves = cache_arrays(cache)
    if [a.shape for a in leaves] == [np.shape(a) for a in right_cache]:  # the same layout
        return _by_position(cache, leaves, right_cache)
    right_cache = _candidates(right, right_cache)
    unused = list(range(len(right_cache)))
    wrong = []
    for leaf in leaves:
        match = next((j for j in unused if _same(leaf, right_cache[j])), None)
        if match is None:
            wrong.append(leaf)
        else:
            unused.remove(match)
    fixes = {}
    for leaf in wrong:
        same_shape = [j for j in unused if right_cache[j].shape == leaf.shape]
        if not same_shape:
            continue
        with np.errstate(all="ignore"):
            j = min(same_shape, key=lambda j: float(np.nan_to_num(
                np.max(np.abs(right_cache[j] - leaf)), nan=np.inf)))
        unused.remove(j)
        fixes[id(leaf)] = right_cache[j]
    return _replace_arrays(cache, lambda a: fixes[id(a)].copy() if id(a) in fixes else a)


def _repair(cache, mine, right, depth: int = 0):
    """``cache`` with every array equal to one of ``mine`` replaced by its ``right``."""
    if depth > 4:
        return cache
    if isinstance(cache, np.ndarray):
        for m, r in zip(mine, right, strict=False):
            if (isinstance(m, np.ndarray) and m.shape == cache.shape and r.shape == m.shape
                    and np.array_equal(cache, m)):
                return r.copy()
        return cache
    if isinstance(cache, (tuple, list)):
        fixed = [_repair(c, mine, right, depth + 1) for c in cache]
        return type(cache)(fixed) if isinstance(cache, tuple) else fixed
    if isinstance(cache, dict):
        return {k: _repair(v, mine, right, depth + 1) for k, v in cache.items()}
    return cache


class StandIn:
    """Contract function ``name`` answered from ``tables``; ``original`` for the rest."""

    def __init__(self, name: str, original, tables: Tables):
        self.name = name
        self.original = original
        self.tables = tables
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        found = self.tables.lookup(self.name, args, kwargs)
        if found is None:
            return self.original(*args, **kwargs)
        returned = CONTRACT[self.name][1]
        if "cache" not in returned:
            return found
        # the outputs, then the arrays of the reference's cache (autograder.protocol)
        right, right_cache = found[:len(returned) - 1], list(found[len(returned) - 1:])
        # without a cache of the student's (the forward raises: not written yet), the
        # reference's arrays in its layout, often the notebook's: better than no cache
        fallback = tuple(right_cache) or None
        try:  # the cache is the student's layout: from the student's own function
            result = self.original(*args, **kwargs)
        except Exception:  # noqa: BLE001 - the right values still serve a forward check
            return (*right, fallback)
        if not isinstance(result, tuple) or len(result) != len(right) + 1:
            return (*right, fallback)
        mine = [np.asarray(r) if isinstance(r, np.ndarray) else r for r in result[:-1]]
        cache = _repair(result[-1], mine, right)
        if not all(_same(m, r) for m, r in zip(mine, right, strict=True)):
            # a wrong forward: its cache is wrong too, and a backward pass checked with it
            # would pay for the forward's bug; give it a correct forward's intermediates
            cache = _right_intermediates(cache, right, right_cache)
        return (*right, cache)


@contextmanager
def installed(tables: "Tables | None", names: list, functions: list, tested: "str | None"):
    """``functions`` (named ``names``, a check's run parameters) with stand-ins in place.

    Yields the functions to pass to ``run``: every contract function the table
    answers, except ``tested``, becomes a stand-in; and in the globals of every
    student function passed, the helpers they call by name are stand-ins until
    the block ends (then restored).
    """
    if tables is None or not tables.functions:
        yield list(functions)
        return
    answered = tables.functions - {tested}
    passed = [StandIn(n, f, tables) if n in answered and f is not None else f
              for n, f in zip(names, functions, strict=True)]
    patched: list[tuple[dict, str, object, bool]] = []
    for f in functions:
        namespace = getattr(f, "__globals__", None)
        if not isinstance(namespace, dict):
            continue
        for name in sorted(answered):
            if any(p[0] is namespace and p[1] == name for p in patched):
                continue
            present = name in namespace
            original = namespace.get(name)
            if not callable(original):
                continue
            patched.append((namespace, name, original, present))
            namespace[name] = StandIn(name, original, tables)
    try:
        yield passed
    finally:
        for namespace, name, original, present in reversed(patched):
            if present:
                namespace[name] = original
            else:
                namespace.pop(name, None)
