"""The nbgrader configuration every single-user server of `make hub` reads.

Copied by tools/hub/hub.py into the hub's JUPYTER_CONFIG_PATH folder; the hub
sets the variables read here in every server's environment:

- ``RNN_COURSE_ID``: set for a course's own services only (its formgrader, its
  grading service), whose course it names (their course folder's
  nbgrader_config.py, read after this file, configures their exchange).  A
  user's server has none: its Assignments tab lists every course of the
  user's (nbgrader's JupyterHub auth plugin reads the hub groups
  ``nbgrader-<course>`` and ``formgrade-<course>``) and nothing of the others;
- ``RNN_EXCHANGE_URL`` (users' servers, with the HTTP exchange): each course's
  grading service through the hub, for ``rnn_exchange.plugin``; else
  nbgrader's folder, ``RNN_COURSE_EXCHANGE``.
"""
import os

from rnn_exchange.plugin import configure

c = get_config()  # noqa: F821
course = os.environ.get("RNN_COURSE_ID")
if course:
    c.CourseDirectory.course_id = course
else:
    c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"
    # courses share assignment names: <course>/<assignment>/ in the user's home
    c.Exchange.path_includes_course = True
    c.HttpExchange.path_includes_course = True
if not configure(c):  # no HTTP exchange here: nbgrader's folder
    c.Exchange.root = os.environ.get("RNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
