"""What the checks of the gated cells share (LSTM: 4 blocks, GRU: 3 blocks).

* the blocks of a gate array, a sigmoid that is exact for any input;
* finite-difference tables of a correct forward (an ``oracle``'s work) and the
  message for a backward check whose forward pass is wrong;
* hidden-check inputs: every draw holds one case of each regime
  (:func:`rnn_course.checks.regimes`), the generic sizes (distinct, 2..7) with some
  sigmoid gates saturated in both directions, and the edge sizes (all 1);
* :class:`Cell`: the sequence and backward scaffolding of both cells (calling a step,
  a sequence and their backward passes, their finite-difference oracles, fixed inputs)
  and the checks whose structure is the same for both, built from the cell's names.

Not an assignment: its checks belong to the module that builds them (``lstm``, ``gru``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from rnn_course.checks import (
    EDGE,
    GENERIC,
    call,
    carry_problem,
    check,
    close,
    copies,
    first_wrong_step,
    gradients_verdict,
    keep_share,
    regime_sizes,
    shape_problem,
    unpack,
    upstream_flags,
    upstream_modified,
    wrong_forward,
)
from rnn_course.contract import CONTRACT, SEQ_ARGS, SEQ_GRADS, gradient_names, returns
from rnn_course.gradcheck import (
    GATED_GRAD_TOL,
    OutputShapeError,
    gradient_matches,
    numeric_gradient,
    perturbed_outputs,
)


def sigmoid(a):
    """The logistic sigmoid through tanh (no overflow for any a), as float64."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(a, dtype=np.float64)))


def blocks(a, H: int, names) -> dict:
    """The gate blocks of a (.., len(names) * H) array, as a dict name -> block."""
    return {name: a[..., k * H:(k + 1) * H] for k, name in enumerate(names)}


def block_range(k: int) -> str:
    """The columns of gate block ``k`` as text: 0:H, H:2H, 2H:3H, ..."""
    lo = "0" if k == 0 else ("H" if k == 1 else f"{k}H")
    return f"{lo}:{'H' if k == 0 else f'{k + 1}H'}"


SHUT = -50.0
"""A pre-activation that closes a sigmoid gate: sigmoid(-50) ~ 2e-22."""


def fd_tables(call, inputs, arg_names, names) -> dict:
    """The correct forward's outputs ``call(args)`` (one flat vector) at every perturbation
    of ``names`` (:func:`~rnn_course.gradcheck.perturbed_outputs`) and unperturbed."""
    out = perturbed_outputs(lambda **args: call(args), copies(inputs, arg_names), names)
    out["forward_ref"] = call(copies(inputs, arg_names))
    return out


def forward_problem(outputs, function: str) -> "str | None":
    """:func:`~rnn_course.checks.wrong_forward` on ``forward`` (from ``run``) and
    ``forward_ref`` (stored by the oracle)."""
    return wrong_forward(function, outputs.get("forward", np.zeros(0)), outputs["forward_ref"])


HUGE = (700.0, 900.0)
"""|pre-activation| that overflows a naive exp: exp(710) is inf in float64."""


def saturate(rng: np.random.Generator, a: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Set about ``fraction`` of the entries of ``a`` to +-U(700, 900), in place, with at
    least one of each sign."""
    flat = a.reshape(-1)
    mask = rng.random(flat.shape) < fraction
    mask[:2] = True
    signs = rng.choice([-1.0, 1.0], size=flat.shape)
    signs[0], signs[1] = 1.0, -1.0
    flat[mask] = (signs * rng.uniform(*HUGE, size=flat.shape))[mask]
    rng.shuffle(flat)
    return a


def weights(rng, D: int, H: int, blocks: int, scale: float = 0.5) -> dict:
    return {"Wx": scale * rng.standard_normal((D, blocks * H)),
            "Wh": scale * rng.standard_normal((H, blocks * H)),
            "b": scale * rng.standard_normal(blocks * H)}


def step(rng, regime: str, blocks: int, with_c: bool, saturated: int = 0,
         upstream: bool = False) -> dict:
    """One step's inputs; ``saturated`` sigmoid blocks of ``b`` get huge entries (generic
    sizes only); ``upstream`` adds dnext_h (and dnext_c)."""
    s = regime_sizes(rng, regime, "NDH")
    N, D, H = s["N"], s["D"], s["H"]
    inputs = {"x": rng.standard_normal((N, D)), "prev_h": rng.standard_normal((N, H))}
    if with_c:
        inputs["prev_c"] = 2.0 * rng.standard_normal((N, H))
    inputs.update(weights(rng, D, H, blocks))
    if saturated and regime != EDGE:
        saturate(rng, inputs["b"][: saturated * H], fraction=0.25)
    if upstream:
        inputs["dnext_h"] = rng.standard_normal((N, H))
        if with_c:
            inputs["dnext_c"] = rng.standard_normal((N, H))
    return inputs


def sequence(rng, regime: str, blocks: int, saturated: int = 0,
             upstream: bool = False) -> dict:
    """A sequence's inputs (T = 1 in the edge regime); ``upstream`` adds dh."""
    s = regime_sizes(rng, regime)
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    inputs = {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
              **weights(rng, D, H, blocks)}
    if saturated and regime != EDGE:
        saturate(rng, inputs["b"][: saturated * H], fraction=0.15)
    if upstream:
        inputs["dh"] = rng.standard_normal((N, T, H))
    return inputs


def both(draw, **kwargs) -> dict:
    """The regimes of a hidden check: ``draw(rng, regime, **kwargs)`` for each."""
    return {GENERIC: lambda rng: draw(rng, GENERIC, **kwargs),
            EDGE: lambda rng: draw(rng, EDGE, **kwargs)}


def calling(fn, *functions: str):
    """``fn(inputs, *args)`` declared as called with the contract functions ``functions``
    (a check's ``run`` and ``oracle`` receive the functions their parameters name)."""
    def called(*args):
        return fn(*args)
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    called.__signature__ = inspect.Signature(
        [inspect.Parameter(n, kind) for n in ("inp", *functions)])
    return called


SEQ_HINTS = {
    "x": "dx[:, t] is the step backward's dx at step t",
    "h0": "dh0 is the dprev_h that step 0 sends back",
    "Wx": "dWx is the sum of every step's dWx",
    "Wh": "dWh is the sum of every step's dWh",
    "b": "db is the sum of every step's db",
}
"""A hint per gradient of a sequence backward (both cells sum their steps alike)."""


@dataclass(frozen=True)
class Cell:
    """One gated cell's names, for the scaffolding its checks share with the other's."""

    name: str
    """``lstm`` or ``gru``: its functions are ``<name>_step_forward`` ... ``<name>_backward``."""
    gates: tuple
    step_args: tuple
    start: str
    """Where a sequence starts, in messages: "h0" or "h0 and c0 = 0"."""

    @property
    def states(self) -> tuple:
        """What a step returns before its cache (next_h, and next_c for the LSTM)."""
        return returns(f"{self.name}_step_forward")[:-1]

    @property
    def upstream(self) -> tuple:
        """The upstream gradients of a step backward (dnext_h, and dnext_c for the LSTM)."""
        return CONTRACT[self.fn("step_backward")][0][:-1]

    @property
    def step_grads(self) -> tuple:
        return gradient_names(self.step_args)

    def fn(self, what: str) -> str:
        """The name of the cell's function ``what`` (step_forward, forward, ...)."""
        return f"{self.name}_{what}"

    @property
    def carried(self) -> tuple:
        """The states a step takes from the one before (prev_h, and prev_c for the LSTM)."""
        return tuple(k for k in self.step_args if k.startswith("prev_"))

    # ---- kernel side: calling the student's functions -------------------- #
    def states_of(self, step_forward, args) -> tuple:
        """The states of one step (:attr:`states`), as float64 arrays."""
        out = unpack(step_forward(**copies(args, self.step_args)),
                     returns(self.fn("step_forward")), self.fn("step_forward"))
        return tuple(np.asarray(v, dtype=np.float64) for v in out[:-1])

    def step(self, step_forward, args):
        """:meth:`states_of`, next_h alone where it is the only state."""
        out = self.states_of(step_forward, args)
        return out if len(out) > 1 else out[0]

    def step_flat(self, step_forward):
        """``args -> every state of one step, as one flat vector`` (for finite differences)."""
        return lambda args: np.concatenate(
            [v.ravel() for v in self.states_of(step_forward, args)])

    def step_backward(self, step_forward, step_backward, args, *upstream) -> dict:
        """The gradients of one step backward (:meth:`_backward`)."""
        return self._backward("step_", step_forward, step_backward, args,
                              dict(zip(self.upstream, upstream, strict=True)))

    def sequence(self, forward, args) -> np.ndarray:
        """The hidden states h (N, T, H) of a whole sequence, as float64."""
        h, _ = unpack(forward(**copies(args, SEQ_ARGS)), returns(self.fn("forward")),
                      self.fn("forward"))
        return np.asarray(h, dtype=np.float64)

    def seq_flat(self, forward):
        """``args -> h, flat`` (for finite differences)."""
        return lambda args: self.sequence(forward, args).ravel()

    def seq_backward(self, forward, backward, args) -> dict:
        """The five gradients of a sequence backward (:meth:`_backward`)."""
        return self._backward("", forward, backward, args, {"dh": args["dh"]})

    def _backward(self, which: str, forward, backward, args, upstream: dict) -> dict:
        """The gradients of the ``<which>backward`` pass (``which``: "step_" or "") from
        the student's own forward cache, and whether it changed its upstream gradients
        (``modified_<name>``)."""
        fwd, bwd = self.fn(f"{which}forward"), self.fn(f"{which}backward")
        *_, cache = unpack(forward(**copies(args, CONTRACT[fwd][0])), returns(fwd), fwd)
        up = {k: np.array(v, copy=True) for k, v in upstream.items()}
        passed = {k: v.copy() for k, v in up.items()}
        grads = unpack(call(backward, bwd, *passed.values(), cache), returns(bwd), bwd)
        return {**{k: np.asarray(v, dtype=np.float64)
                   for k, v in zip(returns(bwd), grads, strict=True)},
                **upstream_flags(up, passed)}

    def step_upstream(self, inputs) -> tuple:
        """The check's upstream gradients of a step, in the backward's order."""
        return tuple(inputs[k] for k in self.upstream)

    # ---- oracles: a correct forward's evaluations, on the reference ------ #
    def step_tables(self, *names):
        """An ``oracle`` for a step backward check: tables of the reference's step forward."""
        return calling(lambda inputs, step_forward: fd_tables(
            self.step_flat(step_forward), inputs, self.step_args, names),
            self.fn("step_forward"))

    def seq_tables(self, *names):
        """An ``oracle`` for a sequence backward check: tables of the reference's forward."""
        return calling(lambda inputs, forward: fd_tables(
            self.seq_flat(forward), inputs, SEQ_ARGS, names), self.fn("forward"))

    # ---- fixed inputs of the visible checks ------------------------------ #
    def step_inputs(self, rng) -> dict:
        """N=2, D=3, H=2, random weights of scale 0.5 and random upstream gradients."""
        N, D, H = 2, 3, 2
        inputs = {"x": rng.standard_normal((N, D)),
                  **{k: rng.standard_normal((N, H)) for k in self.carried},
                  **weights(rng, D, H, len(self.gates))}
        inputs.update({k: rng.standard_normal((N, H)) for k in self.upstream})
        return inputs

    def seq_inputs(self, rng, N=2, T=4, D=3, H=2) -> dict:
        return {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)),
                **weights(rng, D, H, len(self.gates)), "dh": rng.standard_normal((N, T, H))}

    def one_step_inputs(self, rng) -> dict:
        return self.seq_inputs(rng, T=1)

    def backward_inputs(self, rng) -> dict:
        return self.seq_inputs(rng, N=2, T=3, D=2, H=2)

    # ---- the checks whose structure both cells share --------------------- #
    def _visible(self, what: str, make_inputs, run_of: tuple, run, verdict, doc: str,
                 oracle=None):
        """The visible check ``<name>_<what>``, ``run`` called with the cell's functions
        ``run_of`` (step_forward, ...)."""
        names = [self.fn(f) for f in run_of]
        return check(self.fn(what), make_inputs, doc=doc, oracle=oracle)(
            calling(run, *names)).verdict(verdict)

    def _hidden(self, what: str, draw, outputs, run_of: tuple, run, doc: str):
        return check(self.fn(what), draw, hidden=True, outputs=outputs, doc=doc)(
            calling(run, *(self.fn(f) for f in run_of)))

    def _step_grads_run(self, inputs, step_forward, step_backward) -> dict:
        return self.step_backward(step_forward, step_backward, inputs,
                                  *self.step_upstream(inputs))

    def _step_upstream_flat(self, inputs) -> np.ndarray:
        return np.concatenate([inputs[k].ravel() for k in self.upstream])

    def h_run(self, inputs, forward) -> dict:
        """``run`` of a check of the sequence forward: its states h."""
        return {"h": self.sequence(forward, inputs)}

    def step_backward_shapes_check(self, doc: str):
        """``<name>_step_backward_shapes``: one gradient per argument, of its shape."""
        def verdict(inputs, outputs):
            for name, grad in zip(self.step_args, self.step_grads, strict=True):
                problem = shape_problem(grad, outputs[grad], inputs[name].shape)
                if problem:
                    return problem + f" (the shape of {name})"
            return upstream_modified(self.fn("step_backward"), dict.fromkeys(self.upstream),
                                     outputs)
        return self._visible("step_backward_shapes", self.step_inputs,
                             ("step_forward", "step_backward"), self._step_grads_run, verdict,
                             doc)

    def gate_blocks_check(self, doc: str, order: "tuple | None" = None):
        """Decorator on ``message(wrong)``: ``<name>_step_backward_gate_blocks``, db judged
        block by block against finite differences; ``message`` names the bug from the
        wrong blocks (in ``order``, the gates' by default) when the forward is right."""
        def run(inputs, step_forward, step_backward):
            db = self._step_grads_run(inputs, step_forward, step_backward)["db"]
            return {"db": db, "forward": self.step_flat(step_forward)(inputs)}

        def verdict_from(message):
            def verdict(inputs, outputs):
                H = inputs["prev_h"].shape[1]
                try:
                    numeric = numeric_gradient(outputs, "b", self._step_upstream_flat(inputs),
                                               inputs["b"].shape)
                except OutputShapeError:
                    return ("the forward pass returned outputs of unexpected shapes (see the "
                            "shapes checks)")
                problem = shape_problem("db", outputs["db"], numeric.shape)
                if problem:
                    return problem
                got, want = blocks(outputs["db"], H, self.gates), blocks(numeric, H, self.gates)
                wrong = [name for name in order or self.gates
                         if not gradient_matches(got[name], want[name], GATED_GRAD_TOL)]
                if not wrong:
                    return None
                return forward_problem(outputs, self.fn("step_forward")) or message(wrong)
            return self._visible(
                "step_backward_gate_blocks", self.step_inputs, ("step_forward", "step_backward"),
                run, verdict, doc, oracle=self.step_tables("b"))
        return verdict_from

    def block_message(self, wrong: list, gate_names: dict, hints: dict, note: str = "") -> str:
        """The message of :meth:`gate_blocks_check` for the first wrong block of db."""
        others = f" (also wrong: {', '.join(wrong[1:])})" if len(wrong) > 1 else ""
        return (f"the {gate_names[wrong[0]]} block of db, "
                f"db[{block_range(self.gates.index(wrong[0]))}], disagrees with finite "
                f"differences of a correct forward pass{others}{note}: {hints[wrong[0]]}")

    def step_gradcheck_check(self, doc: str, hints: dict, order: tuple):
        """``<name>_step_backward_gradcheck``: every gradient (in ``order``, each with its
        hint) against finite differences, each worth the same share."""
        def run(inputs, step_forward, step_backward):
            out = self._step_grads_run(inputs, step_forward, step_backward)
            out["forward"] = self.step_flat(step_forward)(inputs)
            return out

        def verdict(inputs, outputs):
            verdict = gradients_verdict(inputs, outputs, order, self._step_upstream_flat(inputs),
                                        hints, GATED_GRAD_TOL)
            return keep_share(forward_problem(outputs, self.fn("step_forward")),
                              verdict) or verdict
        return self._visible("step_backward_gradcheck", self.step_inputs,
                             ("step_forward", "step_backward"), run, verdict, doc,
                             oracle=self.step_tables(*self.step_args))

    def forward_shapes_check(self):
        """``<name>_forward_shapes``: h of shape (N, T, H)."""
        def verdict(inputs, outputs):
            N, T, _ = inputs["x"].shape
            return shape_problem("h", outputs["h"], (N, T, inputs["h0"].shape[1]))
        return self._visible("forward_shapes", self.seq_inputs, ("forward",), self.h_run,
                             verdict, "h of shape (N, T, H)")

    def forward_matches_steps_check(self):
        """``<name>_forward_matches_steps``: h against a correct forward (stored by the
        oracle); the student's own steps chained only choose the message."""
        step_forward = self.fn("step_forward")

        def run(inputs, forward, step_forward):
            h = self.sequence(forward, inputs)
            args = copies(inputs, SEQ_ARGS)
            state = {k: args["h0"] if k == "prev_h" else np.zeros_like(args["h0"])
                     for k in self.carried}
            steps = []
            for t in range(args["x"].shape[1]):
                step_args = {"x": args["x"][:, t], **state,
                             **{k: args[k] for k in ("Wx", "Wh", "b")}}
                state = dict(zip(self.carried, self.states_of(step_forward, step_args),
                                 strict=True))
                steps.append(state["prev_h"])
            return {"h": h, "h_steps": np.stack(steps, axis=1)}

        def verdict(inputs, outputs):
            got, want, steps = outputs["h"], outputs["h_ref"], outputs["h_steps"]
            problem, t = first_wrong_step(got, want)
            if t is None:
                return problem
            if steps.shape == got.shape and close(got[:, :t + 1], steps[:, :t + 1]):
                return (f"h[:, {t}] is wrong, although it equals what {t + 1} call(s) of your "
                        f"{step_forward} give: {step_forward} is wrong for these inputs; fix "
                        "it first (see its checks)")
            carried = " and ".join(k[len("prev_"):] for k in self.carried)
            return (f"h[:, {t}] differs from what {t + 1} call(s) of {step_forward} give, "
                    f"starting from {self.start}: at step t feed x[:, t] and the {carried} of "
                    "step t - 1, and store next_h in h[:, t]")
        oracle = calling(lambda inputs, forward: {"h_ref": self.sequence(forward, inputs)},
                         self.fn("forward"))
        return self._visible("forward_matches_steps", self.seq_inputs,
                             ("forward", "step_forward"), run, verdict,
                             f"h equals T calls of {step_forward}, from {self.start}",
                             oracle=oracle)

    def backward_shapes_check(self):
        """``<name>_backward_shapes``: five gradients of the shapes of their arguments."""
        def verdict(inputs, outputs):
            for name, grad in zip(SEQ_ARGS, SEQ_GRADS, strict=True):
                problem = shape_problem(grad, outputs[grad], inputs[name].shape)
                if problem:
                    return problem + f" (the shape of {name})"
            return upstream_modified(self.fn("backward"), {"dh": None}, outputs)
        return self._visible("backward_shapes", self.backward_inputs, ("forward", "backward"),
                             lambda inputs, f, b: self.seq_backward(f, b, inputs), verdict,
                             "five gradients with the shapes of x, h0, Wx, Wh, b")

    LAST_STEP_WRONG = ("dx[:, -1], the last step's input gradient, is wrong although only the "
                       "last step has a loss here: check the step backward and that dh[:, t] "
                       "goes to step t")
    EARLIER_STEPS_WRONG = ("dx at earlier steps is wrong. Here Wh = 0 and only the last step "
                           "has a loss, so the gradient can reach earlier steps only along ")
    """Messages of a :meth:`through_check`, whose loss is on the last step only."""

    def through_check(self, what: str, make_inputs, doc: str):
        """Decorator on ``judge(outputs, dx, numeric)``: ``<name>_<what>``, the dx of a
        sequence backward (of the right shape) against the finite differences ``numeric``
        of a correct forward with respect to x."""
        forward = self.fn("forward")

        def run(inputs, forward, backward):
            return {"dx": self.seq_backward(forward, backward, inputs)["dx"],
                    "forward": self.seq_flat(forward)(inputs)}

        def verdict_from(judge):
            def verdict(inputs, outputs):
                try:
                    numeric = numeric_gradient(outputs, "x", inputs["dh"].ravel(),
                                               inputs["x"].shape)
                except OutputShapeError:
                    return f"{forward} returned h of an unexpected shape (see {forward}_shapes)"
                return (shape_problem("dx", outputs["dx"], numeric.shape)
                        or judge(outputs, outputs["dx"], numeric))
            return self._visible(what, make_inputs, ("forward", "backward"), run, verdict, doc,
                                 oracle=self.seq_tables("x"))
        return verdict_from

    def backward_gradcheck_check(self, carries: str):
        """``<name>_backward_gradcheck``: the five gradients against finite differences;
        ``carries`` says what is carried back between steps (for :func:`carry_problem`)."""
        def run(inputs, forward, backward):
            out = self.seq_backward(forward, backward, inputs)
            out["forward"] = self.seq_flat(forward)(inputs)
            return out

        def verdict(inputs, outputs):
            verdict = gradients_verdict(inputs, outputs, SEQ_ARGS, inputs["dh"].ravel(),
                                        SEQ_HINTS, GATED_GRAD_TOL)
            return (keep_share(forward_problem(outputs, self.fn("forward"))
                               or carry_problem(inputs, outputs, GATED_GRAD_TOL, carries),
                               verdict)
                    or verdict)
        return self._visible(
            "backward_gradcheck", self.backward_inputs, ("forward", "backward"), run, verdict,
            "all five gradients against centred finite differences, with a loss at every step",
            oracle=self.seq_tables(*SEQ_ARGS))

    # ---- hidden checks: new inputs for every submission ------------------ #
    def step_forward_hidden_check(self, doc: str, saturated: int):
        return self._hidden(
            "step_forward_hidden", self._draw(step, saturated=saturated), self.states,
            ("step_forward",),
            lambda inputs, f: dict(zip(self.states, self.states_of(f, inputs), strict=True)),
            doc)

    def step_backward_hidden_check(self, doc: str):
        return self._hidden(
            "step_backward_hidden", self._draw(step, upstream=True), self.step_grads,
            ("step_forward", "step_backward"),
            lambda inputs, f, b: _only(self._step_grads_run(inputs, f, b), self.step_grads),
            doc)

    def forward_hidden_check(self, doc: str, saturated: int = 0):
        return self._hidden("forward_hidden", self._draw(sequence, saturated=saturated),
                            ("h",), ("forward",), self.h_run, doc)

    def backward_hidden_check(self, saturated: int = 0):
        return self._hidden(
            "backward_hidden", self._draw(sequence, saturated=saturated, upstream=True),
            SEQ_GRADS, ("forward", "backward"),
            lambda inputs, f, b: _only(self.seq_backward(f, b, inputs), SEQ_GRADS),
            "the five gradients of a whole sequence (through the student's forward pass)")

    def _draw(self, draw, **kwargs) -> dict:
        """:func:`both` regimes of ``draw`` (:func:`step` or :func:`sequence`) for this cell."""
        if draw is step:
            kwargs["with_c"] = "prev_c" in self.carried
        return both(draw, blocks=len(self.gates), **kwargs)


def _only(out: dict, names) -> dict:
    return {k: out[k] for k in names}
