"""JupyterHub configuration of `make hub` and tests/test_hub.py.

tools/hub/hub.py copies this file into the hub's folder next to the
``settings.json`` it writes (ports, paths, accounts); nothing here is specific
to one machine.  The lines that matter for a real server are explained in
docs/jupyterhub.md.
"""
import json
import os

c = get_config()  # noqa: F821

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.json")) as f:
    s = json.load(f)

venv_bin = os.path.join(s["venv"], "bin")
singleuser = os.path.join(venv_bin, "jupyterhub-singleuser")

# --- network: 127.0.0.1 only -------------------------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{s['ports']['hub']}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["ports"]["hub_api"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s['ports']['proxy_api']}"
c.ConfigurableHTTPProxy.command = [s["proxy"]]
c.ConfigurableHTTPProxy.pid_file = os.path.join(s["hub_dir"], "proxy.pid")

# --- state ---------------------------------------------------------------------
c.JupyterHub.db_url = "sqlite:///" + os.path.join(s["hub_dir"], "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(s["hub_dir"], "jupyterhub_cookie_secret")

# --- who logs in: local Unix accounts, by password (PAM) -------------------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(s["users"])

# --- their servers: JupyterLab as their own Unix user ----------------------------
# Every server finds the hub's nbgrader_config.py (JUPYTER_CONFIG_PATH) and the
# exchange setting in its environment; a user's server is in no course of its own:
# nbgrader lists every course of the user's hub groups.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [singleuser]
c.Spawner.default_url = "/lab"
c.Spawner.environment = dict(s["users_env"])
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60

# --- the courses: groups, roles and services, the same for each -------------------
# nbgrader-<course>: its students (nbgrader's JupyterHub auth plugin reads them);
# formgrade-<course>: its instructors and TAs, who alone reach its two services.
c.JupyterHub.load_groups = {}
c.JupyterHub.load_roles = [
    {"name": "server", "scopes": ["inherit"]},  # the course list and auth plugin read the hub
]
c.JupyterHub.services = []
for course in s["courses"]:
    formgrader, grading = course["formgrader"], course["grading_service"]
    c.JupyterHub.load_groups[course["staff_group"]] = {"users": course["staff"]}
    c.JupyterHub.load_groups[course["student_group"]] = {"users": course["students"]}
    c.JupyterHub.load_roles.append({
        "name": course["staff_group"], "groups": [course["staff_group"]],
        "scopes": ["list:services", *[f"{verb}:services!service={name}"
                                      for name in (formgrader["name"], grading["name"])
                                      for verb in ("access", "read")]],
    })
    if grading["scopes"]:  # the HTTP exchange: it reads its callers' groups
        c.JupyterHub.load_roles.append(
            {"name": grading["name"], "services": [grading["name"]], "scopes": grading["scopes"]})
    # The course folder is its grader account's: both services run there, with the
    # course's nbgrader_config.py (its course id from RNN_COURSE_ID).
    grader = {"user": course["grader"], "cwd": course["dir"], "oauth_no_confirm": True}
    env = dict(course["env"], HOME=course["grader_home"])
    c.JupyterHub.services += [
        # nbgrader's formgrader: a single-user server as the grader account, named
        # like the course (the course list links /services/<course id>/)
        {"name": formgrader["name"], "url": f"http://127.0.0.1:{formgrader['port']}",
         "command": [singleuser], "environment": dict(env, JUPYTERHUB_DEFAULT_URL="/lab"),
         **grader},
        # python -m autograder serve: collects, grades and releases feedback
        {"name": grading["name"], "url": f"http://127.0.0.1:{grading['port']}",
         "command": [os.path.join(venv_bin, "python"), "-m", "autograder", "serve",
                     *grading["args"]],
         "environment": env, **grader},
    ]

if s.get("lti"):  # login by an LMS's LTI 1.3 launch, over HTTPS (tools/hub/lti.py)
    with open(os.path.join(s["hub_dir"], "jupyterhub_lti_config.py")) as f:
        exec(compile(f.read(), f.name, "exec"))
