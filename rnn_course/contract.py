"""The function contract's names, written once: arguments, returned values, gate orders.

The course's graded functions (``autograder/reference.py`` implements them;
the notebooks ask students for the same names and signatures) take and return
values whose names are fixed here, and every piece of code that needs one of
those names (the checks, the reference, the training code, the tests) imports
it from this module instead of spelling it again.

Dimension letters: N batch size, T time steps, D input size, H hidden size.
"""

from __future__ import annotations

# Gate blocks, in the order they are stacked along the last axis of Wx, Wh, b
# and of the pre-activations a: the LSTM's (4H) and the GRU's (3H).
LSTM_GATES = ("i", "f", "o", "g")
GRU_GATES = ("r", "z", "n")

# The recurrent parameters (also the keys of a gradient dict, as clipping gets it),
# and the arguments of one step and of a whole sequence (the initial state is h0).
PARAMS = ("Wx", "Wh", "b")
STEP_ARGS = ("x", "prev_h", *PARAMS)
LSTM_STEP_ARGS = ("x", "prev_h", "prev_c", *PARAMS)
SEQ_ARGS = ("x", "h0", *PARAMS)


def gradient_names(args) -> tuple[str, ...]:
    """The names of the gradients of ``args``, in their order: ``dx`` for ``x``, ..."""
    return tuple(f"d{name}" for name in args)


STEP_GRADS = gradient_names(STEP_ARGS)  # dx, dprev_h, dWx, dWh, db
LSTM_STEP_GRADS = gradient_names(LSTM_STEP_ARGS)  # dx, dprev_h, dprev_c, dWx, dWh, db
SEQ_GRADS = gradient_names(SEQ_ARGS)  # dx, dh0, dWx, dWh, db

# Every graded function of the contract: name -> (arguments, returned values).
# ``clip_by_value`` returns one dict (``clipped``), not a tuple.
CONTRACT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rnn_step_forward": (STEP_ARGS, ("next_h", "cache")),
    "rnn_step_backward": (("dnext_h", "cache"), STEP_GRADS),
    "rnn_forward": (SEQ_ARGS, ("h", "cache")),
    "rnn_backward": (("dh", "cache", "truncate"), SEQ_GRADS),
    "clip_by_value": (("grads", "clip_value"), ("clipped",)),
    "clip_by_global_norm": (("grads", "max_norm"), ("clipped", "total_norm")),
    "lstm_gates": (("a",), LSTM_GATES),
    "lstm_step_forward": (LSTM_STEP_ARGS, ("next_h", "next_c", "cache")),
    "lstm_step_backward": (("dnext_h", "dnext_c", "cache"), LSTM_STEP_GRADS),
    "lstm_forward": (SEQ_ARGS, ("h", "cache")),
    "lstm_backward": (("dh", "cache"), SEQ_GRADS),
    "gru_step_forward": (STEP_ARGS, ("next_h", "cache")),
    "gru_step_backward": (("dnext_h", "cache"), STEP_GRADS),
    "gru_forward": (SEQ_ARGS, ("h", "cache")),
    "gru_backward": (("dh", "cache"), SEQ_GRADS),
}


def returns(function: str) -> tuple[str, ...]:
    """The names of what contract function ``function`` returns, in order."""
    return CONTRACT[function][1]


# The contract functions that a correct solution of another one calls (the notebooks'
# own decomposition): while the grader checks a function, these are answered by
# stand-ins with the grader's correct values (rnn_course.standins), so that a bug in
# a helper costs the helper's points only.
CALLS: dict[str, tuple[str, ...]] = {
    "rnn_forward": ("rnn_step_forward",),
    "lstm_step_forward": ("lstm_gates",),
    "lstm_forward": ("lstm_step_forward",),
    "lstm_backward": ("lstm_step_backward",),
    "gru_forward": ("gru_step_forward",),
    "gru_backward": ("gru_step_backward",),
}


def checked_function(check_id: str) -> "str | None":
    """The contract function a check (by its id, ``<function>_<what>``) is about, or None."""
    names = [name for name in CONTRACT if check_id.startswith(name + "_")]
    return max(names, key=len) if names else None


def helpers_of(names) -> tuple[str, ...]:
    """Every contract function that ``names`` call, directly or not (:data:`CALLS`), in order."""
    found: list[str] = []
    todo = list(names)
    while todo:
        for helper in CALLS.get(todo.pop(0), ()):
            if helper not in found:
                found.append(helper)
                todo.append(helper)
    return tuple(found)
