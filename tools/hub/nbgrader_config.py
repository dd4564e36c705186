"""The nbgrader configuration every single-user server of `make hub` reads.

Copied by tools/hub/hub.py into the hub's JUPYTER_CONFIG_PATH folder: the
students' Assignments tab and the instructors' course list find the exchange
and the course here.  The hub sets both variables in every server's
environment (same names and defaults as the course's own nbgrader_config.py).
"""
import os

c = get_config()  # noqa: F821
c.Exchange.root = os.environ.get("RNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = os.environ.get("RNN_COURSE_ID", "rnn-course")
