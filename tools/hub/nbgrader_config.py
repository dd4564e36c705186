"""The nbgrader configuration every single-user server of `make hub` reads.

Copied by tools/hub/hub.py into the hub's JUPYTER_CONFIG_PATH folder; the hub
sets the variables read here in every server's environment:

- ``RNN_COURSE_ID``: set for a course's own services only (its formgrader, its
  grading service), whose course it names.  A user's server has none: its
  Assignments tab lists every course of the user's hub groups (nbgrader's
  JupyterHub auth plugin reads ``nbgrader-<course>`` and ``formgrade-<course>``)
  and nothing of the others;
- ``RNN_HUB_EXCHANGE``: ``file`` (nbgrader's folder, ``RNN_COURSE_EXCHANGE``)
  or ``http`` (each course's grading service over HTTP, through the hub).
"""
import os

c = get_config()  # noqa: F821
course = os.environ.get("RNN_COURSE_ID")
if course:
    c.CourseDirectory.course_id = course
else:
    c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"
    # courses share assignment names: <course>/<assignment>/ in the user's home
    c.Exchange.path_includes_course = True

if os.environ.get("RNN_HUB_EXCHANGE", "file") == "file":
    c.Exchange.root = os.environ.get("RNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
