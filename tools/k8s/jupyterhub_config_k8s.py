"""JupyterHub on Kubernetes (KubeSpawner): students' pods with no shared folder, grading on dask.

Loaded by the hub (e.g. Zero to JupyterHub's ``hub.extraConfig``, after the chart's own
configuration), and by tests/test_k8s_config.py with KubeSpawner's own classes.  What it
sets, explained in docs/scaling.md:

- each student's server is a pod of the course's image, with CPU and memory limits, its
  own home volume (a claim per user) and **no exchange volume**: the exchange is the
  grading service's HTTP exchange (docs/exchange.md), reached through the hub's proxy with
  the server's own hub token (``RNN_EXCHANGE_URL``, ``RNN_EXCHANGE_COURSES``);
- the course's grading service (``python -m autograder serve``) runs in the hub's pod as a
  hub service, with the course folder there, and grades on the dask cluster of
  tools/k8s/dask-graders.yaml (``--scheduler``): the worker pods get each submission as
  bytes and send back results as bytes, with no volume shared with anyone.

Settings (environment of the hub's pod, defaults in brackets): ``RNN_COURSE_ID``
[rnn-course], ``RNN_STUDENT_IMAGE``, ``RNN_DASK_SCHEDULER`` [tcp://dask-scheduler:8786],
``RNN_COURSE_DIR`` [/srv/rnn-course/course], ``RNN_GRADER_PORT`` [10101], ``RNN_GRADER_HOST``
[this pod's address], ``RNN_HUB_PROXY`` [http://proxy-public].
"""
import os
import socket
import sys

from autograder.roles import exchange_url, grading_service, student_group

c = get_config()  # noqa: F821

course = os.environ.get("RNN_COURSE_ID", "rnn-course")
service = grading_service(course)
proxy = os.environ.get("RNN_HUB_PROXY", "http://proxy-public")
scheduler = os.environ.get("RNN_DASK_SCHEDULER", "tcp://dask-scheduler:8786")

# --- students' servers: one pod each -------------------------------------------------
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
# jupyterlab, nbgrader, rnn_course and rnn_exchange (never autograder/: it holds the
# solutions), and /etc/jupyter/nbgrader_config.py naming rnn_exchange's classes
c.KubeSpawner.image = os.environ.get("RNN_STUDENT_IMAGE",
                                     "registry.example.org/rnn-course/student:2026.12")
c.KubeSpawner.image_pull_policy = "IfNotPresent"
c.KubeSpawner.default_url = "/lab"
c.KubeSpawner.cpu_guarantee = 0.1
c.KubeSpawner.cpu_limit = 1.0
c.KubeSpawner.mem_guarantee = "512M"
c.KubeSpawner.mem_limit = "2G"  # a kernel training an LSTM on the course's data fits in 1 G
c.KubeSpawner.uid = 1000
c.KubeSpawner.gid = 100
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.automount_service_account_token = False
# the student's own home: a claim per user, never shared
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "1Gi"
c.KubeSpawner.pvc_name_template = "claim-{user_server}"
c.KubeSpawner.volumes = [{"name": "home",
                          "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
# the HTTP exchange (docs/exchange.md: c.HttpExchange.service_url and .courses); KubeSpawner
# expands {...} in these values: {{course_id}} reaches the server as {course_id}, which the
# exchange plugin fills in
c.KubeSpawner.environment = {
    "RNN_EXCHANGE_URL": exchange_url(proxy, placeholder="{{course_id}}"),
    "RNN_EXCHANGE_COURSES": course,
}

# --- the course's groups (autograder/roles.py) -----------------------------------------
c.JupyterHub.load_groups = {student_group(course): {"users": []}}

# --- the grading service: coordinates in this pod, grades on the dask cluster ---------
course_dir = os.environ.get("RNN_COURSE_DIR", "/srv/rnn-course/course")
host = os.environ.get("RNN_GRADER_HOST") or socket.gethostbyname(socket.gethostname())
port = int(os.environ.get("RNN_GRADER_PORT", "10101"))
c.JupyterHub.services = [{
    "name": service,
    "url": f"http://{host}:{port}",  # the proxy's pod reaches this pod's address
    "command": [sys.executable, "-m", "autograder", "serve", "--course-dir", course_dir,
                "--scheduler", scheduler, "--release-on-open"],
    "cwd": course_dir,
    "oauth_no_confirm": True,
    "environment": {"RNN_COURSE_ID": course, "RNN_COURSE_EXCHANGE_MODE": "http",
                    "RNN_COURSE_EXCHANGE": os.path.join(course_dir, ".exchange")},
}]
c.JupyterHub.load_roles = [
    {"name": service, "services": [service], "scopes": ["read:users:groups"]},
]
