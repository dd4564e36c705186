"""The worker's wing: grading one job (:mod:`.submission`), with no access to the course.

precheck -> (sanitize, sandboxed execution: preprocessors/) -> verify -> scoring ->
feedback (templates/); warm (a kernel started ahead), budget (the grader's own limits),
folders (a job's folders).
"""
