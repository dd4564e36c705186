"""Run a whole notebook in the sandbox and say what went wrong, never raising for it.

:func:`execute_notebook` drives nbgrader's ``Execute`` preprocessor (so
``allow_errors``, interrupt-on-timeout and nbgrader's error cells behave as in
``nbgrader autograde``) with :class:`SandboxedKernelManager` and an output cap,
and turns whatever the student's code did to its kernel into outcome flags.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t

from jupyter_core.utils import run_sync
from nbclient.client import NotebookClient
from nbclient.exceptions import CellTimeoutError
from nbconvert.preprocessors import ExecutePreprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_notebook
from nbgrader.preprocessors import Execute
from traitlets import Integer, Set, Unicode
from traitlets.config import Config

from .bwrap import SandboxError
from .kernel import SandboxedKernelManager
from .limits import KERNEL_LIMITS, OUTPUT_LIMITS, Limits, configurable_limits

log = logging.getLogger(__name__)

# Outcome flags, in the order they are reported.
TIMEOUT = "timeout"
MEMORY_LIMIT = "memory_limit"
PROCESS_LIMIT = "process_limit"
CPU_LIMIT = "cpu_limit"
DISK_LIMIT = "disk_limit"
OUTPUT_TRUNCATED = "output_truncated"
KERNEL_DIED = "kernel_died"
FLAGS = (
    TIMEOUT,
    MEMORY_LIMIT,
    PROCESS_LIMIT,
    CPU_LIMIT,
    DISK_LIMIT,
    OUTPUT_TRUNCATED,
    KERNEL_DIED,
)

TRUNCATION_NOTICE = "\n[output truncated by the grader]\n"
# ename of the error output put in cells that the grader stopped or never ran.
STOPPED_ENAME = "GraderStoppedExecution"

SIGKILL_STATUS = 128 + 9
SIGXCPU_STATUS = 128 + 24

# Control messages: small, never stored as outputs.
_CONTROL_MSGS = frozenset({"status", "execute_input", "clear_output"})
_MEMORY_ENAMES = frozenset({"MemoryError", "_ArrayMemoryError"})
_MEMORY_WORDS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
_PROCESS_WORDS = ("Resource temporarily unavailable", "can't start new thread")
_DISK_WORDS = ("No space left on device",)


def payload_size(obj: t.Any, limit: int | None = None) -> int:
    """Approximate bytes of a decoded message part: lengths of its strings and buffers.

    Iterative (a deeply nested payload must not blow the stack) and it stops
    counting once past ``limit``.
    """
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item)
        elif isinstance(item, memoryview):
            total += item.nbytes
        elif isinstance(item, dict):
            total += 8 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 8 * len(item)
            stack.extend(item)
        else:
            total += 8
        if limit is not None and total > limit:
            break
    return total


def _clip(text: t.Any, limit: int) -> t.Any:
    if isinstance(text, str) and len(text) > limit:
        return text[: limit // 2] + TRUNCATION_NOTICE + text[-limit // 2 :]
    return text


def shrink_error(content: dict[str, t.Any], limit: int) -> None:
    """Bound an error's ``evalue`` and ``traceback`` in place, keeping its ``ename``.

    Errors are never dropped (nbgrader grades a test cell by whether it has
    one), so they are made small instead.
    """
    content["ename"] = _clip(content.get("ename"), 200)
    content["evalue"] = _clip(content.get("evalue"), limit)
    traceback = content.get("traceback")
    if isinstance(traceback, list):
        kept, used = [], 0
        for line in reversed(traceback):  # the end of a traceback says the most
            line = _clip(line, limit)
            used += len(line) if isinstance(line, str) else 8
            if used > limit and kept:
                kept.append("[traceback truncated by the grader]")
                break
            kept.append(line)
        content["traceback"] = list(reversed(kept))


class OutputLimitMixin(configurable_limits(OUTPUT_LIMITS), NotebookClient):
    """Caps the output kept per cell and per notebook while messages arrive.

    Mix in before an nbclient ``NotebookClient`` subclass (e.g. nbgrader's
    ``Execute``).  Messages past a budget are dropped as they arrive, a stream
    is cut at the budget, and the cell gets one "[output truncated by the
    grader]" stream.  Also records a per-cell timeout and remembers its
    kernel manager for :func:`execute_notebook`.
    """

    error_text_bytes = Integer(
        20_000, help="Characters kept of an error's evalue and of its traceback."
    ).tag(config=True)
    truncation_notice = Unicode(
        TRUNCATION_NOTICE, help="Stream text added to a cell whose output was cut."
    ).tag(config=True)
    sandbox_flags = Set(help="Outcome flags recorded while executing (read them, don't set).")

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._reset_output_budget()
        #: The kernel manager of the last run (nbclient forgets its own).
        self.sandbox_km: t.Any = None
        #: Index of the last cell whose execution finished (-1: none yet).
        self.last_finished_cell = -1
        #: Whether the kernel answered kernel_info: only then can student code run.
        self.kernel_ready = False

    def _reset_output_budget(self) -> None:
        self._cell_bytes: dict[int, int] = {}
        self._notebook_bytes = 0
        self._truncated_cells: set[int] = set()

    def reset_execution_trackers(self) -> None:
        """Reset nbclient's trackers and the output budget (start of a notebook)."""
        super().reset_execution_trackers()
        self._reset_output_budget()
        self.sandbox_flags = set()
        self.last_finished_cell = -1
        self.kernel_ready = False

    def create_kernel_manager(self) -> t.Any:
        """Create the kernel manager as nbclient does, and remember it."""
        self.sandbox_km = super().create_kernel_manager()
        return self.sandbox_km

    async def async_start_new_kernel_client(self) -> t.Any:
        """Start the client as nbclient does; note that the kernel answered."""
        kc = await super().async_start_new_kernel_client()
        self.kernel_ready = True
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def async_execute_cell(
        self,
        cell: NotebookNode,
        cell_index: int,
        execution_count: int | None = None,
        store_history: bool = True,
    ) -> NotebookNode:
        """Execute a cell as nbclient does, remembering how far execution got."""
        cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        self.last_finished_cell = cell_index
        return cell

    # nbclient binds the sync wrapper to its own coroutine function: rebind it.
    execute_cell = run_sync(async_execute_cell)

    def _room(self, cell_index: int) -> int:
        cell_left = self.cell_output_bytes - self._cell_bytes.get(cell_index, 0)
        return max(0, min(cell_left, self.notebook_output_bytes - self._notebook_bytes))

    def _charge(self, cell_index: int, size: int) -> None:
        self._cell_bytes[cell_index] = self._cell_bytes.get(cell_index, 0) + size
        self._notebook_bytes += size

    def _mark_truncated(self, cell: NotebookNode, cell_index: int) -> None:
        self.sandbox_flags.add(OUTPUT_TRUNCATED)
        if cell_index not in self._truncated_cells:
            self._truncated_cells.add(cell_index)
            cell.outputs.append(
                NotebookNode(output_type="stream", name="stderr", text=self.truncation_notice)
            )

    def process_message(
        self, msg: dict[str, t.Any], cell: NotebookNode, cell_index: int
    ) -> NotebookNode | None:
        """Charge each output message to the budgets; drop or cut what does not fit."""
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        if msg_type in _CONTROL_MSGS:
            return super().process_message(msg, cell, cell_index)
        content = msg.get("content")
        if not isinstance(content, dict):
            return None  # malformed: nothing a notebook could keep
        if msg_type == "error":
            shrink_error(content, self.error_text_bytes)
            self._charge(cell_index, payload_size(content))
            return super().process_message(msg, cell, cell_index)
        room = self._room(cell_index)
        size = payload_size(content, room + 1) + payload_size(msg.get("buffers") or [], room + 1)
        if size <= room:
            self._charge(cell_index, size)
            return super().process_message(msg, cell, cell_index)
        out = None
        text = content.get("text")
        if msg_type == "stream" and isinstance(text, str) and room > 64:
            content["text"] = text[: room - 64]
            self._charge(cell_index, room)
            out = super().process_message(msg, cell, cell_index)
        self._mark_truncated(cell, cell_index)
        return out

    def on_cell_executed(self, **kwargs: t.Any) -> t.Any:
        """Bound the execute reply's error before nbgrader copies it into the cell."""
        reply = kwargs.get("execute_reply") or {}
        content = reply.get("content")
        if isinstance(content, dict) and content.get("status") == "error":
            shrink_error(content, self.error_text_bytes)
        parent = super()
        hook = getattr(parent, "on_cell_executed", None)
        if callable(hook):
            return hook(**kwargs)
        return None

    async def _async_handle_timeout(
        self, timeout: int, cell: NotebookNode | None = None
    ) -> None | dict[str, t.Any]:
        # nbclient has no hook for this; record it, then let nbclient
        # interrupt the kernel (nbgrader) or raise, as configured.
        self.sandbox_flags.add(TIMEOUT)
        return await super()._async_handle_timeout(timeout, cell)


class SandboxExecute(OutputLimitMixin, Execute):
    """nbgrader's ``Execute`` preprocessor with the output cap, in the sandbox."""

    def __init__(self, **kwargs: t.Any) -> None:
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        # Nothing in a scratch kernel is worth a graceful shutdown: kill it.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(**kwargs)


def with_output_limits(cls: type[ExecutePreprocessor]) -> type[ExecutePreprocessor]:
    """``cls`` itself if it already caps output, else a subclass that does."""
    if issubclass(cls, OutputLimitMixin):
        return cls
    return type(f"OutputLimited{cls.__name__}", (OutputLimitMixin, cls), {})


def _error_output(evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error",
        ename=STOPPED_ENAME,
        evalue=evalue,
        traceback=[f"{STOPPED_ENAME}: {evalue}"],
    )


def _scan_outputs(cells: list[NotebookNode], flags: set[str]) -> None:
    """Flags that show in the cells' errors (limits hit, kernel survived)."""
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            ename, evalue = str(out.get("ename", "")), str(out.get("evalue", ""))
            if ename in _MEMORY_ENAMES:
                flags.add(MEMORY_LIMIT)
            elif any(word in evalue for word in _PROCESS_WORDS) and ename in (
                "BlockingIOError",
                "RuntimeError",
                "OSError",
            ):
                flags.add(PROCESS_LIMIT)
            elif any(word in evalue for word in _DISK_WORDS) and ename == "OSError":
                flags.add(DISK_LIMIT)


def _whole_submission_flags(km: t.Any) -> set[str]:
    """Flags from the sandbox's cgroup counters and its scratch folder (read at its end)."""
    flags = set()
    usage = getattr(km, "cgroup_usage", None)
    if usage is not None:
        if usage.memory_limit_hit:
            flags.add(MEMORY_LIMIT)
        if usage.task_limit_hit:
            flags.add(PROCESS_LIMIT)
    if getattr(km, "scratch_full", False):
        flags.add(DISK_LIMIT)
    if getattr(km, "relay_dropped", 0):
        flags.add(OUTPUT_TRUNCATED)
    if getattr(km, "relay_died", False):
        flags.add(OUTPUT_TRUNCATED)
    return flags


def _death_flags(status: int | None, log_text: str) -> set[str]:
    """Why a kernel died, from its exit status and the end of its stderr."""
    if status == SIGXCPU_STATUS:
        return {CPU_LIMIT}
    if any(word in log_text for word in _MEMORY_WORDS):
        return {MEMORY_LIMIT}
    if any(word in log_text for word in _PROCESS_WORDS):
        return {PROCESS_LIMIT}
    return {KERNEL_DIED}


def _mark_stopped(nb: NotebookNode, last_finished: int, reason: str) -> None:
    """Give every code cell after ``last_finished`` an error output.

    A hidden-test cell that never ran has no error, and nbgrader would count
    it as passed: killing one's own kernel must not earn the points.
    """
    for index, cell in enumerate(nb.cells):
        if index <= last_finished or cell.get("cell_type") != "code":
            continue
        if not cell.get("source", "").strip():
            continue
        cell.setdefault("outputs", []).append(_error_output(reason))


def _preprocessor(
    scratch_dir: str,
    limits: Limits,
    timeout: int | None,
    extra_env: dict[str, str] | None,
    preprocessor_class: type[ExecutePreprocessor] | None,
    config: Config | None,
) -> t.Any:
    """The preprocessor of one notebook run, its kernel manager configured for ``scratch_dir``."""
    cls = with_output_limits(preprocessor_class or SandboxExecute)
    cfg = Config()
    if config is not None:
        cfg.merge(config)
    km_cfg = cfg.SandboxedKernelManager
    km_cfg.scratch_dir = str(scratch_dir)
    for name in KERNEL_LIMITS:
        km_cfg[name] = getattr(limits, name)
    if extra_env:
        km_cfg.extra_env = {**dict(km_cfg.get("extra_env", {})), **extra_env}
    return cls(
        config=cfg,
        kernel_manager_class=SandboxedKernelManager,
        timeout=timeout if timeout is not None else limits.cell_timeout,
        cell_output_bytes=limits.cell_output_bytes,
        notebook_output_bytes=limits.notebook_output_bytes,
        shutdown_kernel="immediate",
    )


def start_kernel(
    scratch_dir: str,
    limits: Limits | None = None,
    *,
    extra_env: dict[str, str] | None = None,
    preprocessor_class: type[ExecutePreprocessor] | None = None,
    config: Config | None = None,
) -> SandboxedKernelManager:
    """Start, ahead of need, the sandboxed kernel that :func:`execute_notebook` would start.

    Same arguments as :func:`execute_notebook` (the same command line, limits
    and environment), on ``scratch_dir``, an empty folder the caller owns.
    Returns as soon as the sandbox is launched: the kernel boots meanwhile.
    Hand it to exactly one ``execute_notebook(..., kernel=km)`` once the
    submission's files are in ``scratch_dir`` (it hands them in and shuts
    the kernel down), or shut it down with :func:`discard_kernel`.  Raises
    :class:`SandboxError` when the sandbox cannot start.
    """
    limits = limits or Limits()
    pp = _preprocessor(scratch_dir, limits, None, extra_env, preprocessor_class, config)
    pp.nb = new_notebook()  # nbclient reads the kernel's name from it (the sandbox ignores it)
    pp.km = pp.create_kernel_manager()
    pp.resources = {"metadata": {"path": str(scratch_dir)}}
    try:
        # nbclient's own start: the kernel arguments it adds (in-memory history) included
        run_sync(pp.async_start_new_kernel)(cwd=str(scratch_dir))
    except SandboxError:
        raise
    except Exception as exc:
        discard_kernel(pp.km)
        raise SandboxError(f"the sandboxed kernel could not start: {exc}") from exc
    return pp.km


def discard_kernel(km: SandboxedKernelManager) -> None:
    """Shut down a kernel from :func:`start_kernel` that will not be used (never raises)."""
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception as exc:  # already gone: what is left is removed below
        log.info("discarding a kernel started ahead: %s", exc)
    km.kill_sandbox()
    km._discard_runtime()
    km.close_log()


def execute_notebook(
    nb: NotebookNode,
    scratch_dir: str,
    limits: Limits | None = None,
    *,
    timeout: int | None = None,
    extra_env: dict[str, str] | None = None,
    preprocessor_class: type[ExecutePreprocessor] | None = None,
    config: Config | None = None,
    mark_unexecuted: bool = True,
    kernel: SandboxedKernelManager | None = None,
) -> tuple[NotebookNode, list[str]]:
    """Execute ``nb`` (in place) in a sandboxed kernel whose cwd is ``scratch_dir``.

    ``scratch_dir`` is a copy of one student's submission folder made by the
    caller: the kernel may change it, and when the grader is root it is
    chowned to the kernel's uid.  ``timeout`` overrides ``limits.cell_timeout``.
    ``preprocessor_class`` defaults to :class:`SandboxExecute` (nbgrader's
    ``Execute``); another ``ExecutePreprocessor`` subclass gets the output cap
    mixed in.
    ``config`` is passed to the preprocessor and the kernel manager (e.g.
    ``c.SandboxedKernelManager.kernel_uid``).

    Returns ``(nb, flags)``: flags from :data:`FLAGS`, empty for a clean run.
    A misbehaving notebook never raises: a dead kernel stops execution and,
    with ``mark_unexecuted``, the cell that was running and the cells that
    never ran get an error output (``ename`` :data:`STOPPED_ENAME`).  Raises
    :class:`SandboxError` only when the kernel could not start (before any
    student code ran): a grader-side problem, not a grade.

    ``kernel``: a kernel from :func:`start_kernel` on ``scratch_dir``, started
    with the same arguments, used instead of starting one (and shut down
    after, like one started here).
    """
    limits = limits or Limits()
    pp = _preprocessor(scratch_dir, limits, timeout, extra_env, preprocessor_class, config)
    if kernel is not None:
        pp.sandbox_km = kernel
        try:
            kernel.hand_in()
        except BaseException:
            discard_kernel(kernel)
            raise

    wall_expired = threading.Event()

    def on_wall_clock() -> None:
        # Runs in the timer thread: only a flag and a kill(2), both thread-safe.
        wall_expired.set()
        km = pp.sandbox_km
        if km is not None:
            km.kill_sandbox()

    timer = threading.Timer(limits.wall_seconds, on_wall_clock)
    timer.daemon = True
    flags: set[str] = set()
    failure: BaseException | None = None
    started = time.monotonic()
    timer.start()
    try:
        pp.preprocess(nb, {"metadata": {"path": str(scratch_dir)}}, km=kernel)
    except SandboxError:
        raise
    except Exception as exc:  # DeadKernelError, CellTimeoutError, zmq or protocol errors
        failure = exc
    finally:
        timer.cancel()
        if kernel is not None:  # nbclient leaves a kernel it was given running
            _shut_down(pp, kernel)
    km = pp.sandbox_km
    flags |= set(pp.sandbox_flags)
    flags |= _whole_submission_flags(km)
    # Cells past the one that was running keep whatever the submission held.
    _scan_outputs(nb.cells[: pp.last_finished_cell + 2], flags)
    if failure is not None:
        status = km.exit_status if km is not None else None
        log_text = km.log_tail() if km is not None else ""
        if wall_expired.is_set() or isinstance(failure, CellTimeoutError):
            flags.add(TIMEOUT)
            if "IOPub" in str(failure):
                # The reply came but the outputs did not: almost always a message too big
                # for the relay's memory (or a frame over max_message_bytes), which made
                # zmq drop the connection.
                flags.add(OUTPUT_TRUNCATED)
        elif not pp.kernel_ready:
            # No student code has run yet: the sandbox (or the host) is at fault.
            raise SandboxError(
                f"the sandboxed kernel could not start: {_last_line(log_text) or failure}"
            ) from failure
        elif status is not None and status >= 0:
            death = _death_flags(status, log_text)
            if death == {KERNEL_DIED} and status == SIGKILL_STATUS and MEMORY_LIMIT in flags:
                death = set()  # the cgroup's OOM killer took the kernel itself
            flags |= death
        else:
            flags.add(KERNEL_DIED)
        log.info(
            "execution stopped after %.1fs (%s, status %s): %s",
            time.monotonic() - started,
            type(failure).__name__,
            status,
            _last_line(log_text),
        )
        if mark_unexecuted:
            reason = ", ".join(f for f in FLAGS if f in flags) or "stopped"
            _mark_stopped(
                nb, pp.last_finished_cell, f"the grader stopped this notebook here ({reason})"
            )
    if km is not None:
        km.close_log()
    return nb, [f for f in FLAGS if f in flags]


def _shut_down(pp: t.Any, kernel: SandboxedKernelManager) -> None:
    """End a kernel handed to :func:`execute_notebook` as nbclient ends its own."""
    try:
        if pp.km is not None:
            pp._cleanup_kernel()
    except Exception as exc:  # a dead kernel: its sandbox and runtime still go
        log.info("shutting down a kernel started ahead: %s", exc)
    kernel.kill_sandbox()  # both safe to repeat: nothing of the sandbox may outlive the run
    kernel._discard_runtime()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
