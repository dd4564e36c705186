"""The coordinator's wing: one grading run (:mod:`.assignment`), from the submission
folders to the gradebook and the exported CSV.

assignment (``grade_assignment``) -> jobs (one :class:`~autograder.pipeline.types.GradeJob`
per submission) -> runner (an executor; a watchdog for hung or dead workers) ->
record (gradebook first, then files) -> export (``grades.csv``); gradebook (our tables
beside nbgrader's), report (what a run prints).
"""
