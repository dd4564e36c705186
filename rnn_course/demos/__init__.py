"""Plots and widgets used by the notebooks: one module per assignment.

They contain no solutions: every function that needs a student's function
(a forward pass, a gradient measurement) takes it as an argument.
"""
