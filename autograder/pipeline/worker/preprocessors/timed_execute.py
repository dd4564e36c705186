"""``TimedExecute``: nbgrader's ``Execute`` that measures how long its kernel took to start."""

from __future__ import annotations

import os
import threading
import time

from jupyter_core.utils import run_sync
from nbgrader.preprocessors import Execute
from traitlets import Dict, List, Unicode

_last = threading.local()


def last_kernel_start_seconds() -> float:
    """Kernel start-up seconds of the last notebook run by a :class:`TimingMixin` in this thread.

    The sandbox's ``execute_notebook`` builds its preprocessor itself, so the
    measurement is handed back through this thread-local.
    """
    return getattr(_last, "kernel_start_seconds", 0.0)


class TimingMixin:
    """Mix in before an nbclient ``NotebookClient``: time the kernel's start and client setup.

    nbclient binds its sync wrappers (``start_new_kernel``...) to its own
    coroutine functions, so the overrides rebind them.
    """

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        _last.kernel_start_seconds = 0.0

    def _charge_start(self, since: float) -> None:
        _last.kernel_start_seconds = last_kernel_start_seconds() + time.monotonic() - since

    async def async_start_new_kernel(self, **kwargs) -> None:
        since = time.monotonic()
        try:
            await super().async_start_new_kernel(**kwargs)
        finally:
            self._charge_start(since)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self):
        since = time.monotonic()
        try:
            return await super().async_start_new_kernel_client()
        finally:
            self._charge_start(since)

    start_new_kernel_client = run_sync(async_start_new_kernel_client)


class TimedExecute(TimingMixin, Execute):
    """nbgrader's ``Execute`` with kernel start-up timing, for unsandboxed runs.

    Used by ``--unsafe-no-sandbox``: the kernel then inherits the grader's
    environment, minus :attr:`drop_env`, plus :attr:`extra_env`.
    """

    extra_env = Dict(
        value_trait=Unicode(), key_trait=Unicode(),
        help="Environment variables added to the kernel's (e.g. RNN_COURSE_GRADING_DIR).",
    ).tag(config=True)
    drop_env = List(
        Unicode(), ["RNN_COURSE_SECRET", "RNN_COURSE_DB_URL"],
        help="Environment variables of the grader never passed to the kernel.",
    ).tag(config=True)

    async def async_start_new_kernel(self, **kwargs) -> None:
        env = {k: v for k, v in os.environ.items() if k not in self.drop_env}
        env.update(self.extra_env)
        kwargs["env"] = env
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)
