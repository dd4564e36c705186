"""JupyterHub configuration of `make hub` with LTI 1.3 login (``hub.py up --login lti``).

jupyterhub_config.py runs this file at its end, in its own namespace (the same
``c``), when settings.json has an ``lti`` entry (written by tools/hub/lti.py);
it replaces password login by the LMS's launch and serves the hub over HTTPS
(docs/lms.md, "Launch").
"""
import json
import os
import sys

c = get_config()  # noqa: F821

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.json")) as f:
    s = json.load(f)
lti = s["lti"]
platform = lti["platform"]

sys.path.insert(0, lti["lib"])  # a root-owned copy of autograder/: this process only

# --- HTTPS: the launch runs in the LMS's iframe, where only Secure cookies go --------
c.JupyterHub.bind_url = f"https://127.0.0.1:{s['ports']['hub']}"
c.JupyterHub.ssl_cert = lti["cert"]
c.JupyterHub.ssl_key = lti["key"]
# every cookie of the hub (and, through JUPYTERHUB_COOKIE_OPTIONS, of the users'
# servers' hub login) crosses sites: SameSite=None; Secure; Partitioned (CROSS_SITE_COOKIE).
# The LMS may frame the hub.
frame = "frame-ancestors 'self' " + " ".join(lti["frame_ancestors"])
from autograder.lti.launch import CROSS_SITE_COOKIE  # noqa: E402

c.JupyterHub.tornado_settings = {
    "cookie_options": dict(CROSS_SITE_COOKIE),
    "headers": {"Content-Security-Policy": frame},
}
# users' servers read lti["server_config"] first: the same for their own cookies and pages
c.Spawner.environment["JUPYTER_CONFIG_PATH"] = (
    f"{lti['server_config']}:{s['users_env']['JUPYTER_CONFIG_PATH']}")

# --- who logs in: an LTI 1.3 launch into a course of this hub --------------------------
from autograder.lti.launch import CourseLTIAuthenticator  # noqa: E402

c.JupyterHub.authenticator_class = CourseLTIAuthenticator
from autograder.lti.launch import settings_of  # noqa: E402

for name, value in settings_of(platform).items():  # the LMS's registration (c.LtiPlatform)
    setattr(c.CourseLTIAuthenticator, name, value)
c.CourseLTIAuthenticator.reserved_names = {course["grader"] for course in s["courses"]}
c.CourseLTIAuthenticator.tool_jwks = lti["tool_jwks"]  # served at /hub/lti/jwks.json
c.CourseLTIAuthenticator.uri_scheme = "https"
# admission and groups come from each launch (manage_groups): no list of users here
c.Authenticator.allowed_users = set()
c.JupyterHub.load_groups = {}
