"""The grading service's link to the LMS: the roster in, the grades out, in a process of its own.

On when ``c.LtiPlatform`` (:class:`autograder.lti.LtiPlatform`, ``nbgrader_config.py``)
names an issuer and maps an LMS context to this course (``contexts``), with that
context's service URLs (``services``: ``context_memberships_url`` for the roster,
``lineitems`` for the grades), and the tool's key exists (``python -m autograder lti
keys``).  The service's main process (:mod:`autograder.service.app`) forks
:func:`lms_main` at start and starts it again if it dies; it never waits on the LMS,
and grading rounds never do either.  The process, every ``poll`` seconds:

1. every ``roster_every`` seconds, reads each context's members (NRPS) and keeps the
   gradebook in step (:func:`autograder.service.roster.sync`); a roster that cannot be
   read whole is one log line and changes nothing;
2. journals each new graded version (:func:`autograder.service.passback.scan`);
3. posts what is due (:func:`autograder.service.passback.post_due`).

Everything it does is in the gradebook's database, so a restart (after a SIGKILL too)
goes on where it stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass

from autograder.errors import UsageError
from autograder.service import passback as P
from autograder.service import roster as R
from autograder.service.rounds import event, first_line

log = logging.getLogger("autograder.serve")
ROSTER_EARLY = 60.0
"""Seconds: a graded student the roster does not know has it read again, at most this often."""
NRPS_URL, LINEITEMS_URL = "context_memberships_url", "lineitems"
"""The keys of a context's entry in ``c.LtiPlatform.services``."""


@dataclass
class LmsOptions:
    """How the service talks to the LMS (``serve --lms-*``)."""

    poll: float = 2.0
    """Seconds between two looks at the gradebook for new grades."""
    roster_every: float = 600.0
    """Seconds between two readings of the roster."""
    retry: float = 30.0
    """Seconds before the first retry of a failed post (doubling after each failure)."""


def platform_of(course):
    """The course's LMS registration (:class:`autograder.lti.LtiPlatform`), or None when
    LTI is off or no LMS context maps to this course."""
    from traitlets import TraitError

    from autograder.lti import LtiPlatform

    try:
        platform = LtiPlatform(config=course.config)
    except TraitError as exc:
        raise UsageError(f"nbgrader_config.py: c.LtiPlatform: {first_line(exc)}") from None
    if not platform.enabled or not platform.contexts_of(course.course_id):
        return None
    return platform


def check(course) -> None:
    """One-line UsageErrors for an LMS registration the service cannot use."""
    from autograder.lti.client import LtiClient

    platform = platform_of(course)
    if platform is None:
        return
    LtiClient.for_course(course)  # the registration complete, the key readable
    for context in platform.contexts_of(course.course_id):
        urls = platform.services.get(context) or {}
        missing = [k for k in (NRPS_URL, LINEITEMS_URL) if not urls.get(k)]
        if missing:
            raise UsageError(f"c.LtiPlatform.services[{context!r}] lacks {', '.join(missing)}: "
                             "the LMS context's roster and line items URLs (docs/lms.md)")


class Lms:
    """The roster and the grades of one course, with one LMS."""

    def __init__(self, course, engine, opts: LmsOptions, client=None):
        from autograder.lti.client import LtiClient

        self.course = course
        self.engine = engine
        self.opts = opts
        self.platform = platform_of(course)
        self.contexts = self.platform.contexts_of(course.course_id)
        self.client = client or LtiClient.for_course(course)
        self.posters = {ctx: P.Poster(course, engine, self.client,
                                      self.platform.services[ctx][LINEITEMS_URL],
                                      tag=course.course_id, retry=opts.retry)
                        for ctx in self.contexts}
        self._roster_next = 0.0
        self._roster_read = -ROSTER_EARLY  # when it was last read (monotonic)
        self._asked: set[str] = set()  # graded students not in the roster, read again for

    def sync_roster(self) -> R.Synced | None:
        """Read every context's members and sync the gradebook; None when one could not be
        read (nothing changed: a partial roster would mark students as left)."""
        from autograder.lti.client import LtiError

        self._roster_next = time.monotonic() + self.opts.roster_every
        self._roster_read = time.monotonic()
        members = []
        for ctx in self.contexts:
            try:
                got = self.client.members(self.platform.services[ctx][NRPS_URL])
            except LtiError as exc:
                event("roster", f"not read ({exc}); trying again in "
                                f"{min(self.opts.roster_every, P.MAX_DELAY):g} s")
                return None
            members += [(ctx, m) for m in got]
        done = R.sync(self.course, members)
        event("roster", f"{done.members} member(s) in the LMS: {len(done.added)} enrolled, "
                        f"{len(done.left)} left, {len(done.skipped)} skipped")
        return done

    def step(self, stop=lambda: False) -> int:
        """One pass: the roster when due, new grades journalled, due posts made."""
        if time.monotonic() >= self._roster_next:
            self.sync_roster()
        users = R.lms_users(self.engine)
        unknown: set[str] = set()
        P.scan(self.course, self.engine, users, unknown)
        # a student graded before the roster had them (enrolled since it was read): read it
        # again now rather than at its next time, once per such student
        if unknown - self._asked and time.monotonic() - self._roster_read >= ROSTER_EARLY:
            self._asked |= unknown
            if self.sync_roster() is not None:
                users = R.lms_users(self.engine)
                P.scan(self.course, self.engine, users)
        return P.post_due(self.engine, self.posters, users, stop)


def lms_main(course_dir: str, opts: LmsOptions) -> None:
    """The body of the LMS process (forked by the service's main process)."""
    from autograder.course import Course
    from autograder.pipeline.coordinator.runner import die_with_parent
    from autograder.service.journal import Journal

    die_with_parent()  # never outlives its service
    signal.set_wakeup_fd(-1)  # the parent's event loop's, inherited by the fork
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    journal = None
    try:
        course = Course(course_dir)
        journal = Journal(course.db_url)
        lms = Lms(course, journal.engine, opts)
    except Exception as exc:  # a key gone since the start...: one line, started again later
        event("lms", f"cannot start: {first_line(exc)}")
        logging.shutdown()
        os._exit(1)
    try:
        event("lms", f"roster and grades with {lms.platform.issuer} "
                     f"(context {', '.join(lms.contexts)}), pid {os.getpid()}")
        while not stopping:
            try:
                lms.step(stop=lambda: bool(stopping))
            except Exception as exc:  # the database went away...: one line, then again
                event("lms", f"warning: {first_line(exc)}; trying again in {opts.poll:g} s")
                log.debug("lms error", exc_info=True)
            deadline = time.monotonic() + opts.poll
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        journal.close()
        logging.shutdown()
    os._exit(0)
