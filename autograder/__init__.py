"""Grader-side package of rnn-course: reference solutions, hidden-test verification,
the sandbox and the grading pipeline.  Never installed for students."""

from autograder._imports import defer_iri_grammar

defer_iri_grammar()
