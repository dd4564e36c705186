"""Errors shared by the grader's commands and pipeline."""


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


class SchedulerUnavailable(UsageError):
    """The dask scheduler cannot be reached, or went away mid-run.

    What finished before is recorded; the jobs in flight are not (no grade, no error):
    ``grade`` run again grades them, the grading service keeps them in its queue.
    """
