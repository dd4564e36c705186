"""``python -m autograder lti keys [--course-dir DIR]``: the tool's LTI key pair.

Run once at set-up, as the course's grader account: it makes the key pair
(:mod:`autograder.lti.keys`; the private key ``c.LtiPlatform.tool_key_file``,
mode 0600, owned by whoever runs it) unless there is one, and prints its key
id and the public JWKS that the LMS reads from the tool's JWKS URL (or that an
administrator pastes into the LMS).  Running it again keeps the key.
"""

from __future__ import annotations

from autograder.course import Course
from autograder.lti import keys
from autograder.lti.config import LtiPlatform


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["keys"],
                        help="keys: make the tool's key pair if there is none, print its JWKS")
    parser.add_argument("--course-dir", default=".", help="the nbgrader course directory")


def run(args) -> int:
    course = Course(args.course_dir)
    path = LtiPlatform(config=course.config).key_path(course.root)
    key, made = keys.ensure(path)
    print(f"{'made' if made else 'kept'} the tool's LTI key {path} (kid {keys.kid(key)}); "
          "its public JWKS:")
    print(keys.jwks_json(key))
    return 0
