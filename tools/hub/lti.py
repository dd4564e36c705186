"""`make hub` with LTI 1.3 login from an LMS (``hub.py up --login lti``).

Password login stays the default.  With ``--login lti`` the hub logs people in
by an LTI 1.3 launch from the LMS the course is registered with
(``c.LtiPlatform`` in the course's nbgrader_config.py: issuer, client id,
deployment id, endpoints, LMS course -> course), with
:class:`autograder.lti.launch.CourseLTIAuthenticator`; with
``--with-test-lms`` the project's test LMS (tools/lms/testlms.py) runs beside
the hub, with a course whose members are the hub's accounts, and its values
are written into the course copy's nbgrader_config.py (the grading service
reads them there too).

What LTI changes on the hub (jupyterhub_lti_config.py reads what
:func:`write_config` writes):

- HTTPS: the launch happens inside the LMS's iframe, a cross-site context
  where only ``SameSite=None; Secure`` cookies are sent; a self-signed
  certificate for 127.0.0.1 is made at set-up (:func:`ensure_certificate`,
  private key mode 0600 in the hub's root-only folder);
- every cookie of the hub and of the users' servers ``SameSite=None; Secure;
  Partitioned`` (CHIPS: browsers that block third-party cookies keep these, per
  LMS), and their pages may be framed by the LMS's origin (``frame-ancestors``);
  the services (formgrader, grading service) are not framed: an instructor
  opens them in a tab of their own;
- the hub process (only it) imports ``autograder.lti.launch`` and
  ``autograder.roles`` from a root-owned copy of ``autograder/`` in the hub's
  folder; students' servers never have it on their path.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from autograder.lti.keys import JWKS_PATH
from autograder.lti.launch import CROSS_SITE_COOKIE, allow_partitioned_cookies

HERE = Path(__file__).resolve().parent
LOGINS = ("password", "lti")
# the certificate of the hub's HTTPS (self-signed, for 127.0.0.1)
CERT_DAYS = 365
# the ltiauthenticator's URLs under the hub (its login_url, callback_url, config_json_url)
LOGIN_PATH = "/hub/lti13/oauth_login"
CALLBACK_PATH = "/hub/lti13/oauth_callback"
CONFIG_PATH = "/hub/lti13/config"
# the LMS course of `make hub --with-test-lms`
TEST_CONTEXT = "rnn-101"


class LtiError(Exception):
    """LTI set-up failed: one line saying why."""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def platform_of(course_dir: Path) -> dict:
    """``c.LtiPlatform`` of the course's nbgrader_config.py, checked (an LtiError if unusable)."""
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.errors import UsageError
    from autograder.lti.config import LtiPlatform

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    platform = LtiPlatform(config=config)
    if not platform.enabled:
        raise LtiError(f"--login lti: {course_dir}/nbgrader_config.py sets no "
                       "c.LtiPlatform.issuer (docs/lms.md: what the LMS gives the tool); or "
                       "try it with the project's test LMS: --with-test-lms")
    try:
        platform.check()
    except UsageError as exc:
        raise LtiError(f"--login lti: {exc}") from None
    return {name: getattr(platform, name) for name in
            ("issuer", "client_id", "deployment_id", "authorize_url", "jwks_url", "contexts")}


# where the LMS's course pages are, when not at its authorization URL's origin (Canvas
# Cloud authorizes at sso.canvaslms.com): origins the hub's pages may be framed by
LMS_ORIGINS_ENV = "RNN_HUB_LMS_ORIGINS"


def frame_ancestors(platform: dict) -> list[str]:
    """The origins that may frame the hub: the LMS's authorization URL's, and $RNN_HUB_LMS_ORIGINS
    (space-separated, each checked to be an origin)."""
    origins = [origin(platform["authorize_url"])]
    for extra in os.environ.get(LMS_ORIGINS_ENV, "").split():
        if origin(extra) != extra or urlsplit(extra).scheme not in ("http", "https"):
            raise LtiError(f"${LMS_ORIGINS_ENV}: {extra[:80]!r} is not an origin "
                           "(https://lms.example.edu, no path)")
        origins.append(extra)
    return origins


def registration(hub_url: str) -> dict:
    """What an LMS administrator registers for this hub (docs/lms.md, the banner)."""
    from autograder.lti import spec

    return {
        "login initiation URL (OIDC)": hub_url + LOGIN_PATH,
        "redirect URI": hub_url + CALLBACK_PATH,
        "target link URI": hub_url + "/hub/",
        "tool JWKS URL": f"{hub_url}/hub/{JWKS_PATH}",
        "tool configuration (JSON)": hub_url + CONFIG_PATH,
        "scopes": " ".join(spec.TOOL_SCOPES),
    }


# --------------------------------------------------------------------------- #
# the hub's HTTPS
# --------------------------------------------------------------------------- #
def ensure_certificate(hub_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (mode 0600), made once."""
    folder = hub_dir / "ssl"
    cert, key = folder / "hub.crt", folder / "hub.key"
    hub_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(hub_dir, 0o700)  # as hub.write_config: the hub's secrets
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    if cert.is_file() and key.is_file() and _valid_for_a_day(cert):
        os.chmod(key, 0o600)
        return cert, key
    old = os.umask(0o077)  # the key is never readable by anyone else, not even for a moment
    try:
        proc = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-days", str(CERT_DAYS), "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True)
    except FileNotFoundError:
        raise LtiError("openssl is missing: the hub's HTTPS certificate is made with it "
                       "(apt-get install openssl)") from None
    finally:
        os.umask(old)
    if proc.returncode != 0:
        raise LtiError("openssl could not make the hub's certificate: "
                       + " | ".join(proc.stderr.strip().splitlines()[-3:]))
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


def _valid_for_a_day(cert: Path) -> bool:
    return subprocess.run(["openssl", "x509", "-checkend", "86400", "-noout", "-in", str(cert)],
                          capture_output=True).returncode == 0


def ssl_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts the hub's own certificate (set-up's health checks)."""
    return ssl.create_default_context(cafile=str(cert))


# --------------------------------------------------------------------------- #
# the hub's configuration
# --------------------------------------------------------------------------- #
def write_config(st, platform: dict, frame_ancestors: list[str], tool_jwk: dict) -> dict:
    """The hub's LTI files; returns settings.json's ``lti`` entry."""
    cert, key = ensure_certificate(st.hub_dir)
    # the hub process imports autograder.lti.launch and autograder.roles from a copy
    # only root reads (the hub's folder is 0700): never from a folder another account
    # may write (the course copy is the grader's), never on a student's path
    lib = st.hub_dir / "lib"
    if lib.exists():
        shutil.rmtree(lib)
    shutil.copytree(st.repo / "autograder", lib / "autograder",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # users' servers: their cookies SameSite=None; Secure, their pages framed by the LMS
    server_config = st.state / "etc" / "jupyter-lti"
    server_config.mkdir(parents=True, exist_ok=True)
    os.chmod(server_config, 0o755)
    csp = "frame-ancestors 'self' " + " ".join(frame_ancestors)
    settings = {"headers": {"Content-Security-Policy": csp},
                "xsrf_cookie_kwargs": dict(CROSS_SITE_COOKIE)}
    config = server_config / "jupyter_server_config.py"
    config.write_text(
        '"""Users\' servers of a hub launched from an LMS (written by tools/hub/lti.py)."""\n\n'
        f"{inspect.getsource(allow_partitioned_cookies)}\n\nallow_partitioned_cookies()\n"
        f"c = get_config()  # noqa: F821\nc.ServerApp.tornado_settings = {settings!r}\n")
    os.chmod(config, 0o644)
    shutil.copy(HERE / "jupyterhub_lti_config.py", st.hub_dir / "jupyterhub_lti_config.py")
    return {"platform": platform, "tool_jwks": {"keys": [tool_jwk]},
            "cert": str(cert), "key": str(key), "lib": str(lib),
            "frame_ancestors": frame_ancestors, "server_config": str(server_config)}


def configure_course(course_dir: Path, platform: dict) -> None:
    """Write ``platform``'s values into the course copy's nbgrader_config.py (``c.LtiPlatform``):
    the grading service reads the same registration as the hub."""
    lines = ["", "# the LMS of `make hub --with-test-lms` (tools/hub/lti.py)"]
    lines += [f"c.LtiPlatform.{k} = {v!r}" for k, v in platform.items()]
    with open(course_dir / "nbgrader_config.py", "a") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- #
# the test LMS beside the hub
# --------------------------------------------------------------------------- #
def start_test_lms(st, hub_url: str, context: str = TEST_CONTEXT):
    """The project's test LMS on a free port, its course's members the hub's accounts."""
    import sys

    sys.path.insert(0, str(st.repo / "tools" / "lms"))
    from testlms import TestLMS, ToolRegistration

    from autograder import roles

    reg = registration(hub_url)
    lms = TestLMS(ToolRegistration(
        login_url=reg["login initiation URL (OIDC)"], redirect_uris=[reg["redirect URI"]],
        target_link_uri=reg["target link URI"], jwks_url=reg["tool JWKS URL"]))
    lms.add_course(context, "RNN 101", "Recurrent neural networks")
    for user in st.courses[0].staff:  # the LMS course is the hub's first course
        lms.add_user(user, user, f"{user}@lms.example.org")
        lms.enroll(context, user, roles.LTI_INSTRUCTOR)
    for user in st.courses[0].students:
        lms.add_user(user, user, f"{user}@lms.example.org")
        lms.enroll(context, user, roles.LTI_LEARNER)
    lms.start()
    config = lms.platform_config()
    platform = {k: config[k] for k in ("issuer", "client_id", "deployment_id", "authorize_url",
                                       "token_url", "jwks_url", "services")}
    platform["contexts"] = {context: st.courses[0].id}
    return lms, platform


# --------------------------------------------------------------------------- #
# hub.py's steps
# --------------------------------------------------------------------------- #
def prepare(st, platform: dict | None, as_grader) -> dict:
    """After the course copy: the LMS's registration (``platform``: the test LMS's, written
    into the course copy; else the course's c.LtiPlatform), the tool's key pair (made once
    by the grader: ``python -m autograder lti keys``) and the hub's LTI files.

    ``as_grader(argv, what)`` runs a command as the grader in the course copy (hub.run).
    Returns the tool's public JWK (what an LMS reads from the tool's JWKS URL).
    """
    if platform is not None:
        configure_course(st.course_dir(st.courses[0]), platform)
    else:
        platform = platform_of(st.course_dir(st.courses[0]))
    out = as_grader(["python", "-m", "autograder", "lti", "keys"], "the tool's LTI key")
    try:
        tool_jwk = json.loads(out.split("\n", 1)[1])["keys"][0]
    except (IndexError, KeyError, ValueError):
        raise LtiError(f"python -m autograder lti keys printed no JWKS: {out[:200]!r}") from None
    hub_platform = {k: platform[k] for k in ("issuer", "client_id", "deployment_id",
                                             "authorize_url", "jwks_url", "contexts")}
    st.lti = write_config(st, hub_platform, frame_ancestors(platform), tool_jwk)
    return tool_jwk


def banner(st, lms=None) -> str:
    reg = registration(st.url)
    width = max(map(len, reg))
    rows = "\n".join(f"    {k + ':':<{width + 1}} {v}" for k, v in reg.items())
    text = f"""
  LTI 1.3 login (the hub is HTTPS with a self-signed certificate: {st.lti['cert']}).
  What an LMS administrator registers for this hub (docs/lms.md, "Launch"):
{rows}
"""
    if lms is not None:
        text += f"""
  The test LMS (tools/lms/testlms.py) runs beside the hub: {lms.url}/
    its page lists a launch link per account ("in the course page": inside an iframe, as
    Canvas and Moodle open tools); its gradebook: {lms.url}/gradebook
    (open {st.url}/hub/ once and accept the certificate first, or the iframe stays blank)
"""
    return text
