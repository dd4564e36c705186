"""The class view served by the grading service, next to its status page.

``<prefix>class/<assignment>``: the class view (:func:`render.page`), and
``<prefix>class/<assignment>/feedback/<student>``: that student's feedback page,
which the class view links to.  Both sit behind the status page's access check
(:func:`autograder.service.status.make_app` hands its handler base and its
``authenticated`` decorator here): instructors only, anyone else gets 403.
Every response carries :data:`render.CSP` (no script at all) and is not cached.
The gradebook is read on a thread, so that the service's loop goes on meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tornado import web
from tornado.ioloop import IOLoop

from autograder.classview import render
from autograder.classview.data import collect

HEADERS = {
    "Content-Security-Policy": render.CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def feedback_file(root: Path, student: str, assignment: str) -> Path | None:
    """``feedback/<student>/<assignment>/<assignment>.html`` if it is a plain file there."""
    if not student or "/" in student or "\\" in student or student in (".", ".."):
        return None
    path = root / "feedback" / student / assignment / f"{assignment}.html"
    try:
        if path.is_symlink() or not path.is_file():
            return None
        if path.resolve().parent.parent.parent != (root / "feedback").resolve():
            return None
    except OSError:
        return None
    return path


def class_handlers(prefix: str, base, authenticated, service) -> list:
    """The routes of the class view (``base``: the status page's handler class)."""
    course = service.course

    class Secured(base):
        def set_default_headers(self):
            for name, value in HEADERS.items():
                self.set_header(name, value)

        def known(self, assignment: str) -> str:
            if assignment not in course.assignments:
                raise web.HTTPError(404)
            return assignment

    class ClassHandler(Secured):
        @authenticated
        async def get(self, assignment):
            assignment = self.known(assignment)

            def href(student: str) -> str | None:
                if feedback_file(course.root, student, assignment) is None:
                    return None
                return f"{prefix}class/{quote(assignment)}/feedback/{quote(student, safe='')}"

            def build() -> str:
                return render.page(collect(course.db_url, course.course_id, assignment), href)

            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.write(await IOLoop.current().run_in_executor(None, build))

    class FeedbackHandler(Secured):
        @authenticated
        def get(self, assignment, student):
            path = feedback_file(course.root, student, self.known(assignment))
            if path is None:
                raise web.HTTPError(404)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.write(path.read_bytes())

    return [(prefix + r"class/([^/]+)", ClassHandler),
            (prefix + r"class/([^/]+)/feedback/([^/]+)", FeedbackHandler)]
