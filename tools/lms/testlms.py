"""A small LTI 1.3 platform (an LMS) of the project's own, for the tests and by hand.

It is a real platform on loopback HTTP, not a mock: its own RSA key and JWKS,
an OIDC authorization endpoint answering a launch with a signed id_token, an
OAuth2 token endpoint (client credentials with a client assertion JWT, RFC
7523), Names and Role Provisioning Services and Assignment and Grade Services
keeping a gradebook.  The JOSE work is jwcrypto's; the HTTP is tornado's.

In a test::

    lms = TestLMS(ToolRegistration(client_id=..., login_url=..., redirect_uris=[...],
                                   public_jwk=...)).start()
    lms.add_course("ctx-rnn", "RNN", "Recurrent networks")
    lms.add_user("u1", "Ada Lovelace", "ada@example.org")
    lms.enroll("ctx-rnn", "u1", roles.LTI_LEARNER)
    ... lms.posts(lineitem_id, "u1") ...  # accepted score posts, to assert exactly-once
    lms.stop()

By hand: ``python tools/lms/testlms.py --tool-url http://127.0.0.1:18000`` prints
its URLs; its front page lists a launch link per account and course, each also
opened inside an iframe of an LMS page (as Canvas and Moodle open tools).

Test controls make it misbehave on purpose (:meth:`TestLMS.fail`): answer 5xx,
hang, answer garbage JSON, refuse with a 4xx and a reason; line items can be
deleted and members can leave (:meth:`TestLMS.leave`).

What it does not do: sessions (the launch page trusts ``login_hint``: anyone
reaching it may launch as anyone), HTTPS, Deep Linking, LTI 1.1.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import http.client
import json
import logging
import math
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

if __package__ in (None, ""):  # run as a script: the repository's packages come first
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tornado.httpclient  # noqa: E402
import tornado.httpserver  # noqa: E402
import tornado.ioloop  # noqa: E402
import tornado.netutil  # noqa: E402
import tornado.web  # noqa: E402
from jwcrypto import jwk, jwt  # noqa: E402
from jwcrypto.common import JWException, base64url_encode  # noqa: E402

from autograder import roles  # noqa: E402
from autograder.lti import keys, spec  # noqa: E402

ID_TOKEN_LIFETIME = 300  # seconds
ASSERTION_MAX_LIFETIME = 3600  # a client assertion valid for longer is refused
CLOCK_SKEW = 60  # seconds of leeway on iat (jwcrypto allows as much on exp)
HANG_SECONDS = 60.0  # how long a hanging endpoint keeps a request (stop() ends it sooner)
ENDPOINTS = ("auth", "token", "jwks", "memberships", "lineitems", "lineitem", "scores",
             "results")
"""What :meth:`TestLMS.fail` can make misbehave."""
AUTH_PATH = "/lti/authorize"
TOKEN_PATH = "/login/oauth2/token"
JWKS_PATH = "/lti/security/jwks"


class ThreadedServer:
    """A tornado application served on loopback in a thread with its own event loop."""

    def __init__(self, make_app, host: str = "127.0.0.1", port: int = 0):
        self.make_app, self.host, self.port = make_app, host, port
        self.stopping: asyncio.Event | None = None  # set when it stops: hanging requests end
        self._loop = self._server = self._thread = None

    def start(self) -> ThreadedServer:
        sockets = tornado.netutil.bind_sockets(self.port, self.host)
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def serve():
            asyncio.set_event_loop(asyncio.new_event_loop())
            self._loop = tornado.ioloop.IOLoop.current()
            self.stopping = asyncio.Event()
            self._server = tornado.httpserver.HTTPServer(self.make_app())
            self._server.add_sockets(sockets)
            self._loop.add_callback(ready.set)
            self._loop.start()
            self._loop.close(all_fds=True)

        self._thread = threading.Thread(target=serve, name=f"server-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the server on port {self.port} did not start in 10 s")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shut():
            self._server.stop()
            self.stopping.set()
            try:
                await asyncio.wait_for(self._server.close_all_connections(), 2)
            except asyncio.TimeoutError:
                pass
            self._loop.stop()

        self._loop.add_callback(shut)
        self._thread.join(10)
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclass
class ToolRegistration:
    """The tool as an LMS administrator registers it (a Canvas developer key, a Moodle tool)."""

    client_id: str = "rnn-course-tool"
    deployment_id: str = "deployment-1"
    login_url: str = ""  # the tool's OIDC login initiation URL
    redirect_uris: list[str] = field(default_factory=list)
    target_link_uri: str = ""  # where a launch lands (default: the tool's root, TOOL/)
    jwks_url: str = ""  # the tool's JWKS URL, or:
    public_jwk: dict | None = None  # its public key, pasted
    scopes: tuple[str, ...] = spec.TOOL_SCOPES  # what the administrator granted


@dataclass
class Failure:
    status: int | None = None
    reason: str = ""
    hang: bool = False
    garbage: bool = False
    applied: bool = False  # the request takes effect, then its answer is lost
    times: int | None = 1  # None: until healed
    seen: int = 0  # requests it answered


class TestLMS:
    """The platform: start() serves it on a free loopback port in a thread of its own."""

    __test__ = False  # not a pytest class

    def __init__(self, tool: ToolRegistration | None = None, host: str = "127.0.0.1",
                 port: int = 0, public_host: str | None = None, page_size: int = 50,
                 token_lifetime: int = 3600, key: jwk.JWK | None = None):
        self.tool = tool or ToolRegistration()
        self.host, self.port = host, port
        self.public_host = public_host or host
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.key = key or jwk.JWK.generate(kty="RSA", size=2048)  # the platform's
        self.kid = self.key.thumbprint()
        self.lock = threading.RLock()
        self.users: dict[str, dict] = {}
        self.courses: dict[str, dict] = {}
        self.line_items: dict[str, dict] = {}  # id (its URL) -> line item (with "context")
        self.deleted: set[str] = set()
        self.grades: dict[tuple[str, str], dict] = {}  # (line item id, user) -> last score
        self.accepted: dict[tuple[str, str], int] = {}  # accepted score posts
        self.score_log: list[dict] = []  # every accepted score, in order
        self.tokens: dict[str, tuple[str, frozenset, float]] = {}  # -> client, scopes, expiry
        self.used_jtis: set[str] = set()
        self.failures: dict[str, Failure] = {}
        self.tamper = None  # fn(claims) -> id_token string, used for the next launch only
        self.requests: list[tuple[str, str]] = []  # (endpoint, method) of every request
        self._next_item = 0
        self._server: ThreadedServer | None = None

    # --- life ---------------------------------------------------------------------
    def start(self) -> TestLMS:
        self._server = ThreadedServer(self.app, self.host, self.port).start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def _stopping(self) -> asyncio.Event:
        return self._server.stopping

    def __enter__(self):
        return self if self._server is not None else self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- its URLs -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.public_host}:{self.port}"

    issuer = url
    auth_url = property(lambda self: self.url + AUTH_PATH)
    token_url = property(lambda self: self.url + TOKEN_PATH)
    jwks_url = property(lambda self: self.url + JWKS_PATH)

    def memberships_url(self, context_id: str) -> str:
        return f"{self.url}/api/lti/courses/{context_id}/names_and_roles"

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.url}/api/lti/courses/{context_id}/line_items"

    def platform_config(self) -> dict:
        """The ``c.LtiPlatform`` values a tool registered here is configured with."""
        return {"issuer": self.issuer, "client_id": self.tool.client_id,
                "deployment_id": self.tool.deployment_id, "authorize_url": self.auth_url,
                "token_url": self.token_url, "jwks_url": self.jwks_url,
                "services": {ctx: {"context_memberships_url": self.memberships_url(ctx),
                                   "lineitems": self.lineitems_url(ctx)}
                             for ctx in self.courses}}

    # --- the roster -----------------------------------------------------------------
    def add_user(self, user_id: str, name: str = "", email: str = "") -> dict:
        given, _, family = name.partition(" ")
        with self.lock:
            self.users[user_id] = {"user_id": user_id, "name": name, "given_name": given,
                                   "family_name": family, "email": email}
            return self.users[user_id]

    def add_course(self, context_id: str, label: str = "", title: str = "",
                   resource_links: dict[str, str] | None = None) -> dict:
        """A course (an LTI context) with its resource links (id -> title; one by default)."""
        with self.lock:
            self.courses[context_id] = {
                "id": context_id, "label": label or context_id, "title": title or context_id,
                "links": resource_links or {f"{context_id}-link": title or context_id},
                "members": {}}
            return self.courses[context_id]

    def enroll(self, context_id: str, user_id: str, *lti_roles: str) -> None:
        with self.lock:
            self.courses[context_id]["members"][user_id] = {
                "roles": list(lti_roles) or [roles.LTI_LEARNER], "status": "Active"}

    def leave(self, context_id: str, user_id: str, status: str = "Inactive") -> None:
        """A member leaves: listed as ``Inactive`` (or ``Deleted``), or gone (status None)."""
        with self.lock:
            members = self.courses[context_id]["members"]
            if status is None:
                members.pop(user_id, None)
            else:
                members[user_id]["status"] = status

    # --- the gradebook, for tests ---------------------------------------------------------
    def items(self, context_id: str | None = None) -> list[dict]:
        with self.lock:
            return [self._public_item(i) for i in self.line_items.values()
                    if context_id in (None, i["context"])]

    def item_of(self, context_id: str, resource_id: str) -> dict | None:
        return next((i for i in self.items(context_id) if i.get("resourceId") == resource_id),
                    None)

    def delete_item(self, item_id: str) -> None:
        with self.lock:
            self.line_items.pop(item_id)
            self.deleted.add(item_id)

    def posts(self, item_id: str, user_id: str) -> int:
        """How many score posts of ``user_id`` to the line item were accepted."""
        with self.lock:
            return self.accepted.get((item_id, user_id), 0)

    def grade(self, item_id: str, user_id: str) -> dict | None:
        """The last accepted score of ``user_id`` on the line item."""
        with self.lock:
            return dict(self.grades.get((item_id, user_id)) or {}) or None

    # --- test controls -----------------------------------------------------------------
    def fail(self, endpoint: str, *, status: int | None = None, reason: str = "",
             hang: bool = False, garbage: bool = False, applied: bool = False,
             times: int | None = 1) -> None:
        """The next ``times`` requests (None: all) to ``endpoint`` misbehave: a ``status``
        (5xx or 4xx, the ``reason`` in the body), a ``hang``, or 200 with ``garbage``;
        before the request takes effect, or after it if ``applied`` (its answer is lost:
        a score is recorded and counted, the tool does not know it)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint {endpoint!r} is none of {', '.join(ENDPOINTS)}")
        if [status is not None, hang, garbage].count(True) != 1:
            raise ValueError("one of status, hang, garbage")
        if garbage and endpoint == "scores" and not applied:
            raise ValueError("a score post's answer has no body the tool reads: garbage in "
                             "it is a success, so only with applied=True")
        with self.lock:
            self.failures[endpoint] = Failure(status, reason, hang, garbage, applied, times)

    def heal(self, endpoint: str | None = None) -> None:
        with self.lock:
            if endpoint is None:
                self.failures.clear()
            else:
                self.failures.pop(endpoint, None)

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # --- launches ----------------------------------------------------------------------
    def sign(self, claims: dict, header: dict | None = None, key: jwk.JWK | None = None) -> str:
        """A JWS of ``claims`` with the platform's key (or ``key``): for tests of bad tokens."""
        key = key or self.key
        token = jwt.JWT(header=header or {"alg": spec.SIGNING_ALG, "typ": "JWT",
                                          "kid": key.thumbprint()}, claims=claims)
        token.make_signed_token(key)
        return token.serialize()

    def login_initiation(self, user_id: str, context_id: str, link_id: str | None = None) -> str:
        """The URL that starts a launch: the tool's OIDC login initiation, with its hints."""
        course = self.courses[context_id]
        link_id = link_id or next(iter(course["links"]))
        params = {"iss": self.issuer, "login_hint": user_id,
                  "target_link_uri": self._target(),
                  "lti_message_hint": f"{context_id} {link_id}",
                  "client_id": self.tool.client_id,
                  "lti_deployment_id": self.tool.deployment_id}
        return _with_query(self.tool.login_url, params)

    def frame_url(self, user_id: str, context_id: str, link_id: str | None = None) -> str:
        """An LMS page that opens the launch inside an iframe (Canvas's and Moodle's default)."""
        query = {"user": user_id, "course": context_id}
        if link_id:
            query["link"] = link_id
        return f"{self.url}/frame?{urlencode(query)}"

    def id_token_claims(self, user_id: str, context_id: str, link_id: str, nonce: str) -> dict:
        now = int(time.time())
        user, course = self.users[user_id], self.courses[context_id]
        member = course["members"][user_id]
        ags_scopes = [s for s in spec.AGS_SCOPES if s in self.tool.scopes]
        claims = {
            "iss": self.issuer, "aud": self.tool.client_id, "sub": user_id, "nonce": nonce,
            "iat": now, "exp": now + ID_TOKEN_LIFETIME,
            "name": user["name"], "given_name": user["given_name"],
            "family_name": user["family_name"], "email": user["email"],
            spec.CLAIM_DEPLOYMENT_ID: self.tool.deployment_id,
            spec.CLAIM_MESSAGE_TYPE: spec.RESOURCE_LINK_REQUEST,
            spec.CLAIM_VERSION: spec.VERSION,
            spec.CLAIM_TARGET_LINK_URI: self._target(),
            spec.CLAIM_ROLES: list(member["roles"]),
            spec.CLAIM_CONTEXT: {"id": context_id, "label": course["label"],
                                 "title": course["title"],
                                 "type": [spec.CONTEXT_COURSE_OFFERING]},
            spec.CLAIM_RESOURCE_LINK: {"id": link_id, "title": course["links"][link_id]},
        }
        if spec.SCOPE_MEMBERSHIPS in self.tool.scopes:
            claims[spec.CLAIM_NRPS] = {"context_memberships_url": self.memberships_url(context_id),
                                       "service_versions": ["2.0"]}
        if ags_scopes:
            claims[spec.CLAIM_AGS] = {"scope": ags_scopes,
                                      "lineitems": self.lineitems_url(context_id)}
        return claims

    def _target(self) -> str:
        if self.tool.target_link_uri:
            return self.tool.target_link_uri
        return urlunsplit(urlsplit(self.tool.login_url)._replace(path="/", query=""))

    # --- internals --------------------------------------------------------------------
    def _public_item(self, item: dict) -> dict:
        return {k: v for k, v in item.items() if k != "context"}

    def _new_item_id(self, context_id: str) -> str:
        self._next_item += 1
        return f"{self.lineitems_url(context_id)}/{self._next_item}"

    def app(self) -> tornado.web.Application:
        args = {"lms": self}
        ctx = r"/api/lti/courses/([^/]+)"
        return tornado.web.Application([
            (r"/", FrontPage, args),
            (r"/frame", FramePage, args),
            (r"/gradebook", GradebookPage, args),
            (AUTH_PATH, AuthHandler, args),
            (TOKEN_PATH, TokenHandler, args),
            (JWKS_PATH, JwksHandler, args),
            (ctx + r"/names_and_roles", MembershipsHandler, args),
            (ctx + r"/line_items", LineItemsHandler, args),
            (ctx + r"/line_items/(\d+)", LineItemHandler, args),
            (ctx + r"/line_items/(\d+)" + spec.SCORES_SUFFIX, ScoresHandler, args),
            (ctx + r"/line_items/(\d+)" + spec.RESULTS_SUFFIX, ResultsHandler, args),
        ])


def unsigned_token(claims: dict, header: dict | None = None) -> str:
    """An ``alg: none`` JWT of ``claims`` (which jwcrypto will not make): a bad token for tests."""
    parts = (header or {"alg": "none", "typ": "JWT"}, claims)
    return ".".join(base64url_encode(json.dumps(part)) for part in parts) + "."


def _with_query(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


class Refusal(tornado.web.HTTPError):
    """An answer other than success: a status and a JSON ``error`` (and its description)."""

    def __init__(self, status: int, error: str, description: str = ""):
        super().__init__(status)
        self.error, self.description = error, description


class Handler(tornado.web.RequestHandler):
    endpoint = ""

    def initialize(self, lms: TestLMS):
        self.lms = lms

    def check_xsrf_cookie(self):  # an API and a platform's form endpoints: no XSRF cookie
        pass

    late: Failure | None = None  # a failure that answers once the request took effect

    async def prepare(self):
        with self.lms.lock:
            self.lms.requests.append((self.endpoint, self.request.method))
            failure = self.lms.failures.get(self.endpoint)
            if failure is not None:
                failure.seen += 1
                if failure.times is not None and failure.seen >= failure.times:
                    del self.lms.failures[self.endpoint]
        if failure is None:
            return
        if failure.applied:
            self.late = failure
        elif failure.hang:
            await self.hang()
            raise tornado.web.Finish()
        else:
            self.misbehave(failure)

    async def hang(self) -> None:
        try:
            await asyncio.wait_for(self.lms._stopping.wait(), HANG_SECONDS)
        except asyncio.TimeoutError:
            pass

    def misbehave(self, failure: Failure):
        """The failure's answer, in place of the request's."""
        self.clear()
        self.set_status(200 if failure.garbage else failure.status)
        if failure.garbage:
            self.set_header("Content-Type", "application/json")
            return self.finish('{"members": [{"user_id": "u1", "roles": ')  # cut short
        reason = failure.reason or http.client.responses.get(failure.status, "error")
        return self.finish({"errors": [{"message": reason}]})

    def finish(self, chunk=None):
        late, self.late = self.late, None
        if late is None:
            return super().finish(chunk)
        if not late.hang:
            return self.misbehave(late)
        self._auto_finish = False  # the answer comes when the hang ends, if anyone still waits

        async def answer_later():
            await self.hang()
            if not self._finished:
                super(Handler, self).finish()

        return asyncio.ensure_future(answer_later())

    def refuse(self, status: int, error: str, description: str = ""):
        raise Refusal(status, error, description)

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        body = {"error": getattr(error, "error", "server_error")}
        if getattr(error, "description", ""):
            body["error_description"] = error.description
        self.finish(body)

    def body_json(self) -> dict:
        try:
            body = json.loads(self.request.body or b"")
        except ValueError:
            self.refuse(400, "invalid_request", "the body is not JSON")
        if not isinstance(body, dict):
            self.refuse(400, "invalid_request", "the body is not a JSON object")
        return body

    def send_json(self, body, media_type: str, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", media_type)
        self.finish(json.dumps(body))


# --- the pages a person sees -----------------------------------------------------------------

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:0}} header{{background:#394b58;color:#fff;
padding:.6em 1em}} main{{padding:1em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em}} iframe{{width:100%;height:85vh;border:0}}
</style></head><body><header><b>Test LMS</b> &middot; {title} &middot;
<a style="color:#fff" href="/">courses</a> &middot;
<a style="color:#fff" href="/gradebook">gradebook</a></header><main>{body}</main></body></html>
"""


def page(title: str, body: str) -> str:
    return PAGE.format(title=html.escape(title), body=body)


class FrontPage(Handler):
    endpoint = "page"

    def get(self):
        lms, esc = self.lms, html.escape
        parts = []
        with lms.lock:
            for ctx, course in lms.courses.items():
                rows = []
                for user_id, member in course["members"].items():
                    user = lms.users[user_id]
                    role = ", ".join(r.rsplit("#", 1)[-1] for r in member["roles"])
                    links = " ".join(
                        f'<a id="launch-{esc(user_id)}-{esc(link)}" href="'
                        f'{esc(lms.login_initiation(user_id, ctx, link))}">{esc(title)}</a> '
                        f'(<a id="frame-{esc(user_id)}-{esc(link)}" href="'
                        f'{esc(lms.frame_url(user_id, ctx, link))}">in the course page</a>)'
                        for link, title in course["links"].items())
                    rows.append(f"<tr><td>{esc(user['name'] or user_id)}</td>"
                                f"<td>{esc(user_id)}</td><td>{esc(role)}</td>"
                                f"<td>{esc(member['status'])}</td><td>{links}</td></tr>")
                parts.append(f"<h2>{esc(course['title'])} ({esc(ctx)})</h2><table><tr>"
                             "<th>account</th><th>user id</th><th>role</th><th>status</th>"
                             f"<th>launch</th></tr>{''.join(rows)}</table>")
        self.finish(page("courses", "".join(parts) or "<p>No course yet.</p>"))


class FramePage(Handler):
    endpoint = "page"

    def get(self):
        user, ctx = self.get_argument("user"), self.get_argument("course")
        link = self.get_argument("link", None)
        with self.lms.lock:
            if ctx not in self.lms.courses or user not in self.lms.users:
                raise tornado.web.HTTPError(404)
            src = self.lms.login_initiation(user, ctx, link)
            title = self.lms.courses[ctx]["title"]
        self.finish(page(title, f'<iframe id="tool" title="tool" src="{html.escape(src)}" '
                                'allow="clipboard-write; fullscreen"></iframe>'))


class GradebookPage(Handler):
    endpoint = "page"

    def get(self):
        esc, parts = html.escape, []
        with self.lms.lock:
            for ctx, course in self.lms.courses.items():
                items = [i for i in self.lms.line_items.values() if i["context"] == ctx]
                head = "".join(f"<th>{esc(i['label'])} (/{i['scoreMaximum']:g})</th>"
                               for i in items)
                rows = []
                for user_id in course["members"]:
                    cells = []
                    for i in items:
                        grade = self.lms.grades.get((i["id"], user_id))
                        cells.append("<td></td>" if grade is None else
                                     f"<td>{grade.get('scoreGiven', '')}</td>")
                    rows.append(f"<tr><td>{esc(user_id)}</td>{''.join(cells)}</tr>")
                parts.append(f"<h2>{esc(course['title'])}</h2><table><tr><th>student</th>"
                             f"{head}</tr>{''.join(rows)}</table>")
        self.finish(page("gradebook", "".join(parts) or "<p>No course yet.</p>"))


# --- OIDC authorization: the launch ------------------------------------------------------

class AuthHandler(Handler):
    """The platform's half of the OIDC third-party login: answers with the id_token."""

    endpoint = "auth"

    def get(self):
        self.authorize()

    def post(self):
        self.authorize()

    def authorize(self):
        lms, arg = self.lms, self.get_argument
        tool = lms.tool
        # checked before anything is sent to the redirect URI: a page of its own
        if arg("client_id", "") != tool.client_id:
            self.refuse(400, "unauthorized_client", f"unknown client_id {arg('client_id', '')!r}")
        redirect_uri = arg("redirect_uri", "")
        if redirect_uri not in tool.redirect_uris:
            self.refuse(400, "invalid_request",
                        f"redirect_uri {redirect_uri!r} is not registered for this tool")
        for name, expected in (("response_type", "id_token"), ("response_mode", "form_post"),
                               ("prompt", "none")):
            if arg(name, "") != expected:
                self.refuse(400, "invalid_request", f"{name} must be {expected}")
        if "openid" not in arg("scope", "").split():
            self.refuse(400, "invalid_scope", "scope must include openid")
        nonce = arg("nonce", "")
        if not nonce:
            self.refuse(400, "invalid_request", "no nonce")
        user_id = arg("login_hint", "")
        ctx, _, link = arg("lti_message_hint", "").partition(" ")
        with lms.lock:
            if user_id not in lms.users:
                self.refuse(403, "login_required", f"unknown user {user_id!r}")
            course = lms.courses.get(ctx)
            if course is None or link not in course["links"]:
                self.refuse(400, "invalid_request", "lti_message_hint names no resource link")
            member = course["members"].get(user_id)
            if member is None or member["status"] != "Active":
                self.refuse(403, "access_denied", f"{user_id} is not a member of {ctx}")
            claims = lms.id_token_claims(user_id, ctx, link, nonce)
            tamper, lms.tamper = lms.tamper, None
        id_token = tamper(claims) if tamper else lms.sign(claims)
        fields = {"id_token": id_token, "state": arg("state", "")}
        inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        self.finish(f'<!doctype html><html><body><form id="launch" method="post" '
                    f'action="{html.escape(redirect_uri)}">{inputs}'
                    '<noscript><button>Continue</button></noscript></form>'
                    "<script>document.getElementById('launch').submit()</script>"
                    "</body></html>")


class JwksHandler(Handler):
    endpoint = "jwks"

    def get(self):
        public = self.lms.key.export_public(as_dict=True)
        public.update(kid=self.lms.kid, alg=spec.SIGNING_ALG, use="sig")
        self.send_json({"keys": [public]}, "application/json")


# --- OAuth2 token endpoint ---------------------------------------------------------------

class TokenHandler(Handler):
    endpoint = "token"

    async def post(self):
        lms, arg = self.lms, self.get_argument
        tool = lms.tool
        if arg("grant_type", "") != spec.GRANT_CLIENT_CREDENTIALS:
            self.refuse(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if arg("client_assertion_type", "") != spec.ASSERTION_JWT_BEARER:
            self.refuse(400, "invalid_request", "client_assertion_type must be jwt-bearer")
        assertion = arg("client_assertion", "")
        keyset = await self.tool_keys(tool)
        now = time.time()
        try:
            token = jwt.JWT(jwt=assertion, key=keyset, algs=[spec.SIGNING_ALG],
                            check_claims={"iss": tool.client_id, "sub": tool.client_id,
                                          "aud": lms.token_url, "exp": None, "jti": None})
            claims = json.loads(token.claims)
        except (JWException, ValueError, TypeError, KeyError) as exc:
            self.refuse(401, "invalid_client", f"client assertion refused: {exc}")
        iat = claims.get("iat", now)
        if not isinstance(iat, (int, float)) or iat > now + CLOCK_SKEW:
            self.refuse(401, "invalid_client", "client assertion issued in the future")
        if claims["exp"] - min(iat, now) > ASSERTION_MAX_LIFETIME:
            self.refuse(401, "invalid_client", "client assertion valid for too long")
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            self.refuse(401, "invalid_client", "client assertion without a jti")
        with lms.lock:
            if claims["jti"] in lms.used_jtis:
                self.refuse(401, "invalid_client", "client assertion replayed (jti used)")
            lms.used_jtis.add(claims["jti"])
            asked = set(arg("scope", "").split())
            granted = frozenset(asked & set(tool.scopes))
            if not granted:
                self.refuse(400, "invalid_scope",
                            "none of the scopes asked for is granted to this tool")
            access = secrets.token_urlsafe(24)
            lms.tokens[access] = (tool.client_id, granted, now + lms.token_lifetime)
        self.set_header("Cache-Control", "no-store")
        self.send_json({"access_token": access, "token_type": "Bearer",
                        "expires_in": lms.token_lifetime, "scope": " ".join(sorted(granted))},
                       "application/json")

    async def tool_keys(self, tool: ToolRegistration) -> jwk.JWKSet:
        """The tool's public keys: the pasted one, or its JWKS URL read now."""
        keyset = jwk.JWKSet()
        if tool.public_jwk:
            keyset.add(jwk.JWK(**tool.public_jwk))
            return keyset
        if not tool.jwks_url:
            self.refuse(401, "invalid_client", "the tool has no key registered")
        try:
            response = await tornado.httpclient.AsyncHTTPClient().fetch(tool.jwks_url,
                                                                        request_timeout=5)
            keyset.import_keyset(response.body)
        except Exception as exc:  # noqa: BLE001 - any failure: the tool's keys are unknown
            self.refuse(401, "invalid_client", f"cannot read the tool's JWKS: {exc}")
        return keyset


# --- the services: NRPS and AGS -----------------------------------------------------------

class ServiceHandler(Handler):
    def authorize(self, *scopes: str) -> None:
        """The bearer token must be valid and hold one of ``scopes``."""
        auth = self.request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            self.refuse(401, "invalid_token", "no bearer token")
        with self.lms.lock:
            found = self.lms.tokens.get(auth[len("Bearer "):])
        if found is None or found[2] < time.time():
            self.refuse(401, "invalid_token", "the access token is unknown or expired")
        if not set(scopes) & found[1]:
            self.refuse(403, "insufficient_scope", "the token lacks " + " or ".join(scopes))

    def course(self, context_id: str) -> dict:
        course = self.lms.courses.get(context_id)
        if course is None:
            self.refuse(404, "not_found", f"no course {context_id}")
        return course

    def item(self, context_id: str, number: str) -> dict:
        self.course(context_id)
        item_id = f"{self.lms.lineitems_url(context_id)}/{number}"
        if item_id in self.lms.deleted:
            self.refuse(404, "not_found", f"line item {number} was deleted")
        item = self.lms.line_items.get(item_id)
        if item is None:
            self.refuse(404, "not_found", f"no line item {number}")
        return item

    def paged(self, items: list, media_type: str, wrap=None):
        """One page of ``items`` (``limit``, ``page``) with a ``Link: rel="next"`` header."""
        try:
            limit = max(1, int(self.get_argument("limit", str(self.lms.page_size))))
            number = max(1, int(self.get_argument("page", "1")))
        except ValueError:
            self.refuse(400, "invalid_request", "limit and page must be numbers")
        start = (number - 1) * limit
        if start + limit < len(items):
            query = dict((k, self.get_argument(k)) for k in self.request.arguments)
            query.update(limit=str(limit), page=str(number + 1))
            next_url = f"{self.lms.url}{self.request.path}?{urlencode(query)}"
            self.set_header("Link", f'<{next_url}>; rel="next"')
        chunk = items[start:start + limit]
        self.send_json(wrap(chunk) if wrap else chunk, media_type)


class MembershipsHandler(ServiceHandler):
    endpoint = "memberships"

    def get(self, context_id):
        self.authorize(spec.SCOPE_MEMBERSHIPS)
        role = self.get_argument("role", None)
        with self.lms.lock:
            course = self.course(context_id)
            members = [{**self.lms.users[uid], "status": m["status"], "roles": m["roles"]}
                       for uid, m in course["members"].items()
                       if role is None or role in m["roles"]]
            context = {k: course[k] for k in ("id", "label", "title")}
        self.paged(members, spec.MEDIA_MEMBERSHIPS, lambda chunk: {
            "id": self.lms.url + self.request.uri, "context": context, "members": chunk})


def _check_item(body: dict) -> dict:
    """The fields of a line item to store, or a Refusal."""
    maximum = body.get("scoreMaximum")
    if not isinstance(maximum, (int, float)) or isinstance(maximum, bool) or not (
            math.isfinite(maximum) and maximum > 0):
        raise Refusal(400, "invalid_request", "scoreMaximum must be a number above 0")
    if not isinstance(body.get("label"), str) or not body["label"].strip():
        raise Refusal(400, "invalid_request", "label must be a non-empty string")
    known = ("scoreMaximum", "label", "resourceId", "tag", "resourceLinkId",
             "startDateTime", "endDateTime")
    return {k: body[k] for k in known if k in body}


class LineItemsHandler(ServiceHandler):
    endpoint = "lineitems"

    def get(self, context_id):
        self.authorize(spec.SCOPE_LINEITEM, spec.SCOPE_LINEITEM_READONLY)
        filters = {"resourceId": self.get_argument("resource_id", None),
                   "tag": self.get_argument("tag", None),
                   "resourceLinkId": self.get_argument("resource_link_id", None)}
        with self.lms.lock:
            self.course(context_id)
            items = [self.lms._public_item(i) for i in self.lms.line_items.values()
                     if i["context"] == context_id
                     and all(v is None or i.get(k) == v for k, v in filters.items())]
        self.paged(items, spec.MEDIA_LINEITEMS)

    def post(self, context_id):
        self.authorize(spec.SCOPE_LINEITEM)
        fields = _check_item(self.body_json())
        with self.lms.lock:
            self.course(context_id)
            item = {"id": self.lms._new_item_id(context_id), **fields, "context": context_id}
            self.lms.line_items[item["id"]] = item
            public = self.lms._public_item(item)
        self.send_json(public, spec.MEDIA_LINEITEM, status=201)


class LineItemHandler(ServiceHandler):
    endpoint = "lineitem"

    def get(self, context_id, number):
        self.authorize(spec.SCOPE_LINEITEM, spec.SCOPE_LINEITEM_READONLY)
        with self.lms.lock:
            public = self.lms._public_item(self.item(context_id, number))
        self.send_json(public, spec.MEDIA_LINEITEM)

    def put(self, context_id, number):
        self.authorize(spec.SCOPE_LINEITEM)
        fields = _check_item(self.body_json())
        with self.lms.lock:
            item = self.item(context_id, number)
            item.update(fields)
            public = self.lms._public_item(item)
        self.send_json(public, spec.MEDIA_LINEITEM)

    def delete(self, context_id, number):
        self.authorize(spec.SCOPE_LINEITEM)
        with self.lms.lock:
            self.lms.delete_item(self.item(context_id, number)["id"])
        self.set_status(204)
        self.finish()


def _parse_time(value) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise Refusal(400, "invalid_request", "timestamp must be ISO 8601") from None
    if when.tzinfo is None:
        raise Refusal(400, "invalid_request", "timestamp must carry its UTC offset")
    return when


class ScoresHandler(ServiceHandler):
    endpoint = "scores"

    def post(self, context_id, number):
        self.authorize(spec.SCOPE_SCORE)
        media = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if media != spec.MEDIA_SCORE:
            self.refuse(415, "unsupported_media_type", f"Content-Type must be {spec.MEDIA_SCORE}")
        score = self.body_json()
        if score.get("activityProgress") not in spec.ACTIVITY_PROGRESS:
            self.refuse(400, "invalid_request", "activityProgress must be one of "
                        + ", ".join(spec.ACTIVITY_PROGRESS))
        if score.get("gradingProgress") not in spec.GRADING_PROGRESS:
            self.refuse(400, "invalid_request", "gradingProgress must be one of "
                        + ", ".join(spec.GRADING_PROGRESS))
        when = _parse_time(score.get("timestamp"))
        given, maximum = score.get("scoreGiven"), score.get("scoreMaximum")
        if given is not None or score["gradingProgress"] == "FullyGraded":
            for name, value in (("scoreGiven", given), ("scoreMaximum", maximum)):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
                        math.isfinite(value) and value >= 0):
                    self.refuse(400, "invalid_request", f"{name} must be a number, 0 or more")
            if maximum == 0:
                self.refuse(400, "invalid_request", "scoreMaximum must be above 0")
        with self.lms.lock:
            item = self.item(context_id, number)
            user_id = score.get("userId")
            member = self.course(context_id)["members"].get(user_id)
            if member is None:
                self.refuse(422, "invalid_request", f"userId {user_id!r} is not in the course")
            key = (item["id"], user_id)
            last = self.lms.grades.get(key)
            if last is not None and when < _parse_time(last["timestamp"]):
                self.refuse(409, "conflict", "the score is older than the one the LMS has")
            self.lms.grades[key] = score
            self.lms.accepted[key] = self.lms.accepted.get(key, 0) + 1
            self.lms.score_log.append({"lineitem": item["id"], **score})
        self.set_status(204)
        self.finish()


class ResultsHandler(ServiceHandler):
    endpoint = "results"

    def get(self, context_id, number):
        self.authorize(spec.SCOPE_RESULT_READONLY)
        user = self.get_argument("user_id", None)
        with self.lms.lock:
            item = self.item(context_id, number)
            results = [{"id": f"{item['id']}{spec.RESULTS_SUFFIX}/{uid}", "scoreOf": item["id"],
                        "userId": uid, "resultScore": s.get("scoreGiven"),
                        "resultMaximum": s.get("scoreMaximum"), "timestamp": s["timestamp"],
                        **({"comment": s["comment"]} if s.get("comment") else {})}
                       for (iid, uid), s in self.lms.grades.items()
                       if iid == item["id"] and user in (None, uid)]
        self.paged(results, spec.MEDIA_RESULTS)


# --- by hand ------------------------------------------------------------------------------

def sample_class(lms: TestLMS, context_id: str = "rnn-101") -> None:
    """A course with an instructor, a teaching assistant and three students."""
    lms.add_course(context_id, "RNN 101", "Recurrent neural networks")
    people = [("instructor1", "Ida Instructor", roles.LTI_INSTRUCTOR),
              ("ta1", "Tom Assistant", roles.LTI_TEACHING_ASSISTANT),
              ("student1", "Ada Lovelace", roles.LTI_LEARNER),
              ("student2", "Alan Turing", roles.LTI_LEARNER),
              ("student3", "Grace Hopper", roles.LTI_LEARNER)]
    for user_id, name, role in people:
        lms.add_user(user_id, name, f"{user_id}@lms.example.org")
        lms.enroll(context_id, user_id, role)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tool-url", required=True,
                        help="the tool's base URL (a hub: http://127.0.0.1:18000)")
    parser.add_argument("--login-url", help="the tool's OIDC login initiation URL "
                        "(default: TOOL_URL/hub/lti13/oauth_login)")
    parser.add_argument("--redirect-uri", action="append",
                        help="a registered redirect URI (default: "
                        "TOOL_URL/hub/lti13/oauth_callback)")
    parser.add_argument("--target-link-uri", help="where a launch lands (default: TOOL_URL/hub, "
                        "the hub's home)")
    parser.add_argument("--course", default="rnn-course",
                        help="the nbgrader course the LMS course maps to")
    parser.add_argument("--tool-jwks-url", help="the tool's JWKS URL (default: the course's "
                        "grading service's, TOOL_URL/services/COURSE-grader/lti/jwks.json)")
    parser.add_argument("--client-id", default=ToolRegistration.client_id)
    parser.add_argument("--deployment-id", default=ToolRegistration.deployment_id)
    parser.add_argument("--context-id", default="rnn-101")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # each request
    tool_url = args.tool_url.rstrip("/")
    tool = ToolRegistration(
        client_id=args.client_id, deployment_id=args.deployment_id,
        login_url=args.login_url or tool_url + "/hub/lti13/oauth_login",
        redirect_uris=args.redirect_uri or [tool_url + "/hub/lti13/oauth_callback"],
        target_link_uri=args.target_link_uri or tool_url + "/hub",
        jwks_url=args.tool_jwks_url or
        f"{tool_url}/services/{roles.grading_service(args.course)}/{keys.JWKS_PATH}")
    lms = TestLMS(tool, host=args.host, port=args.port)
    sample_class(lms, args.context_id)
    lms.start()
    config = lms.platform_config()
    print(f"test LMS at {lms.url}/ (launch links), gradebook {lms.url}/gradebook")
    for name in ("issuer", "client_id", "deployment_id", "authorize_url", "token_url",
                 "jwks_url"):
        print(f"c.LtiPlatform.{name} = {config[name]!r}")
    print(f"c.LtiPlatform.contexts = {{{args.context_id!r}: {args.course!r}}}")
    print(f"c.LtiPlatform.services = {config['services']!r}")
    print(f"registered: login {tool.login_url}, redirect {tool.redirect_uris}, "
          f"tool JWKS {tool.jwks_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        lms.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
