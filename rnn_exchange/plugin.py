"""nbgrader's exchange, over HTTP to the course's grading service (docs/exchange.md).

In a single-user server's ``nbgrader_config.py``::

    c.ExchangeFactory.exchange = "rnn_exchange.plugin.HttpExchange"
    c.ExchangeFactory.list = "rnn_exchange.plugin.ExchangeList"
    ... (one line per class below: rnn_exchange.plugin.FACTORY)

``c.HttpExchange.service_url`` (or ``RNN_EXCHANGE_URL``) is the grading
service's URL with ``{course_id}`` in it; ``c.HttpExchange.courses`` (or
``RNN_EXCHANGE_COURSES``, comma-separated) the courses listed when no course
is given (the Assignments tab).  Every call carries the server's own hub token
(``JUPYTERHUB_API_TOKEN``): the service knows the caller from it, never from
anything the client says.  A refusal is an :class:`ExchangeError` whose
message is the service's one line.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

from nbgrader.exchange import abc
from traitlets import Bool, Float, List, Unicode, default

from rnn_exchange.protocol import (
    API,
    ARCHIVE_TYPE,
    ExchangeRefused,
    members,
    name_problem,
    pack,
    replace_folder,
    write_files,
)

# what the client accepts from the service (it trusts it, but not without bounds)
FETCH_LIMITS = {"max_files": 2000, "max_bytes": 1 << 30, "max_file_bytes": 1 << 29}

FACTORY = {
    "exchange": "HttpExchange", "list": "ExchangeList",
    "fetch_assignment": "ExchangeFetchAssignment", "submit": "ExchangeSubmit",
    "fetch_feedback": "ExchangeFetchFeedback",
    "release_assignment": "ExchangeReleaseAssignment", "collect": "ExchangeCollect",
    "release_feedback": "ExchangeReleaseFeedback",
}
"""``c.ExchangeFactory.<key> = "rnn_exchange.plugin.<value>"``: :func:`factory_config`."""


def factory_config() -> dict[str, str]:
    """``{ExchangeFactory trait: class path}``, for a config file or a test."""
    return {key: f"{__name__}.{cls}" for key, cls in FACTORY.items()}


def configure(c, environ=None) -> bool:
    """In a server's ``nbgrader_config.py``: the HTTP exchange's classes when
    ``RNN_EXCHANGE_URL`` is set (students' and instructors' servers), nothing otherwise
    (the grader account's, which uses its private folder); whether it set them."""
    if not (os.environ if environ is None else environ).get("RNN_EXCHANGE_URL"):
        return False
    for key, cls in factory_config().items():
        setattr(c.ExchangeFactory, key, cls)
    return True


def run(kind: str, *, service_url: str, token: str, assignment_dir, course: str,
        assignment: str = "", course_root=None, config=None):
    """One exchange action as nbgrader's apps run it, from a program (tests, bench.rush).

    ``kind`` is an ``ExchangeFactory`` class name (``List``, ``FetchAssignment``,
    ``Submit``, ``FetchFeedback``, ``ReleaseAssignment``, ``Collect``,
    ``ReleaseFeedback``); ``config``, more traitlets configuration (merged last).
    Returns what ``start()`` returns (a list of records for ``List``); a refusal
    raises nbgrader's ExchangeError with the service's one line.
    """
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory
    from traitlets.config import Config

    cfg = Config()
    for key, value in factory_config().items():
        setattr(cfg.ExchangeFactory, key, value)
    cfg.HttpExchange.service_url = service_url
    cfg.HttpExchange.api_token = token
    cfg.Exchange.assignment_dir = os.fspath(assignment_dir)
    cfg.CourseDirectory.course_id = course
    cfg.CourseDirectory.assignment_id = assignment
    if course_root is not None:
        cfg.CourseDirectory.root = os.fspath(course_root)
    if config is not None:
        cfg.merge(config)
    exchange = getattr(ExchangeFactory(config=cfg), kind)(
        coursedir=CourseDirectory(config=cfg), authenticator=Authenticator(config=cfg),
        config=cfg)
    return exchange.start()


class HttpExchange(abc.Exchange):
    """What every class of the HTTP exchange shares (``c.HttpExchange``)."""

    service_url = Unicode(
        help="The grading service's URL, with {course_id} in it (default: $RNN_EXCHANGE_URL), "
             "e.g. http://127.0.0.1:8000/services/{course_id}-grader/",
    ).tag(config=True)
    courses = List(
        Unicode(), help="Courses listed when none is given (default: $RNN_EXCHANGE_COURSES, "
                        "comma-separated); a course the caller is not in lists nothing.",
    ).tag(config=True)
    api_token = Unicode(
        help="The caller's own hub token (default: $JUPYTERHUB_API_TOKEN, which the hub gives "
             "every single-user server)",
    ).tag(config=True)
    timeout = Float(120.0, help="Seconds one call to the service may take.").tag(config=True)
    path_includes_course = Bool(
        False, help="Whether fetched and submitted assignments live in <course>/<assignment> "
                    "rather than <assignment> (as nbgrader's own Exchange.path_includes_course).",
    ).tag(config=True)

    @default("service_url")
    def _service_url(self):
        return os.environ.get("RNN_EXCHANGE_URL", "")

    @default("courses")
    def _courses(self):
        return [c for c in os.environ.get("RNN_EXCHANGE_COURSES", "").split(",") if c]

    @default("api_token")
    def _api_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    # ------------------------------------------------------------------ calls
    def request(self, course: str, method: str, path: str, params=None, body=None,
                content_type=None) -> tuple[str, bytes]:
        """One call; ``(content type, body)``, or ExchangeRefused with the service's line."""
        problem = name_problem("course", course)
        if problem:
            raise ExchangeRefused(400, problem)
        if "{course_id}" not in self.service_url:
            raise ExchangeRefused(400, "no exchange service: set c.HttpExchange.service_url (or "
                                       "RNN_EXCHANGE_URL) to the grading service's URL with "
                                       "{course_id} in it")
        if not self.api_token:
            raise ExchangeRefused(401, "no hub token: JUPYTERHUB_API_TOKEN is not set")
        base = self.service_url.format(course_id=course).rstrip("/")
        url = f"{base}/{API}/{urllib.parse.quote(course, safe='')}/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Authorization": f"token {self.api_token}"}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]
            except Exception:
                message = exc.reason
            raise ExchangeRefused(exc.code, f"{message} (HTTP {exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ExchangeRefused(503, f"the exchange service at {base} cannot be reached "
                                       f"({reason})") from None

    def call_json(self, course: str, method: str, path: str, **kwargs) -> dict:
        _, body = self.request(course, method, path, **kwargs)
        return json.loads(body)

    def archive(self, course: str, path: str) -> dict[str, bytes]:
        _, body = self.request(course, "GET", path)
        return members(body, **FETCH_LIMITS)

    def guarded(self, function, *args, **kwargs):
        """``function(...)``; a refusal becomes nbgrader's ExchangeError (self.fail)."""
        try:
            return function(*args, **kwargs)
        except ExchangeRefused as exc:
            self.fail(exc.message)

    # ------------------------------------------------------------ local paths
    def course_id(self) -> str:
        course = self.coursedir.course_id
        if not course:
            self.fail("No course id specified. Re-run with --course flag.")
        problem = name_problem("course", course)
        if problem:
            self.fail(problem)
        return course

    def assignment_id(self) -> str:
        problem = name_problem("assignment", self.coursedir.assignment_id)
        if problem:
            self.fail(problem)
        return self.coursedir.assignment_id

    def local_dir(self, course: str, assignment: str) -> str:
        if self.path_includes_course:
            return os.path.join(self.assignment_dir, course, assignment)
        return os.path.join(self.assignment_dir, assignment)

    def init_src(self):
        pass

    def init_dest(self):
        pass


def _replace_folder(dest: str, files: dict[str, bytes]) -> None:
    """``dest`` made of ``files``: written beside it, then renamed into place."""
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    replace_folder(dest, files, scratch=parent, mode=0o644)


def _md5(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


# --------------------------------------------------------------------------- #
# students (and staff)
# --------------------------------------------------------------------------- #
class ExchangeList(abc.ExchangeList, HttpExchange):
    """``nbgrader list`` (and the Assignments tab): records shaped as nbgrader's own."""

    def copy_files(self):
        pass

    def courses_to_list(self) -> list[str]:
        return [self.course_id()] if self.coursedir.course_id else list(self.courses)

    def list_files(self):
        out = []
        for course in self.courses_to_list():
            try:
                if self.inbound or self.cached:
                    out += self.submitted(course)
                else:
                    out += self.released(course)
            except ExchangeRefused as exc:
                if self.coursedir.course_id:
                    self.fail(exc.message)
                # a course of the list the caller is not in: nothing of it is shown
                self.log.debug("course %s not listed: %s", course, exc.message)
        return out

    def remove_files(self):
        self.fail("the HTTP exchange does not remove released assignments or submissions")

    def wanted(self, assignment: str) -> bool:
        return not self.coursedir.assignment_id or self.coursedir.assignment_id == assignment

    def released(self, course: str) -> list[dict]:
        data = self.call_json(course, "GET", "assignments")
        out = []
        for item in data["assignments"]:
            assignment = item["assignment_id"]
            if not self.wanted(assignment) or name_problem("assignment", assignment):
                continue
            local = self.local_dir(course, assignment)
            info = {"course_id": course, "assignment_id": assignment}
            if os.path.exists(local):
                info["status"], info["path"] = "fetched", os.path.abspath(local)
                info["notebooks"] = [
                    {"notebook_id": os.path.splitext(os.path.basename(nb))[0],
                     "path": os.path.abspath(nb)}
                    for nb in sorted(glob.glob(os.path.join(glob.escape(local), "*.ipynb")))]
                self.log.info("%s %s (already downloaded)", course, assignment)
            else:
                info["status"] = "released"
                info["path"] = f"{course}/{assignment}"
                info["notebooks"] = [{"notebook_id": nb, "path": f"{assignment}/{nb}.ipynb"}
                                     for nb in item["notebooks"]]
                self.log.info("%s %s", course, assignment)
            out.append(info)
        return out

    def submitted(self, course: str) -> list[dict]:
        data = self.call_json(course, "GET", "submissions")
        student = data["student_id"]
        groups: dict[str, list[dict]] = {}
        for sub in data["submissions"]:
            assignment = sub["assignment_id"]
            if not self.wanted(assignment):
                continue
            local = self.local_dir(course, assignment)
            feedback_dir = os.path.join(local, "feedback", sub["timestamp"])
            notebooks = []
            for nb in sub["notebooks"]:
                path = os.path.join(feedback_dir, f"{nb['notebook_id']}.html")
                local_fb = os.path.isfile(path)
                notebooks.append({
                    "notebook_id": nb["notebook_id"],
                    "path": f"{assignment}/{nb['notebook_id']}.ipynb",
                    "has_local_feedback": local_fb,
                    "has_exchange_feedback": nb["has_exchange_feedback"],
                    "local_feedback_path": path if local_fb else None,
                    "feedback_updated": bool(local_fb and nb["has_exchange_feedback"]
                                             and _md5(path) != nb["feedback_checksum"]),
                })
            has_local = bool(notebooks) and all(nb["has_local_feedback"] for nb in notebooks)
            info = {
                "course_id": course, "student_id": student, "assignment_id": assignment,
                "timestamp": sub["timestamp"], "status": "submitted",
                "path": f"{course}/{student}+{assignment}+{sub['timestamp']}",
                "notebooks": notebooks, "has_local_feedback": has_local,
                "has_exchange_feedback": bool(notebooks) and all(
                    nb["has_exchange_feedback"] for nb in notebooks),
                "feedback_updated": any(nb["feedback_updated"] for nb in notebooks),
                "local_feedback_path": os.path.abspath(feedback_dir) if has_local else None,
            }
            state = ("feedback already fetched" if has_local and not info["feedback_updated"]
                     else "feedback ready to be fetched" if info["has_exchange_feedback"]
                     else "no feedback available")
            self.log.info("%s %s %s %s (%s)", course, student, assignment, sub["timestamp"], state)
            groups.setdefault(assignment, []).append(info)
        return [{"course_id": course, "student_id": student, "assignment_id": assignment,
                 "status": "submitted", "submissions": sorted(subs, key=lambda s: s["timestamp"])}
                for assignment, subs in sorted(groups.items())]


class ExchangeFetchAssignment(abc.ExchangeFetchAssignment, HttpExchange):
    """``nbgrader fetch_assignment``: a released assignment of the caller's course."""

    def init_dest(self):
        self.dest_path = os.path.abspath(self.local_dir(self.course_id(), self.assignment_id()))
        if os.path.isdir(self.dest_path) and not self.replace_missing_files:
            self.fail(f"You already have a copy of the assignment in this directory: "
                      f"{self.assignment_id()}")

    def copy_files(self):
        course, assignment = self.course_id(), self.assignment_id()
        files = self.guarded(self.archive, course, f"assignments/{urllib.parse.quote(assignment)}")
        if os.path.isdir(self.dest_path):  # replace_missing_files
            missing = {rel: data for rel, data in files.items()
                       if not os.path.lexists(os.path.join(self.dest_path, *rel.split("/")))}
            write_files(self.dest_path, missing, mode=0o644)
            self.log.info("Replaced %d missing file(s) in %s", len(missing), self.dest_path)
        else:
            _replace_folder(self.dest_path, files)
        self.log.info("Fetched as: %s %s", course, assignment)


class ExchangeSubmit(abc.ExchangeSubmit, HttpExchange):
    """``nbgrader submit``: as the caller (whose token it is), never as a name it gives."""

    def init_src(self):
        self.src_path = os.path.abspath(self.local_dir(self.course_id(), self.assignment_id()))
        if not os.path.isdir(self.src_path):
            self.fail(f"Assignment not found at: {self.src_path}")

    def check_notebooks(self, course: str, assignment: str) -> None:
        """nbgrader's check: released notebooks missing from the submission (``strict``: fail)."""
        data = self.guarded(self.call_json, course, "GET", "assignments")
        released = next((a["notebooks"] for a in data["assignments"]
                         if a["assignment_id"] == assignment), None)
        if released is None:
            self.fail(f"{assignment} is not released in course {course}")
        mine = {os.path.splitext(os.path.basename(p))[0]
                for p in glob.glob(os.path.join(glob.escape(self.src_path), "*.ipynb"))}
        missing = sorted(set(released) - mine)
        if missing and self.strict:
            self.fail(f"Assignment {assignment} not submitted. There are missing notebooks "
                      f"for the submission: {', '.join(missing)}")
        if missing:
            self.log.warning("Missing notebooks in %s: %s", assignment, ", ".join(missing))

    def copy_files(self):
        course, assignment = self.course_id(), self.assignment_id()
        self.check_notebooks(course, assignment)
        body = pack(self.src_path, ignore=list(self.coursedir.ignore))
        params = {"nonce": secrets.token_urlsafe(18), "sent_at": f"{time.time():.3f}"}
        result = self.guarded(self.call_json, course, "POST",
                              f"submissions/{urllib.parse.quote(assignment)}", params=params,
                              body=body, content_type=ARCHIVE_TYPE)
        for warning in result.get("warnings", []):
            self.log.warning("%s", warning)
        self.timestamp = result["timestamp"]
        self.log.info("Submitted as: %s %s %s", course, assignment, result["timestamp"])


class ExchangeFetchFeedback(abc.ExchangeFetchFeedback, HttpExchange):
    """``nbgrader fetch_feedback``: the caller's own feedback, into ``<assignment>/feedback/``."""

    def copy_files(self):
        course, assignment = self.course_id(), self.assignment_id()
        data = self.guarded(self.call_json, course, "GET",
                            f"feedback/{urllib.parse.quote(assignment)}")
        dest = os.path.abspath(os.path.join(self.local_dir(course, assignment), "feedback"))
        for item in data["feedback"]:
            stamp = item["timestamp"]
            if (name_problem("notebook", item["notebook_id"]) or "/" in stamp or "\\" in stamp
                    or stamp.strip(".") == ""):
                self.log.error("Skipping feedback with an unsafe name: %r", item)
                continue
            folder = os.path.join(dest, item["timestamp"])
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{item['notebook_id']}.html")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(item["html"])
            self.log.info("Fetched feedback: %s", path)
        if not data["feedback"]:
            self.log.warning("No feedback for %s %s yet", course, assignment)


# --------------------------------------------------------------------------- #
# instructors and TAs (formgrade-<course>)
# --------------------------------------------------------------------------- #
class ExchangeReleaseAssignment(abc.ExchangeReleaseAssignment, HttpExchange):
    """``nbgrader release_assignment``: ``release/<assignment>`` up to the service."""

    def init_src(self):
        self.src_path = self.coursedir.format_path(self.coursedir.release_directory, ".",
                                                   self.assignment_id())
        if not os.path.isdir(self.src_path):
            self.fail(f"Assignment not found: {self.src_path}")

    def copy_files(self):
        course, assignment = self.course_id(), self.assignment_id()
        body = pack(self.src_path, ignore=list(self.coursedir.ignore))
        self.guarded(self.call_json, course, "POST", f"release/{urllib.parse.quote(assignment)}",
                     params={"force": "1"} if self.force else None, body=body,
                     content_type=ARCHIVE_TYPE)
        self.log.info("Released as: %s %s", course, assignment)


class ExchangeCollect(abc.ExchangeCollect, HttpExchange):
    """``nbgrader collect``: each student's latest submission into ``submitted/``."""

    def copy_files(self):
        course, assignment = self.course_id(), self.assignment_id()
        files = self.guarded(self.archive, course, f"collect/{urllib.parse.quote(assignment)}")
        by_student: dict[str, dict[str, bytes]] = {}
        for rel, data in files.items():
            student, _, inner = rel.partition("/")
            if inner:
                by_student.setdefault(student, {})[inner] = data
        wanted = self.coursedir.student_id
        for student, sub in sorted(by_student.items()):
            if wanted not in ("", "*") and not fnmatch.fnmatch(student, wanted):
                continue
            dest = self.coursedir.format_path(self.coursedir.submitted_directory, student,
                                              assignment)
            if os.path.isdir(dest):
                old = os.path.join(dest, "timestamp.txt")
                new = sub.get("timestamp.txt", b"").decode()
                older = os.path.isfile(old) and open(old).read().strip() >= new.strip()
                if not self.update or older:
                    self.log.info("Skipping existing assignment: %s", dest)
                    continue
            _replace_folder(dest, sub)
            self.log.info("Collected %s %s", student, assignment)


class ExchangeReleaseFeedback(abc.ExchangeReleaseFeedback, HttpExchange):
    """``nbgrader release_feedback``: ``feedback/<student>/<assignment>/*.html`` to the service."""

    def copy_files(self):
        course, assignment = self.course_id(), self.assignment_id()
        student = self.coursedir.student_id or "*"
        pattern = self.coursedir.format_path(self.coursedir.feedback_directory, student,
                                             assignment)
        excluded = set(filter(None, self.coursedir.student_id_exclude.split(",")))
        regexp = self.coursedir.format_path(self.coursedir.feedback_directory,
                                            "(?P<student_id>[^/]+)", assignment, escape=True)
        for folder in sorted(glob.glob(pattern)):
            m = re.fullmatch(regexp, folder)
            student_id = m.group("student_id") if m else ""
            if not student_id or student_id in excluded:
                continue
            htmls = sorted(glob.glob(os.path.join(glob.escape(folder), "*.html")))
            if not htmls:
                continue
            with open(os.path.join(folder, "timestamp.txt")) as fh:
                timestamp = fh.read().strip()
            notebooks = {}
            for path in htmls:
                with open(path, encoding="utf-8") as fh:
                    notebooks[os.path.splitext(os.path.basename(path))[0]] = fh.read()
            body = json.dumps({"timestamp": timestamp, "notebooks": notebooks}).encode()
            self.guarded(self.call_json, course, "POST",
                         f"feedback/{urllib.parse.quote(assignment)}/"
                         f"{urllib.parse.quote(student_id)}",
                         body=body, content_type="application/json")
            self.log.info("Released feedback of %s %s", student_id, assignment)
