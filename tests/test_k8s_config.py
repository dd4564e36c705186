"""The Kubernetes configuration of docs/scaling.md, loaded by the classes that would run it.

No cluster runs here: ``tools/k8s/jupyterhub_config_k8s.py`` is loaded by traitlets as the
hub loads it, a ``kubespawner.KubeSpawner`` is made with it for two users, and the pod
manifests it would send are checked (image, limits, the HTTP exchange's settings, no shared
volume); the grading service's command line is parsed by ``autograder``'s own parser and
``tools/k8s/dask-graders.yaml``'s commands by dask's own command-line parsers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from traitlets.config.loader import PyFileConfigLoader

from autograder import cli
from autograder.roles import grading_service

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "tools" / "k8s"
COURSE = "rnn-course"
# a kubeconfig that is never used to connect (KubeSpawner reads one when it is made)
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: rnn}}]
current-context: none
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    for var in ("RNN_COURSE_ID", "RNN_STUDENT_IMAGE", "RNN_DASK_SCHEDULER", "RNN_COURSE_DIR",
                "RNN_GRADER_PORT", "RNN_HUB_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RNN_GRADER_HOST", "10.1.2.3")  # the hub pod's address
    return PyFileConfigLoader("jupyterhub_config_k8s.py", str(K8S)).load_config()


def _user(name: str):
    return SimpleNamespace(name=name, id=hash(name) % 1000, url=f"/user/{name}/")


def pod_manifests(config, names) -> dict:
    """user -> (the pod manifest KubeSpawner makes for them, as JSON data, its claim name)."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    async def make():
        out = {}
        for name in names:
            spawner = KubeSpawner(config=config, _mock=True, user=_user(name))
            manifest = await spawner.get_pod_manifest()
            out[name] = (ApiClient().sanitize_for_serialization(manifest), spawner.pvc_name)
            await spawner.api.api_client.close()
        return out

    return asyncio.run(make())


def test_students_pods_have_limits_the_http_exchange_and_no_shared_volume(config):
    pods = pod_manifests(config, ["ana", "bo"])
    claims = set()
    for name, (pod, claim) in pods.items():
        [container] = pod["spec"]["containers"]
        assert container["image"] == config.KubeSpawner.image
        assert container["resources"] == {"limits": {"cpu": 1.0, "memory": 2 * 1024 ** 3},
                                          "requests": {"cpu": 0.1, "memory": 512 * 1024 ** 2}}
        env = {e["name"]: e.get("value") for e in container["env"]}
        # the exchange plugin fills in the course: the URL of the course's grading service
        assert env["RNN_EXCHANGE_URL"].format(course_id=COURSE) == \
            f"http://proxy-public/services/{grading_service(COURSE)}/"
        assert env["RNN_EXCHANGE_COURSES"] == COURSE
        assert env["JUPYTERHUB_USER"] == name
        # one volume: the student's own home claim; no exchange, no host path, no NFS
        assert pod["spec"]["volumes"] == [{"name": "home",
                                           "persistentVolumeClaim": {"claimName": claim}}]
        assert container["volumeMounts"] == [{"mountPath": "/home/jovyan", "name": "home"}]
        assert name in claim
        claims.add(claim)
        assert pod["spec"]["automountServiceAccountToken"] is False
        assert container["securityContext"] == {"runAsUser": 1000, "runAsGroup": 100,
                                                "allowPrivilegeEscalation": False}
    assert len(claims) == 2  # nothing shared between the two students


def _manifests() -> dict:
    return {(d["kind"], d["metadata"]["name"]): d
            for d in yaml.safe_load_all((K8S / "dask-graders.yaml").read_text())}


def test_the_grading_service_grades_on_the_graders_deployment(config):
    [service] = config.JupyterHub.services
    assert service["name"] == grading_service(COURSE)
    assert service["url"] == "http://10.1.2.3:10101"
    assert service["environment"]["RNN_COURSE_EXCHANGE_MODE"] == "http"
    assert {"name": service["name"], "services": [service["name"]],
            "scopes": ["read:users:groups"]} in config.JupyterHub.load_roles
    command = service["command"]
    assert command[1:4] == ["-m", "autograder", "serve"]
    args = cli.build_parser("serve").parse_args(command[3:])  # the service's own parser
    assert args.course_dir == service["cwd"] and args.release_on_open

    from distributed.cli import dask_scheduler, dask_worker

    found = _manifests()
    port = found[("Service", "dask-scheduler")]["spec"]["ports"][0]["port"]
    assert args.scheduler == f"tcp://dask-scheduler:{port}"
    for name, main in (("dask-scheduler", dask_scheduler.main),
                       ("dask-graders", dask_worker.main)):
        spec = found[("Deployment", name)]["spec"]["template"]["spec"]
        [container] = spec["containers"]
        params = main.make_context(" ".join(container["command"][:2]),
                                   list(container["command"][2:])).params  # dask's own parser
        if name == "dask-graders":
            assert params["scheduler"] == args.scheduler and params["nthreads"] == 1
        else:
            assert int(params["port"]) == port
        # no volume shared with anyone: at most the pod's own memory
        assert all(v.get("emptyDir", {}).get("medium") == "Memory"
                   for v in spec.get("volumes", [])), spec
        assert spec["automountServiceAccountToken"] is False
