"""The grader's secret and what is derived from it: per-submission seeds of graded inputs."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_ENV = "RNN_COURSE_SECRET"
SECRET_FILE = ".grader_secret"


def submission_secret(course_secret: bytes, assignment: str, student: str,
                      digest: str) -> bytes:
    """Seed material for one submission's graded inputs, derived from the course secret.

    ``digest`` is the submission's content digest (the precheck's
    ``Submission.digest``): resubmitting different bytes draws new inputs for
    every check, while regrading the same bytes reproduces the grade exactly.
    Workers (possibly on other hosts) get this, never the course secret:
    knowing it reveals nothing about another student's inputs, nor about the
    inputs of the same student's next submission.
    """
    msg = f"rnn-course submission\x1f{assignment}\x1f{student}\x1f{digest}".encode()
    return hmac.new(course_secret, msg, hashlib.sha256).digest()


def course_secret(course_dir: str | os.PathLike) -> bytes:
    """The grader's secret that seeds hidden inputs.

    ``$RNN_COURSE_SECRET`` if set (a grading service keeps it in its
    environment), else ``<course_dir>/.grader_secret``, created on first use
    with mode 0600 and git-ignored.  Students never see it: the sandbox shows
    no part of the course directory.
    """
    value = os.environ.get(SECRET_ENV)
    if value:
        return value.encode()
    path = Path(course_dir) / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def seed_for(secret: bytes, *parts: str) -> int:
    """A 64-bit seed from the grader's secret and e.g. (assignment, student, check id).

    Deterministic, so that regrading reproduces a grade exactly, and
    unpredictable without the secret, so that a student cannot precompute the
    answers to their own hidden inputs.
    """
    msg = "\x1f".join(parts).encode()
    return int.from_bytes(hmac.new(secret, msg, hashlib.sha256).digest()[:8], "little")
