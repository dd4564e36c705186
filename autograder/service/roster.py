"""The course's roster from the LMS (LTI Names and Role Provisioning Services), kept in
nbgrader's gradebook.

:func:`sync` reads every member of the LMS course (:meth:`members` of the LMS client,
:mod:`autograder.lti`) and

* adds each active **learner** to nbgrader's gradebook as a student (id, first and last
  name, e-mail, ``lms_user_id``), or brings their names up to date: a student who never
  submits still has a row in ``grades.csv`` and the Canvas CSV (a 0, "submitted: no");
* marks a student who **left** (no longer listed, or listed ``Inactive`` / ``Deleted``)
  in the table ``rnn_course_roster`` below, and never deletes them: their grades stay in
  the gradebook, and they come back as they were if the LMS lists them again;
* **skips** a member whose LMS user id is not a valid student id
  (:func:`autograder.lti.users.user_name`, the very mapping the hub's LTI login uses),
  with one log line when it is first seen, and a row that the status page shows.

Instructors and teaching assistants are listed (``role`` ``staff``) but never become
students.  The table lives in the gradebook's database, beside the grading service's
journal (:mod:`autograder.pipeline.coordinator.gradebook`), keyed by the LMS's user id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Column, DateTime, String, Table, Text, insert, select, update

from autograder.lti.users import user_name
from autograder.pipeline.coordinator.gradebook import METADATA, ensure_tables
from autograder.roles import STAFF, lti_role
from autograder.service.journal import utcnow
from autograder.service.rounds import event

ACTIVE, LEFT, SKIPPED = "active", "left", "skipped"
"""A row's ``state``: an enrolled student, one who left (kept, marked), a member skipped."""
STAFF_STATE = "staff"
"""The ``state`` of an instructor's or TA's row (never a student of the gradebook)."""
LMS_ACTIVE = "Active"
"""NRPS's ``status`` of a current member (the others: ``Inactive``, ``Deleted``)."""

ROSTER = Table(
    "rnn_course_roster", METADATA,
    Column("user_id", String(255), primary_key=True),
    Column("student_id", String(128), nullable=True, index=True),
    Column("context_id", String(255), nullable=False, default=""),
    Column("state", String(16), nullable=False),
    Column("lms_status", String(16), nullable=False, default=""),
    Column("name", Text, nullable=False, default=""),
    Column("email", Text, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("left_at", DateTime, nullable=True),
)

NO_ROLE = "no role the course knows (learner, instructor, teaching assistant)"
TEXT_CHARS = 255  # a name or an e-mail from the LMS is cut to this (nbgrader's columns: 128)


@dataclass
class Synced:
    """What one :func:`sync` changed."""

    added: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    members: int = 0


def _text(value, limit: int = TEXT_CHARS) -> str:
    return value[:limit] if isinstance(value, str) else ""


def sync(course, members) -> Synced:
    """Bring the gradebook of ``course`` and the roster table in step with ``members``:
    ``(context_id, member)`` pairs, each member an NRPS dict (``user_id``, ``status``,
    ``roles``, ``given_name``, ``family_name``, ``name``, ``email``) of that LMS context;
    what changed.  Give it the whole roster: whoever is not in it has left."""
    from nbgrader.api import Gradebook

    now = utcnow()
    done = Synced(members=len(members))
    seen: set[str] = set()
    names: dict[str, str] = {}  # user name -> the LMS user it was given to
    # one connection (nbgrader's session) for the students and our table: SQLite lets
    # one writer in at a time, and nbgrader commits each student as it goes
    with Gradebook(course.db_url, course.course_id) as gb:
        ensure_tables(gb.engine)
        conn = gb.db
        rows = {r.user_id: r for r in conn.execute(select(ROSTER)).all()}
        people = {p.id: p for p in gb.students}
        for context, member in members:
            uid = member.get("user_id") if isinstance(member, dict) else None
            if not isinstance(uid, str) or not uid or uid in seen:
                continue
            seen.add(uid)
            old = rows.get(uid)
            values = {"context_id": context,
                      "lms_status": _text(member.get("status") or LMS_ACTIVE, 16),
                      "name": _text(member.get("name")), "email": _text(member.get("email")),
                      "last_seen": now}
            role = lti_role(member.get("roles") or [])
            student, problem = user_name(uid)
            if student is not None and names.setdefault(student, uid) != uid:
                student, problem = None, (f"the same user name as LMS user "
                                          f"{names[student][:200]!r}")
            if role == STAFF:
                values.update(state=STAFF_STATE, student_id=student, note="", left_at=None)
            elif role is None or problem is not None:
                problem = problem if role is not None else NO_ROLE
                values.update(state=SKIPPED, student_id=None, note=problem)
                if old is None or old.state != SKIPPED or old.note != problem:
                    event("roster", f"skipped LMS user {uid[:200]!r}: {problem}")
                    done.skipped.append(uid)
            elif values["lms_status"] != LMS_ACTIVE:
                values.update(state=LEFT, student_id=student, note="",
                              left_at=(old.left_at if old is not None and old.left_at else now))
                if old is not None and old.state == ACTIVE:
                    event("roster", f"{student} left the course in the LMS "
                                    f"({values['lms_status']}): marked, grades kept")
                    done.left.append(student)
            else:
                names = {k: _text(member.get(m), 128) for k, m in (
                    ("first_name", "given_name"), ("last_name", "family_name"),
                    ("email", "email")) if isinstance(member.get(m), str)}
                names["lms_user_id"] = uid
                person = people.get(student)
                if person is None or any(getattr(person, k) != v for k, v in names.items()):
                    gb.update_or_create_student(student, **names)  # new, or changed
                values.update(state=ACTIVE, student_id=student, note="", left_at=None)
                if old is None or old.state != ACTIVE:
                    event("roster", f"{student} enrolled"
                                    + (" again" if old is not None else "") + " (from the LMS)")
                    done.added.append(student)
            if old is None:
                conn.execute(insert(ROSTER).values(user_id=uid, first_seen=now, **values))
            else:
                conn.execute(update(ROSTER).where(ROSTER.c.user_id == uid).values(**values))
        for uid, old in rows.items():
            if uid in seen or old.state != ACTIVE:
                continue
            conn.execute(update(ROSTER).where(ROSTER.c.user_id == uid)
                         .values(state=LEFT, left_at=now))
            event("roster", f"{old.student_id} is no longer in the LMS course: marked as "
                            "left, grades kept")
            done.left.append(old.student_id)
        conn.commit()
    return done


def lms_users(engine) -> dict[str, tuple[str, str]]:
    """student id -> (LMS context, LMS user id) of every student the roster knows
    (enrolled or left)."""
    ensure_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(ROSTER.c.student_id, ROSTER.c.context_id, ROSTER.c.user_id)
                            .where(ROSTER.c.state.in_((ACTIVE, LEFT)),
                                   ROSTER.c.student_id.is_not(None))).all()
    return {student: (context, uid) for student, context, uid in rows}


def roster_rows(engine) -> list:
    ensure_tables(engine)
    with engine.connect() as conn:
        return list(conn.execute(select(ROSTER).order_by(ROSTER.c.state, ROSTER.c.user_id)))
