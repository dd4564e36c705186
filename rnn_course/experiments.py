"""The experiment the course leads to: RNN versus LSTM on a long-range dependency.

::

    python -m rnn_course.experiments long-range --impl autograder.reference
    python -m rnn_course.experiments long-range --impl my_solutions --json out.json
    python -m rnn_course.experiments long-range --impl autograder.reference --preset notebook

For every gap, a vanilla RNN and an LSTM are trained on the France -> French
task (:class:`rnn_course.data.CountryLanguageTask`) **under one budget**: same
hidden size, optimiser, learning rate, batch size, number of steps, gradient
clipping, the same training batches and the same held-out batch.  Both use the
course's initialisation rules (:mod:`rnn_course.training`): Xavier input
weights, orthogonal recurrent weights, zero biases -- and for the LSTM a
positive forget-gate bias, the usual way to start an LSTM remembering.

The layer functions come from ``impl``: any module or object with
``rnn_forward``, ``rnn_backward``, ``lstm_forward``, ``lstm_backward`` and
(when clipping is on) ``clip_by_global_norm``, following the course contract.
A notebook passes a namespace of the student's own functions.

What it shows (reference implementation, default preset, seeds 0, 1, 2): the
RNN learns gaps up to 20 (50 for one seed in three) and is at chance (0.25)
from gap 100; the LSTM reaches 100 % held-out accuracy at every gap up to 150.
The RNN's failure is not a matter of budget: with 3000 steps it stays at
chance at gaps 70 and 100.  (The LSTM's limit is not far off: at gap 200 it
failed for one seed in three within 1000 steps, so 200 is not in the default.)
The filler words are random, not one repeated token, as in text.

About the forget-gate bias.  The default here is 3.0 (forget gate
sigmoid(3) ~ 0.95, a memory time constant of ~20 steps), not the 1.0 of
:func:`rnn_course.training.init_lstm`.  With 1.0 (forget gate ~0.73) the
signal from the opening token is scaled by ~0.73**100 ~ 1e-14 across a gap of
100, in the forward pass and in the gradient, and the LSTM fails at gap 100
within this budget just as the RNN does (it still learns gaps of ~50).  Pass
``forget_bias=1.0`` (``--forget-bias 1``) to see it.  The RNN has no such knob:
its orthogonal ``Wh`` is already the norm-preserving choice.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path

from rnn_course.data import CountryLanguageTask
from rnn_course.training import Adam, evaluate, init_params, train

__all__ = ["PRESETS", "REQUIRED", "load_impl", "check_impl", "run_long_range", "main"]

# the contract functions the experiment calls, per model
LAYERS = {"rnn": ("rnn_forward", "rnn_backward"), "lstm": ("lstm_forward", "lstm_backward"),
          "gru": ("gru_forward", "gru_backward")}
REQUIRED = tuple(name for layer in LAYERS.values() for name in layer) + ("clip_by_global_norm",)

# One shared setup per preset; every model gets exactly the same one.
PRESETS = {
    # the full experiment: about 2 minutes on one core
    "default": {
        "gaps": (2, 5, 10, 20, 50, 100, 150),
        "steps": 600,
        "batch_size": 32,
        "hidden_size": 32,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "forget_bias": 3.0,
        "n_countries": 4,
        "n_fillers": 4,
        "eval_size": 1000,
        "seed": 0,
    },
    # cut down to run inside a notebook cell's time limit (about 10 s)
    "notebook": {
        "gaps": (2, 10, 30, 100),
        "steps": 200,
        "batch_size": 32,
        "hidden_size": 32,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "forget_bias": 3.0,
        "n_countries": 4,
        "n_fillers": 4,
        "eval_size": 500,
        "seed": 0,
    },
}

RESULT_KEYS = ("model", "gap", "accuracy", "chance", "steps", "seconds")


class ImplError(ValueError):
    """The implementation module cannot be imported or lacks a contract function."""


# --------------------------------------------------------------------------- #
# Finding the implementation
# --------------------------------------------------------------------------- #
def load_impl(name):
    """Import the implementation: a module name (``autograder.reference``) or a ``.py`` path.

    Inputs:
    - name: str

    Returns:
    - the module

    Raises ImplError (a ValueError) with a one-line message when it cannot be imported.
    """
    path = Path(name)
    if name.endswith(".py"):
        if not path.is_file():
            raise ImplError(f"--impl {name}: no such file")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - any error in user code: report it in one line
            raise ImplError(f"--impl {name}: importing it failed: "
                            f"{type(err).__name__}: {err}") from err
        return module
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImplError(f"--impl {name}: cannot import module {name!r} ({err})") from err
    except Exception as err:  # noqa: BLE001
        raise ImplError(f"--impl {name}: importing it failed: "
                        f"{type(err).__name__}: {err}") from err


def check_impl(impl, names=REQUIRED):
    """Raise ImplError naming every function of ``names`` that ``impl`` lacks or cannot call."""
    missing = [n for n in names if not callable(getattr(impl, n, None))]
    if missing:
        label = getattr(impl, "__name__", type(impl).__name__)
        raise ImplError(f"{label} lacks {', '.join(missing)}; the experiment needs "
                        f"{', '.join(names)} (see docs/contract.md for their signatures)")


# --------------------------------------------------------------------------- #
# The experiment
# --------------------------------------------------------------------------- #
def _row(result):
    return (f"{result['gap']:>5}  {result['model']:<5} {result['accuracy']:>9.3f} "
            f"{result['chance']:>7.3f} {result['seconds']:>8.1f}")


def _header(config, file):
    print(f"# long-range: France -> French, K={config['n_countries']} countries "
          f"(chance {1 / config['n_countries']:.3f}), {config['n_fillers']} random filler words",
          file=file)
    print(f"# shared budget: H={config['hidden_size']}, Adam lr={config['lr']:g}, "
          f"batch {config['batch_size']}, {config['steps']} steps, clip global norm "
          f"{config['clip_norm']}, LSTM forget / GRU update bias {config['forget_bias']:g}, "
          f"held-out {config['eval_size']}, seed {config['seed']}", file=file)
    print("  gap  model  accuracy  chance  seconds", file=file, flush=True)


def run_long_range(impl, gaps=None, steps=None, *, preset="default", models=("rnn", "lstm"),
                   progress=False, verbose=True, file=None, **overrides):
    """Train the given models (an RNN and an LSTM by default; a GRU too with ``models``)
    under one budget on the France -> French task, gap by gap.

    Inputs:
    - impl: module or object with the forward and backward of each model
      (``rnn_forward``, ``rnn_backward``, ``lstm_*``, ``gru_*``) and
      ``clip_by_global_norm`` (not needed when ``clip_norm=None``)
    - gaps: iterable of ints >= 0 (default: the preset's)
    - steps: optimiser steps per run (default: the preset's)
    - preset: "default" (the full experiment) or "notebook" (cut down, ~10 s)
    - models: which of "rnn", "lstm", "gru" to train, in this order for each gap
      (the GRU's update-gate bias is ``forget_bias``, its counterpart)
    - progress: show a tqdm bar per run
    - verbose: print a table row after each run (and a header first)
    - file: where the table goes (default sys.stdout)
    - overrides: any other key of ``PRESETS[preset]``: batch_size,
      hidden_size, lr, clip_norm (None: no clipping), forget_bias,
      n_countries, n_fillers, eval_size, seed

    Returns:
    - list of dicts, one per (gap, model), with keys ``model`` ("rnn",
      "lstm" or "gru"), ``gap`` (int), ``accuracy`` (held-out, float), ``chance``
      (float, 1/K), ``steps`` (int) and ``seconds`` (training + evaluation wall time)
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    config = dict(PRESETS[preset])
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    if gaps is not None:
        config["gaps"] = tuple(gaps)
    if steps is not None:
        config["steps"] = steps
    bad = [m for m in models if m not in LAYERS]
    if bad or not models:
        raise ValueError(f"models must be a non-empty subset of {sorted(LAYERS)}, got {models!r}")
    needed = [n for m in models for n in LAYERS[m]]
    if config["clip_norm"] is not None:
        needed.append("clip_by_global_norm")
    check_impl(impl, needed)
    file = sys.stdout if file is None else file

    clip = None
    if config["clip_norm"] is not None:
        clip = functools.partial(impl.clip_by_global_norm, max_norm=config["clip_norm"])
    if verbose:
        _header(config, file)
    # build every task first, so that a bad gap fails before any training
    tasks = [CountryLanguageTask(gap, config["n_countries"], config["n_fillers"])
             for gap in config["gaps"]]
    results = []
    for task in tasks:
        for model in models:
            result, history = _run_one(impl, model, task, config, clip, progress)
            results.append(result)
            if verbose:
                note = f"  (diverged at step {history.steps})" if history.diverged else ""
                print(_row(result) + note, file=file, flush=True)
    return results


def _run_one(impl, model, task, config, clip, progress):
    """Train one model on one task from the shared config; return its result dict and History."""
    forward, backward = (getattr(impl, name) for name in LAYERS[model])
    # the same seed for both models: the same training batches and held-out batch
    params = init_params(model, task.input_size, config["hidden_size"], task.output_size,
                         seed=config["seed"], forget_bias=config["forget_bias"])
    start = time.perf_counter()
    history = train(forward, backward, params, task, steps=config["steps"],
                    batch_size=config["batch_size"], optimizer=Adam(lr=config["lr"]),
                    clip=clip, seed=config["seed"], eval_every=config["steps"],
                    eval_size=100, progress=progress,
                    desc=f"{model} gap {task.gap}")
    # a fresh held-out batch, drawn from a stream training never uses
    score = evaluate(forward, params, task, n=config["eval_size"], seed=config["seed"])
    result = {
        "model": model,
        "gap": task.gap,
        "accuracy": score["accuracy"],
        "chance": task.chance,
        "steps": history.steps,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return result, history


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m rnn_course.experiments",
        description="Experiments of rnn-course.")
    sub = parser.add_subparsers(dest="command", required=True)
    lr = sub.add_parser(
        "long-range",
        help="RNN vs LSTM vs GRU on France -> French for a range of gaps, under one budget",
        description="Train an RNN, an LSTM and a GRU under one budget on the France -> French "
                    "task for a range of gaps and report held-out accuracy.")
    lr.add_argument("--impl", required=True, metavar="MODULE",
                    help="module (e.g. autograder.reference) or .py file with rnn_forward, "
                         "rnn_backward, lstm_forward, lstm_backward, clip_by_global_norm")
    lr.add_argument("--json", metavar="FILE", help="also write the results as a JSON list")
    lr.add_argument("--preset", choices=sorted(PRESETS), default="default",
                    help="shared setup (default: %(default)s)")
    lr.add_argument("--gaps", type=int, nargs="+", metavar="GAP", help="override the gaps")
    lr.add_argument("--steps", type=int, help="override the number of steps per run")
    lr.add_argument("--seed", type=int, help="override the seed")
    lr.add_argument("--forget-bias", type=float, help="override the LSTM forget-gate bias")
    lr.add_argument("--models", nargs="+", choices=list(LAYERS), default=list(LAYERS),
                    help="models to train (default: %(default)s)")
    lr.add_argument("--progress", action="store_true", help="show a progress bar per run")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in (("seed", args.seed), ("forget_bias", args.forget_bias))
                 if v is not None}
    start = time.perf_counter()
    try:
        impl = load_impl(args.impl)
        results = run_long_range(impl, gaps=args.gaps, steps=args.steps, preset=args.preset,
                                 models=tuple(args.models), progress=args.progress, **overrides)
    except ValueError as err:  # our own checks: a one-line message, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"# total {time.perf_counter() - start:.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
