"""The grading pipeline, in two wings on either side of a process boundary.

- :mod:`autograder.pipeline.coordinator`: the process that runs ``grade`` (or a
  service round): it reads the submission folders, builds the jobs, hands them
  to workers, and is the only writer of the gradebook and the course's files.
- :mod:`autograder.pipeline.worker`: what grades one job, in a worker process
  (local or on a dask cluster), with no access to the course's folders or
  gradebook.

What crosses the boundary, and what both wings read, sits here: the job and
result types (:mod:`autograder.pipeline.types`), the flags' one vocabulary
(:mod:`autograder.pipeline.flags`) and scoring (:mod:`autograder.pipeline.scoring`:
the assignment's structure the coordinator reads from the gradebook, the one
function that turns verdicts into points, and the scores the coordinator records).
The worker wing imports nothing of the coordinator wing.
"""
