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
* :func:`screenshot`: a PNG of the page at a given window size.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

OFFLINE = (
    "--proxy-server=http://127.0.0.1:9",  # the discard port, closed: every request fails
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
"""Flags that cut chromium off the network (loopback excepted)."""
PROBE_ID = "test-probe-result"


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


def browse(page: Path | str, tmp: Path, *extra: str) -> str:
    """The DOM of ``page`` (a file or a URL) after load and 5 s of its scripts."""
    return _run(page, tmp, "--dump-dom", *extra)


def probe(page: Path, script: str, tmp: Path) -> dict:
    """What ``script`` finds in a copy of ``page``: it ends by returning a JSON-able value.

    ``script`` is the body of a function run after the page has loaded (its
    ``return`` value comes back); the copy is ``page`` with one more script
    at its end, loaded from the same folder.
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
    dom = browse(copy, tmp)
    found = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run: {dom[-500:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path | str, png: Path, tmp: Path, width: int = 1200,
               height: int = 900) -> Path:
    """A PNG of ``page`` as a ``width`` x ``height`` window shows it (top of the page)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(page, tmp, f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
         "--hide-scrollbars", budget_ms=3000)
    assert png.is_file() and png.read_bytes().startswith(b"\x89PNG"), png
    return png
