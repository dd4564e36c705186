"""What the class got wrong: a class view per assignment and a similarity report.

* :mod:`~autograder.classview.verdicts`: each graded cell's verdict message,
  recorded in the gradebook with the grades;
* :mod:`~autograder.classview.data`: an assignment's class, read from the
  gradebook (scores, verdicts grouped into named bugs, flags, times);
* :mod:`~autograder.classview.render`: that class as one static HTML page
  (pictures drawn on the server, no script) and a CSV;
* :mod:`~autograder.classview.similarity`: the most similar pairs of students'
  code, starter code subtracted (``copydetect``); it never changes a grade.

``python -m autograder report ASSIGNMENT`` writes them; the grading service
serves the class view next to its status page (``class/<assignment>``).
"""
