"""LTI 1.3 (LTI Advantage), the tool's side: its keys, its registration, its service calls.

- :mod:`autograder.lti.spec`: the names the specifications fix (claims, scopes, media types);
- :mod:`autograder.lti.config`: :class:`LtiPlatform`, one LMS registration (``c.LtiPlatform``);
- :mod:`autograder.lti.keys`: the tool's key pair and public JWKS;
- :mod:`autograder.lti.client`: the token, the roster (NRPS) and grades (AGS);
- :mod:`autograder.lti.web`: the route that serves the tool's JWKS;
- :mod:`autograder.lti.users`: the one mapping of an LMS user to a hub user and student id.

``docs/lms.md`` tells an instructor what to register in the LMS.
"""

from autograder.lti.config import LtiPlatform

__all__ = ["LtiPlatform"]
