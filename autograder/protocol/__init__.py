"""The check protocol on the grader's side: stored oracle values, secrets.

The checks themselves, visible and hidden, are one type in the student package
(:mod:`rnn_course.checks`) and the kernel-to-grader channel is
:mod:`rnn_course.grading`; :mod:`autograder.pipeline.worker.verify` judges.
"""
