"""Clear error messages for arrays passed to the course helpers.

Shapes are written with the dimension letters of the notebooks; a letter is
bound by the first array that uses it and must then match everywhere::

    dims = check_shapes(x=(x, ("N", "D")), prev_h=(prev_h, ("N", "H")),
                        Wx=(Wx, ("D", "H")), Wh=(Wh, ("H", "H")), b=(b, ("H",)))
    # ValueError: Wh: expected shape (H, H) = (5, 5), got (5, 4) (H = 5 from prev_h)
    N, H = dims["N"], dims["H"]

A shape entry is an int (that exact size), a letter such as "H" (bound
consistently), a multiple of a letter such as "4H" (the LSTM's stacked
gates), or None (any size).  Shape errors are ``ValueError``; a value that is
not a numpy array of the right dtype raises ``ArrayTypeError``, which is both a
``TypeError`` and a ``ValueError``.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["ArrayTypeError", "Dims", "check_array", "check_shapes"]

_ENTRY = re.compile(r"^([1-9][0-9]*)?([A-Za-z_][A-Za-z0-9_]*)$")
_KINDS = {
    np.floating: "floating-point",
    np.integer: "integer",
    np.signedinteger: "signed integer",
    np.unsignedinteger: "unsigned integer",
    np.number: "numeric",
    np.bool_: "bool",
}


class ArrayTypeError(TypeError, ValueError):
    """A value is not a numpy array, or has the wrong dtype.

    Both a TypeError (what it is) and a ValueError (so that callers catching
    invalid input with ``except ValueError`` see every validation error).
    """


class Dims(dict):
    """dict letter -> size, remembering which argument bound each letter (``sources``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = {}


def _parse(entry):
    """A shape entry as ("int", n), ("any", None) or ("dim", multiple, letter)."""
    if entry is None:
        return ("any", None)
    if isinstance(entry, (int, np.integer)) and not isinstance(entry, (bool, np.bool_)):
        if entry < 0:
            raise ValueError(f"shape entry {entry!r} is negative")
        return ("int", int(entry))
    if isinstance(entry, str):
        m = _ENTRY.match(entry)
        if m:
            return ("dim", int(m.group(1) or 1), m.group(2))
    raise TypeError(
        f"shape entry {entry!r} must be an int, a letter like 'H', a multiple like '4H' or None"
    )


def _fmt(items):
    items = list(items)
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _describe_dtype(dtype):
    if dtype is None:
        return "a numpy array"
    if isinstance(dtype, type) and dtype in _KINDS:
        kind = _KINDS[dtype]
    else:
        kind = np.dtype(dtype).name
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind} numpy array"


def _check_type(name, arr, dtype):
    if not isinstance(arr, np.ndarray):
        if isinstance(arr, np.generic):
            got = f"a numpy scalar of dtype {arr.dtype}"
        else:
            got = type(arr).__name__
        raise ArrayTypeError(f"{name}: expected {_describe_dtype(dtype)}, got {got}")
    if dtype is not None and not np.issubdtype(arr.dtype, dtype):
        raise ArrayTypeError(f"{name}: expected {_describe_dtype(dtype)}, got {arr.dtype}")


def check_array(name, arr, shape=None, dtype=np.float64, dims=None):
    """Check that ``arr`` is a numpy array of the given dtype and shape.

    Inputs:
    - name: the argument's name, used in the messages
    - arr: the value to check
    - shape: None (any shape) or a tuple of entries: int, letter ("H"),
      multiple of a letter ("4H") or None (any size)
    - dtype: required dtype (default float64; an abstract type such as
      ``np.floating`` or ``np.integer`` accepts all its kinds); None accepts any
    - dims: a dict letter -> size of the letters already bound (a ``Dims`` also
      remembers which argument bound each); updated with the letters ``arr`` binds

    Returns:
    - dims: the updated bindings (a new ``Dims`` if none was given)

    Raises:
    - ArrayTypeError: ``arr`` is not an ndarray, or has the wrong dtype
    - ValueError: wrong number of dimensions, or a size does not match
    """
    if dims is None:
        dims = Dims()
    _check_type(name, arr, dtype)
    if shape is None:
        return dims
    shape = tuple(shape)
    spec = [_parse(e) for e in shape]
    new = {}  # bound by this array; committed only if the whole array matches

    def known(letter):
        return new.get(letter, dims.get(letter))

    def fail(reason=None, why=None):
        wanted = _fmt("any" if e is None else str(e) for e in shape)
        parts = []
        for s in spec:
            if s[0] == "int":
                parts.append(str(s[1]))
            elif s[0] == "any":
                parts.append("any")
            else:
                v = known(s[2])
                unbound = f"{s[1] if s[1] > 1 else ''}{s[2]}"
                parts.append(str(s[1] * v) if v is not None else unbound)
        resolved = _fmt(parts)
        msg = f"{name}: expected "
        if reason:
            msg += f"{reason} of "
        msg += f"shape {wanted}"
        if resolved != wanted:
            msg += f" = {resolved}"
        msg += f", got {tuple(arr.shape)}"
        if why:
            msg += f": {why}"
        srcs = getattr(dims, "sources", {})
        bound = [f"{d} = {dims[d]} from {srcs[d]}" for d in dict.fromkeys(
            s[2] for s in spec if s[0] == "dim") if d in dims and d in srcs and srcs[d] != name]
        if bound:
            msg += f" ({', '.join(bound)})"
        raise ValueError(msg)

    if arr.ndim != len(spec):
        fail(f"a {len(spec)}-d array")
    for axis, (s, size) in enumerate(zip(spec, arr.shape, strict=True)):
        if s[0] == "int":
            if size != s[1]:
                fail()
        elif s[0] == "dim":
            mult, letter = s[1], s[2]
            v = known(letter)
            if v is None:
                if size % mult:
                    fail(why=f"axis {axis} ({mult}{letter}) must be a multiple of {mult}")
                new[letter] = size // mult
            elif size != mult * v:
                fail()
    dims.update(new)
    if isinstance(dims, Dims):
        for letter in new:
            dims.sources[letter] = name
    return dims


def check_shapes(dims=None, /, **specs):
    """Check several arrays at once, binding dimension letters across them in order.

    Inputs:
    - dims: optional bindings from earlier checks (positional only)
    - specs: argument name -> ``(arr, shape)`` or ``(arr, shape, dtype)``, with
      ``shape`` and ``dtype`` as in ``check_array`` (dtype defaults to float64)

    Returns:
    - dims: a ``Dims`` dict letter -> size of every letter bound

    Raises:
    - ArrayTypeError / ValueError as ``check_array``, for the first bad argument
    """
    dims = Dims() if dims is None else dims
    for name, spec in specs.items():
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise TypeError(f"{name}: spec must be (arr, shape) or (arr, shape, dtype)")
        check_array(name, *spec[:2], dtype=spec[2] if len(spec) == 3 else np.float64, dims=dims)
    return dims
