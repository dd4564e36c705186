"""Benchmarks of rnn-course (``make bench`` = ``python -m bench``).

A benchmark here is a script that measures and prints a table, not a timed
test.  Four of them, each also runnable alone (``python -m bench.numerics``):

- :mod:`bench.numerics`  reference RNN / LSTM forward+backward: time, GFLOP/s,
  fraction of this machine's float64 matmul throughput, against a naive
  per-step implementation and PyTorch's CPU ``nn.RNN`` / ``nn.LSTM``;
- :mod:`bench.grading`   ``python -m autograder grade`` against stock nbgrader
  (autograde + generate_feedback + export) on identical copies of a class;
- :mod:`bench.notebooks` wall time and kernel peak memory of every instructor
  notebook, and of grading one submission of each assignment;
- :mod:`bench.scale`     grading throughput and parallel efficiency with 1, 2, 4, ...
  local workers up to this machine's cores, and on a ``dask.distributed.LocalCluster``
  of as many workers.

Every module has ``run(quick=False) -> dict`` (prints its table, returns the
JSON-able results) and a ``--quick`` mode on tiny sizes for the smoke test.
Results are written as JSON under ``bench/results/`` (git-ignored).

This module holds the shared helpers: timing, tables, JSON, machine facts.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (= the nbgrader course directory)."""
RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------- #
# timing
# --------------------------------------------------------------------------- #
def time_calls(fns, repeats, warmup=1, cpu=None):
    """Time several zero-argument callables, interleaved round-robin.

    Interleaving (a, b, c, a, b, c, ...) makes a slow patch of a shared machine
    hit every contender alike instead of whichever ran during it.

    Returns ``{name: [seconds, ...]}`` (wall clock, ``time.perf_counter``); if
    ``cpu`` is a dict it receives the same for the process's CPU time
    (``time.process_time``: all threads, immune to time-slicing by other
    processes).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    if cpu is not None:
        cpu.update({name: [] for name in fns})
    for _ in range(repeats):
        for name, fn in fns.items():
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            if cpu is not None:
                cpu[name].append(time.process_time() - c0)
    return times


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------- #
# output
# --------------------------------------------------------------------------- #
def fmt(value, spec=".3g"):
    """A table cell: numbers formatted, None as '-', everything else str()."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return format(value, spec)
    return str(value)


def table(title, columns, rows, note=None):
    """Render a plain-text table (left-aligned first column, numbers right).

    ``columns`` is a list of ``(header, key, format_spec)``; ``rows`` a list of
    dicts.  Returns the string (the caller prints it).
    """
    cells = [[h for h, _, _ in columns]]
    for row in rows:
        cells.append([fmt(row.get(key), spec) for _, key, spec in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]

    def line(r):
        out = [r[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    text = [title, "=" * len(title), line(cells[0]), sep]
    text += [line(r) for r in cells[1:]]
    if note:
        text += ["", note.rstrip()]
    return "\n".join(text) + "\n"


def verdict(ok):
    return "MET" if ok else "MISSED"


def write_json(name, data, out_dir=None):
    """Write ``data`` to ``<out_dir or bench/results>/<name>.json``; returns the path."""
    out = Path(out_dir) if out_dir else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


# --------------------------------------------------------------------------- #
# machine facts
# --------------------------------------------------------------------------- #
def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores():
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where the
    platform has none): what a benchmark can spread work over."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def os_name():
    """The distribution's name (``PRETTY_NAME`` of os-release), else ``platform.system()``."""
    try:
        return platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError):
        return f"{platform.system()} {platform.release()}".strip()


def describe_machine(info):
    """One line naming the machine of :func:`machine` without its hostname, e.g.
    ``AMD EPYC 7B13, 2 cores, 7.8 GiB memory, Debian GNU/Linux 12 (bookworm), Python 3.11.2``."""
    usable, cores = info.get("cores_usable"), info.get("cores")
    cores_text = (f"{usable} cores" if usable == cores or cores is None
                  else f"{usable} of {cores} cores usable")
    parts = [info.get("cpu", "unknown CPU"), cores_text]
    if info.get("mem_gb") is not None:
        parts.append(f"{info['mem_gb']:g} GiB memory")
    parts += [info.get("os", ""), f"Python {info.get('python', '?')}"]
    return ", ".join(p for p in parts if p)


def machine():
    """What the numbers were measured on (recorded in every JSON): CPU model, cores
    (all, and those this process may use), memory, OS, Python, numpy and its BLAS,
    the load at start; never the hostname."""
    import numpy as np

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable_cores(),
        "os": os_name(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001  (older numpy: not worth failing a benchmark for)
        info["blas"] = "unknown"
    try:
        mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        info["mem_gb"] = round(int(mem) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    return info


TARGET_SERIAL_S = 0.05
"""Issue 15: the coordinator's serial share at most 0.05 s per submission."""


def serial_share(stage_seconds, k):
    """Seconds per submission of the stages the coordinator runs itself (its serial share).

    The stages are :data:`autograder.pipeline.types.COORDINATOR_STAGES` (one home).
    """
    from autograder.pipeline.types import COORDINATOR_STAGES

    return sum(stage_seconds.get(s, 0.0) for s in COORDINATOR_STAGES) / k


def loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def venv_env(extra=None):
    """The environment for child processes: the venv's bin/ first on PATH (nbgrader
    runs ``alembic`` and ``jupyter`` by name), MPLBACKEND=Agg."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


# --------------------------------------------------------------------------- #
# a course directory to copy classes from (built once per process)
# --------------------------------------------------------------------------- #
_TEMPLATES: dict = {}
REDIRECTING_ENV = ("RNN_COURSE_ROOT", "RNN_COURSE_DB_URL", "RNN_COURSE_EXCHANGE",
                   "RNN_COURSE_SECRET", "RNN_COURSE_ID", "RNN_COURSE_GRADING_DIR")


def clean_env(extra=None):
    """:func:`venv_env` without any variable that would redirect a course or grading,
    one BLAS thread per process (what ``make`` sets for grading)."""
    env = venv_env(extra)
    for name in REDIRECTING_ENV:
        env.pop(name, None)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def course_template(assignments):
    """A self-contained course directory with ``assignments`` released in it (config,
    source/, release/, a gradebook that knows their cells), made from the repository's
    ``nbgrader_config.py`` and ``source/`` by :func:`autograder.commands.release.generate`
    (nbgrader's generate_assignment), as the demo does; the repository's own
    ``release/`` is left alone.

    Built once per process into a temporary folder (removed at exit) and reused
    by every benchmark that asks for a subset of what it holds: copy it, never
    grade in it.
    """
    import atexit
    import shutil
    import tempfile

    from autograder.commands import release

    wanted = tuple(assignments)
    for have, path in _TEMPLATES.items():
        if set(wanted) <= set(have):
            return path
    work = Path(tempfile.mkdtemp(prefix="bench-template-"))
    atexit.register(shutil.rmtree, work, True)
    path = work / "course"
    path.mkdir()
    saved = {k: os.environ.pop(k) for k in REDIRECTING_ENV if k in os.environ}
    try:
        shutil.copy2(ROOT / "nbgrader_config.py", path / "nbgrader_config.py")
        for a in wanted:
            shutil.copytree(ROOT / "source" / a, path / "source" / a)
        for a in wanted:
            release.generate(path, a)
    finally:
        os.environ.update(saved)
    _TEMPLATES[wanted] = path
    return path


def solution_notebook(course_dir, assignment, count=None):
    """The release notebook with its first ``count`` (all when None) solution cells
    filled in from the source: what a student who solved everything hands in."""
    import nbformat

    from autograder.commands.demo import fill_solutions

    course_dir = Path(course_dir)
    src = nbformat.read(course_dir / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    rel = nbformat.read(course_dir / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    return fill_solutions(rel, src, count)
