"""The project's test LMS (``tools/lms/testlms.py``) with a class in it, for the LTI tests.

``start_lms(key)`` runs it on a free loopback port (``with start_lms(key) as lms:``
stops it after) with the tool registered under ``key``'s public half and
:data:`CONTEXT` holding :data:`PEOPLE`;
``platform_of(lms)`` is the tool's :class:`autograder.lti.LtiPlatform` for it.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from jwcrypto import jwk

from autograder import roles
from autograder.lti import keys
from autograder.lti.config import LtiPlatform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "lms"))
import testlms  # noqa: E402

CONTEXT = "ctx-rnn-101"
COURSE = "rnn-course"
TOOL = "http://127.0.0.1:9/hub"  # the tool's URLs, never called by these tests
PEOPLE = [("teacher", "Ida Instructor", roles.LTI_INSTRUCTOR),
          ("assistant", "Tom Assistant", roles.LTI_TEACHING_ASSISTANT),
          ("s1", "Ada Lovelace", roles.LTI_LEARNER),
          ("s2", "Alan Turing", roles.LTI_LEARNER),
          ("s3", "Grace Hopper", roles.LTI_LEARNER)]


def registration(key=None, **changes) -> testlms.ToolRegistration:
    fields = dict(login_url=TOOL + "/lti13/oauth_login",
                  redirect_uris=[TOOL + "/lti13/oauth_callback"],
                  public_jwk=keys.public_jwk(key) if key is not None else None)
    fields.update(changes)
    return testlms.ToolRegistration(**fields)


@functools.cache
def platform_key() -> jwk.JWK:
    """One key for every test LMS of a test process (making one takes a few tenths of a s)."""
    return jwk.JWK.generate(kty="RSA", size=2048)


@functools.cache
def tool_key() -> jwk.JWK:
    """The tool's key in the LTI tests (what `python -m autograder lti keys` makes)."""
    return jwk.JWK.generate(kty="RSA", size=2048)


def start_lms(key=None, tool: testlms.ToolRegistration | None = None, **options):
    options.setdefault("key", platform_key())
    lms = testlms.TestLMS(tool or registration(key), **options)
    lms.add_course(CONTEXT, "RNN 101", "Recurrent neural networks")
    for user_id, name, role in PEOPLE:
        lms.add_user(user_id, name, f"{user_id}@lms.example.org")
        lms.enroll(CONTEXT, user_id, role)
    return lms.start()


def platform_of(lms, **changes) -> LtiPlatform:
    config = lms.platform_config()
    config.update(contexts={CONTEXT: COURSE}, **changes)
    return LtiPlatform(**config)
