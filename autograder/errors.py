"""Errors shared by the grader's commands and pipeline."""


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""
