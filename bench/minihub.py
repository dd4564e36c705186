"""A real JupyterHub for benchmarks: free ports, no Unix accounts, no spawner.

:class:`BenchHub` starts ``jupyterhub`` (this environment's, with the
configurable-http-proxy of ``make hub``: ``tools/hub/hub.py``'s
:func:`ensure_proxy`) in a temporary folder, on ports the kernel picked free,
with JupyterHub's ``NullAuthenticator``: nobody logs in, nobody's server is
spawned.  Users, their course group and their API tokens are made through the
hub's REST API with the token of an admin service of the bench's own
(:data:`ADMIN_SERVICE`); the services given to it are registered as external
hub services (a URL and a token: the bench runs them itself), so that they
authenticate their callers against this hub exactly as on a real one.

It starts a JupyterHub: on a shared machine run what uses it under the
machine's hub lock, like every other hub (``flock /work/brief/hub.lock ...``
here).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import ROOT

sys.path.insert(0, str(ROOT / "tools" / "hub"))
import hub as hubtools  # noqa: E402  (make hub's proxy: one home)

ADMIN_SERVICE = "bench-admin"
# what the bench's admin service may do: make users and groups, issue their tokens, read
# the services' pages (the grading service's status)
ADMIN_SCOPES = ["admin:users", "admin:groups", "tokens", "list:services", "read:services",
                "access:services"]
TOKEN_THREADS = 8


class HubAPIError(RuntimeError):
    """A call to the hub's REST API failed: its method, path, status and answer."""


class BenchHub:
    """A running JupyterHub in its own folder (see the module docstring).

    ``services``: ``{name: {"url": ..., "token": ..., "scopes": [...]}}``, each
    an external service (the hub routes ``/services/<name>/`` to its URL and
    accepts its token; ``scopes``, if any, granted to it by a role of its own).
    """

    def __init__(self, services: dict[str, dict] | None = None, *, base: Path | None = None):
        self.base = Path(base or tempfile.mkdtemp(prefix="bench-hub-"))
        self.services = dict(services or {})
        self.ports = hubtools.free_ports()  # make hub's: the hub's, its proxy's, its API's
        self.admin_token = secrets.token_hex(32)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.base / "jupyterhub.log"

    # ------------------------------------------------------------------ where
    @property
    def url(self) -> str:
        """The public URL (the proxy): ``/hub/...``, ``/services/<name>/...``."""
        return f"http://127.0.0.1:{self.ports['hub']}"

    @property
    def api_url(self) -> str:
        """The hub's own API URL, as services and servers are given it (``JUPYTERHUB_API_URL``)."""
        return f"http://127.0.0.1:{self.ports['hub_api']}/hub/api"

    def service_env(self, name: str) -> dict[str, str]:
        """The variables JupyterHub gives a managed service ``name``, for one the bench runs."""
        svc = self.services[name]
        return {
            "JUPYTERHUB_SERVICE_NAME": name,
            "JUPYTERHUB_API_TOKEN": svc["token"],
            "JUPYTERHUB_API_URL": self.api_url,
            "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_HOST": "",
            "JUPYTERHUB_SERVICE_URL": svc["url"],
            "JUPYTERHUB_SERVICE_PREFIX": f"/services/{name}/",
            "JUPYTERHUB_CLIENT_ID": f"service-{name}",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/services/{name}/oauth_callback",
            "JUPYTERHUB_PUBLIC_URL": self.url + "/",
        }

    # ------------------------------------------------------------- lifecycle
    def config(self) -> str:
        services = [{"name": ADMIN_SERVICE, "api_token": self.admin_token}]
        roles = [{"name": ADMIN_SERVICE, "services": [ADMIN_SERVICE], "scopes": ADMIN_SCOPES}]
        for name, svc in self.services.items():
            services.append({"name": name, "url": svc["url"], "api_token": svc["token"],
                             "oauth_no_confirm": True})
            if svc.get("scopes"):
                roles.append({"name": f"{name}-service", "services": [name],
                              "scopes": list(svc["scopes"])})
        settings = {
            "bind_url": self.url,
            "hub_port": self.ports["hub_api"],
            "proxy_api": f"http://127.0.0.1:{self.ports['proxy_api']}",
            "proxy": str(hubtools.Settings().proxy),
            "base": str(self.base),
            "services": services,
            "roles": roles,
        }
        return (
            "# written by bench/minihub.py\n"
            "import os\n"
            f"s = {settings!r}\n"
            "c = get_config()  # noqa: F821\n"
            "c.JupyterHub.bind_url = s['bind_url']\n"
            "c.JupyterHub.hub_ip = '127.0.0.1'\n"
            "c.JupyterHub.hub_port = s['hub_port']\n"
            "c.ConfigurableHTTPProxy.api_url = s['proxy_api']\n"
            "c.ConfigurableHTTPProxy.command = [s['proxy']]\n"
            "c.ConfigurableHTTPProxy.pid_file = os.path.join(s['base'], 'proxy.pid')\n"
            "c.JupyterHub.db_url = 'sqlite:///' + os.path.join(s['base'], 'jupyterhub.sqlite')\n"
            "c.JupyterHub.cookie_secret_file = os.path.join(s['base'], 'cookie_secret')\n"
            "c.JupyterHub.authenticator_class = 'null'  # API tokens only: nobody logs in\n"
            "c.JupyterHub.services = s['services']\n"
            "c.JupyterHub.load_roles = s['roles']\n"
            "c.JupyterHub.log_level = 'WARN'\n"
        )

    def start(self, timeout: float = 90) -> BenchHub:
        hubtools.ensure_proxy(hubtools.Settings())
        (self.base / "jupyterhub_config.py").write_text(self.config())
        bindir = str(Path(sys.executable).parent)
        env = dict(os.environ, PATH=f"{bindir}:{hubtools.SYSTEM_PATH}")
        for var in list(env):
            if var.startswith("JUPYTERHUB_"):
                env.pop(var)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [os.path.join(bindir, "jupyterhub"), "-f", "jupyterhub_config.py"],
                cwd=self.base, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited ({self.proc.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                self.api("GET", "/")
                return self
            except (OSError, HubAPIError):
                if time.monotonic() > end:
                    self.stop()
                    raise RuntimeError(f"jupyterhub did not answer in {timeout:g} s:\n"
                                       f"{self.log_tail()}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM to the hub (it stops its proxy), then whatever is left of its session."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    log_tail = hubtools.Hub.log_tail  # the last lines of self.log_path (make hub's own)

    def __enter__(self) -> BenchHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # ------------------------------------------------------------------- API
    def api(self, method: str, path: str, body=None, *, token: str | None = None,
            timeout: float = 60):
        """One call of the hub's REST API (through the proxy); its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/hub/api{path}", data=data, method=method,
                                     headers={"Authorization": f"token {token or self.admin_token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read()
        except urllib.error.HTTPError as exc:
            raise HubAPIError(f"{method} /hub/api{path}: {exc.code} "
                              f"{exc.read()[:300].decode(errors='replace')}") from None
        return json.loads(text) if text else None

    def add_users(self, names, groups=()) -> None:
        """Create users ``names`` (one call) and put them in each of ``groups`` (one call each)."""
        names = list(names)
        self.api("POST", "/users", {"usernames": names})
        for group in groups:
            self.api("POST", f"/groups/{group}", {"users": names})

    def issue_tokens(self, names, note: str = "bench") -> dict[str, str]:
        """An API token of each user's own (their permissions, as a server's would have)."""
        def one(name):
            return name, self.api("POST", f"/users/{name}/tokens", {"note": note})["token"]

        with ThreadPoolExecutor(TOKEN_THREADS) as pool:
            return dict(pool.map(one, list(names)))
