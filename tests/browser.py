"""Headless Debian chromium for the tests: a page's DOM after its scripts, a probe, a screenshot.

The one home of the browser helpers (the sanitizer's, the feedback's and the
formgrader's browser tests use them).  Every load cuts the network: requests
go to a proxy on a closed local port and every host name but the loopback
fails to resolve, so a page that needs the internet (a CDN's MathJax, a
widget manager) shows it, and nothing can leave the machine.  Loopback
addresses (a local ``jupyter server``) stay reachable.

* :func:`browse`: the DOM after load and a few seconds of the page's scripts;
* :func:`probe`: runs a test's own JavaScript in a copy of a page (never in
  the page that was graded) and returns what it found, as JSON;
* :func:`screenshot`: a PNG of the page at a given window size;
* :func:`jupyter`: a Jupyter application of this venv (``jupyter server``,
  ``jupyter lab``) on a free loopback port with a token, for the browser;
* :func:`keep_for_docs`: the screenshots the documentation shows
  (``docs/img/``) are rewritten from the tests that take them when
  ``UPDATE_DOCS_IMG=1``.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

OFFLINE = (
    "--proxy-server=http://127.0.0.1:9",  # the discard port, closed: every request fails
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
"""Flags that cut chromium off the network (loopback excepted)."""
PROBE_ID = "test-probe-result"
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
UPDATE_DOCS_IMG = "UPDATE_DOCS_IMG"
"""Set to 1 to rewrite the screenshots in :data:`DOCS_IMG` from the tests."""
# JupyterLab's "get notified about official Jupyter news?" toast, answered no
_LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                 {"fetchNews": "false"}}


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed (tools/install-system-deps.sh installs it as root)",
                pytrace=False)


def _target(page: Path | str) -> str:
    return page.resolve().as_uri() if isinstance(page, Path) else page


def _run(page: Path | str, tmp: Path, *extra: str, budget_ms: int = 5000) -> str:
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         *OFFLINE, f"--user-data-dir={tmp / 'chromium-profile'}",
         f"--virtual-time-budget={budget_ms}", *extra, _target(page)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def browse(page: Path | str, tmp: Path, *extra: str, budget_ms: int = 5000) -> str:
    """The DOM of ``page`` (a file or a URL) after load and ``budget_ms`` of its scripts."""
    return _run(page, tmp, "--dump-dom", *extra, budget_ms=budget_ms)


def probe(page: Path, script: str, tmp: Path, *extra: str) -> dict:
    """What ``script`` finds in a copy of ``page``: it ends by returning a JSON-able value.

    ``script`` is the body of a function run after the page has loaded (its
    ``return`` value comes back); the copy is ``page`` with one more script
    at its end, loaded from the same folder.  ``extra``: chromium's own flags
    (``--window-size=1000,800``).
    """
    body = page.read_text(encoding="utf-8")
    runner = (f'<script>window.addEventListener("load", () => {{'
              f'const out = (() => {{ {script} }})();'
              f'const pre = document.createElement("pre"); pre.id = "{PROBE_ID}";'
              f'pre.textContent = JSON.stringify(out); document.body.appendChild(pre);'
              f'}});</script>')
    copy = page.with_name(f"probe-{page.name}")
    copy.write_text(body.replace("</body>", runner + "</body>", 1)
                    if "</body>" in body else body + runner, encoding="utf-8")
    dom = browse(copy, tmp, *extra)
    found = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run: {dom[-500:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path | str, png: Path, tmp: Path, width: int = 1200,
               height: int = 900, budget_ms: int = 3000) -> Path:
    """A PNG of ``page`` as a ``width`` x ``height`` window shows it (top of the page)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(page, tmp, f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
         "--hide-scrollbars", budget_ms=budget_ms)
    assert png.is_file() and png.read_bytes().startswith(b"\x89PNG"), png
    return png


def keep_for_docs(png: Path, name: str) -> Path:
    """``docs/img/<name>``: rewritten from ``png`` when ``UPDATE_DOCS_IMG=1``, else checked."""
    dest = DOCS_IMG / name
    if os.environ.get(UPDATE_DOCS_IMG) == "1":
        from PIL import Image  # (matplotlib's dependency) a palette PNG, a third of the bytes

        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("RGB").quantize(colors=128).save(dest, optimize=True)
    assert dest.is_file(), f"no {dest}: run this test with {UPDATE_DOCS_IMG}=1"
    return dest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyter(app: str, root: Path, tmp: Path, *, extensions: dict | None = None,
            ready: str = "/api/status"):
    """``jupyter <app>`` of this venv (``server``, ``lab``) serving ``root``, from ``root``.

    Yields ``url(path)``, the server's address and token around ``path``, once
    ``ready`` answers 200.  Its configuration is its own (``extensions`` to
    enable, in a fresh ``JUPYTER_CONFIG_DIR``); the server is stopped on exit.
    """
    from autograder.commands.release import nbgrader_env

    port, token = _free_port(), secrets.token_hex(16)
    config = tmp / f"jupyter-{app}-config"
    config.mkdir()
    if extensions:
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": extensions}}))
    settings = tmp / f"jupyter-{app}-lab-settings"
    for name, value in _LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    env = nbgrader_env() | {"JUPYTER_CONFIG_DIR": str(config),
                            "JUPYTER_RUNTIME_DIR": str(tmp / f"jupyter-{app}-runtime"),
                            "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    log_path = tmp / f"jupyter-{app}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), app, "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def url(path: str) -> str:
        return f"http://127.0.0.1:{port}{path}?token={token}"

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url(ready), timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                f"jupyter {app} did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
