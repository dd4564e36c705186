"""The lag study the course leads to: RNN, LSTM and GRU on long-range dependencies.

::

    python -m rnn_course.experiments long-range --impl autograder.reference --json out.json
    python -m rnn_course.experiments long-range --impl my_solutions.py --tasks order
    python -m rnn_course.experiments truncation --impl autograder.reference
    python -m rnn_course.experiments gradients --impl autograder.reference

**long-range.**  For three tasks and a range of lags, a vanilla RNN, an LSTM
and a GRU are trained **under one budget** per task: same hidden size,
optimiser, learning rate, batch size, number of steps, gradient clipping, the
same training batches and the same held-out batch.  The tasks
(:mod:`rnn_course.data`), each with the answer due at the last step only:

* ``country`` -- France -> French: the lag is the gap (filler words between
  the country and the query);
* ``adding`` -- the adding problem of Hochreiter & Schmidhuber (1997,
  experiment 4) in the paper's form; the lag is the paper's T (minimal
  sequence length; the paper's minimal time lag is T/2) and success is the
  paper's criterion, absolute error below 0.04;
* ``order`` -- their temporal-order task (experiment 6a); the lag is T
  (T = 100 is the paper's task; the first relevant symbol lies at least
  0.8 T - 1 steps before the end).

A run's score is its held-out accuracy (for the adding problem: the fraction
of held-out sequences within 0.04 of the target); a run **succeeds** at
``SUCCESS`` = 0.95 or more.  All models use the course's initialisation rules
(:mod:`rnn_course.training`): Xavier input weights, orthogonal recurrent
weights, zero biases, except the gate that keeps the old state (LSTM forget
gate, GRU update gate), whose bias is ``forget_bias``.

**truncation.**  The RNN trained on France -> French with
``rnn_backward(dh, cache, truncate=k)``: with T = gap + 2 steps the loss at
the query reaches the country's cell only when k >= T.  With ``Wx`` starting
at zero no k learns a gap beyond k - 2; with the usual random ``Wx`` the
untrained recurrence carries a random projection of the country some way, and
the truncated RNN learns to read that out a little beyond k - 2.

**gradients.**  The gradient that the loss on the last step sends back to
the input k steps earlier, for each cell, measured with its backward pass
(:func:`rnn_course.gradient_flow.gradient_at_lag`), on freshly initialised
networks reading France -> French.

The layer functions come from ``impl``: any module or object with
``rnn_forward``, ``rnn_backward``, ``lstm_forward``, ``lstm_backward``,
``gru_forward``, ``gru_backward`` and (when clipping is on)
``clip_by_global_norm``, following the course contract.  A notebook passes a
namespace of the student's own functions.

About the forget-gate bias.  The France -> French default is 3.0 (forget
gate sigmoid(3) ~ 0.95, a memory time constant of ~20 steps), not the 1.0 of
:func:`rnn_course.training.init_lstm`.  With 1.0 (forget gate ~0.73) the
signal from the opening token is scaled by ~0.73**100 ~ 1e-14 across a gap of
100, in the forward pass and in the gradient, and the LSTM fails at gap 100
within this budget just as the RNN does (it still learns gaps of ~50).  The
RNN has no such knob: its orthogonal ``Wh`` is already the norm-preserving
choice.  The temporal order uses 1.0: at T = 100 its LSTM with 1.0 was at
100 % after 500 of the 1000 steps, with 3.0 at 0.8 after 600, and with 2.0 or
5.0 still at chance after 1000 (single runs, seed 0).
docs/experiments.md gives the measured tables.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import importlib
import importlib.util
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

from rnn_course.data import TASK_TITLES, AddingTask1997, CountryLanguageTask, TemporalOrderTask
from rnn_course.gradient_flow import gradient_at_lag, relative_gradient
from rnn_course.training import CELLS, SUCCESS, Adam, evaluate, init_params, train

__all__ = ["PRESETS", "REQUIRED", "SUCCESS", "TASK_NAMES", "load_impl", "check_impl",
           "make_task", "run_long_range", "run_study", "run_truncation", "longest_learned",
           "run_gradients", "summary_table", "main"]

# the contract functions the experiment calls, per model
LAYERS = {"rnn": ("rnn_forward", "rnn_backward"), "lstm": ("lstm_forward", "lstm_backward"),
          "gru": ("gru_forward", "gru_backward")}
REQUIRED = tuple(name for layer in LAYERS.values() for name in layer) + ("clip_by_global_norm",)
assert tuple(LAYERS) == CELLS

TASK_NAMES = ("country", "adding", "order")


def _budget(lags, steps, **extra):
    """A task's shared budget: the same for every model trained on it."""
    config = {"lags": tuple(lags), "steps": steps, "batch_size": 32, "hidden_size": 32,
              "lr": 3e-3, "anneal": False, "clip_norm": 1.0, "forget_bias": 3.0,
              "eval_size": 1000, "seed": 0}
    config.update(extra)
    return config


# One shared setup per (preset, task); every model of a task gets exactly the same one.
PRESETS = {
    "default": {
        "country": _budget((2, 5, 10, 20, 50, 100, 150), 600, n_countries=4, n_fillers=4),
        "adding": _budget((20, 50), 2000, anneal=True),
        "order": _budget((20, 50, 100), 1000, forget_bias=1.0),
        # RNN only, with rnn_backward(..., truncate=k): gaps on either side of k - 2; Wx
        # starting at zero (only a gradient can make it read the country) or Xavier
        "truncation": _budget((2, 6, 14, 20, 30, 50), 600, n_countries=4, n_fillers=4,
                              truncates=(4, 8, 16), input_inits=("zero", "xavier"),
                              eval_size=500),
        # fresh networks, no training: the lags at which the gradient is reported
        "gradients": {"lag": 150, "report": (1, 2, 5, 10, 20, 50, 100, 150), "batch_size": 32,
                      "hidden_size": 32, "forget_bias": 3.0, "seed": 0},
    },
    # cut down to run inside the notebook's time budget
    "notebook": {
        "country": _budget((2, 10, 30, 100), 200, n_countries=4, n_fillers=4, eval_size=500),
        "adding": _budget((20,), 300, hidden_size=16, anneal=True, eval_size=300),
        "order": _budget((10, 40), 200, hidden_size=16, forget_bias=1.0, eval_size=300),
        "truncation": _budget((2, 3, 6, 7), 150, hidden_size=16, n_countries=4, n_fillers=4,
                              truncates=(4, 8), input_inits=("zero",), eval_size=300),
        "gradients": {"lag": 60, "report": (1, 5, 10, 20, 40, 60), "batch_size": 16,
                      "hidden_size": 32, "forget_bias": 3.0, "seed": 0},
    },
}

RESULT_KEYS = ("task", "model", "lag", "min_lag", "accuracy", "chance", "steps", "seconds")


class ImplError(ValueError):
    """The implementation module cannot be imported or lacks a contract function."""


def make_task(name, lag, config):
    """The task ``name`` (one of ``TASK_NAMES``) at lag ``lag`` (gap for country, T otherwise)."""
    if name == "country":
        return CountryLanguageTask(lag, config["n_countries"], config["n_fillers"])
    if name == "adding":
        return AddingTask1997(lag)
    if name == "order":
        return TemporalOrderTask(lag)
    raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, got {name!r}")


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
# The runs: one (task, lag, model) each, in this process or in a pool
# --------------------------------------------------------------------------- #
def _config(preset, task, overrides):
    """The preset's config for ``task``, with ``overrides`` (known keys only) applied."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    if task not in PRESETS[preset]:
        raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, got {task!r}")
    config = dict(PRESETS[preset][task])
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    return config


def _check_models(impl, models, config):
    bad = [m for m in models if m not in LAYERS]
    if bad or not models:
        raise ValueError(f"models must be a non-empty subset of {list(LAYERS)}, got {models!r}")
    needed = [n for m in models for n in LAYERS[m]]
    if config.get("clip_norm") is not None:
        needed.append("clip_by_global_norm")
    check_impl(impl, needed)


def _run_one(impl, job, progress=False):
    """Train one model on one task from its config; return its result dict and whether it
    diverged."""
    name, lag, model, config, truncate = job
    task = make_task(name, lag, config)
    forward, backward = (getattr(impl, n) for n in LAYERS[model])
    if truncate is not None:
        backward = functools.partial(backward, truncate=truncate)
    clip = None
    if config["clip_norm"] is not None:
        clip = functools.partial(impl.clip_by_global_norm, max_norm=config["clip_norm"])
    # the same seed for every model: the same training batches and held-out batch
    params = init_params(model, task.input_size, config["hidden_size"], task.output_size,
                         seed=config["seed"], forget_bias=config["forget_bias"])
    if config.get("input_init") == "zero":
        params["Wx"][:] = 0.0  # the input is read only once a gradient has taught Wx to
    start = time.perf_counter()
    history = train(forward, backward, params, task, steps=config["steps"],
                    batch_size=config["batch_size"], optimizer=Adam(lr=config["lr"]),
                    clip=clip, seed=config["seed"], eval_every=config["steps"],
                    eval_size=100, progress=progress, desc=f"{model} {name} {lag}",
                    anneal=config["anneal"])
    # a fresh held-out batch, drawn from a stream training never uses
    score = evaluate(forward, params, task, n=config["eval_size"], seed=config["seed"])
    result = {"task": name, "model": model, "lag": lag, "min_lag": task.min_lag,
              "accuracy": score["accuracy"], "chance": task.chance, "steps": history.steps,
              "seconds": round(time.perf_counter() - start, 3)}
    if truncate is not None:
        result["truncate"] = truncate
        result["input_init"] = config.get("input_init", "xavier")
    return result, history.diverged


_POOL_JOBS = None  # (impl, jobs) handed to forked workers


def _pool_run(index):
    impl, jobs = _POOL_JOBS
    return index, _run_one(impl, jobs[index])


def _cost(job):
    """A rough cost estimate, to start the longest runs first."""
    name, lag, model, config, _ = job
    per_step = {"rnn": 1.0, "lstm": 4.0, "gru": 5.0}[model]
    return per_step * (lag + 2) * config["steps"] * config["batch_size"]


def _execute(impl, jobs, workers=1, progress=False, verbose=True, file=None):
    """Run every job; return the results in the order of ``jobs``.

    ``workers`` > 1 runs them in that many forked processes (Linux), longest first.
    """
    file = sys.stdout if file is None else file
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"jobs must be a positive int, got {workers!r}")
    # build every task first, so that a bad lag fails before any training
    for name, lag, _, config, _ in jobs:
        make_task(name, lag, config)
    results = [None] * len(jobs)

    def done(index, result, diverged):
        results[index] = result
        if verbose:
            note = f"  (diverged at step {result['steps']})" if diverged else ""
            print(_progress_row(result) + note, file=file, flush=True)

    if verbose:
        print("  task     lag  model  accuracy  chance  seconds", file=file, flush=True)
    if workers == 1 or len(jobs) == 1:
        for index, job in enumerate(jobs):
            done(index, *_run_one(impl, job, progress))
        return results
    global _POOL_JOBS
    _POOL_JOBS = (impl, jobs)
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i]))
    try:
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_pool_run, i) for i in order]
            for future in concurrent.futures.as_completed(futures):
                index, (result, diverged) = future.result()
                done(index, result, diverged)
    finally:
        _POOL_JOBS = None
    return results


def _progress_row(result):
    return (f"  {result['task']:<8}{result['lag']:>4}  {result['model']:<5} "
            f"{result['accuracy']:>9.3f} {result['chance']:>7.3f} {result['seconds']:>8.1f}")


def _budget_line(task, config):
    extra = ""
    if task == "country":
        extra = f", K={config['n_countries']} countries, {config['n_fillers']} filler words"
    clip = "off" if config["clip_norm"] is None else f"global norm {config['clip_norm']}"
    anneal = " annealed linearly to 0" if config["anneal"] else ""
    return (f"# {task} ({TASK_TITLES[task]}{extra}): H={config['hidden_size']}, Adam "
            f"lr={config['lr']:g}{anneal}, batch {config['batch_size']}, {config['steps']} "
            f"steps, clip {clip}, LSTM forget / GRU update bias {config['forget_bias']:g}, "
            f"held-out {config['eval_size']}, seed {config['seed']}, lags {list(config['lags'])}")


def summary_table(results):
    """The study as a text table: one row per (task, lag), one column per model.

    Each cell is the held-out accuracy; ``*`` marks a success (>= ``SUCCESS``).
    """
    models = list(dict.fromkeys(r["model"] for r in results))
    lines = ["task      lag  min lag  chance  " + "  ".join(f"{m:>6}" for m in models)]
    keys = list(dict.fromkeys((r["task"], r["lag"]) for r in results))
    for task, lag in keys:
        rows = {r["model"]: r for r in results if r["task"] == task and r["lag"] == lag}
        first = next(iter(rows.values()))
        cells = []
        for m in models:
            if m in rows:
                acc = rows[m]["accuracy"]
                cells.append(f"{acc:>5.3f}{'*' if acc >= SUCCESS else ' '}")
            else:
                cells.append(f"{'-':>6}")
        lines.append(f"{task:<8}{lag:>5}  {first['min_lag']:>7}  {first['chance']:>6.3f}  "
                     + "  ".join(cells))
    return "\n".join(lines)


def run_study(impl, tasks=TASK_NAMES, *, preset="default", models=CELLS, lags=None,
              steps=None, jobs=1, progress=False, verbose=True, file=None, **overrides):
    """Train the models under one budget per task on every task and lag of the preset.

    Inputs:
    - impl: module or object with the forward and backward of each model and
      ``clip_by_global_norm`` (course contract)
    - tasks: which of ``TASK_NAMES`` to run, in this order
    - preset: "default" (the full study) or "notebook" (cut down)
    - models: which of "rnn", "lstm", "gru" to train, in this order for each lag
    - lags: override the lags of every task (gap for country, T otherwise)
    - steps: override the optimiser steps per run of every task
    - jobs: number of processes (forked; > 1 needs Linux and an ``impl`` the
      workers can use as is: a module, or functions defined before the call)
    - progress: a tqdm bar per run (only with jobs=1); verbose: print each run as
      it finishes, then the summary table; file: where to (default sys.stdout)
    - overrides: settings applied to every task (e.g. seed, forget_bias, hidden_size)

    Returns:
    - list of dicts, one per (task, lag, model), in that order, with the keys of
      ``RESULT_KEYS``: ``task``, ``model``, ``lag`` (int), ``min_lag`` (the
      fewest steps between a relevant input and the answer), ``accuracy``
      (held-out, float), ``chance``, ``steps`` (int) and ``seconds``
    """
    file = sys.stdout if file is None else file
    if steps is not None:
        overrides["steps"] = steps
    if lags is not None:
        overrides["lags"] = tuple(lags)
    all_jobs = []
    for name in tasks:
        if name not in TASK_NAMES:
            raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, got {name!r}")
        config = _config(preset, name, overrides)
        _check_models(impl, models, config)
        if verbose:
            print(_budget_line(name, config), file=file, flush=True)
        all_jobs += [(name, lag, m, config, None) for lag in config["lags"] for m in models]
    results = _execute(impl, all_jobs, jobs, progress, verbose, file)
    if verbose:
        print(summary_table(results), file=file, flush=True)
    return results


def run_long_range(impl, lags=None, steps=None, *, task="country", preset="default",
                   models=("rnn", "lstm"), jobs=1, progress=False, verbose=True, file=None,
                   gaps=None, **overrides):
    """Train the models under one budget on one task, lag by lag.

    Inputs:
    - impl: as for :func:`run_study`
    - lags: iterable of ints (default: the preset's); ``gaps`` is the same for
      France -> French, where the lag is the gap
    - steps: optimiser steps per run (default: the preset's)
    - task: one of ``TASK_NAMES`` (default "country", France -> French)
    - models: as for :func:`run_study`, but an RNN and an LSTM by default (the
      ``lstm`` notebook's comparison; pass ``CELLS`` for the GRU too)
    - preset, jobs, progress, verbose, file: as for :func:`run_study`
    - overrides: any other key of ``PRESETS[preset][task]``: batch_size,
      hidden_size, lr, clip_norm (None: no clipping), forget_bias, eval_size,
      seed, and for country n_countries, n_fillers

    Returns:
    - list of dicts, one per (lag, model), as for :func:`run_study`
    """
    if gaps is not None:
        if lags is not None:
            raise ValueError("give lags or gaps, not both")
        lags = gaps
    if lags is not None:
        overrides["lags"] = tuple(lags)
    if steps is not None:
        overrides["steps"] = steps
    config = _config(preset, task, overrides)
    _check_models(impl, models, config)
    file = sys.stdout if file is None else file
    if verbose:
        print(_budget_line(task, config), file=file, flush=True)
    jobs_list = [(task, lag, m, config, None) for lag in config["lags"] for m in models]
    results = _execute(impl, jobs_list, jobs, progress, verbose, file)
    if verbose:
        print(summary_table(results), file=file, flush=True)
    return results


# --------------------------------------------------------------------------- #
# Truncated BPTT against the lag
# --------------------------------------------------------------------------- #
def run_truncation(impl, truncates=None, lags=None, *, preset="default", jobs=1,
                   verbose=True, file=None, **overrides):
    """The RNN on France -> French, trained with ``rnn_backward(dh, cache, truncate=k)``.

    With T = gap + 2 steps, the loss at the query reaches the country's cell
    only when k >= T: the gradient beyond k cells is exactly zero, so the
    weights never *learn* to read the country for a gap beyond k - 2.  Each k
    runs twice: with ``Wx`` starting at zero (``input_init`` "zero": the
    network can read the country only once a gradient has taught it to) and
    with the usual Xavier ``Wx`` ("xavier": a random projection of the country
    enters the state from the start, and the untrained recurrence may carry it
    some way; what is learnt beyond k - 2 is a readout of that).

    Inputs:
    - impl: with ``rnn_forward``, ``rnn_backward`` (taking ``truncate``) and
      ``clip_by_global_norm``
    - truncates: the k to try (default: the preset's)
    - lags: the gaps (default: the preset's)
    - preset, jobs, verbose, file: as for :func:`run_study`; overrides: keys of
      ``PRESETS[preset]["truncation"]`` (e.g. ``input_inits=("zero",)``)

    Returns:
    - list of result dicts (see :func:`run_study`) with ``task`` "country",
      ``model`` "rnn", ``truncate`` (k) and ``input_init`` added, one per
      (input_init, k, gap)
    """
    if truncates is not None:
        overrides["truncates"] = tuple(truncates)
    if lags is not None:
        overrides["lags"] = tuple(lags)
    config = _config(preset, "truncation", overrides)
    bad = [i for i in config["input_inits"] if i not in ("zero", "xavier")]
    if bad or not config["input_inits"]:
        raise ValueError(f"input_inits must be a non-empty subset of ('zero', 'xavier'), "
                         f"got {config['input_inits']!r}")
    _check_models(impl, ("rnn",), config)
    file = sys.stdout if file is None else file
    if verbose:
        print(_budget_line("country", config) + f", truncate k in {list(config['truncates'])}"
              f", Wx starting {' / '.join(config['input_inits'])}", file=file, flush=True)
    jobs_list = [("country", lag, "rnn", dict(config, input_init=init), k)
                 for init in config["input_inits"] for k in config["truncates"]
                 for lag in config["lags"]]
    results = _execute(impl, jobs_list, jobs, False, verbose, file)
    if verbose:
        print(truncation_table(results), file=file, flush=True)
    return results


def longest_learned(results, input_init="zero"):
    """For each ``truncate`` k: the longest gap whose run succeeded (None if none did),
    among the rows with this ``input_init`` (rows without one count as "xavier")."""
    out = {}
    for r in results:
        if r.get("input_init", "xavier") != input_init:
            continue
        k = r["truncate"]
        out.setdefault(k, None)
        if r["accuracy"] >= SUCCESS and (out[k] is None or r["lag"] > out[k]):
            out[k] = r["lag"]
    return out


def truncation_table(results):
    """Accuracy of the truncated RNN: per ``input_init``, one row per k, one column per
    gap, and the longest gap learned (a ``*`` marks a success)."""
    gaps = sorted({r["lag"] for r in results})
    lines = []
    for init in dict.fromkeys(r.get("input_init", "xavier") for r in results):
        rows = [r for r in results if r.get("input_init", "xavier") == init]
        ks = list(dict.fromkeys(r["truncate"] for r in rows))
        acc = {(r["truncate"], r["lag"]): r["accuracy"] for r in rows}
        longest = longest_learned(rows, init)
        lines.append(f"Wx {init:<6}  " + "  ".join(f"gap {g:>3}" for g in gaps)
                     + "  longest gap learned")
        for k in ks:
            cells = [f"{acc[k, g]:>6.3f}{'*' if acc[k, g] >= SUCCESS else ' '}"
                     if (k, g) in acc else f"{'-':>7}" for g in gaps]
            lines.append(f"k = {k:<6}  " + "  ".join(cells)
                         + f"  {longest[k]} (bound k - 2 = {k - 2})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# The gradient reaching lag k
# --------------------------------------------------------------------------- #
def run_gradients(impl, lag=None, *, preset="default", models=CELLS, verbose=True, file=None,
                  **overrides):
    """The gradient reaching each lag k, for each cell, on fresh networks.

    Each model (the study's initialisation) reads one batch of France ->
    French sentences with ``lag`` filler words; the loss is a random direction
    on the last hidden state (:func:`rnn_course.gradient_flow.gradient_at_lag`).

    Inputs:
    - impl: with ``<model>_forward`` and ``<model>_backward`` for each model
    - lag: the gap (default: the preset's); preset, models, verbose, file: as
      for :func:`run_study`; overrides: keys of ``PRESETS[preset]["gradients"]``

    Returns:
    - list of dicts, one per model: ``model``, ``lags`` (list 0 .. T-1) and
      ``gradient`` (list, ``||dL/dx_{T-1-k}|| / ||dL/dx_{T-1}||``)
    """
    if lag is not None:
        overrides["lag"] = lag
    config = _config(preset, "gradients", overrides)
    bad = [m for m in models if m not in LAYERS]
    if bad or not models:
        raise ValueError(f"models must be a non-empty subset of {list(LAYERS)}, got {models!r}")
    check_impl(impl, [n for m in models for n in LAYERS[m]])
    task = CountryLanguageTask(config["lag"])
    x, _ = task.batch(config["batch_size"], seed=config["seed"])
    rows = []
    for model in models:
        params = init_params(model, task.input_size, config["hidden_size"], task.output_size,
                             seed=config["seed"], forget_bias=config["forget_bias"])
        forward, backward = (getattr(impl, n) for n in LAYERS[model])
        rel = relative_gradient(gradient_at_lag(forward, backward, params, x,
                                                seed=config["seed"]))
        rows.append({"model": model, "lags": list(range(rel.size)), "gradient": rel.tolist()})
    if verbose:
        file = sys.stdout if file is None else file
        print(f"# gradient reaching lag k, relative to lag 0: fresh networks (H="
              f"{config['hidden_size']}, LSTM forget / GRU update bias "
              f"{config['forget_bias']:g}), France -> French gap {config['lag']}, batch "
              f"{config['batch_size']}", file=file)
        print(gradient_table(rows, config["report"]), file=file, flush=True)
    return rows


def gradient_table(rows, report):
    """One line per lag in ``report``, one column per model."""
    lines = ["    k  " + "  ".join(f"{r['model']:>9}" for r in rows)]
    for k in report:
        lines.append(f"{k:>5}  " + "  ".join(
            f"{r['gradient'][k]:>9.1e}" if k < len(r["gradient"]) else f"{'-':>9}"
            for r in rows))
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def _default_jobs():
    return max(1, min(2, os.cpu_count() or 1))


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m rnn_course.experiments",
        description="Experiments of rnn-course.")
    sub = parser.add_subparsers(dest="command", required=True)
    impl_help = ("module (e.g. autograder.reference) or .py file with the contract's "
                 "rnn_*, lstm_*, gru_* forward and backward and clip_by_global_norm")

    def common(p):
        p.add_argument("--impl", required=True, metavar="MODULE", help=impl_help)
        p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
        p.add_argument("--plot", metavar="FILE",
                       help="also draw the results into an image (e.g. study.png)")
        p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                       help="shared setup (default: %(default)s)")

    lr = sub.add_parser(
        "long-range",
        help="RNN vs LSTM vs GRU on France -> French, the adding problem and the temporal "
             "order for a range of lags, under one budget per task",
        description="Train an RNN, an LSTM and a GRU under one budget per task on France -> "
                    "French, the adding problem and the temporal-order task (Hochreiter & "
                    "Schmidhuber 1997) for a range of lags; report held-out accuracy.")
    common(lr)
    lr.add_argument("--tasks", nargs="+", choices=TASK_NAMES, default=list(TASK_NAMES),
                    help="tasks to run (default: %(default)s)")
    lr.add_argument("--lags", "--gaps", type=int, nargs="+", metavar="LAG", dest="lags",
                    help="override the lags of every task (gap for country, T otherwise)")
    lr.add_argument("--steps", type=int, help="override the number of steps per run")
    lr.add_argument("--seed", type=int, help="override the seed")
    lr.add_argument("--forget-bias", type=float,
                    help="override the LSTM forget-gate / GRU update-gate bias")
    lr.add_argument("--models", nargs="+", choices=list(LAYERS), default=list(LAYERS),
                    help="models to train (default: %(default)s)")
    lr.add_argument("--jobs", type=int, default=_default_jobs(),
                    help="processes to train in (default: %(default)s)")
    lr.add_argument("--progress", action="store_true",
                    help="show a progress bar per run (with --jobs 1)")

    tr = sub.add_parser(
        "truncation", help="the longest gap the RNN learns with rnn_backward(truncate=k)",
        description="Train the RNN on France -> French with truncated BPTT for a few k and "
                    "report the longest gap it learns.")
    common(tr)
    tr.add_argument("--truncates", type=int, nargs="+", metavar="K", help="override the k")
    tr.add_argument("--gaps", type=int, nargs="+", metavar="GAP", help="override the gaps")
    tr.add_argument("--steps", type=int, help="override the number of steps per run")
    tr.add_argument("--jobs", type=int, default=_default_jobs(),
                    help="processes to train in (default: %(default)s)")

    gr = sub.add_parser(
        "gradients", help="the gradient reaching lag k for each cell, on fresh networks",
        description="Measure, with each cell's backward pass, the gradient the loss on the "
                    "last step sends back k steps.")
    common(gr)
    gr.add_argument("--lag", type=int, help="the gap of the sentences (default: the preset's)")
    gr.add_argument("--models", nargs="+", choices=list(LAYERS), default=list(LAYERS),
                    help="models to measure (default: %(default)s)")
    return parser


def main(argv=None):
    """Command-line entry point; returns the exit status (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    try:
        impl = load_impl(args.impl)
        if args.command == "long-range":
            overrides = {k: v for k, v in (("seed", args.seed),
                                           ("forget_bias", args.forget_bias)) if v is not None}
            results = run_study(impl, tuple(args.tasks), preset=args.preset,
                                models=tuple(args.models), lags=args.lags, steps=args.steps,
                                jobs=args.jobs, progress=args.progress, **overrides)
        elif args.command == "truncation":
            overrides = {} if args.steps is None else {"steps": args.steps}
            results = run_truncation(impl, args.truncates, args.gaps, preset=args.preset,
                                     jobs=args.jobs, **overrides)
        else:
            results = run_gradients(impl, args.lag, preset=args.preset,
                                    models=tuple(args.models))
    except ValueError as err:  # our own checks: a one-line message, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"# total {time.perf_counter() - start:.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        _plot(args.command, results, args.plot)
    return 0


def _plot(command, results, path):
    """Draw the results of ``command`` into the image file ``path`` (headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnn_course.demos import gru as demos

    if command == "long-range":
        axes = demos.plot_lag_study(results)
        fig = axes[0].figure
    elif command == "gradients":
        fig = demos.plot_gradient_at_lag(results).figure
    else:
        fig, ax = plt.subplots(figsize=(7, 4))
        ks = list(dict.fromkeys(r["truncate"] for r in results))
        for init, k in dict.fromkeys((r["input_init"], r["truncate"]) for r in results):
            rows = sorted((x["lag"], x["accuracy"]) for x in results
                          if (x["input_init"], x["truncate"]) == (init, k))
            ax.plot(*zip(*rows, strict=True), marker="o", color=f"C{ks.index(k)}",
                    ls="-" if init == "zero" else "--", label=f"truncate={k}, Wx from {init}")
        ax.axhline(SUCCESS, color="tab:green", ls=":", lw=1)
        ax.set_xlabel("gap")
        ax.set_ylabel("held-out accuracy")
        ax.set_title("RNN with truncated BPTT on France -> French")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _with_one_blas_thread() -> None:
    """Re-run this command with one BLAS thread per process, unless the caller chose.

    The study trains in forked processes (``--jobs``, one per core by default); with
    BLAS's own threads on top they fight for the cores: ``long-range`` took over 10
    minutes on 2 cores instead of 95 s.  The variables must be set before numpy is
    imported, hence a fresh process.
    """
    if any(var in os.environ for var in BLAS_THREAD_VARS):
        return
    env = dict(os.environ, **{var: "1" for var in BLAS_THREAD_VARS})
    os.execve(sys.executable, [sys.executable, "-m", "rnn_course.experiments", *sys.argv[1:]],
              env)


if __name__ == "__main__":
    _with_one_blas_thread()
    sys.exit(main())
