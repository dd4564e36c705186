"""A relay between a sandboxed kernel and the grader: every message, all frames together,
is bounded before the grader holds it, and no privilege of the grader's acts on a path
the kernel controls.

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

The kernel's sockets are files in the kernel's runtime folder, which the
kernel may write: a path there is the kernel's to change (a symlink to a
socket of the host, say), and zmq connects, and *reconnects*, by path.  So:

* **it runs as the kernel's uid.**  Started by a root grader, it binds its
  client-side sockets (in the grader's folder) and opens its report file
  first, then drops to the kernel's uid and gid, with no supplementary
  groups, before it looks at any path of the kernel's: whatever a path there
  leads to, it is reached with no more right than the kernel's own;
* **it connects once, and never again.**  Each kernel-side socket has zmq's
  reconnection off (``RECONNECT_IVL = -1``); the relay connects only to a
  path that is a socket (``lstat``: a symlink is refused), waits until each
  connection is made, and only then starts relaying, so the kernel has
  received no request, and run no student code, while the paths are read.
  Once connected, what the folder holds no longer matters: a connection is a
  file descriptor.  A connection that ends (the kernel closed a socket, or zmq
  dropped it for a message too big to assemble) stays ended: that channel is
  silent from then on, and what the grader sends on it is dropped (the cell
  waiting for it times out), never sent along a path again.

Messages from the client to the kernel pass as they are.  The relay is a
plain script (``python -I relay.py CLIENT_IP MAX_BYTES REPORT [UID GID]``,
the kernel's connection information as JSON on stdin): it imports nothing
but ``zmq`` and starts in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

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
KERNEL_GONE = 3
"""Exit status: the kernel never offered its sockets (it died as it started, or a path
there is not a socket); not a failure of the relay's own."""
CONNECT_SECONDS = 300.0
"""How long the relay waits for the kernel to offer its sockets (it boots meanwhile)."""
ATTEMPT_SECONDS = 1.0
"""How long one connection attempt may take before it is made again (still before the
kernel has received anything)."""
POLL_SECONDS = 0.02


def endpoint(info: dict, ip: str, channel: str) -> str:
    """``ipc://<ip>-<port>``, as jupyter_client names a channel's ipc socket."""
    return f"ipc://{ip}-{info[f'{channel}_port']}"


def _size(frames) -> int:
    return sum(len(frame) for frame in frames)


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid:gid`` for good (real, effective and saved ids; no other group).

    glibc applies it to every thread of the process (zmq's included)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise SystemExit("relay: could not drop privileges")


def _await_socket(path: str, deadline: float) -> None:
    """Wait until ``path`` is a socket (never following a link); exit when it is not one."""
    while True:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None:
            if stat.S_ISSOCK(mode):
                return
            sys.exit(KERNEL_GONE)  # a link or a file where the kernel's socket should be
        if time.monotonic() > deadline:
            sys.exit(KERNEL_GONE)
        time.sleep(POLL_SECONDS)


def _connect_once(ctx, ktype: int, url: str, identity: bytes | None, deadline: float):
    """A kernel-side socket connected to ``url``, zmq's reconnection off."""
    while True:
        sock = ctx.socket(ktype)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, -1)
        if identity is not None:
            sock.setsockopt(zmq.IDENTITY, identity)
        if ktype == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
                                          | zmq.EVENT_CLOSED)
        sock.connect(url)
        until = min(deadline, time.monotonic() + ATTEMPT_SECONDS)
        while monitor.poll(max(0, int((until - time.monotonic()) * 1000))):
            if recv_monitor_message(monitor)["event"] == zmq.EVENT_CONNECTED:
                sock.disable_monitor()
                monitor.close(0)
                return sock
        # refused (a socket file is there before its listener) or too slow: made again,
        # still before anything has been relayed
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        if time.monotonic() > deadline:
            sys.exit(KERNEL_GONE)


def connect_kernel(ctx, info: dict, identity: bytes, deadline: float) -> dict:
    """The kernel-side sockets, each connected once."""
    sockets = {}
    for channel, (ktype, _) in CHANNELS.items():
        url = endpoint(info, info["ip"], channel)
        _await_socket(url[len("ipc://"):], deadline)
        # the kernel sends a shell request's stdin requests to the identity that sent it:
        # shell and stdin share one identity, as jupyter_client's own sockets do
        shared = identity if channel in ("shell", "stdin") else None
        sockets[channel] = _connect_once(ctx, ktype, url, shared, deadline)
    return sockets


def serve(info: dict, client_ip: str, max_bytes: int, report: int,
          ids: tuple[int, int] | None) -> None:
    ctx = zmq.Context(io_threads=1)
    client_side = {}
    for channel, (_, ctype) in CHANNELS.items():
        c = ctx.socket(ctype)
        c.setsockopt(zmq.LINGER, 0)
        c.bind(endpoint(info, client_ip, channel))
        client_side[channel] = c
    if ids is not None:
        drop_privileges(*ids)
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    # The client's requests wait in the client-side sockets until the kernel's side is
    # connected: the kernel receives nothing, so runs no student code, before that.
    kernel_side = connect_kernel(ctx, info, os.urandom(8), time.monotonic() + CONNECT_SECONDS)

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
                try:  # a channel whose connection ended has no peer: dropped, never waited on
                    kernel_side[channel].send_multipart(frames[1:], copy=False,
                                                        flags=zmq.NOBLOCK)
                except zmq.Again:
                    pass
                continue
            if _size(frames) > max_bytes:  # from the kernel: bounded
                dropped += 1
                os.ftruncate(report, 0)
                os.pwrite(report, f"{dropped}\n".encode(), 0)
                continue
            if channel == "iopub":
                client_side[channel].send_multipart(frames, copy=False)
                continue
            # stdin: the client's stdin socket shares its shell identity (jupyter_client)
            to = clients.get(channel) or (clients.get("shell") if channel == "stdin" else None)
            if to is not None:
                client_side[channel].send_multipart([to, *frames], copy=False)


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 6):
        print("usage: relay.py CLIENT_IP MAX_BYTES REPORT [UID GID] < CONNECTION_INFO",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    info = json.loads(sys.stdin.buffer.read())
    report = os.open(argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    ids = (int(argv[4]), int(argv[5])) if len(argv) == 6 else None
    serve(info, argv[1], int(argv[2]), report, ids)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
