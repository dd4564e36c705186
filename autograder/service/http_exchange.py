"""The exchange over HTTP, served by the grading service (docs/exchange.md).

Chosen by ``c.HttpExchangeService.enabled = True`` in the course's
``nbgrader_config.py`` (the folder exchange stays the default).  The service's
own side of the exchange is then nbgrader's folder layout under
``c.Exchange.root``, a folder private to the grader account (mode 0700,
checked at start): the service's rounds collect from it and release feedback
into it with nbgrader's own classes, the formgrader (same account) releases
assignments into it, and nobody else can reach it.  Students' and
instructors' servers reach it only through these endpoints (the client is
:mod:`rnn_exchange.plugin`), under ``<service prefix>exchange/v1/<course>/``:

======  ===================================  ==================================
GET     ``assignments``                      released assignments (members)
GET     ``assignments/<a>``                  one released assignment, a tar.gz
POST    ``submissions/<a>?nonce=&sent_at=``  submit (as the caller), a tar.gz
GET     ``submissions``                      the caller's own submissions
GET     ``feedback/<a>``                     the caller's own feedback
POST    ``release/<a>[?force=1]``            staff: release an assignment
GET     ``collect/<a>``                      staff: latest submission of each
POST    ``feedback/<a>/<student>``           staff: release one's feedback
======  ===================================  ==================================

Every call carries the caller's own hub token (``Authorization: token ...``):
the hub says whose it is (:class:`jupyterhub.services.auth.HubAuth`, no
cache: a revoked token is refused at once), the service reads that user's
groups with its own token (it needs ``read:users:groups``), and
:func:`autograder.roles.course_roles` says what they are in this course.
Nothing in a request names the caller.  Errors are ``{"error": "<one line>"}``
with 400, 401, 403, 404, 409, 413, 429 or 503.

A submission is whole or absent: the body is read into memory (limits:
``c.Precheck.max_files``, ``max_file_bytes``, ``max_submission_bytes``, the
grader's own), checked (:func:`rnn_exchange.protocol.members`), written into a
folder private to the service, prechecked as the grader will, renamed into
the inbound folder and journalled.  At start the service deletes unfinished
uploads and journals an entry renamed in but not journalled (killed between
the two).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tornado import web
from traitlets import Bool, Float, Integer
from traitlets.config import LoggingConfigurable

from autograder.course import student_id_problem
from autograder.errors import UsageError
from autograder.pipeline.worker.precheck import SECRET_FILE, TIMESTAMP_FILE, Precheck
from autograder.roles import STAFF, course_roles
from autograder.service import journal as J
from autograder.service.rounds import event, first_line
from rnn_exchange import protocol

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's Exchange.timestamp_format
INCOMING = ".incoming"  # unfinished uploads, under <root>/<course>/
ARCHIVE_SLACK = 64 * 1024  # a gzip'd tar may be a little larger than what it holds
READ_OVER = 4  # how far over its limit an upload is still read before its 413


class HttpExchangeService(LoggingConfigurable):
    """The grading service's exchange over HTTP (``c.HttpExchangeService``)."""

    enabled = Bool(
        False, help="Serve the exchange over HTTP from the grading service (its root then "
                    "private to the grader account); False: nbgrader's shared folder.",
    ).tag(config=True)
    max_submissions = Integer(
        10, help="Submissions one student may make to the course within rate_window seconds "
                 "(more: 429, the earlier ones kept).",
    ).tag(config=True)
    rate_window = Float(60.0, help="The window of max_submissions, in seconds.").tag(config=True)
    replay_window = Float(
        300.0, help="How old (or how far ahead) a submit request's sent_at may be, in "
                    "seconds; within it, a nonce already used is refused as a replay.",
    ).tag(config=True)


def refused(status: int, message: str) -> web.HTTPError:
    error = web.HTTPError(status)
    error.message = " ".join(str(message).split())
    return error


@dataclass
class Caller:
    name: str
    role: str  # autograder.roles.STUDENT or STAFF


def private_root_problem(root: Path) -> str | None:
    """Why ``root`` cannot hold the exchange's private side (one line), or None."""
    try:
        st = root.lstat()
    except OSError as exc:
        return f"{root}: {exc.strerror}"
    if not root.is_dir() or root.is_symlink():
        return f"{root} is not a folder"
    if st.st_uid != os.geteuid():
        return f"{root} is not owned by the grading service's account"
    if st.st_mode & 0o077:
        return (f"{root} is mode {st.st_mode & 0o7777:o}: the HTTP exchange's folder must be "
                "private to the grader account (0700)")
    return None


def timestamp_now() -> tuple[str, datetime]:
    now = datetime.now(timezone.utc)
    return now.strftime(TIMESTAMP_FORMAT), now.replace(tzinfo=None)


def _checksum(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class Exchange:
    """The HTTP exchange of one grading service: its storage, its checks, its handlers."""

    def __init__(self, service):
        self.service = service
        course = service.course
        self.course_id = course.course_id
        self.settings = HttpExchangeService(config=course.config)
        self.precheck = Precheck(config=course.config)
        self.root = Path(course.config.get("Exchange", {}).get("root", "")
                         or "/srv/nbgrader/exchange")
        self.course_dir = self.root / self.course_id
        self._hub_auth = None

    # ------------------------------------------------------------------ set-up
    def prepare_storage(self) -> None:
        """Create the private folders (0700) and check them; a UsageError in one line."""
        if not self.root.exists():
            self.root.mkdir(mode=0o700, parents=True)
        problem = private_root_problem(self.root)
        if problem:
            raise UsageError(problem)
        for sub in ("", "inbound", "outbound", "feedback", INCOMING):
            (self.course_dir / sub).mkdir(mode=0o700, exist_ok=True)

    def recover(self) -> None:
        """After a crash: unfinished uploads deleted, entries renamed in but not journalled
        journalled (whole, by construction)."""
        incoming = self.course_dir / INCOMING
        for left in incoming.iterdir():
            shutil.rmtree(left, ignore_errors=True)
            event("exchange", f"deleted an unfinished upload {left.name}")
        self.service.scan()

    @property
    def hub_auth(self):
        if self._hub_auth is None:
            from jupyterhub.services.auth import HubAuth

            # no cache: a token revoked at the hub is refused on the next call
            self._hub_auth = HubAuth(cache_max_age=0)
        return self._hub_auth

    # -------------------------------------------------------------- identities
    async def identify(self, header: str) -> Caller:
        """Who calls (their own hub token) and their role in this course; else 401/403."""
        m = re.fullmatch(r"token\s+(\S+)", (header or "").strip(), re.IGNORECASE)
        if m is None:
            raise refused(401, "no hub token: send 'Authorization: token <JUPYTERHUB_API_TOKEN>'")
        try:
            model = await self.hub_auth.user_for_token(m.group(1), use_cache=False, sync=False)
        except Exception as exc:
            raise refused(503, f"the hub cannot check tokens now ({first_line(exc)})") from None
        if model is None:
            raise refused(401, "the hub token is not valid (unknown, expired or revoked)")
        if model.get("kind", "user") != "user":
            raise refused(403, "only hub users may use the exchange")
        name = model["name"]
        from urllib.parse import quote

        from jupyterhub.utils import url_path_join

        try:  # with the service's own token (it needs read:users:groups)
            user = await self.hub_auth._api_request(
                "GET", url_path_join(self.hub_auth.api_url, "users", quote(name, safe="")))
        except Exception as exc:
            raise refused(503, f"the hub cannot say {name}'s groups now "
                               f"({first_line(exc)})") from None
        if not user or "groups" not in user:
            raise refused(503, "the grading service may not read users' groups: grant it "
                               "the scope read:users:groups")
        role = course_roles(user["groups"]).get(self.course_id)
        if role is None:
            raise refused(403, f"{name} is not a member of course {self.course_id}")
        if student_id_problem(name) is not None:
            raise refused(403, f"{name!r} cannot be a student id of this course")
        return Caller(name, role)

    def check_course(self, course: str) -> None:
        problem = protocol.name_problem("course", course)
        if problem:
            raise refused(400, problem)
        if course != self.course_id:
            raise refused(404, f"course {course} is not served here")

    def check_assignment(self, assignment: str) -> None:
        problem = protocol.name_problem("assignment", assignment)
        if problem:
            raise refused(400, problem)

    # ------------------------------------------------------------------- reads
    def released(self) -> list[dict]:
        out = []
        outbound = self.course_dir / "outbound"
        for folder in sorted(outbound.iterdir()):
            if folder.is_dir() and protocol.name_problem("assignment", folder.name) is None:
                out.append({"assignment_id": folder.name,
                            "notebooks": sorted(p.stem for p in folder.glob("*.ipynb"))})
        return out

    def released_folder(self, assignment: str) -> Path:
        folder = self.course_dir / "outbound" / assignment
        if not folder.is_dir():
            raise refused(404, f"{assignment} is not released in course {self.course_id}")
        return folder

    def entries(self, student: str, assignment: str | None = None) -> list[Path]:
        """The inbound entries of ``student`` (of ``assignment``), oldest first."""
        prefix = f"{student}+" + (f"{assignment}+" if assignment else "")
        inbound = self.course_dir / "inbound"
        found = [p for p in inbound.iterdir() if p.name.startswith(prefix)
                 and len(p.name.split("+")) == 4 and p.is_dir()]
        return sorted(found, key=lambda p: (p.name.split("+")[2], p.name))

    def feedback_path(self, secret: str, notebook: str) -> Path:
        """Where nbgrader's release_feedback puts one notebook's feedback (named by the secret)."""
        from nbgrader.utils import notebook_hash

        name = notebook_hash(secret=secret, notebook_id=notebook)
        return self.course_dir / "feedback" / f"{name}.html"

    def feedback_of(self, entry: Path) -> dict[str, Path]:
        """notebook id -> the released feedback file of one inbound entry (where there is one)."""
        try:
            secret = (entry / SECRET_FILE).read_text()
        except OSError:
            return {}
        out = {}
        for nb in sorted(entry.glob("*.ipynb")):
            path = self.feedback_path(secret, nb.stem)
            if path.is_file():
                out[nb.stem] = path
        return out

    def submissions(self, student: str) -> list[dict]:
        out = []
        for entry in self.entries(student):
            _, assignment, stamp, _ = entry.name.split("+")
            feedback = self.feedback_of(entry)
            out.append({
                "assignment_id": assignment, "student_id": student, "timestamp": stamp,
                "notebooks": [{"notebook_id": nb.stem, "has_exchange_feedback": nb.stem in feedback,
                               "feedback_checksum": _checksum(feedback[nb.stem])
                               if nb.stem in feedback else None}
                              for nb in sorted(entry.glob("*.ipynb"))],
            })
        return out

    # ----------------------------------------------------------------- submit
    def upload_limit(self) -> int:
        return self.precheck.max_submission_bytes + ARCHIVE_SLACK

    def unpack(self, body: bytes) -> dict[str, bytes]:
        try:
            return protocol.members(body, max_files=self.precheck.max_files,
                           max_bytes=self.precheck.max_submission_bytes,
                           max_file_bytes=self.precheck.max_file_bytes)
        except protocol.ExchangeRefused as exc:
            raise refused(exc.status, exc.message) from None

    def check_rate(self, student: str) -> None:
        since = J.utcnow() - timedelta(seconds=self.settings.rate_window)
        recent = [r for r in self.service.journal.rows(student=student)
                  if r.seen_at is not None and r.seen_at >= since]
        if len(recent) >= self.settings.max_submissions:
            error = refused(429, f"{len(recent)} submissions in the last "
                                 f"{self.settings.rate_window:g} s: at most "
                                 f"{self.settings.max_submissions}; try again later")
            error.retry_after = int(self.settings.rate_window)
            raise error

    def check_fresh(self, student: str, nonce: str, sent_at: str) -> None:
        """A submit request is used once: a nonce already journalled, or a ``sent_at``
        outside ``replay_window``, is a replay (409 / 400)."""
        if not protocol.NONCE.fullmatch(nonce or ""):
            raise refused(400, "a submit request needs a nonce: 16-64 letters, digits, _ -")
        try:
            age = time.time() - float(sent_at)
        except (TypeError, ValueError):
            raise refused(400, "a submit request needs sent_at: seconds since the epoch") from None
        if not abs(age) <= self.settings.replay_window:
            raise refused(400, f"the request was sent {age:.0f} s ago (at most "
                               f"{self.settings.replay_window:g} s either way): a replay, "
                               "or a wrong clock")
        for row in self.service.journal.rows(student=student):
            if row.entry.endswith("+" + nonce):
                raise refused(409, "this submit request was already received (a replay)")

    def accept(self, student: str, assignment: str, files: dict[str, bytes],
               nonce: str) -> dict:
        """Precheck, write, rename into place, journal: the submission's record, or refused."""
        self.released_folder(assignment)
        if assignment not in self.service.course.assignments:
            raise refused(404, f"{assignment} is not an assignment of course {self.course_id}")
        from autograder.pipeline.coordinator.gradebook import CourseGradebook

        try:
            expected = CourseGradebook(self.service.course.db_url, self.course_id,
                                       self.service.course.config).structure(assignment).cell_ids
        except UsageError as exc:  # released by hand, never generated: not gradable
            raise refused(404, str(exc)) from None
        stamp, submitted_at = timestamp_now()
        name = f"{student}+{assignment}+{stamp}+{nonce}"
        partial = self.course_dir / INCOMING / secrets.token_hex(8)
        partial.mkdir(mode=0o700)
        try:
            files = {k: v for k, v in files.items() if k not in (TIMESTAMP_FILE, SECRET_FILE)}
            protocol.write_files(partial, {**files, TIMESTAMP_FILE: stamp.encode(),
                                  SECRET_FILE: secrets.token_hex(32).encode()})
            sub = self.precheck.check(partial, student, assignment, expected)
            if all(nb is None for nb in sub.notebooks.values()):
                reasons = "; ".join(reason for _, reason in sub.flags) or "no notebook"
                raise refused(400, f"nothing to grade: {reasons}")
            entry = self.course_dir / "inbound" / name
            os.rename(partial, entry)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        try:
            row = self.service.journal.add(student, assignment, stamp, name, submitted_at)
        except BaseException:
            shutil.rmtree(entry, ignore_errors=True)  # not journalled: not there
            raise
        self.service.journalled(name)
        event("queued", f"{student} {assignment} ({stamp}) over HTTP")
        return {"assignment_id": assignment, "student_id": student, "timestamp": stamp,
                "journal_id": row, "warnings": [f"{f}: {reason}" for f, reason in sub.flags]}

    # ------------------------------------------------------------------ staff
    def release(self, assignment: str, files: dict[str, bytes], force: bool) -> None:
        target = self.course_dir / "outbound" / assignment
        if target.exists() and not force:
            raise refused(409, f"{assignment} is already released (force to replace it)")
        protocol.replace_folder(target, files, scratch=self.course_dir / INCOMING)
        event("released", f"{assignment}: handed out over HTTP")

    def collect(self, assignment: str) -> bytes:
        """A tar.gz of ``<student>/<files>``: each student's latest submission of ``assignment``."""
        latest: dict[str, Path] = {}
        for entry in (self.course_dir / "inbound").iterdir():
            parts = entry.name.split("+")
            if len(parts) == 4 and parts[1] == assignment and entry.is_dir():
                if parts[0] not in latest or parts[2] > latest[parts[0]].name.split("+")[2]:
                    latest[parts[0]] = entry
        extra = {}
        for student, entry in sorted(latest.items()):
            for path in sorted(entry.rglob("*")):
                if path.is_file() and not path.is_symlink() and path.name != SECRET_FILE:
                    extra[f"{student}/{path.relative_to(entry).as_posix()}"] = path.read_bytes()
        empty = self.course_dir / INCOMING / secrets.token_hex(8)
        empty.mkdir(mode=0o700)
        try:
            return protocol.pack(empty, extra=extra)
        finally:
            empty.rmdir()

    def release_feedback(self, assignment: str, student: str, timestamp: str,
                         notebooks: dict[str, str]) -> int:
        entry = next((e for e in self.entries(student, assignment)
                      if e.name.split("+")[2] == timestamp), None)
        if entry is None:
            raise refused(404, f"no submission of {assignment} by {student} at {timestamp}")
        secret = (entry / SECRET_FILE).read_text()
        for notebook, html in notebooks.items():
            problem = protocol.name_problem("notebook", notebook)
            if problem:
                raise refused(400, problem)
            final = self.feedback_path(secret, notebook)
            partial = final.with_name(final.name + ".partial")
            partial.write_text(html, encoding="utf-8")
            os.chmod(partial, 0o600)
            os.replace(partial, final)
        return len(notebooks)


# --------------------------------------------------------------------------- #
# handlers
# --------------------------------------------------------------------------- #
class Base(web.RequestHandler):
    """Token authentication, one-line JSON errors, no cookies, no XSRF (no browser session)."""

    staff_only = False

    def initialize(self, exchange: Exchange):
        self.exchange = exchange
        self.caller: Caller | None = None

    def check_xsrf_cookie(self):  # token-authenticated API: no cookie is ever read
        return None

    async def prepare(self):
        kwargs = self.path_kwargs
        self.exchange.check_course(kwargs["course"])
        if "assignment" in kwargs:
            self.exchange.check_assignment(kwargs["assignment"])
        self.caller = await self.exchange.identify(self.request.headers.get("Authorization"))
        if self.staff_only and self.caller.role != STAFF:
            raise refused(403, f"only the instructors and TAs of {self.exchange.course_id} "
                               "may do this")

    def write_json(self, data) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_archive(self, data: bytes) -> None:
        self.set_header("Content-Type", protocol.ARCHIVE_TYPE)
        self.finish(data)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "message", None) or (
            self._reason if status_code < 500 else
            "internal error of the exchange (the grading service's log says more)")
        retry = getattr(exc, "retry_after", None)
        if retry:
            self.set_header("Retry-After", str(retry))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    def log_exception(self, typ, value, tb):
        if isinstance(value, web.HTTPError) and getattr(value, "message", None):
            who = self.caller.name if self.caller else "?"
            event("refused", f"{value.status_code} {self.request.method} "
                             f"{self.request.path[-120:]} ({who}): {value.message}")
            return
        super().log_exception(typ, value, tb)


@web.stream_request_body
class Upload(Base):
    """A handler whose body is a tar.gz read into memory within the upload limit."""

    async def prepare(self):
        await super().prepare()
        limit = self.exchange.upload_limit()
        # read (and drop) a body up to READ_OVER times the limit, so that the client reads
        # its 413 after sending; a larger one is refused at once and its connection closed
        length = self.request.headers.get("Content-Length")
        if length is not None and (not length.isdigit() or int(length) > READ_OVER * limit):
            raise refused(413, f"the upload is {length} bytes: at most {limit}")
        self.request.connection.set_max_body_size(READ_OVER * limit)
        self.chunks: list[bytes] = []
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= self.exchange.upload_limit():
            self.chunks.append(chunk)

    def body(self) -> bytes:
        if self.size > self.exchange.upload_limit():
            raise refused(413, f"the upload is over {self.exchange.upload_limit()} bytes")
        return b"".join(self.chunks)


class AssignmentsHandler(Base):
    def get(self, course):
        self.write_json({"course_id": course, "role": self.caller.role,
                         "student_id": self.caller.name, "assignments": self.exchange.released()})


class AssignmentHandler(Base):
    def get(self, course, assignment):
        folder = self.exchange.released_folder(assignment)
        self.write_archive(protocol.pack(folder))


class SubmitHandler(Upload):
    async def prepare(self):
        await super().prepare()
        self.exchange.check_fresh(self.caller.name, self.get_query_argument("nonce", ""),
                                  self.get_query_argument("sent_at", ""))
        self.exchange.check_rate(self.caller.name)

    def post(self, course, assignment):
        files = self.exchange.unpack(self.body())
        self.write_json(self.exchange.accept(self.caller.name, assignment, files,
                                             self.get_query_argument("nonce")))


class SubmissionsHandler(Base):
    def get(self, course):
        self.write_json({"course_id": course, "student_id": self.caller.name,
                         "submissions": self.exchange.submissions(self.caller.name)})


class FeedbackHandler(Base):
    def get(self, course, assignment):
        out = []
        for entry in self.exchange.entries(self.caller.name, assignment):
            stamp = entry.name.split("+")[2]
            for notebook, path in self.exchange.feedback_of(entry).items():
                out.append({"timestamp": stamp, "notebook_id": notebook,
                            "html": path.read_text(encoding="utf-8", errors="replace")})
        self.write_json({"course_id": course, "assignment_id": assignment, "feedback": out})


class ReleaseHandler(Upload):
    staff_only = True

    def post(self, course, assignment):
        files = self.exchange.unpack(self.body())
        self.exchange.release(assignment, files, self.get_query_argument("force", "") == "1")
        self.write_json({"assignment_id": assignment, "files": len(files)})


class CollectHandler(Base):
    staff_only = True

    def get(self, course, assignment):
        self.write_archive(self.exchange.collect(assignment))


class ReleaseFeedbackHandler(Upload):
    staff_only = True

    def post(self, course, assignment, student):
        problem = student_id_problem(student)
        if problem:
            raise refused(400, problem)
        try:
            data = json.loads(self.body())
            timestamp, notebooks = data["timestamp"], data["notebooks"]
            assert isinstance(timestamp, str) and isinstance(notebooks, dict)
            assert all(isinstance(v, str) for v in notebooks.values())
        except (ValueError, KeyError, TypeError, AssertionError):
            raise refused(400, 'the body must be {"timestamp": "...", "notebooks": '
                               '{"<notebook>": "<html>"}}') from None
        n = self.exchange.release_feedback(assignment, student, timestamp, notebooks)
        self.write_json({"student_id": student, "assignment_id": assignment, "released": n})


def handlers(prefix: str, exchange: Exchange) -> list:
    """The exchange's routes under the service's ``prefix`` (``.../exchange/v1/<course>/...``)."""
    base = prefix + protocol.API + r"/(?P<course>[^/]+)/"
    a = r"(?P<assignment>[^/]+)"
    routes = [
        ("assignments", AssignmentsHandler),
        (f"assignments/{a}", AssignmentHandler),
        (f"submissions/{a}", SubmitHandler),
        ("submissions", SubmissionsHandler),
        (f"feedback/{a}", FeedbackHandler),
        (f"release/{a}", ReleaseHandler),
        (f"collect/{a}", CollectHandler),
        (f"feedback/{a}/(?P<student>[^/]+)", ReleaseFeedbackHandler),
    ]
    return [(base + path + "$", handler, {"exchange": exchange}) for path, handler in routes]

