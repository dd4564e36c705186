"""A grading run, in two wings on either side of a process boundary: the coordinator
(:mod:`.coordinator`: reads the folders, hands out jobs, the gradebook's only writer)
and the worker (:mod:`.worker`: grades one job, without the course; it never imports
the coordinator's wing).  What crosses the boundary and what both read sits here:
:mod:`.types` (the job and the result), :mod:`.flags` and :mod:`.scoring`.
"""
