"""The grader's kernel client: ready as soon as the kernel is, not 0.2 s later.

jupyter_client's ``wait_for_ready`` asks for ``kernel_info`` until a reply
and an IOPub message have come in, then reads IOPub until it has been silent
for 0.2 s.  That last wait is paid by every notebook the grader runs (stock
nbgrader pays it too), although everything it flushes is known: the kernel
sends its status ``idle`` for the ``kernel_info`` request after anything it
published before.  :class:`ReadyKernelClient` reads IOPub up to that
message and stops there.  When IOPub is not connected yet (no such message
within 0.2 s), it asks again, as jupyter_client does.
"""

from __future__ import annotations

import math
import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

IOPUB_WAIT = 0.2
"""Seconds to wait for the IOPub messages of a ``kernel_info`` request before asking again."""
REPLY_WAIT = 1.0
"""Seconds to wait for a ``kernel_info_reply`` before asking again."""


class ReadyKernelClient(AsyncKernelClient):
    """An ``AsyncKernelClient`` whose ``wait_for_ready`` ends when the kernel's IOPub is read up."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        while True:
            request = self.kernel_info()
            reply = await _answer(self.shell_channel, request,
                                  min(REPLY_WAIT, deadline - time.monotonic()))
            if reply is not None and await _answer(self.iopub_channel, request, IOPUB_WAIT,
                                                   idle=True):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


async def _answer(channel, request: str, wait: float, idle: bool = False) -> dict | None:
    """The first message on ``channel`` in answer to ``request`` within ``wait`` seconds.

    ``idle``: the kernel's status ``idle`` for it, its last IOPub message.  None if none came.
    """
    end = time.monotonic() + max(wait, 0.0)
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await channel.get_msg(timeout=left)
        except Empty:
            return None
        if msg["parent_header"].get("msg_id") != request:
            continue
        if not idle or (msg["msg_type"] == "status"
                        and msg["content"].get("execution_state") == "idle"):
            return msg
    return None


class ReadyKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose clients are :class:`ReadyKernelClient` s.

    The sandbox's :class:`~autograder.sandbox.kernel.SandboxedKernelManager`
    is one; ``--unsafe-no-sandbox`` runs its kernels with this one.
    """

    client_class = DottedObjectName(f"{__name__}.ReadyKernelClient")
    client_factory = Type(ReadyKernelClient, klass=AsyncKernelClient, config=True)
