"""The tool's key pair (autograder.lti.keys) and its registration (autograder.lti.config)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from jwcrypto import jwk, jws
from traitlets.config import Config

from autograder.errors import UsageError
from autograder.lti import keys
from autograder.lti.config import KEY_FILE, LtiPlatform


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    path = tmp_path_factory.mktemp("course") / KEY_FILE
    return path, keys.generate(path)


def test_the_private_key_is_made_mode_0600_in_a_0700_folder(made):
    path, key = made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.stat().st_uid == os.getuid()
    assert keys.load(path).thumbprint() == key.thumbprint()
    assert b"PRIVATE KEY" in path.read_bytes()


def test_the_key_is_made_once(made):
    path, key = made
    with pytest.raises(UsageError, match="exists: the tool's key is made once"):
        keys.generate(path)
    assert keys.ensure(path) == (keys.load(path), False)


def test_a_key_is_never_written_through_a_link(tmp_path):
    target = tmp_path / "elsewhere"
    (tmp_path / "k.pem").symlink_to(target)
    with pytest.raises(UsageError, match="exists"):
        keys.generate(tmp_path / "k.pem")
    assert not target.exists()


def test_a_key_others_can_read_a_link_or_garbage_is_refused(made, tmp_path):
    path, _ = made
    loose = tmp_path / "loose.pem"
    loose.write_bytes(path.read_bytes())
    loose.chmod(0o644)
    with pytest.raises(UsageError, match="has mode 0644: others may read it"):
        keys.load(loose)
    link = tmp_path / "link.pem"
    link.symlink_to(path)
    with pytest.raises(UsageError, match="cannot open the LTI tool key"):
        keys.load(link)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    garbage.chmod(0o600)
    with pytest.raises(UsageError, match="is not a PEM private key"):
        keys.load(garbage)
    with pytest.raises(UsageError, match="python -m autograder lti keys"):
        keys.load(tmp_path / "missing.pem")
    os.mkfifo(tmp_path / "fifo.pem", 0o600)  # refused at once, not waited on
    with pytest.raises(UsageError, match="is not a regular file"):
        keys.load(tmp_path / "fifo.pem")


def test_the_jwks_is_public_and_verifies_what_the_key_signs(made):
    _, key = made
    document = keys.jwks(key)
    (public,) = document["keys"]
    assert public["kid"] == key.thumbprint() and public["alg"] == "RS256"
    assert "d" not in public and "p" not in public  # nothing private
    signed = jws.JWS(b"payload")
    signed.add_signature(key, alg="RS256", protected={"alg": "RS256"})
    check = jws.JWS()
    check.deserialize(signed.serialize())
    check.verify(jwk.JWKSet.from_json(keys.jwks_json(key)).get_key(key.thumbprint()))
    assert check.payload == b"payload"


def test_the_platform_is_read_from_the_config(tmp_path):
    config = Config()
    config.LtiPlatform.issuer = "https://canvas.example.edu"
    config.LtiPlatform.contexts = {"ctx-1": "rnn-course", "ctx-2": "rnn-course"}
    platform = LtiPlatform(config=config)
    assert platform.enabled and platform.course_of("ctx-1") == "rnn-course"
    assert platform.course_of("ctx-9") is None
    assert platform.contexts_of("rnn-course") == ["ctx-1", "ctx-2"]
    assert platform.key_path(tmp_path) == tmp_path / KEY_FILE
    with pytest.raises(UsageError, match="lacks client_id, deployment_id, authorize_url"):
        platform.check()
    assert not LtiPlatform().enabled


def test_a_person_is_named_by_the_chosen_field_lower_cased():
    by_id, by_email = LtiPlatform(), LtiPlatform(username_from="email")
    member = {"user_id": "A1b2-C3", "email": " Ada@Example.org "}
    claims = {"sub": "A1b2-C3", "email": "Ada@Example.org"}
    assert by_id.username(member) == by_id.username(claims) == "a1b2-c3"
    assert by_email.username(member) == by_email.username(claims) == "ada@example.org"
    assert by_email.username({"user_id": "x"}) is None
    assert by_id.username({"user_id": 42}) is None and by_id.username({"sub": " "}) is None


def test_the_command_makes_the_key_once_and_prints_the_jwks(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.RnnCourse.assignments = [\"rnn_cell\"]\n")
    command = [sys.executable, "-m", "autograder", "lti", "keys", "--course-dir", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    second = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    path = tmp_path / KEY_FILE
    kid = keys.load(path).thumbprint()
    assert first.startswith(f"made the tool's LTI key {path} (kid {kid})")
    assert second.startswith(f"kept the tool's LTI key {path} (kid {kid})")
    assert json.loads(second.split("\n", 1)[1])["keys"][0]["kid"] == kid
    path.chmod(0o640)
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "has mode 0640" in refused.stderr
