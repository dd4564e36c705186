"""Who an LMS user is here: the one mapping from an LTI user to a hub user and a student id.

The hub's LTI 1.3 login (the launch) and the grading service's roster
(:mod:`autograder.service.roster`) both call :func:`user_name`, so that the student
who launches from the LMS is the very student whose grades the service passes back.

The name is the LTI ``sub`` (the platform's stable, opaque id of the user: NRPS calls it
``user_id``), lower-cased as JupyterHub normalises every user name, and it must be a
student id nbgrader, the exchange and a CSV can carry
(:func:`autograder.course.student_id_problem`).  Never the e-mail or the display name:
those change, and a student could choose them.
"""

from __future__ import annotations


def user_name(sub) -> tuple[str | None, str | None]:
    """``(name, None)`` for an LTI user id ``sub``, or ``(None, why)`` when it cannot be one
    (``why``: one line)."""
    from autograder.course import student_id_problem

    if not isinstance(sub, str) or not sub:
        return None, "the LMS gave no user id (sub)"
    name = sub.lower()
    problem = student_id_problem(name)
    if problem is not None:
        return None, f"LMS user id {problem}"
    return name, None
