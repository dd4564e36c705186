"""Grader-side package of rnn-course: reference solutions, hidden-test verification,
the sandbox and the grading pipeline.  Never installed for students."""
