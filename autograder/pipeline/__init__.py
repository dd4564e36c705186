"""The grading pipeline, stage by stage.

precheck -> jobs -> (runner) worker [sanitize, sandboxed execution, verify,
feedback] -> record (gradebook first, then files) -> export.  The coordinator
(:mod:`autograder.pipeline.coordinator`) drives one run.
"""
