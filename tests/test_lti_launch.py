"""The hub's LTI 1.3 launch (autograder.lti.launch): every bad launch is refused, one line each.

The handlers are ltiauthenticator's with the tool's checks added; they run here
on real tornado requests (no hub): login initiation sets the state and nonce
cookies, the "LMS" signs an id_token with its key (jwcrypto), and the callback
validates it against the platform's JWKS served over HTTP on 127.0.0.1 (a free
port), as the hub does.  The whole launch in a real hub and browser is
tests/test_hub_lti.py.
"""

from __future__ import annotations

import base64
import json
import time
import types
import urllib.parse
from http.cookies import SimpleCookie
from unittest import mock

import lmsfixture
import pytest
from jwcrypto import jwk
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import Application, HTTPError

from autograder.lti import launch, spec
from autograder.roles import (
    LTI_INSTRUCTOR,
    LTI_ROLES,
    LTI_TEACHING_ASSISTANT,
    STAFF,
    STUDENT,
    staff_group,
    student_group,
)

# tornado warns of set_cookie(partitioned=True) (CROSS_SITE_COOKIE): a keyword it does not name
pytestmark = pytest.mark.filterwarnings("ignore:Deprecated arguments to set_cookie")
HOST = "127.0.0.1:18000"
COOKIE_SECRET = "a-cookie-secret-of-the-hub-for-tests-0123456789"
CONTEXT, COURSE = lmsfixture.CONTEXT, lmsfixture.COURSE
STUDENT_ID, STAFF_ID = (next(u for u, _, r in lmsfixture.PEOPLE if LTI_ROLES[r] == role)
                        for role in (STUDENT, STAFF))
GRADER = "grader-rnn-course"


# --------------------------------------------------------------------------- #
# the platform: the project's test LMS, its key and JWKS over HTTP
# --------------------------------------------------------------------------- #
class Platform:
    """The test LMS's claims and signature, changed on purpose for each bad launch."""

    def __init__(self, lms):
        self.lms = lms
        self.link = next(iter(lms.courses[CONTEXT]["links"]))

    def claims(self, nonce: str, user: str = STUDENT_ID, **changes) -> dict:
        claims = self.lms.id_token_claims(user, CONTEXT, self.link, nonce)
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict, key=None, alg: str = "RS256", kid: str | None = None) -> str:
        key = key or self.lms.key
        return self.lms.sign(claims, {"alg": alg, "kid": kid or key.thumbprint()}, key)


@pytest.fixture(scope="module")
def lms():
    with lmsfixture.start_lms(lmsfixture.tool_key()) as lms:
        yield lms


@pytest.fixture
def platform(lms):
    return Platform(lms)


@pytest.fixture
def auth(lms):
    config = lmsfixture.platform_of(lms)
    return launch.CourseLTIAuthenticator(reserved_names={GRADER}, **launch.settings_of(
        {name: getattr(config, name) for name in ("issuer", "client_id", "deployment_id",
                                                  "authorize_url", "jwks_url", "contexts")}))


# --------------------------------------------------------------------------- #
# the handlers on tornado requests
# --------------------------------------------------------------------------- #
def _handler(cls, auth, args: dict, cookie_header: str = ""):
    app = Application(cookie_secret=COOKIE_SECRET, authenticator=auth, app=None,
                      hub=types.SimpleNamespace(base_url="/hub/",
                                                server=types.SimpleNamespace(base_url="/hub/")))
    headers = HTTPHeaders({"Content-Type": "application/x-www-form-urlencoded", "Host": HOST})
    if cookie_header:
        headers["Cookie"] = cookie_header
    request = HTTPServerRequest(start_line=RequestStartLine("POST", "/hub/lti13/x", "HTTP/1.1"),
                                headers=headers, body=urllib.parse.urlencode(args).encode(),
                                connection=mock.Mock())
    request.protocol = "https"
    request._parse_body()
    return cls(app, request)


def initiate(auth, **extra):
    """Login initiation as the LMS starts it: the redirect's query (state, nonce) and the
    cookies it set."""
    h = _handler(launch.LaunchLoginHandler, auth,
                 {"iss": auth.issuer, "login_hint": STUDENT_ID, "client_id": next(iter(
                     auth.client_id)), "target_link_uri": f"https://{HOST}/hub/", **extra})
    with mock.patch.object(h, "redirect") as redirect:
        h.post()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect.call_args[0][0]).query))
    cookies = SimpleCookie()
    for name, morsel in h._new_cookie.items():  # what tornado sends as Set-Cookie headers
        cookies[name] = morsel.value
        cookies[name].set_cookie_header = morsel.OutputString()
    return query, cookies


def cookie_header(cookies) -> str:
    return "; ".join(f"{k}={m.value}" for k, m in cookies.items())


def callback(auth, token: str, state: str, cookies):
    h = _handler(launch.LaunchCallbackHandler, auth, {"id_token": token, "state": state},
                 cookie_header(cookies))
    return h.decode_and_validate_launch_request()


def launch_with(auth, platform, sign=None, **changes):
    query, cookies = initiate(auth)
    claims = platform.claims(query["nonce"], **changes)
    token = (sign or platform.sign)(claims)
    return callback(auth, token, query["state"], cookies)


def refused(call, status: int | None = None, words: str = "") -> str:
    with pytest.raises(HTTPError) as exc:
        call()
    message = exc.value.log_message % exc.value.args if exc.value.args else exc.value.log_message
    if status is not None:
        assert exc.value.status_code == status, (exc.value.status_code, message)
    assert words in message, message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- #
# a good launch, and the cookies of an iframe
# --------------------------------------------------------------------------- #
def test_a_good_launch_passes_and_its_cookies_work_inside_an_iframe(auth, platform):
    query, cookies = initiate(auth)
    assert query["client_id"] in auth.client_id and query["redirect_uri"] == \
        f"https://{HOST}/hub/lti13/oauth_callback"
    assert set(cookies) == {"lti13authenticator-state", "lti13authenticator-nonce-state"}
    for morsel in cookies.values():
        header = [a.strip() for a in morsel.set_cookie_header.split(";")]
        assert {"SameSite=None", "Partitioned", "Secure", "HttpOnly"} <= set(header), header
    claims = callback(auth, platform.sign(platform.claims(query["nonce"])), query["state"],
                      cookies)
    assert claims["sub"] == STUDENT_ID


# --------------------------------------------------------------------------- #
# bad tokens: ltiauthenticator's checks (tested, not trusted) and ours
# --------------------------------------------------------------------------- #
def test_a_replayed_launch_is_refused_even_with_its_cookies(auth, platform):
    query, cookies = initiate(auth)
    token = platform.sign(platform.claims(query["nonce"]))
    callback(auth, token, query["state"], cookies)
    refused(lambda: callback(auth, token, query["state"], cookies), 400, "used before")


def test_a_nonce_used_before_is_refused_under_a_fresh_state(auth, platform):
    first, first_cookies = initiate(auth)
    callback(auth, platform.sign(platform.claims(first["nonce"])), first["state"], first_cookies)
    query, cookies = initiate(auth)
    # the attacker's own fresh login initiation, with the victim's used nonce cookie
    cookies["lti13authenticator-nonce-state"] = first_cookies["lti13authenticator-nonce-state"]
    token = platform.sign(platform.claims(first["nonce"]))
    refused(lambda: callback(auth, token, query["state"], cookies), 400, "nonce was used before")


def test_state_and_nonce_must_match_the_cookies(auth, platform):
    query, cookies = initiate(auth)
    token = platform.sign(platform.claims(query["nonce"]))
    other, _ = initiate(auth)
    refused(lambda: callback(auth, token, other["state"], cookies), 400, "state mismatch")
    query, cookies = initiate(auth)
    token = platform.sign(platform.claims("not-the-nonce"))
    refused(lambda: callback(auth, token, query["state"], cookies), 400, "nonce mismatch")
    query, _ = initiate(auth)
    token = platform.sign(platform.claims(query["nonce"]))
    refused(lambda: callback(auth, token, query["state"], SimpleCookie()), 400,
            "state missing from cookies")


def test_an_old_state_cookie_is_refused(auth, platform):
    query, cookies = initiate(auth)
    token = platform.sign(platform.claims(query["nonce"]))
    later = time.time() + launch.STATE_MAX_AGE_S + 60
    with mock.patch("tornado.web.time.time", return_value=later):
        refused(lambda: callback(auth, token, query["state"], cookies), 400,
                "state missing from cookies")


@pytest.mark.parametrize("changes, words", [
    ({"aud": "another-tool"}, "Audience"),
    ({"iss": "https://evil.example.edu"}, "issuer"),
    ({spec.CLAIM_DEPLOYMENT_ID: "deployment-2"}, "deployment id 'deployment-2'"),
    ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 400}, "expired"),
    ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "iat"),
    ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ({"iat": int(time.time()) - 3600, "exp": int(time.time()) + 300}, "too long ago"),
    ({"sub": None}, "no 'sub'"),
    ({"sub": ""}, "no 'sub'"),
    ({"https://example.edu/big": "x" * (launch.MAX_CLAIM_BYTES + 1)}, "over the limit"),
])
def test_a_bad_claim_is_refused(auth, platform, changes, words):
    refused(lambda: launch_with(auth, platform, **changes), None, words)


def test_an_oversized_token_is_refused_before_it_is_decoded(auth, platform):
    extra = {f"https://example.edu/c{i}": "x" * 4000 for i in range(9)}  # each under the limit
    with mock.patch("jwt.PyJWKClient") as jwks:
        refused(lambda: launch_with(auth, platform, **extra), 400, "id_token is")
    jwks.assert_not_called()


def test_a_wrong_key_kid_signature_or_alg_is_refused(auth, platform):
    other = lmsfixture.tool_key()  # another RSA key, under the platform's kid
    kid = platform.lms.kid
    refused(lambda: launch_with(auth, platform, sign=lambda c: platform.sign(c, other, kid=kid)),
            400, "Signature verification failed")
    refused(lambda: launch_with(auth, platform, sign=lambda c: platform.sign(c, other)),
            400, other.thumbprint())

    def tampered(claims):
        head, body, sig = platform.sign(claims).split(".")
        claims = dict(claims, sub=STAFF_ID)
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{head}.{body}.{sig}"

    refused(lambda: launch_with(auth, platform, sign=tampered), 400, "Signature")

    def unsigned(claims):
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
        return f"{enc({'alg': 'none', 'kid': platform.lms.kid})}.{enc(claims)}."

    refused(lambda: launch_with(auth, platform, sign=unsigned), 400, "alg value is not allowed")

    def hs256(claims):  # the public key as an HMAC secret: the classic confusion
        secret = jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(
            platform.lms.key.export_to_pem()).rstrip(b"=").decode())
        return platform.sign(claims, key=secret, alg="HS256", kid=platform.lms.kid)

    refused(lambda: launch_with(auth, platform, sign=hs256), 400, "alg value is not allowed")


def test_a_launch_for_another_deployment_is_refused_at_login_initiation(auth):
    refused(lambda: initiate(auth, lti_deployment_id="deployment-2"), 401, "deployment-2")


# --------------------------------------------------------------------------- #
# who the launch makes: name, course, role, groups, admission
# --------------------------------------------------------------------------- #
@pytest.fixture
def accounts():
    """Local accounts as the OS gives them: the LMS's people, root and nobody system ones."""
    uids = {STUDENT_ID: 1501, STAFF_ID: 1502, "root": 0, "nobody": 65534, GRADER: 1503}

    def getpwnam(name):
        if name not in uids:
            raise KeyError(name)
        return types.SimpleNamespace(pw_uid=uids[name])

    with mock.patch.object(launch.pwd, "getpwnam", getpwnam):
        yield


def run(coro):
    import asyncio

    return asyncio.run(coro)


def model(auth, platform, **changes):
    return run(auth.get_authenticated_user(None, platform.claims("n", **changes)))


def test_roles_and_context_decide_the_groups(auth, platform, accounts):
    student = model(auth, platform)
    assert student["name"] == STUDENT_ID and student["groups"] == [student_group(COURSE)]
    staff = model(auth, platform, user=STAFF_ID)
    assert staff["name"] == STAFF_ID and staff["groups"] == [staff_group(COURSE)]
    assert LTI_INSTRUCTOR in staff["auth_state"][spec.CLAIM_ROLES]
    ta = model(auth, platform, user=STAFF_ID, **{spec.CLAIM_ROLES: [LTI_TEACHING_ASSISTANT]})
    assert ta["groups"] == [staff_group(COURSE)]
    assert auth.manage_groups and not auth.allow_all


def test_groups_follow_launches_and_keep_other_courses():
    before = [student_group("other"), staff_group(COURSE), "some-group"]
    assert launch.groups_after(COURSE, STUDENT, before) == sorted(
        [student_group("other"), student_group(COURSE), "some-group"])
    assert launch.groups_after(COURSE, STAFF, [student_group(COURSE)]) == [staff_group(COURSE)]


def test_a_launch_for_another_course_or_an_unknown_role_gets_403(auth, platform, accounts):
    refused(lambda: model(auth, platform, **{spec.CLAIM_CONTEXT: {"id": "lms-course-7"}}),
            403, "(context 'lms-course-7') is not a course of this hub")
    refused(lambda: model(auth, platform, **{spec.CLAIM_CONTEXT: None}), 403, "'none'")
    refused(lambda: model(auth, platform, **{spec.CLAIM_ROLES: [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"]}), 403, "Mentor")
    refused(lambda: model(auth, platform, **{spec.CLAIM_ROLES: []}), 403, "(none)")


@pytest.mark.parametrize("sub, words", [
    ("-rm -rf", "not a student id"),
    ("../student2", "not a student id"),
    ("x" * 65, "not a student id"),
    ("=HYPERLINK()", "not a student id"),
    ("root", "system account"),
    ("nobody", "system account"),
    (GRADER, "service account"),
    ("student9", "no account on this hub"),
])
def test_an_lms_id_that_is_no_hub_name_gets_a_clear_page(auth, platform, accounts, sub, words):
    refused(lambda: model(auth, platform, sub=sub), 403, words)


def test_the_hub_name_is_the_lms_id_as_the_roster_maps_it(auth, platform, accounts):
    assert model(auth, platform, sub=STUDENT_ID.upper())["name"] == STUDENT_ID


def test_only_a_course_member_is_admitted(auth):
    assert auth.check_allowed(STUDENT_ID, {"groups": [student_group(COURSE)]})
    assert not auth.check_allowed(STUDENT_ID, {"groups": []})
    assert not auth.check_allowed(STUDENT_ID, None)


def test_once_only_forgets_after_its_time():
    once = launch.OnceOnly(ttl=10)
    once.use("nonce", "a", now=0)
    refused(lambda: once.use("nonce", "a", now=5), 400, "used before")
    once.use("nonce", "a", now=11)
    once.use("state", "a", now=11)  # another kind
