"""The tool's LTI client against an independent platform implementation: lti1p3platform.

``lti1p3platform`` (PyPI) is a platform toolkit that leaves storage and HTTP to
its user: here a tornado application on loopback hands each request to its
token grant (``get_access_token``: the tool's client assertion verified with
PyJWT, against the tool's JWKS fetched from the URL the tool serves it at) and
to its Names and Role Provisioning service (its bearer-token and scope check,
its membership container).  The only storage is the class list below.  So the
client's assertion, token use and roster reading are checked by JOSE and LTI
code other than the project's own test LMS (tools/lms/testlms.py).
"""

from __future__ import annotations

import json

import lmsfixture as F
import pytest
import requests
import tornado.web
from jwcrypto import jwk
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request
from lti1p3platform.service_connector import NamesRoleProvisioningService

from autograder.lti import keys, spec, web
from autograder.lti.client import LtiClient, LtiError
from autograder.lti.config import LtiPlatform

CLIENT_ID = "rnn-course-tool"
ISSUER = "https://lms.example.org"
MEMBERS = [{"user_id": user_id, "name": name, "roles": [role], "status": "Active"}
           for user_id, name, role in F.PEOPLE]


class Platform(LTI1P3PlatformConfAbstract):
    """The registration of the tool, as lti1p3platform's user stores it."""

    def init_platform_config(self, tool_jwks_url: str = "", platform_key=None) -> None:
        self.tool_jwks_url, self.platform_key = tool_jwks_url, platform_key

    def get_registration_by_params(self, **kwargs) -> Registration:
        pem = self.platform_key.export_to_pem(private_key=True, password=None).decode()
        return (Registration().set_iss(ISSUER).set_client_id(CLIENT_ID)
                .set_deployment_id("deployment-1")
                .set_platform_private_key(pem)
                .set_platform_public_key(self.platform_key.export_to_pem().decode())
                .set_tool_key_set_url(self.tool_jwks_url))


class TornadoRequest(Request):
    def build_metadata(self, request):
        return {"method": request.method, "headers": request.headers,
                "form_data": {k: v[-1].decode() for k, v in request.body_arguments.items()},
                "get_data": {k: v[-1].decode() for k, v in request.query_arguments.items()},
                "content_type": request.headers.get("Content-Type"), "path": request.path,
                "json": None}


class Roster(NamesRoleProvisioningService):
    def get_context_by_id(self):
        return Context(id=F.CONTEXT, label="RNN 101", title="Recurrent neural networks")

    def get_member_data_page(self, **query):
        return {"content": [dict(m) for m in MEMBERS], "has_next": False}


def application(platform: Platform, url: list[str]) -> tornado.web.Application:
    class Token(tornado.web.RequestHandler):
        def post(self):
            form = TornadoRequest(self.request).form_data
            try:
                self.finish(platform.get_access_token(form))
            except Exception as exc:  # noqa: BLE001 - its refusals are plain exceptions
                self.set_status(401)
                self.finish({"error": "invalid_client",
                             "error_description": f"{type(exc).__name__}: {exc}"})

    class Members(tornado.web.RequestHandler):
        def get(self):
            service = Roster(TornadoRequest(self.request), platform, url[0] + "/members")
            answer = service.handle_resp(service.handle_get_members)
            self.set_status(answer.code)
            self.set_header("Content-Type", answer.media_type)
            self.finish(json.dumps(answer.result if answer.code == 200
                                   else {"error": answer.message}))

    return tornado.web.Application([("/token", Token), ("/members", Members)])


@pytest.fixture
def independent(lti_key):
    """lti1p3platform on loopback, reading the tool's JWKS from autograder.lti.web's route."""
    tool = F.testlms.ThreadedServer(
        lambda: tornado.web.Application([web.jwks_route("/tool", lti_key)])).start()
    platform = Platform(tool_jwks_url=f"http://127.0.0.1:{tool.port}/tool/{keys.JWKS_PATH}",
                        platform_key=F.platform_key())
    platform.get_registration()
    url: list[str] = []
    server = F.testlms.ThreadedServer(lambda: application(platform, url)).start()
    url.append(f"http://127.0.0.1:{server.port}")
    yield LtiPlatform(issuer=ISSUER, client_id=CLIENT_ID, token_url=url[0] + "/token"), url[0]
    server.stop()
    tool.stop()


def test_its_token_grant_accepts_the_tool_assertion_and_its_roster_reads(independent, lti_key):
    platform, url = independent
    client = LtiClient(platform, lti_key)
    members = client.members(url + "/members")
    assert [m["user_id"] for m in members] == [p[0] for p in F.PEOPLE]
    assert {m["status"] for m in members} == {"Active"} and client.tokens_fetched == 1


def test_it_refuses_another_key_and_a_token_without_the_roster_scope(independent, lti_key):
    platform, url = independent
    stranger = LtiClient(platform, jwk.JWK.generate(kty="RSA", size=2048))
    with pytest.raises(LtiError) as caught:
        stranger.token()
    assert not caught.value.retryable and caught.value.status == 401
    assert "Unable to find public key" in str(caught.value)  # its kid is not in the JWKS
    form = {"grant_type": spec.GRANT_CLIENT_CREDENTIALS, "scope": spec.SCOPE_SCORE,
            "client_assertion_type": spec.ASSERTION_JWT_BEARER,
            "client_assertion": LtiClient(platform, lti_key).assertion()}
    scores_only = requests.post(url + "/token", data=form, timeout=5).json()
    assert scores_only["scope"] == spec.SCOPE_SCORE
    answer = requests.get(url + "/members", timeout=5, headers={
        "Authorization": "Bearer " + scores_only["access_token"]})
    assert answer.status_code == 401
