"""A relay between a sandboxed kernel and the grader: every message, all frames together,
is bounded before the grader holds any of it.

zmq's ``MAXMSGSIZE`` bounds each *frame* of a message, not the message: a
kernel can send one Jupyter message with a dozen 200 MB buffers, and libzmq
assembles all of them in the receiving process before the application sees
the first.  Received by the grader's own client, that is gigabytes in the
grading worker, which no sandbox limit covers.

So the grader's client never talks to the kernel: this small process, started
by :class:`~autograder.sandbox.kernel.SandboxedKernelManager` for each kernel,
holds the kernel's side of all five channels and republishes each message to
the client's side, on sockets in a folder of the grader's only (the kernel
cannot reach them).  What it receives is bounded twice:

* its address space (``RLIMIT_AS``, set by the manager): a message too big to
  assemble makes libzmq's allocation fail, the relay dies, and the manager
  stops the kernel (the ``message_limit`` flag);
* a message that fits but is over ``max_bytes`` (all frames) is dropped and
  counted in the report file (the ``output_truncated`` flag).

Messages from the client to the kernel pass as they are.  The relay is a
plain script (``python -I relay.py CONNECTION_FILE CLIENT_IP MAX_BYTES
REPORT``): it imports nothing but ``zmq`` and starts in a few tens of
milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import zmq

# channel -> (kernel-side socket type, client-side socket type)
CHANNELS = {
    "shell": (zmq.DEALER, zmq.ROUTER),
    "control": (zmq.DEALER, zmq.ROUTER),
    "stdin": (zmq.DEALER, zmq.ROUTER),
    "hb": (zmq.DEALER, zmq.ROUTER),
    "iopub": (zmq.SUB, zmq.PUB),
}
READY = b"ready\n"
"""What the relay writes on stdout once its client-side sockets are bound."""


def endpoint(info: dict, ip: str, channel: str) -> str:
    """``ipc://<ip>-<port>``, as jupyter_client names a channel's ipc socket."""
    return f"ipc://{ip}-{info[f'{channel}_port']}"


def _size(frames) -> int:
    return sum(len(frame) for frame in frames)


def serve(info: dict, client_ip: str, max_bytes: int, report: str) -> None:
    ctx = zmq.Context(io_threads=1)
    kernel_side, client_side = {}, {}
    # the kernel sends a shell request's stdin requests to the identity that sent it:
    # shell and stdin share one identity, as jupyter_client's own sockets do
    identity = os.urandom(8)
    for channel, (ktype, ctype) in CHANNELS.items():
        k = ctx.socket(ktype)
        k.setsockopt(zmq.LINGER, 0)
        if channel in ("shell", "stdin"):
            k.setsockopt(zmq.IDENTITY, identity)
        if ktype == zmq.SUB:
            k.setsockopt(zmq.SUBSCRIBE, b"")
        k.connect(endpoint(info, info["ip"], channel))
        c = ctx.socket(ctype)
        c.setsockopt(zmq.LINGER, 0)
        c.bind(endpoint(info, client_ip, channel))
        kernel_side[channel], client_side[channel] = k, c
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()

    clients: dict[str, bytes] = {}  # channel -> the client's identity (one client)
    dropped = 0
    poller = zmq.Poller()
    owner = {}
    for channel in CHANNELS:
        for sock in (kernel_side[channel], client_side[channel]):
            poller.register(sock, zmq.POLLIN)
            owner[sock] = channel
    while True:
        for sock, _ in poller.poll():
            channel = owner[sock]
            frames = sock.recv_multipart(copy=False)
            if sock is client_side[channel]:  # from the grader: pass on
                clients[channel] = frames[0].bytes
                kernel_side[channel].send_multipart(frames[1:], copy=False)
                continue
            if _size(frames) > max_bytes:  # from the kernel: bounded
                dropped += 1
                with open(report, "w") as fh:
                    fh.write(f"{dropped}\n")
                continue
            if channel == "iopub":
                client_side[channel].send_multipart(frames, copy=False)
                continue
            # stdin: the client's stdin socket shares its shell identity (jupyter_client)
            to = clients.get(channel) or (clients.get("shell") if channel == "stdin" else None)
            if to is not None:
                client_side[channel].send_multipart([to, *frames], copy=False)


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: relay.py CONNECTION_FILE CLIENT_IP MAX_BYTES REPORT", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with open(argv[1]) as fh:
        info = json.load(fh)
    serve(info, argv[2], int(argv[3]), argv[4])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
