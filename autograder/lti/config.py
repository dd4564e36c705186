"""One LMS registration of the tool: ``c.LtiPlatform.*`` in ``nbgrader_config.py``.

The hub's LTI launch and the grading service's roster and grade passback read
this one object, so that each value is written once.  An LMS administrator
registers the tool and gets back the platform's values (issuer, client id,
deployment id, endpoints); ``docs/lms.md`` says where each is found in Canvas
and Moodle.  Empty ``issuer``: LTI is off.
"""

from __future__ import annotations

from pathlib import Path

from traitlets import Dict, Enum, Float, Unicode
from traitlets.config import Configurable

from autograder.errors import UsageError

KEY_FILE = ".lti/tool-key.pem"
"""The tool's private key, relative to the course directory (git-ignored)."""
USER_FIELDS = ("user_id", "email")
"""What may name a person of the LMS on the hub and in the gradebook."""


class LtiPlatform(Configurable):
    """The LMS (an LTI 1.3 platform) this course is registered with."""

    issuer = Unicode("", help="The platform's issuer (``iss`` of its id_tokens), "
                     "e.g. https://canvas.instructure.com; empty: LTI is off").tag(config=True)
    client_id = Unicode("", help="The client id the platform gave the tool's registration "
                        "(``aud`` of its id_tokens)").tag(config=True)
    deployment_id = Unicode("", help="The one deployment of the tool accepted (a launch of "
                            "another deployment is refused)").tag(config=True)
    authorize_url = Unicode("", help="The platform's OIDC authorization endpoint (Canvas: "
                            "/api/lti/authorize_redirect, Moodle: /mod/lti/auth.php)"
                            ).tag(config=True)
    token_url = Unicode("", help="The platform's OAuth2 token endpoint (Canvas: "
                        "/login/oauth2/token, Moodle: /mod/lti/token.php)").tag(config=True)
    jwks_url = Unicode("", help="The platform's JWKS (Canvas: /api/lti/security/jwks, Moodle: "
                       "/mod/lti/certs.php)").tag(config=True)
    contexts = Dict(value_trait=Unicode(), key_trait=Unicode(),
                    help="LTI context id (the LMS course) -> nbgrader course id; a launch or "
                    "a roster of a context not named here is refused").tag(config=True)
    services = Dict(value_trait=Dict(), key_trait=Unicode(),
                    help="LTI context id -> {'context_memberships_url': NRPS URL, "
                    "'lineitems': AGS line items URL}, as the launch's claims give them"
                    ).tag(config=True)
    username_from = Enum(USER_FIELDS, default_value="user_id",
                         help="What names an LMS person on the hub and in the gradebook: "
                         "'user_id' (the LTI user id: a launch's ``sub``, the roster's "
                         "``user_id``; stable, opaque) or 'email'; lower-cased, as JupyterHub "
                         "normalizes names").tag(config=True)
    tool_key_file = Unicode(KEY_FILE, help="The tool's private key (made by `python -m "
                            "autograder lti keys`), relative to the course directory"
                            ).tag(config=True)
    timeout = Float(10.0, help="Seconds each call to the platform may take").tag(config=True)

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    def key_path(self, course_root: str | Path) -> Path:
        return Path(course_root) / self.tool_key_file

    def course_of(self, context_id: str) -> str | None:
        """The nbgrader course of an LTI context, or None (not this tool's)."""
        return self.contexts.get(context_id)

    def contexts_of(self, course_id: str) -> list[str]:
        """The LTI contexts that map to an nbgrader course."""
        return [ctx for ctx, course in self.contexts.items() if course == course_id]

    def username(self, person: dict) -> str | None:
        """The hub user name (and nbgrader student id) of a launch's id_token claims or of a
        roster member, or None if it has none.  Check it with
        :func:`autograder.course.student_id_problem` before use."""
        if self.username_from == "email":
            value = person.get("email")
        else:
            value = person.get("user_id", person.get("sub"))
        if not isinstance(value, str) or not value.strip():
            return None
        return value.strip().lower()

    def check(self) -> None:
        """One line naming what a switched-on registration lacks."""
        missing = [name for name in ("issuer", "client_id", "deployment_id", "authorize_url",
                                     "token_url", "jwks_url") if not getattr(self, name)]
        if missing:
            raise UsageError("c.LtiPlatform lacks " + ", ".join(missing)
                             + " (the values the LMS gave the tool's registration)")
        if not self.contexts:
            raise UsageError("c.LtiPlatform.contexts is empty: name the LMS course (LTI "
                             "context id) of each nbgrader course")
