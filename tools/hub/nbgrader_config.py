"""The nbgrader configuration every single-user server of `make hub` reads.

Copied by tools/hub/hub.py into the hub's JUPYTER_CONFIG_PATH folder; the hub
sets the variables read here in every server's environment:

- ``RNN_COURSE_ID``: set for a course's own services only (its formgrader, its
  grading service), whose course it names (their course folder's
  nbgrader_config.py, read after this file, configures their exchange).  A
  user's server has none: its Assignments tab lists every course of the
  user's (nbgrader's JupyterHub auth plugin reads the hub groups
  ``nbgrader-<course>`` and ``formgrade-<course>``) and nothing of the others;
- ``RNN_COURSE_EXCHANGE_MODE``: ``http`` for the exchange over HTTP (each
  course's grading service, through the hub: ``rnn_exchange.plugin``, which
  reads ``RNN_EXCHANGE_URL`` and ``RNN_EXCHANGE_COURSES``); else nbgrader's
  folder, ``RNN_COURSE_EXCHANGE``.
"""
import os

c = get_config()  # noqa: F821
course = os.environ.get("RNN_COURSE_ID")
http = os.environ.get("RNN_COURSE_EXCHANGE_MODE") == "http"
if course:
    c.CourseDirectory.course_id = course
else:
    c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"
    # courses share assignment names: <course>/<assignment>/ in the user's home
    c.Exchange.path_includes_course = True
    if http:
        from rnn_exchange.plugin import factory_config

        for trait, cls in factory_config().items():
            setattr(c.ExchangeFactory, trait, cls)
        c.HttpExchange.path_includes_course = True
if not http:
    c.Exchange.root = os.environ.get("RNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
