"""``python -m autograder serve``: grade submissions as they arrive in the exchange.

::

    python -m autograder serve [--course-dir DIR] [--workers N] [--scheduler ADDR]
        [--bind 127.0.0.1:PORT] [--poll SECONDS] [--grace SECONDS]
        [--max-attempts N] [--retry-failed] [--release-on-open] [--unsafe-no-sandbox]
        [--verbose]

Run in the course directory as the grader account, until SIGTERM or Ctrl-C.
New submissions in the exchange's inbound folder are journaled, collected,
graded with the sandboxed pipeline and their feedback released by the
assignment's ``c.RnnCourse.feedback_release`` (:mod:`autograder.service`).
One line per event on stderr.  Run by JupyterHub as a service, the status
page is served at the service's URL for the course's instructors only;
otherwise ``--bind`` serves it on 127.0.0.1 without authentication.
The work is :mod:`autograder.service.app`; this module reads the command line.
"""

from __future__ import annotations

import asyncio
import os
import signal


def add_arguments(parser) -> None:
    from autograder.commands.grade import add_grading_options

    add_grading_options(parser)
    parser.add_argument("--bind", default=None, metavar="127.0.0.1:PORT",
                        help="outside a hub: serve the status page here, without "
                             "authentication (port 0: any free port)")
    parser.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                        help="how often the inbound folder is read (default 2)")
    parser.add_argument("--grace", type=float, default=30.0, metavar="SECONDS",
                        help="on SIGTERM, how long the running round may take to stop "
                             "(default 30)")
    parser.add_argument("--max-attempts", type=int, default=3, metavar="N",
                        help="gradings tried per submission before it is marked failed "
                             "(default 3)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="put the submissions marked failed back in the queue")
    parser.add_argument("--release-on-open", action="store_true",
                        help="hand out each assignment (python -m autograder release, nbgrader "
                             "release_assignment) once it opens by c.RnnCourse.schedule, in "
                             "course order (make hub passes it)")
    parser.add_argument("--verbose", action="store_true",
                        help="also log tracebacks of crashed rounds")


def run(args) -> int:
    from autograder.errors import UsageError
    from autograder.service.app import Service, setup_logging
    from autograder.service.rounds import Options, event
    from autograder.service.status import hub_address, in_hub, make_app, parse_bind

    if args.poll <= 0 or args.grace < 0:
        raise UsageError("--poll must be positive and --grace not negative")
    if args.max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    # nbgrader runs `alembic` by name: this environment's bin/ first, as for every nbgrader call
    from autograder.commands.release import nbgrader_env

    os.environ["PATH"] = nbgrader_env()["PATH"]
    hub = in_hub()
    if args.bind is not None and hub:
        raise UsageError("--bind: run by JupyterHub, the status page is served at "
                         "JUPYTERHUB_SERVICE_URL")
    address = hub_address() if hub else parse_bind(args.bind) if args.bind else None
    opts = Options(course_dir=args.course_dir, workers=args.workers, scheduler=args.scheduler,
                   unsafe_no_sandbox=args.unsafe_no_sandbox, max_attempts=args.max_attempts)
    service = Service(opts, poll=args.poll, grace=args.grace, retry_failed=args.retry_failed,
                      release_on_open=args.release_on_open)
    if service.http is not None and not hub:
        raise UsageError("c.HttpExchangeService.enabled: the exchange over HTTP authenticates "
                         "callers with the hub; run the service under JupyterHub")
    service.check()
    service.lock()
    sockets = []
    if address is not None:
        from tornado.netutil import bind_sockets

        try:
            sockets = bind_sockets(address[1], address[0])
        except OSError as exc:
            service.unlock()
            raise UsageError(f"cannot serve the status page on {address[0]}:{address[1]}: "
                             f"{exc.strerror or exc}") from None
    setup_logging(args.verbose)
    event("started", f"course {service.course.course_id} in {service.course.root}, "
                     f"pid {os.getpid()}, "
                     f"{'dask ' + args.scheduler if args.scheduler else 'local workers'}"
                     + (" WITHOUT the sandbox" if args.unsafe_no_sandbox else ""))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop, signal.Signals(sig).name)
        server = None
        if address is not None:
            from tornado.httpserver import HTTPServer

            # a small body for every page; the exchange's uploads raise their own limit
            server = HTTPServer(make_app(service, hub=hub), max_body_size=1 << 20)
            server.add_sockets(sockets)
            port = sockets[0].getsockname()[1]
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            if hub:
                event("status", f"http://{host}:{port}"
                                f"{os.environ.get('JUPYTERHUB_SERVICE_PREFIX', '/')} "
                                "(JupyterHub OAuth: the course's instructors only)")
            else:
                event("status", f"http://{host}:{port}/ (no authentication: "
                                "served on this machine's loopback interface only)")
        else:
            event("status", "no status page (neither --bind nor a hub)")
        try:
            await service.run()
        finally:
            if server is not None:
                server.stop()
            service.journal.close()

    asyncio.run(main())
    event("stopped", f"{service.rounds} round(s); the journal resumes anything left")
    return 0
