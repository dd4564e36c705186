"""One model of courses and roles, for the hub, the grading service, the exchange and the LMS.

A course is an nbgrader course directory with its id (``c.CourseDirectory.course_id``),
owned by its grader account; on a hub it has a formgrader service named like the
course and a grading service named :func:`grading_service`.

Who is what in a course is a JupyterHub group membership, named as nbgrader
itself names them (its JupyterHub auth plugin and its course list):

- ``nbgrader-<course>``: the course's students (:func:`student_group`);
- ``formgrade-<course>``: its instructors and teaching assistants
  (:func:`staff_group`), who reach the formgrader, the grading service's pages
  and the instructors' exchange calls.

An LMS launch (LTI 1.3) maps its roles onto these two with :data:`LTI_ROLES`.
Standard library only: the hub's own process imports this file.
"""

from __future__ import annotations

STUDENT = "student"
STAFF = "staff"
STUDENT_PREFIX = "nbgrader-"
STAFF_PREFIX = "formgrade-"

# LTI 1.3 role URIs (membership context roles, and their short forms) -> the course role
_LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
LTI_LEARNER = _LIS + "Learner"
LTI_INSTRUCTOR = _LIS + "Instructor"
LTI_TEACHING_ASSISTANT = _LIS + "Instructor#TeachingAssistant"
LTI_ROLES = {
    LTI_LEARNER: STUDENT,
    LTI_INSTRUCTOR: STAFF,
    _LIS + "ContentDeveloper": STAFF,
    LTI_TEACHING_ASSISTANT: STAFF,
    _LIS + "TeachingAssistant": STAFF,  # (not in the vocabulary, seen in the wild)
    "Learner": STUDENT,
    "Instructor": STAFF,
    "TeachingAssistant": STAFF,
}


def student_group(course: str) -> str:
    return STUDENT_PREFIX + course


def staff_group(course: str) -> str:
    return STAFF_PREFIX + course


def grading_service(course: str) -> str:
    """The hub service name of a course's grading service (``python -m autograder serve``)."""
    return f"{course}-grader"


def exchange_url(hub_url: str, placeholder: str = "{course_id}") -> str:
    """The HTTP exchange's URL as users' servers are given it (``RNN_EXCHANGE_URL``): a
    course's grading service through the hub's proxy at ``hub_url``, with ``placeholder``
    where the exchange plugin puts the course id."""
    return f"{hub_url.rstrip('/')}/services/{grading_service(placeholder)}/"


def course_roles(groups) -> dict[str, str]:
    """``{course: STUDENT or STAFF}`` from a hub user's group names (staff wins over student)."""
    roles: dict[str, str] = {}
    for g in groups:
        if g.startswith(STAFF_PREFIX):
            roles[g[len(STAFF_PREFIX):]] = STAFF
        elif g.startswith(STUDENT_PREFIX):
            roles.setdefault(g[len(STUDENT_PREFIX):], STUDENT)
    return roles


def lti_role(roles) -> str | None:
    """The course role of an LTI launch's ``roles`` claim: STAFF, STUDENT or None (unknown)."""
    found = {LTI_ROLES[r] for r in roles if r in LTI_ROLES}
    if STAFF in found:
        return STAFF
    return STUDENT if STUDENT in found else None
