"""The service's status page (HTML) and ``api/status`` (JSON), served by its main process.

Run by JupyterHub as a managed service (``JUPYTERHUB_SERVICE_URL``,
``JUPYTERHUB_SERVICE_PREFIX`` and ``JUPYTERHUB_API_TOKEN`` set by the hub),
both are behind the hub's OAuth (:class:`jupyterhub.services.auth.HubOAuthenticated`):
only the course's instructors get in, members of the group
``formgrade-<course_id>`` (docs/jupyterhub.md) or users with the hub's
``access:services`` scope for this service; anyone else gets 403.  Outside a
hub, ``--bind 127.0.0.1:PORT`` serves them without authentication, on the
loopback interface only.

The page shows the queue, the round running, what is done, the failures,
each student's latest score and flags, and the throughput; ``api/status``
returns the same as JSON (:func:`status`).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

from tornado import web
from tornado.escape import xhtml_escape

from autograder.classview.serve import class_handlers
from autograder.roles import staff_group
from autograder.service import journal as J

RECENT = 50  # rows of "done" shown


def _iso(value):
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


def _row(row) -> dict:
    return {
        "id": row.id, "student": row.student_id, "assignment": row.assignment,
        "timestamp": row.timestamp, "state": row.state, "attempts": row.attempts,
        "score": row.score, "max_score": row.max_score,
        "flags": [f for f in (row.flags or "").split(";") if f], "note": row.note,
        "seen_at": _iso(row.seen_at), "graded_at": _iso(row.graded_at),
        "released_at": _iso(row.released_at),
    }


def _percentile(values, q):
    values = sorted(values)
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[index], 1)


def status(service) -> dict:
    """Everything the page shows, as plain data (the JSON of ``api/status``)."""
    rows = service.journal.rows()
    running = set(service.running_ids(rows))
    now = J.utcnow()
    latest: dict[tuple[str, str], object] = {}
    for row in rows:
        if row.state in J.DONE or (row.state == J.FAILED):
            latest[(row.student_id, row.assignment)] = row  # rows come in id order
    graded = [r for r in rows if r.graded_at is not None and r.state in J.DONE]
    waits = [(r.graded_at - r.submitted_at).total_seconds() for r in graded
             if r.submitted_at is not None]
    hour = [r for r in graded if now - r.graded_at <= timedelta(hours=1)]
    ten = [r for r in graded if now - r.graded_at <= timedelta(minutes=10)]
    round_ = service.round
    return {
        "course_id": service.course.course_id,
        "inbound": str(service.inbound),
        "started_at": _iso(datetime.fromtimestamp(service.started, timezone.utc)
                           .replace(tzinfo=None)),
        "stopping": service.stopping,
        "feedback_release": service.policies,
        "counts": {state: n for state, n in sorted(service.journal.counts().items())},
        "queue": [_row(r) for r in rows if r.state in J.PENDING and r.id not in running
                  and r.attempts < service.opts.max_attempts],
        "running": {
            "assignment": round_[1] if round_ else None,
            "since": _iso(datetime.fromtimestamp(round_[3], timezone.utc)
                          .replace(tzinfo=None)) if round_ else None,
            "submissions": [_row(r) for r in rows if r.id in running and r.state in J.PENDING],
        },
        "done": [_row(r) for r in sorted(graded, key=lambda r: r.graded_at)[-RECENT:]],
        "failures": [_row(r) for r in rows if r.state in (J.FAILED, J.REJECTED)
                     or (r.state in J.PENDING and r.attempts > 0)],
        "students": [_row(r) for _, r in sorted(latest.items())],
        "throughput": {
            "graded": len(graded),
            "graded_last_hour": len(hour),
            "per_minute_last_10_min": round(len(ten) / 10, 2),
            "rounds": service.rounds,
            "crashed_rounds": service.crashed_rounds,
            "submit_to_graded_s": {"median": _percentile(waits, 0.5),
                                   "p95": _percentile(waits, 0.95),
                                   "max": _percentile(waits, 1.0)},
        },
    }


# --------------------------------------------------------------------------- #
# HTML
# --------------------------------------------------------------------------- #
COLUMNS = ("student", "assignment", "timestamp", "state", "score", "flags", "note")


def _table(title: str, rows: list[dict]) -> str:
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        cells = []
        for c in COLUMNS:
            value = row.get(c)
            if c == "score":
                value = "" if row["score"] is None else f"{row['score']:g}/{row['max_score']:g}"
            elif c == "flags":
                value = " ".join(row["flags"])
            cells.append(f"<td>{xhtml_escape(str(value if value is not None else ''))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h2>{xhtml_escape(title)} ({len(rows)})</h2><table><tr>{head}</tr>"
            + "".join(body) + "</table>")


def page(data: dict, api_url: str) -> str:
    t = data["throughput"]
    wait = t["submit_to_graded_s"]
    running = data["running"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'>"
        f"<title>Grading service: {xhtml_escape(data['course_id'])}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}</style></head><body>"
        f"<h1>Grading service: {xhtml_escape(data['course_id'])}</h1>"
        f"<p id='summary'>queued {len(data['queue'])}, running "
        f"{len(running['submissions'])}, graded {t['graded']} "
        f"({t['graded_last_hour']} in the last hour, {t['per_minute_last_10_min']}/min over "
        f"10 min), failures {len(data['failures'])}; submit to graded: median "
        f"{wait['median']} s, p95 {wait['p95']} s, worst {wait['max']} s. "
        f"<a href='{xhtml_escape(api_url)}'>JSON</a></p>"
        + _table(f"Running ({running['assignment'] or 'no round'})", running["submissions"])
        + _table("Queue", data["queue"])
        + _table("Failures", data["failures"])
        + _table("Students (latest grading)", data["students"])
        + _table("Done (latest)", list(reversed(data["done"])))
        + "</body></html>"
    )


# --------------------------------------------------------------------------- #
# handlers and the application
# --------------------------------------------------------------------------- #
def in_hub() -> bool:
    return bool(os.environ.get("JUPYTERHUB_SERVICE_URL") and os.environ.get("JUPYTERHUB_API_TOKEN"))


def instructor_check(course_id: str, hub_auth):
    """The hub user check of the status page: ``model`` back if allowed, else UserNotAllowed.

    Allowed: whoever holds the service's access scope (``access:services``, which
    the hub grants by role) or belongs to the group ``formgrade-<course_id>``.
    """
    from jupyterhub.services.auth import UserNotAllowed

    group = staff_group(course_id)

    def check(model: dict) -> dict:
        scopes = hub_auth.access_scopes
        if scopes and hub_auth.check_scopes(scopes, model):
            return model
        if group in (model.get("groups") or []):
            return model
        raise UserNotAllowed(model)

    return check


def make_app(service, *, hub: bool):
    """The tornado application: ``<prefix>``, ``<prefix>api/status`` (+ the OAuth callback)."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/") if hub else "/"
    prefix = prefix if prefix.endswith("/") else prefix + "/"

    class Base(web.RequestHandler):
        def data(self):
            return status(service)

    if hub:
        from jupyterhub.services.auth import (
            HubOAuthCallbackHandler,
            HubOAuthenticated,
        )

        class Protected(HubOAuthenticated, Base):
            def check_hub_user(self, model):
                return instructor_check(service.course.course_id, self.hub_auth)(model)

        Handler = Protected
        authenticated = web.authenticated
    else:
        Handler = Base

        def authenticated(method):
            return method

    class PageHandler(Handler):
        @authenticated
        def get(self):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.write(page(self.data(), prefix + "api/status"))

    class ApiHandler(Handler):
        @authenticated
        def get(self):
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(self.data(), indent=1))

    handlers = [(prefix, PageHandler), (prefix + "api/status", ApiHandler)]
    handlers += class_handlers(prefix, Handler, authenticated, service)  # class/<assignment>
    if getattr(service, "http", None) is not None:  # the exchange over HTTP: token auth
        from autograder.service.http_exchange import handlers as exchange_handlers

        handlers += exchange_handlers(prefix, service.http)
    if hub:
        handlers.append((prefix + "oauth_callback", HubOAuthCallbackHandler))
    settings = {"cookie_secret": os.urandom(32), "log_function": lambda handler: None}
    return web.Application(handlers, **settings)


def hub_address() -> tuple[str, int]:
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    return url.hostname or "127.0.0.1", url.port or 80


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of ``--bind``; only the loopback interface without a hub."""
    from autograder.errors import UsageError

    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--bind wants HOST:PORT (e.g. 127.0.0.1:8765), not {text!r}")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise UsageError(f"--bind {text}: without a hub the status page has no "
                         "authentication, so it is served on 127.0.0.1 only")
    return host.strip("[]"), int(port)
