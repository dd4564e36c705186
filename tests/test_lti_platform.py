"""The project's test LMS (tools/lms/testlms.py) is a platform that checks what a real one does.

The launch (OIDC authorization answering a signed id_token), the token endpoint
(a client assertion verified against the tool's lti_key, read from its JWKS URL or
pasted), the services' bearer tokens and scopes, and the score validation: the
tests of the tool's LTI code are worth what this platform refuses.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import lmsfixture as F
import pytest
import requests
import tornado.web
from jwcrypto import jwk, jwt

from autograder import roles
from autograder.lti import keys, spec, web
from autograder.lti.client import LtiClient

REPO = Path(__file__).resolve().parents[1]


# --- the launch -------------------------------------------------------------------------

def auth_params(lms, **changes):
    """What the tool's login initiation sends the browser to the platform with."""
    initiation = parse_qs(urlsplit(lms.login_initiation("s1", F.CONTEXT)).query)
    params = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
              "prompt": "none", "client_id": lms.tool.client_id,
              "redirect_uri": lms.tool.redirect_uris[0], "login_hint": "s1",
              "lti_message_hint": initiation["lti_message_hint"][0],
              "state": "state-1", "nonce": uuid.uuid4().hex}
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def launch(lms, **changes) -> requests.Response:
    return requests.get(lms.auth_url, params=auth_params(lms, **changes), timeout=5)


def form_fields(page: str) -> dict:
    return {k: html.unescape(v) for k, v in
            re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page)}


def platform_keys(lms) -> jwk.JWKSet:
    return jwk.JWKSet.from_json(requests.get(lms.jwks_url, timeout=5).text)


def test_login_initiation_carries_the_hints(lms):
    url = lms.login_initiation("teacher", F.CONTEXT)
    assert url.startswith(lms.tool.login_url + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["iss"] == lms.issuer and query["login_hint"] == "teacher"
    assert query["client_id"] == lms.tool.client_id
    assert query["lti_deployment_id"] == lms.tool.deployment_id
    assert query["target_link_uri"] == "http://127.0.0.1:9/"  # the tool's root, by default
    lms.tool.target_link_uri = "http://127.0.0.1:9/hub/user-redirect/lab"
    query = parse_qs(urlsplit(lms.login_initiation("teacher", F.CONTEXT)).query)
    claims = lms.id_token_claims("teacher", F.CONTEXT, f"{F.CONTEXT}-link", "n")
    assert query["target_link_uri"] == [claims[spec.CLAIM_TARGET_LINK_URI]] == [
        lms.tool.target_link_uri]


def test_a_launch_answers_a_signed_id_token_with_every_claim(lms):
    params = auth_params(lms)
    answer = launch(lms, nonce=params["nonce"])
    assert answer.status_code == 200
    fields = form_fields(answer.text)
    assert fields["state"] == "state-1"
    assert f'action="{lms.tool.redirect_uris[0]}"' in answer.text and ".submit()" in answer.text
    token = jwt.JWT(jwt=fields["id_token"], key=platform_keys(lms), algs=["RS256"],
                    check_claims={"iss": lms.issuer, "aud": lms.tool.client_id, "exp": None})
    assert json.loads(token.header)["kid"] == lms.kid
    claims = json.loads(token.claims)
    assert (claims["sub"], claims["nonce"], claims["email"], claims["name"]) == (
        "s1", params["nonce"], "s1@lms.example.org", "Ada Lovelace")
    assert claims[spec.CLAIM_DEPLOYMENT_ID] == lms.tool.deployment_id
    assert claims[spec.CLAIM_MESSAGE_TYPE] == "LtiResourceLinkRequest"
    assert claims[spec.CLAIM_VERSION] == "1.3.0"
    assert claims[spec.CLAIM_ROLES] == [roles.LTI_LEARNER]
    assert claims[spec.CLAIM_CONTEXT]["id"] == F.CONTEXT
    assert claims[spec.CLAIM_CONTEXT]["title"] == "Recurrent neural networks"
    assert claims[spec.CLAIM_RESOURCE_LINK]["id"] == f"{F.CONTEXT}-link"
    assert claims[spec.CLAIM_TARGET_LINK_URI] == "http://127.0.0.1:9/"
    assert claims[spec.CLAIM_NRPS]["context_memberships_url"] == lms.memberships_url(F.CONTEXT)
    assert claims[spec.CLAIM_AGS]["lineitems"] == lms.lineitems_url(F.CONTEXT)
    assert set(claims[spec.CLAIM_AGS]["scope"]) == set(spec.AGS_SCOPES)
    assert 0 < claims["exp"] - claims["iat"] <= 300


@pytest.mark.parametrize("change, status, reason", [
    ({"redirect_uri": "https://evil.example/callback"}, 400, "is not registered"),
    ({"client_id": "someone-else"}, 400, "unknown client_id"),
    ({"response_type": "code"}, 400, "response_type must be id_token"),
    ({"response_mode": "query"}, 400, "response_mode must be form_post"),
    ({"prompt": None}, 400, "prompt must be none"),
    ({"scope": "profile"}, 400, "scope must include openid"),
    ({"nonce": None}, 400, "no nonce"),
    ({"login_hint": "mallory"}, 403, "unknown user"),
    ({"lti_message_hint": "other-course x"}, 400, "names no resource link"),
])
def test_a_bad_authorization_request_is_refused_without_a_token(lms, change, status, reason):
    answer = launch(lms, **change)
    assert answer.status_code == status and reason in answer.json()["error_description"]
    assert form_fields(answer.text) == {}


def test_only_active_members_may_launch(lms):
    lms.leave(F.CONTEXT, "s1")
    answer = launch(lms)
    assert answer.status_code == 403 and "not a member" in answer.json()["error_description"]


def test_a_test_may_tamper_with_the_next_id_token(lms):
    stranger = jwk.JWK.generate(kty="RSA", size=2048)
    lms.tamper = lambda claims: lms.sign({**claims, "aud": "other"}, key=stranger)
    claims = json.loads(jwt.JWT(jwt=form_fields(launch(lms).text)["id_token"]).token.objects[
        "payload"])
    assert claims["aud"] == "other"
    assert lms.tamper is None  # used once


def test_the_front_page_lists_launch_links_and_the_frame_page_embeds_one(lms):
    front = requests.get(lms.url + "/", timeout=5).text
    for user_id, _name, _role in F.PEOPLE:
        assert f'id="launch-{user_id}-{F.CONTEXT}-link"' in front
    assert html.escape(lms.login_initiation("teacher", F.CONTEXT)) in front
    frame = requests.get(lms.frame_url("s2", F.CONTEXT), timeout=5).text
    src = html.unescape(re.search(r'<iframe id="tool" [^>]*src="([^"]+)"', frame)[1])
    assert src == lms.login_initiation("s2", F.CONTEXT)
    gradebook = requests.get(lms.url + "/gradebook", timeout=5)
    assert gradebook.status_code == 200 and "Recurrent neural networks" in gradebook.text


# --- the token endpoint -----------------------------------------------------------------

def assertion(lms, lti_key, **changes) -> str:
    """A client assertion; ``iat`` and ``exp`` changes are seconds from now."""
    now = int(time.time())
    claims = {"iss": lms.tool.client_id, "sub": lms.tool.client_id, "aud": lms.token_url,
              "iat": 0, "exp": 300, "jti": uuid.uuid4().hex}
    claims.update(changes)
    for name in ("iat", "exp"):
        if claims.get(name) is not None:
            claims[name] += now
    claims = {k: v for k, v in claims.items() if v is not None}
    return lms.sign(claims, key=lti_key)


def ask_token(lms, client_assertion, **changes) -> requests.Response:
    form = {"grant_type": "client_credentials", "client_assertion": client_assertion,
            "client_assertion_type": spec.ASSERTION_JWT_BEARER,
            "scope": " ".join(spec.TOOL_SCOPES)}
    form.update(changes)
    return requests.post(lms.token_url, data=form, timeout=5)


def test_a_good_assertion_gets_a_bearer_token(lms, lti_key):
    answer = ask_token(lms, assertion(lms, lti_key))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == lms.token_lifetime
    assert set(body["scope"].split()) == set(spec.TOOL_SCOPES)


@pytest.mark.parametrize("change, reason", [
    ({"aud": "https://elsewhere/token"}, "Invalid 'aud' value"),
    ({"iss": "someone-else"}, "Invalid 'iss' value"),
    ({"sub": "someone-else"}, "Invalid 'sub' value"),
    ({"exp": -600}, "Expired"),
    ({"exp": None}, "Claim exp is missing"),
    ({"jti": None}, "Claim jti is missing"),
    ({"iat": 3600, "exp": 3900}, "issued in the future"),
    ({"exp": 86400}, "valid for too long"),
])
def test_a_bad_assertion_is_refused(lms, lti_key, change, reason):
    answer = ask_token(lms, assertion(lms, lti_key, **change))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert reason in answer.json()["error_description"]


def test_an_assertion_signed_by_another_key_or_tampered_is_refused(lms, lti_key):
    stranger = jwk.JWK.generate(kty="RSA", size=2048)
    assert ask_token(lms, assertion(lms, stranger)).status_code == 401
    header, payload, signature = assertion(lms, lti_key).split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert ask_token(lms, ".".join([header, payload, flipped])).status_code == 401
    claims = json.loads(jwt.JWT(jwt=assertion(lms, lti_key), key=lti_key).claims)
    assert ask_token(lms, F.testlms.unsigned_token(claims)).status_code == 401
    assert ask_token(lms, "not-a-jwt").status_code == 401


def test_an_assertion_is_accepted_once(lms, lti_key):
    once = assertion(lms, lti_key)
    assert ask_token(lms, once).status_code == 200
    again = ask_token(lms, once)
    assert again.status_code == 401 and "replayed" in again.json()["error_description"]


def test_the_grant_and_the_scopes_are_checked(lms, lti_key):
    assert ask_token(lms, assertion(lms, lti_key), grant_type="password").json()["error"] == (
        "unsupported_grant_type")
    answer = ask_token(lms, assertion(lms, lti_key), scope="https://example/other-scope")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope"
    some = ask_token(lms, assertion(lms, lti_key), scope=spec.SCOPE_SCORE + " https://example/x")
    assert some.json()["scope"] == spec.SCOPE_SCORE


def test_the_tool_key_is_read_from_its_jwks_url(lti_key):
    """The JWKS as the tool serves it (autograder.lti.web), read by the LMS at each request."""
    prefix = "/services/rnn-course-grader"
    server = F.testlms.ThreadedServer(
        lambda: tornado.web.Application([web.jwks_route(prefix, lti_key)])).start()
    url = f"http://127.0.0.1:{server.port}{prefix}/{keys.JWKS_PATH}"
    with F.start_lms(tool=F.registration(jwks_url=url)) as lms:
        assert requests.get(url, timeout=5).json() == keys.jwks(lti_key)
        assert LtiClient(F.platform_of(lms), lti_key).token()
        stranger = jwk.JWK.generate(kty="RSA", size=2048)
        error = ask_token(lms, assertion(lms, stranger)).json()["error_description"]
        assert "client assertion refused" in error
        server.stop()
        error = ask_token(lms, assertion(lms, lti_key)).json()["error_description"]
        assert "cannot read the tool's JWKS" in error


# --- the services -------------------------------------------------------------------------

def bearer(lms, lti_key, scope: str | None = None) -> dict:
    scope = scope or " ".join(spec.TOOL_SCOPES)
    token = ask_token(lms, assertion(lms, lti_key), scope=scope).json()["access_token"]
    return {"Authorization": "Bearer " + token}


def test_services_need_a_valid_token_with_the_right_scope(lms, lti_key):
    url = lms.memberships_url(F.CONTEXT)
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).json()[
        "error"] == "invalid_token"
    scores_only = bearer(lms, lti_key, spec.SCOPE_SCORE)
    answer = requests.get(url, headers=scores_only, timeout=5)
    assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"
    answer = requests.get(url, headers=bearer(lms, lti_key), timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == spec.MEDIA_MEMBERSHIPS


def test_nrps_pages_carry_a_next_link_until_the_last(lti_key):
    with F.start_lms(lti_key, page_size=2) as lms:
        auth, url, seen = bearer(lms, lti_key), lms.memberships_url(F.CONTEXT), []
        while url:
            answer = requests.get(url, headers=auth, timeout=5)
            seen += [m["user_id"] for m in answer.json()["members"]]
            url = answer.links.get("next", {}).get("url")
        assert seen == [p[0] for p in F.PEOPLE]
        staff = requests.get(lms.memberships_url(F.CONTEXT), headers=auth, timeout=5,
                             params={"role": roles.LTI_INSTRUCTOR}).json()["members"]
        assert [m["user_id"] for m in staff] == ["teacher"]


@pytest.fixture
def scores(lms, lti_key):
    auth = bearer(lms, lti_key)
    item = requests.post(lms.lineitems_url(F.CONTEXT), headers=auth, timeout=5,
                         json={"scoreMaximum": 10, "label": "rnn_cell"}).json()

    def post(media=spec.MEDIA_SCORE, **changes):
        score = {"userId": "s1", "scoreGiven": 5, "scoreMaximum": 10,
                 "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                 "timestamp": "2026-12-01T10:00:00+00:00"}
        score.update(changes)
        score = {k: v for k, v in score.items() if v is not None}
        return requests.post(item["id"] + spec.SCORES_SUFFIX, data=json.dumps(score), timeout=5,
                             headers={**auth, "Content-Type": media})

    post.item = item
    return post


@pytest.mark.parametrize("change, status, reason", [
    ({"media": "application/json"}, 415, "Content-Type must be"),
    ({"activityProgress": "Done"}, 400, "activityProgress must be one of"),
    ({"gradingProgress": None}, 400, "gradingProgress must be one of"),
    ({"timestamp": None}, 400, "timestamp must be ISO 8601"),
    ({"timestamp": "2026-12-01T10:00:00"}, 400, "must carry its UTC offset"),
    ({"scoreGiven": -1}, 400, "scoreGiven must be a number"),
    ({"scoreGiven": "5"}, 400, "scoreGiven must be a number"),
    ({"scoreMaximum": None}, 400, "scoreMaximum must be a number"),
    ({"scoreMaximum": 0}, 400, "scoreMaximum must be above 0"),
    ({"userId": "nobody"}, 422, "is not in the course"),
])
def test_a_bad_score_is_refused_and_not_counted(lms, scores, change, status, reason):
    answer = scores(**change)
    assert answer.status_code == status and reason in answer.json()["error_description"]
    assert lms.posts(scores.item["id"], "s1") == 0


def test_a_pending_score_needs_no_points(lms, scores):
    assert scores(scoreGiven=None, scoreMaximum=None, gradingProgress="Pending",
                  activityProgress="Submitted").status_code == 204
    assert lms.posts(scores.item["id"], "s1") == 1


def test_a_bad_line_item_is_refused(lms, lti_key):
    auth, url = bearer(lms, lti_key), lms.lineitems_url(F.CONTEXT)
    for body, reason in [({"label": "x"}, "scoreMaximum"), ({"scoreMaximum": 0, "label": "x"},
                         "scoreMaximum"), ({"scoreMaximum": 5}, "label")]:
        answer = requests.post(url, json=body, headers=auth, timeout=5)
        assert answer.status_code == 400 and reason in answer.json()["error_description"]
    assert requests.get(url + "/99", headers=auth, timeout=5).status_code == 404


def test_failure_controls_are_checked(lms):
    with pytest.raises(ValueError):
        lms.fail("nowhere", status=500)
    with pytest.raises(ValueError):
        lms.fail("scores", status=500, hang=True)
    with pytest.raises(ValueError, match="only with applied=True"):
        lms.fail("scores", garbage=True)
    lms.fail("jwks", status=500, times=2)
    assert [requests.get(lms.jwks_url, timeout=5).status_code for _ in range(3)] == [
        500, 500, 200]
    lms.fail("jwks", status=502, times=None)
    assert requests.get(lms.jwks_url, timeout=5).status_code == 502
    lms.heal()
    assert requests.get(lms.jwks_url, timeout=5).status_code == 200


def test_standalone_it_prints_its_urls():
    command = [sys.executable, str(REPO / "tools/lms/testlms.py"), "--tool-url",
               "http://127.0.0.1:9"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as proc:
        try:
            lines = [proc.stdout.readline() for _ in range(9)]
            url = re.match(r"test LMS at (http://127\.0\.0\.1:\d+)/", lines[0])[1]
            front = requests.get(url + "/", timeout=5).text
            assert "student1" in front and "instructor1" in front
            assert f"c.LtiPlatform.token_url = '{url}/login/oauth2/token'" in "".join(lines)
            assert "c.LtiPlatform.contexts = {'rnn-101': 'rnn-course'}" in "".join(lines)
            assert "http://127.0.0.1:9/hub/lti13/oauth_login?" in html.unescape(front)
            assert "target_link_uri=http%3A%2F%2F127.0.0.1%3A9%2Fhub&" in html.unescape(front)
        finally:
            proc.terminate()
