"""Student-facing helpers of rnn-course: data tasks, gradient checking, training,
plots, widgets and visible checks.  It contains no solutions."""
__version__ = "0.1.0"
