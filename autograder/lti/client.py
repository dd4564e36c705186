"""The tool's side of LTI Advantage's services: the token, the roster (NRPS), grades (AGS).

:class:`LtiClient` talks to one platform (:class:`autograder.lti.config.LtiPlatform`)
with the tool's key (:mod:`autograder.lti.keys`):

- the OAuth2 client-credentials grant, authenticated by a JWT signed with the
  tool's key (RFC 7523; ``iss`` = ``sub`` = client id, ``aud`` = the token URL,
  a fresh ``jti``), its access token cached until shortly before it expires and
  asked for again once the platform says it is no longer valid (401);
- Names and Role Provisioning Services: every member of a context, page after
  page (``Link: <...>; rel="next"``);
- Assignment and Grade Services: a line item found by ``resourceId`` (and
  ``tag``) or created with the assignment's maximum, a score posted, results read.

Every call has a timeout.  Anything that goes wrong is one :class:`LtiError`
with a one-line message and ``retryable``: True for what may pass if tried
again later (a timeout, a refused connection, a 5xx, a 408 or 429, an answer
that is not the JSON expected), False for a refusal (any other 4xx: the
platform's reason is kept).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import requests
from jwcrypto import jwk, jwt

from autograder.errors import UsageError
from autograder.lti import keys, spec
from autograder.lti.config import LtiPlatform

REASON_MAX = 200  # characters of the platform's reason kept in a message
MAX_PAGES = 1000  # pages followed before a listing is taken for a loop
ASSERTION_LIFETIME = 300  # seconds a client assertion is valid
RETRY_LATER = (408, 429)  # the 4xx that say "not now" (timeout, too many requests)
RENEW_BEFORE = 30.0  # seconds before its expiry a cached token is renewed (at most a tenth
# of its lifetime)


class LtiError(Exception):
    """A call to the platform failed: ``str(e)`` is one line, ``retryable`` says what to do."""

    def __init__(self, message: str, retryable: bool, status: int | None = None):
        super().__init__(" ".join(message.split()))
        self.retryable = retryable
        self.status = status


def reason_of(response: requests.Response) -> str:
    """The platform's reason for a refusal, one line: a JSON error field, else the text."""
    text = response.text or ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    found = []
    if isinstance(body, dict):
        found = [body[f] for f in ("error_description", "message", "detail", "reason", "error")
                 if isinstance(body.get(f), str)][:1]
        errors = body.get("errors")
        for item in errors if isinstance(errors, list) else []:
            message = item.get("message") if isinstance(item, dict) else item
            if isinstance(message, str):
                found.append(message)
    if not found:
        found = [re.sub(r"<[^>]*>", " ", text)]  # an HTML error page: its words
    reason = " ".join(" ".join(found).split()) or response.reason or "no reason given"
    return reason if len(reason) <= REASON_MAX else reason[:REASON_MAX - 3] + "..."


def service_url(url: str, suffix: str) -> str:
    """``url`` + ``suffix`` in its path, before its query (Moodle's line items carry
    ``?type_id=``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


def isotime(when: datetime | None = None) -> str:
    """An ISO 8601 timestamp with its offset (a naive datetime is taken as UTC)."""
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.isoformat(timespec="milliseconds")


class LtiClient:
    """Calls to one LTI platform as the tool; thread-safe (one token cache, under a lock)."""

    def __init__(self, platform: LtiPlatform, key: jwk.JWK,
                 session: requests.Session | None = None, timeout: float | None = None):
        if not (platform.client_id and platform.token_url):
            raise UsageError("c.LtiPlatform.client_id and token_url are needed to call the LMS")
        self.platform = platform
        self.key = key
        self.timeout = platform.timeout if timeout is None else timeout
        self.session = session or requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.tokens_fetched = 0  # how many access tokens were asked for (tests read it)

    @classmethod
    def for_course(cls, course, **kwargs) -> LtiClient:
        """The client of a course (:class:`autograder.course.Course`): its ``c.LtiPlatform``,
        checked, and the tool's key from the course directory (one-line errors)."""
        platform = LtiPlatform(config=course.config)
        platform.check()
        return cls(platform, keys.load(platform.key_path(course.root)), **kwargs)

    # --- the access token ------------------------------------------------------------
    def assertion(self) -> str:
        """A client assertion (RFC 7523) signed with the tool's key."""
        now = int(time.time())
        claims = {"iss": self.platform.client_id, "sub": self.platform.client_id,
                  "aud": self.platform.token_url, "iat": now, "exp": now + ASSERTION_LIFETIME,
                  "jti": uuid.uuid4().hex}
        token = jwt.JWT(header={"alg": spec.SIGNING_ALG, "typ": "JWT", "kid": keys.kid(self.key)},
                        claims=claims)
        token.make_signed_token(self.key)
        return token.serialize()

    def token(self) -> str:
        """An access token for :data:`spec.TOOL_SCOPES`: the cached one, or a new one."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._token, lifetime = self._fetch_token()
                self._renew_at = time.monotonic() + lifetime - min(RENEW_BEFORE, lifetime / 10)
            return self._token

    def forget_token(self) -> None:
        with self._lock:
            self._token = None

    def _fetch_token(self) -> tuple[str, float]:
        form = {"grant_type": spec.GRANT_CLIENT_CREDENTIALS,
                "client_assertion_type": spec.ASSERTION_JWT_BEARER,
                "client_assertion": self.assertion(),
                "scope": " ".join(spec.TOOL_SCOPES)}
        what = "LTI token request"
        body = self._json(self._send("POST", self.platform.token_url, what, data=form,
                                     headers={"Accept": "application/json"}), what)
        token, lifetime = body.get("access_token"), body.get("expires_in", 3600)
        if not (isinstance(token, str) and token and isinstance(lifetime, (int, float))
                and lifetime > 0):
            raise LtiError(f"{what} to {self.platform.token_url}: the answer has no access "
                           "token (garbage)", retryable=True)
        self.tokens_fetched += 1
        return token, float(lifetime)

    # --- one call --------------------------------------------------------------------
    def _send(self, method: str, url: str, what: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=self.timeout,
                                            allow_redirects=False, **kwargs)
        except requests.Timeout:
            raise LtiError(f"{what} to {url}: no answer in {self.timeout:g} s (timeout)",
                           retryable=True) from None
        except requests.ConnectionError as exc:
            cause = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise LtiError(f"{what} to {url}: {cause}", retryable=True) from None
        except requests.RequestException as exc:
            raise LtiError(f"{what} to {url}: {type(exc).__name__}", retryable=True) from None
        if response.status_code >= 500 or response.status_code in RETRY_LATER:
            raise LtiError(f"{what} to {url}: the LMS answered {response.status_code} "
                           f"({reason_of(response)})", retryable=True,
                           status=response.status_code)
        if response.status_code >= 300:
            raise LtiError(f"{what} to {url}: the LMS refused it, {response.status_code} "
                           f"({reason_of(response)})", retryable=False,
                           status=response.status_code)
        return response

    def _json(self, response: requests.Response, what: str, kind: type = dict):
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, kind):
            raise LtiError(f"{what} to {response.url}: the LMS answered garbage, not a JSON "
                           f"{kind.__name__} ({response.text[:60]!r})", retryable=True,
                           status=response.status_code)
        return body

    def call(self, method: str, url: str, what: str, accept: str | None = None,
             content_type: str | None = None, body=None) -> requests.Response:
        """One service call with the access token (asked for again once if it was refused)."""
        headers = {}
        if accept:
            headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            headers["Authorization"] = "Bearer " + self.token()
            try:
                return self._send(method, url, what, headers=headers, data=data)
            except LtiError as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                self.forget_token()  # expired or revoked before we thought: one new token
        raise AssertionError("unreachable")

    def _pages(self, url: str, what: str, accept: str, field: str | None):
        """The items of every page of a listing (``field`` of each page, or the page)."""
        seen = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise LtiError(f"{what}: the LMS's pages loop at {url}", retryable=True)
            seen.add(url)
            response = self.call("GET", url, what, accept=accept)
            page = self._json(response, what, dict if field else list)
            items = page.get(field) if field else page
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise LtiError(f"{what} to {response.url}: the LMS answered garbage "
                               f"(no list of {field or 'items'})", retryable=True)
            yield from items
            url = response.links.get("next", {}).get("url")

    # --- NRPS --------------------------------------------------------------------------
    def members(self, memberships_url: str) -> list[dict]:
        """Every member of the context (all pages): ``user_id``, ``roles``, ``status``..."""
        what = "LTI roster request"
        members = list(self._pages(memberships_url, what, spec.MEDIA_MEMBERSHIPS, "members"))
        for member in members:
            if not isinstance(member.get("user_id"), str) or not member["user_id"]:
                raise LtiError(f"{what} to {memberships_url}: a member without a user_id "
                               "(garbage)", retryable=True)
            member.setdefault("status", "Active")
            member.setdefault("roles", [])
        return members

    # --- AGS: line items -------------------------------------------------------------
    def line_items(self, lineitems_url: str, resource_id: str | None = None,
                   tag: str | None = None) -> list[dict]:
        """The context's line items, those of ``resource_id`` / ``tag`` only if given."""
        params = {k: v for k, v in (("resource_id", resource_id), ("tag", tag)) if v}
        url = requests.Request("GET", lineitems_url, params=params).prepare().url
        items = list(self._pages(url, "LTI line items request", spec.MEDIA_LINEITEMS, None))
        # a platform may ignore the filters: apply them here too
        return [i for i in items if isinstance(i.get("id"), str)
                and (resource_id is None or i.get("resourceId") == resource_id)
                and (tag is None or i.get("tag") == tag)]

    def create_line_item(self, lineitems_url: str, resource_id: str, label: str,
                         score_maximum: float, tag: str | None = None) -> dict:
        what = "LTI line item creation"
        item = {"scoreMaximum": score_maximum, "label": label, "resourceId": resource_id}
        if tag:
            item["tag"] = tag
        response = self.call("POST", lineitems_url, what, accept=spec.MEDIA_LINEITEM,
                             content_type=spec.MEDIA_LINEITEM, body=item)
        created = self._json(response, what)
        if not isinstance(created.get("id"), str):
            raise LtiError(f"{what} to {lineitems_url}: the created line item has no id "
                           "(garbage)", retryable=True)
        return created

    def line_item(self, lineitems_url: str, resource_id: str, label: str,
                  score_maximum: float, tag: str | None = None) -> dict:
        """The line item of ``resource_id`` (and ``tag``): found, or created with the maximum."""
        found = self.line_items(lineitems_url, resource_id, tag)
        if found:
            return found[0]
        return self.create_line_item(lineitems_url, resource_id, label, score_maximum, tag)

    def get_line_item(self, lineitem_url: str) -> dict:
        what = "LTI line item request"
        return self._json(self.call("GET", lineitem_url, what, accept=spec.MEDIA_LINEITEM),
                          what)

    def update_line_item(self, item: dict) -> dict:
        """PUT ``item`` (a line item as read, changed) back to its ``id``."""
        what = "LTI line item update"
        response = self.call("PUT", item["id"], what, accept=spec.MEDIA_LINEITEM,
                             content_type=spec.MEDIA_LINEITEM, body=item)
        return self._json(response, what)

    def delete_line_item(self, lineitem_url: str) -> None:
        self.call("DELETE", lineitem_url, "LTI line item deletion")

    # --- AGS: scores and results -------------------------------------------------------
    def post_score(self, lineitem_url: str, user_id: str, score_given: float,
                   score_maximum: float, timestamp: datetime | None = None,
                   activity_progress: str = "Completed",
                   grading_progress: str = "FullyGraded", comment: str | None = None,
                   submitted_at: datetime | None = None) -> None:
        """Post one score of one user to a line item (AGS ``scores``); ``submitted_at``: when
        the student submitted (AGS's ``submission.submittedAt``, and Canvas's extension,
        whose late policy reads it)."""
        score = {"userId": user_id, "scoreGiven": score_given, "scoreMaximum": score_maximum,
                 "activityProgress": activity_progress, "gradingProgress": grading_progress,
                 "timestamp": isotime(timestamp)}
        if comment:
            score["comment"] = comment
        if submitted_at is not None:
            score[spec.SCORE_SUBMISSION] = {"submittedAt": isotime(submitted_at)}
            score[spec.CANVAS_SUBMISSION] = {"submitted_at": isotime(submitted_at)}
        self.call("POST", service_url(lineitem_url, spec.SCORES_SUFFIX), "LTI score post",
                  content_type=spec.MEDIA_SCORE, body=score)

    def results(self, lineitem_url: str, user_id: str | None = None) -> list[dict]:
        """The line item's results (``userId``, ``resultScore``, ``resultMaximum``...)."""
        url = service_url(lineitem_url, spec.RESULTS_SUFFIX)
        if user_id:
            url = requests.Request("GET", url, params={"user_id": user_id}).prepare().url
        return list(self._pages(url, "LTI results request", spec.MEDIA_RESULTS, None))
