"""``make hub --login lti``'s set-up steps (tools/hub/lti.py), without a hub.

The whole launch in a real hub and browser is tests/test_hub_lti.py.
"""

from __future__ import annotations

import ssl
import stat
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "hub"))
import lti as hublti  # noqa: E402


def test_the_certificate_is_made_once_for_127_0_0_1_its_key_private(tmp_path):
    cert, key = hublti.ensure_certificate(tmp_path / "hub")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "hub").stat().st_mode) == 0o700
    info = ssl._ssl._test_decode_cert(str(cert))
    assert ("IP Address", "127.0.0.1") in info["subjectAltName"]
    hublti.ssl_context(cert)  # a client trusts it
    before = cert.read_bytes(), key.read_bytes()
    assert hublti.ensure_certificate(tmp_path / "hub") == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == before  # kept, not made again


def test_the_lms_may_frame_the_hub_and_only_origins_are_taken(monkeypatch):
    platform = {"authorize_url": "https://sso.canvaslms.com/api/lti/authorize_redirect"}
    monkeypatch.delenv(hublti.LMS_ORIGINS_ENV, raising=False)
    assert hublti.frame_ancestors(platform) == ["https://sso.canvaslms.com"]
    monkeypatch.setenv(hublti.LMS_ORIGINS_ENV, "https://school.instructure.com")
    assert hublti.frame_ancestors(platform)[1:] == ["https://school.instructure.com"]
    for bad in ("https://school.instructure.com/courses", "'self' *", "javascript:x"):
        monkeypatch.setenv(hublti.LMS_ORIGINS_ENV, bad)
        with pytest.raises(hublti.LtiError, match="is not an origin") as exc:
            hublti.frame_ancestors(platform)
        assert "\n" not in str(exc.value)


def test_what_make_hub_prints_for_the_lms_administrator():
    reg = hublti.registration("https://127.0.0.1:18000")
    assert reg["redirect URI"] == "https://127.0.0.1:18000/hub/lti13/oauth_callback"
    assert reg["login initiation URL (OIDC)"] == "https://127.0.0.1:18000/hub/lti13/oauth_login"
    assert reg["tool JWKS URL"] == "https://127.0.0.1:18000/hub/lti/jwks.json"
    # what docs/lms.md tells an administrator to register is what make hub prints
    doc = (REPO / "docs" / "lms.md").read_text()
    for value in ("/hub/lti13/oauth_login", "/hub/lti13/oauth_callback", "/hub/lti/jwks.json"):
        assert value in doc


def test_login_lti_reads_the_courses_lms_registration_or_says_what_is_missing(tmp_path):
    values = {"issuer": "https://lms.example.edu", "client_id": "tool-1",
              "deployment_id": "d1", "authorize_url": "https://lms.example.edu/auth",
              "token_url": "https://lms.example.edu/token",
              "jwks_url": "https://lms.example.edu/jwks", "contexts": {"ctx-1": "rnn-course"}}
    config = tmp_path / "nbgrader_config.py"
    config.write_text("c = get_config()\n")
    with pytest.raises(hublti.LtiError, match="sets no c.LtiPlatform.issuer"):
        hublti.platform_of(tmp_path)
    hublti.configure_course(tmp_path, {k: v for k, v in values.items() if k != "jwks_url"})
    with pytest.raises(hublti.LtiError, match="lacks jwks_url") as exc:
        hublti.platform_of(tmp_path)
    assert "\n" not in str(exc.value)
    hublti.configure_course(tmp_path, values)
    assert hublti.platform_of(tmp_path) == {k: v for k, v in values.items() if k != "token_url"}
