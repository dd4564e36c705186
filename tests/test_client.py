"""ReadyKernelClient: ready when the kernel's answer to kernel_info is read, with nothing left."""

from __future__ import annotations

import asyncio
import contextlib
import time
from queue import Empty

import pytest

from autograder.sandbox.client import (
    IOPUB_WAIT,
    ReadyKernelClient,
    ReadyKernelManager,
    _answer,
)
from autograder.sandbox.kernel import SandboxedKernelManager


class FakeChannel:
    """Messages handed out in order; Empty once they are gone (as a channel times out)."""

    def __init__(self, messages):
        self.messages = list(messages)
        self.waited = 0.0

    async def get_msg(self, timeout=None):
        if not self.messages:
            self.waited += timeout
            raise Empty
        return self.messages.pop(0)


def msg(parent, msg_type="status", state=None):
    content = {"execution_state": state} if state else {}
    return {"parent_header": {"msg_id": parent} if parent else {}, "msg_type": msg_type,
            "content": content}


def test_answer_skips_other_requests_and_reads_iopub_up_to_the_idle_status():
    iopub = FakeChannel([msg(None, "iopub_welcome"), msg("old", state="idle"),
                         msg("ki", state="busy"), msg("ki", state="idle"),
                         msg("later", "stream")])
    got = asyncio.run(_answer(iopub, "ki", 1.0, idle=True))
    assert got["content"] == {"execution_state": "idle"}
    assert iopub.messages == [msg("later", "stream")]  # nothing after the idle is read
    assert iopub.waited == 0.0


def test_answer_gives_up_after_its_wait_when_the_answer_never_comes():
    shell = FakeChannel([msg("old", "kernel_info_reply")])
    assert asyncio.run(_answer(shell, "ki", 0.05)) is None
    assert shell.waited == pytest.approx(0.05, abs=0.02)


def test_both_managers_hand_out_ready_clients():
    assert ReadyKernelManager().client_factory is ReadyKernelClient
    assert SandboxedKernelManager().client_factory is ReadyKernelClient


@contextlib.asynccontextmanager
async def ready_kernel():
    """A local kernel (ReadyKernelManager) that has booted, and a client of it."""
    km = ReadyKernelManager()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


@pytest.mark.slow
def test_a_kernel_is_ready_without_waiting_for_iopub_silence():
    """Ready well under jupyter_client's 0.2 s flush; IOPub left empty; the kernel works."""

    async def run():
        async with ready_kernel() as (km, first):
            await asyncio.sleep(0.5)
            first.stop_channels()
            kc = km.client()  # a new client of a kernel that is up, as a notebook's is
            kc.start_channels()
            try:
                since = time.monotonic()
                await kc.wait_for_ready(timeout=60)
                waited = time.monotonic() - since
                with pytest.raises(Empty):
                    await kc.iopub_channel.get_msg(timeout=0.3)
                reply = await kc.execute("6 * 7", reply=True, timeout=30)
            finally:
                kc.stop_channels()
            return waited, reply["content"]["status"]

    waited, status = asyncio.run(run())
    assert status == "ok"
    assert waited < IOPUB_WAIT, f"waited {waited:.3f} s for a kernel that was up"


@pytest.mark.slow
def test_a_kernel_that_dies_is_reported():
    async def run():
        async with ready_kernel() as (km, kc):
            km.provisioner.process.kill()  # outright, as the sandbox's limits would
            km.provisioner.process.wait()
            with pytest.raises(RuntimeError, match="died|respond"):
                await kc.wait_for_ready(timeout=5)

    asyncio.run(run())
