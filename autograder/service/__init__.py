"""The grading service: ``python -m autograder serve`` (:mod:`autograder.commands.serve`).

Run in the course directory as the grader account (on a hub: a managed
service, docs/jupyterhub.md "The grading service"), it

1. notices new submissions in the exchange's inbound folder of the course and
   writes each into a durable journal in the gradebook's own database
   (:mod:`autograder.service.journal`), keyed by student, assignment and the
   submission's timestamp;
2. collects them (nbgrader's collect, with
   :class:`~autograder.service.exchange.SafeExchangeCollect`), grades them
   with the sandboxed pipeline
   (:func:`~autograder.pipeline.coordinator.assignment.grade_assignment`,
   local workers or a dask cluster) and hands the feedback back through the
   exchange by the assignment's policy (``c.RnnCourse.feedback_release``):
   :mod:`autograder.service.rounds`;
3. serves a status page and ``api/status`` (:mod:`autograder.service.status`).

Each grading round runs in a child process (:mod:`autograder.service.app`):
a round that crashes, or is killed, costs nothing but a retry, and the service
goes on.  Every step is idempotent (a rerun of collect copies nothing new; a
submission whose grading is recorded for the same digest is never graded
again), so a restart, even after a SIGKILL, resumes from the journal without
losing or double-grading a submission.
"""
