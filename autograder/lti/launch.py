"""LTI 1.3 launch into the hub: ltiauthenticator 1.6.3, with what it leaves to the tool.

``jupyterhub-ltiauthenticator`` checks the id_token's signature (the platform's
JWKS), issuer, audience, expiry, ``iat``/``nbf``, ``alg``, and that its nonce
and state match the cookies it set at login initiation.  It accepts a token for
another deployment, a token without ``sub`` and a claim of any size; it maps no
role and no course, admits nobody on JupyterHub 5+ without ``allow_all``, and
its state cookies carry no ``SameSite`` (a launch inside the LMS's iframe then
depends on the browser's grace period).  :class:`CourseLTIAuthenticator` closes
each of these:

- the size of the token and of each claim is bounded (:data:`MAX_TOKEN_BYTES`,
  :data:`MAX_CLAIM_BYTES`), checked before and after decoding;
- ``sub`` is required, and the deployment id is one of ``deployment_id``;
- each state and each nonce is used once (:class:`OnceOnly`), and a state
  cookie older than :data:`STATE_MAX_AGE_S` is refused;
- the hub name is the stable ``sub`` as :func:`autograder.lti.users.user_name`
  maps it (the grading service's roster does the same), a valid student id,
  and an existing unprivileged local account that is not one of
  ``reserved_names`` (the graders' accounts);
- the LTI context is a course of ``courses`` (context id -> course id) and the
  LTI roles a course role (:func:`autograder.roles.lti_role`), or the launch is
  refused with a 403 page; the user's groups follow the launch
  (``manage_groups``): ``nbgrader-<course>`` or ``formgrade-<course>``, the
  groups of other courses kept;
- only a user with a course group is admitted (:meth:`check_allowed`);
- the state and nonce cookies are ``SameSite=None; Secure; Partitioned``
  (:data:`CROSS_SITE_COOKIE`; the hub is served over HTTPS when LTI is on:
  tools/hub/lti.py).

The hub's process imports this module (jupyterhub_config.py puts a root-owned
copy of ``autograder.lti`` and ``autograder.roles`` on its path); students'
servers never see it.
"""

from __future__ import annotations

import json
import pwd
import time

from jwcrypto import jwk
from ltiauthenticator.lti13.auth import LTI13Authenticator
from ltiauthenticator.lti13.error import InvalidAudienceError, ValidationError
from ltiauthenticator.lti13.handlers import LTI13CallbackHandler, LTI13LoginInitHandler
from tornado.web import HTTPError
from traitlets import Bool, Dict, Set, Unicode, default

from autograder.lti import spec
from autograder.lti.keys import JWKS_PATH
from autograder.lti.users import user_name
from autograder.lti.web import jwks_route
from autograder.roles import STAFF_PREFIX, STUDENT_PREFIX, lti_role, staff_group, student_group

# Limits of a launch.  A real id_token is a few KiB (Canvas and Moodle: 2-6 KiB with
# their custom, AGS and NRPS claims): 32 KiB leaves room; no single claim over 8 KiB.
MAX_TOKEN_BYTES = 32 * 1024
MAX_CLAIM_BYTES = 8 * 1024
# how long a login initiation's state and nonce stay usable (ltiauthenticator's
# LTI13LaunchValidator.max_age for the token's iat is 600 s as well)
STATE_MAX_AGE_S = 600
# accounts that no launch may become: system accounts (below UID_MIN) and nobody
UID_MIN, UID_MAX = 1000, 60000
# The attributes of every cookie of a hub launched in the LMS's iframe (tornado's
# set_cookie arguments): a cross-site frame, where a browser sends only SameSite=None;
# Secure cookies, and, where it blocks third-party cookies (Chromium's contexts,
# Safari, Firefox), only partitioned ones (CHIPS: kept per top-level site, the LMS).
# Python < 3.14 knows no Partitioned attribute: allow_partitioned_cookies() teaches it.
CROSS_SITE_COOKIE = {"samesite": "None", "secure": True, "partitioned": True}


def allow_partitioned_cookies():
    """Teach http.cookies (Python < 3.14) the ``Partitioned`` attribute (CHIPS), which
    tornado's set_cookie then writes for ``partitioned=True``.  Self-contained: the hub
    runs it, and tools/hub/lti.py copies its source into the users' servers' config."""
    import http.cookies

    if "partitioned" not in http.cookies.Morsel._reserved:
        http.cookies.Morsel._reserved["partitioned"] = "Partitioned"
        http.cookies.Morsel._flags.add("partitioned")


allow_partitioned_cookies()


class LaunchRefused(HTTPError):
    """A launch refused: the status and a one-line reason, shown on the hub's error page."""

    def __init__(self, status: int, reason: str):
        super().__init__(status, "%s", reason)
        self.message = reason

    def __str__(self) -> str:
        return self.message


def one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def check_token_size(token: str | None) -> None:
    if token is not None and len(token.encode()) > MAX_TOKEN_BYTES:
        raise LaunchRefused(400, f"LTI launch refused: the id_token is {len(token.encode())} "
                                 f"bytes, over the limit of {MAX_TOKEN_BYTES}")


def check_claims(claims: dict, deployment_ids) -> None:
    """What ltiauthenticator does not check in a decoded id_token: size, ``sub``, deployment."""
    for name, value in claims.items():
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > MAX_CLAIM_BYTES:
            raise LaunchRefused(400, f"LTI launch refused: claim {name[:80]!r} is {size} bytes, "
                                     f"over the limit of {MAX_CLAIM_BYTES}")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise LaunchRefused(400, "LTI launch refused: the id_token has no 'sub' (the user's id "
                                 "in the LMS)")
    deployment = claims.get(spec.CLAIM_DEPLOYMENT_ID)
    if deployment not in deployment_ids:
        raise LaunchRefused(401, f"LTI launch refused: deployment id {str(deployment)[:80]!r} "
                                 "is not this tool's deployment in the LMS")


class OnceOnly:
    """Values (states, nonces) that may be used once within ``ttl`` seconds."""

    def __init__(self, ttl: float = STATE_MAX_AGE_S):
        self.ttl = ttl
        self._seen: dict[str, float] = {}

    def use(self, kind: str, value: str, now: float | None = None) -> None:
        """Record ``value``; a LaunchRefused if it was used before (within ``ttl``)."""
        now = time.monotonic() if now is None else now
        for old in [v for v, t in self._seen.items() if t < now]:
            del self._seen[old]
        key = f"{kind}:{value}"
        if key in self._seen:
            raise LaunchRefused(400, f"LTI launch refused: this launch's {kind} was used before "
                                     "(a replayed launch); launch again from the LMS")
        self._seen[key] = now + self.ttl


def hub_name(claims: dict) -> str:
    """The hub name of a launch: the LMS's ``sub`` (:func:`autograder.lti.users.user_name`,
    the mapping the grading service's roster uses too)."""
    name, why = user_name(claims.get("sub"))
    if name is None:
        raise LaunchRefused(403, f"LTI launch refused: {why}; this hub cannot have such a user "
                                 "(ask the course's instructor)")
    return name


def course_of(claims: dict, courses: dict) -> str:
    """The course of a launch's LTI context (``courses``: context id -> course id)."""
    context = claims.get(spec.CLAIM_CONTEXT)
    context_id = context.get("id") if isinstance(context, dict) else None
    if context_id not in courses:
        shown = str(context_id)[:80] if context_id is not None else "none"
        raise LaunchRefused(403, f"LTI launch refused: the LMS course (context {shown!r}) is not "
                                 "a course of this hub")
    return courses[context_id]


def role_of(claims: dict, course: str) -> str:
    """The course role (autograder.roles) of a launch's LTI roles."""
    roles = claims.get(spec.CLAIM_ROLES)
    role = lti_role(roles if isinstance(roles, list) else [])
    if role is None:
        raise LaunchRefused(403, f"LTI launch refused: none of the LMS roles "
                                 f"{', '.join(map(str, roles or []))[:200] or '(none)'} is a "
                                 f"role of course {course} (Learner, Instructor or "
                                 "TeachingAssistant)")
    return role


def groups_after(course: str, role: str, current=()) -> list[str]:
    """The user's hub groups after a launch into ``course`` as ``role``.

    This course's group for the role replaces its other one; groups of other
    courses (and any other group) are kept.
    """
    mine = {student_group(course), staff_group(course)}
    keep = [g for g in current if g not in mine]
    new = staff_group(course) if role == "staff" else student_group(course)
    return sorted({*keep, new})


def is_course_group(group: str) -> bool:
    return group.startswith((STUDENT_PREFIX, STAFF_PREFIX))


def check_account(name: str, reserved) -> None:
    """``name`` is an existing unprivileged local account, not a grader's (servers run as it)."""
    if name in reserved:
        raise LaunchRefused(403, f"LTI launch refused: {name!r} is a service account of this "
                                 "hub, not a person's")
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        raise LaunchRefused(403, f"LTI launch refused: {name!r} has no account on this hub yet; "
                                 "ask the course's instructor to add the class") from None
    if not UID_MIN <= uid < UID_MAX:
        raise LaunchRefused(403, f"LTI launch refused: {name!r} is a system account")


def settings_of(platform: dict) -> dict:
    """CourseLTIAuthenticator's settings from an LMS registration (``c.LtiPlatform``'s values:
    issuer, client_id, deployment_id, authorize_url, jwks_url, contexts)."""
    return {"issuer": platform["issuer"], "client_id": {platform["client_id"]},
            "deployment_id": {platform["deployment_id"]},
            "authorize_url": platform["authorize_url"], "jwks_endpoint": platform["jwks_url"],
            "courses": dict(platform["contexts"])}


# --------------------------------------------------------------------------- #
# the handlers and the authenticator
# --------------------------------------------------------------------------- #
class LaunchLoginHandler(LTI13LoginInitHandler):
    """Login initiation: ltiauthenticator's, with ``SameSite=None; Secure`` cookies and the
    deployment id refused early when the LMS names one."""

    def post(self):
        deployment = self.get_argument("lti_deployment_id", None)
        if deployment is not None and deployment not in self.authenticator.deployment_id:
            raise LaunchRefused(401, f"LTI launch refused: deployment id {deployment[:80]!r} is "
                                     "not this tool's deployment in the LMS")
        return super().post()

    get = post

    def _set_oauth_cookie(self, key: str, value):
        # the launch happens in the LMS's iframe: a cross-site context (CROSS_SITE_COOKIE)
        self._set_cookie(key, value, expires_days=1, httponly=True, encrypted=True,
                         **CROSS_SITE_COOKIE)


class LaunchCallbackHandler(LTI13CallbackHandler):
    """The launch (the id_token posted by the LMS): ltiauthenticator's validation, then ours."""

    def decode_and_validate_launch_request(self):
        check_token_size(self.get_argument("id_token", None))
        try:
            claims = super().decode_and_validate_launch_request()
        except InvalidAudienceError as e:
            raise LaunchRefused(401, f"LTI launch refused: {one_line(e)}") from None
        except ValidationError as e:  # its signature, issuer, times, claims
            raise LaunchRefused(400, f"LTI launch refused: {one_line(e)}") from None
        auth = self.authenticator
        check_claims(claims, auth.deployment_id)
        # each state and nonce once: the cookies are cleared after use, but a replayed
        # request carries them again
        auth.once.use("state", self.get_argument("state"))
        auth.once.use("nonce", str(claims.get("nonce")))
        return claims

    def _get_oauth_cookie(self, name: str):
        cookie = self.get_secure_cookie(name, max_age_days=STATE_MAX_AGE_S / 86400)
        self.clear_cookie(name, **CROSS_SITE_COOKIE)
        return (cookie or b"").decode("utf8", "replace")

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, HTTPError):
            self.log.warning("LTI launch from %s: %s %s", self.request.remote_ip, status_code,
                             exc.log_message % exc.args if exc.args else exc.log_message)
        return super().write_error(status_code, **kwargs)


class CourseLTIAuthenticator(LTI13Authenticator):
    """LTI 1.3 login for the course's hub (module docstring)."""

    login_handler = LaunchLoginHandler
    callback_handler = LaunchCallbackHandler

    deployment_id = Set(Unicode(), config=True,
                        help="The deployment ids of this tool in the LMS; a launch for any "
                             "other is refused.")
    courses = Dict(key_trait=Unicode(), value_trait=Unicode(), config=True,
                   help="LTI context id (the LMS course) -> course id on this hub.")
    reserved_names = Set(Unicode(), config=True,
                         help="Local accounts no launch may log in as (the graders').")

    tool_jwks = Dict(config=True, help="The tool's public JWKS (`python -m autograder lti keys`),"
                     " served at /hub/" + JWKS_PATH + " for the LMS")

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    allow_all = Bool(False, help="Never: only a launch into a course admits a user.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.once = OnceOnly()

    async def authenticate(self, handler, data=None):
        claims = data or {}
        name = hub_name(claims)
        course = course_of(claims, self.courses)
        role = role_of(claims, course)
        check_account(name, self.reserved_names)
        current = ()
        if handler is not None:
            user = handler.find_user(name)
            current = [g.name for g in user.groups] if user is not None else ()
        groups = groups_after(course, role, current)
        self.log.info("LTI launch: %s into %s as %s (groups %s)", name, course, role,
                      ", ".join(groups))
        return {
            "name": name,
            "groups": groups,
            # what a later LTI call may need (kept only with enable_auth_state)
            "auth_state": {k: v for k, v in claims.items()
                           if k.startswith("https://purl.imsglobal.org/spec/lti")},
        }

    def get_handlers(self, app):
        handlers = super().get_handlers(app)
        if self.tool_jwks:  # /hub/lti/jwks.json
            key = jwk.JWK(**self.tool_jwks["keys"][0])
            handlers.append(jwks_route("", key))
        return handlers

    def check_allowed(self, username, authentication=None):
        groups = (authentication or {}).get("groups") or []
        return any(is_course_group(g) for g in groups)
