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
path = f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"
# What every server (students', instructors', the services') needs to find the
# exchange, the course id and the hub's jupyter config folder (nbgrader_config.py).
common_env = {
    "PATH": path,
    "JUPYTER_CONFIG_PATH": s["jupyter_config"],
    "RNN_COURSE_EXCHANGE": s["exchange"],
    "RNN_COURSE_ID": s["course_id"],
}

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
c.Authenticator.allowed_users = set(s["instructors"]) | set(s["students"])

# --- their servers: JupyterLab as their own Unix user ----------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(venv_bin, "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = dict(common_env)
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60

# --- instructors: the formgrader service, through a group -----------------------
group = f"formgrade-{s['course_id']}"  # nbgrader's course list wants this prefix
c.JupyterHub.load_groups = {group: {"users": s["instructors"]}}
instructor_scopes = [
    f"access:services!service={s['course_id']}",
    "list:services",
    f"read:services!service={s['course_id']}",
]
if s.get("grading_service"):  # its status page, for instructors
    instructor_scopes += [
        f"access:services!service={s['grading_service']['name']}",
        f"read:services!service={s['grading_service']['name']}",
    ]
c.JupyterHub.load_roles = [
    {"name": group, "groups": [group], "scopes": instructor_scopes},
    {"name": "server", "scopes": ["inherit"]},  # the course list needs to see services
]

# The course directory is the grader account's: its services run there with the
# course's nbgrader_config.py (which names autograder's collect plugin: PYTHONPATH).
grader_env = dict(common_env, PYTHONPATH=s["course"], HOME=s["grader_home"])
c.JupyterHub.services = [
    {
        # nbgrader's formgrader: a single-user server as the grader account, named
        # like the course (the course list links /services/<course id>/)
        "name": s["course_id"],
        "url": f"http://127.0.0.1:{s['ports']['formgrader']}",
        "command": [os.path.join(venv_bin, "jupyterhub-singleuser")],
        "user": s["grader"],
        "cwd": s["course"],
        "oauth_no_confirm": True,
        "environment": dict(grader_env, JUPYTERHUB_DEFAULT_URL="/lab"),
    },
]
if s.get("grading_service"):
    g = s["grading_service"]
    c.JupyterHub.services.append({
        # python -m autograder serve: collects, grades and releases feedback
        "name": g["name"],
        "url": f"http://127.0.0.1:{s['ports']['grading_service']}",
        "command": [os.path.join(venv_bin, "python"), "-m", "autograder", "serve", *g["args"]],
        "user": s["grader"],
        "cwd": s["course"],
        "oauth_no_confirm": True,
        "environment": dict(grader_env, **g.get("environment", {})),
    })

if s.get("lti"):  # login by an LMS's LTI 1.3 launch, over HTTPS (tools/hub/lti.py)
    with open(os.path.join(s["hub_dir"], "jupyterhub_lti_config.py")) as f:
        exec(compile(f.read(), f.name, "exec"))
