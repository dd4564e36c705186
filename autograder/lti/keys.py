"""The tool's RSA key pair: made once at set-up, private to the grader, public as a JWKS.

The LMS checks every token request of the tool (:mod:`autograder.lti.client`)
against the public half, which it reads from the tool's JWKS URL (or an
administrator pastes it).  The private key is a PEM file created with
``O_CREAT | O_EXCL`` and mode 0600 from its first byte (never a moment readable
by others, never an existing file or link overwritten), in a folder of mode
0700, both owned by whoever runs the set-up: the course's grader account.
:func:`load` refuses a key file that others can read or that is a link.

The key id (``kid``) is the key's RFC 7638 thumbprint, so a new key has a new id.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from jwcrypto import jwk

from autograder.errors import UsageError
from autograder.lti.spec import SIGNING_ALG

KEY_BITS = 2048
JWKS_PATH = "lti/jwks.json"
"""Where the tool's JWKS is served, under the serving application's base URL."""


def kid(key: jwk.JWK) -> str:
    return key.thumbprint()


def generate(path: str | Path) -> jwk.JWK:
    """A new key pair, its private half written to ``path`` (which must not exist), mode 0600."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = jwk.JWK.generate(kty="RSA", size=KEY_BITS)
    pem = key.export_to_pem(private_key=True, password=None)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists: the tool's key is made once "
                         "(remove it to make a new one, then register the new JWKS)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def load(path: str | Path) -> jwk.JWK:
    """The private key of ``path``, refused (one line) if missing, a link, or readable by others."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a fifo: no wait
    except FileNotFoundError:
        raise UsageError(f"no LTI tool key at {path}: run `python -m autograder lti keys` "
                         "as the grader") from None
    except OSError as exc:  # ELOOP: a symbolic link
        raise UsageError(f"cannot open the LTI tool key {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise UsageError(f"the LTI tool key {path} is not a regular file")
        if mode & 0o077:
            raise UsageError(f"the LTI tool key {path} has mode {stat.S_IMODE(mode):04o}: "
                             "others may read it (chmod 600, then make a new key)")
        pem = f.read()
    try:
        key = jwk.JWK.from_pem(pem)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"the LTI tool key {path} is not a PEM private key: {exc}") from None
    if not key.has_private or key.get("kty") != "RSA":
        raise UsageError(f"the LTI tool key {path} is not an RSA private key")
    return key


def ensure(path: str | Path) -> tuple[jwk.JWK, bool]:
    """``(key, made)``: the key of ``path``, made first if there is none."""
    if os.path.lexists(path):
        return load(path), False
    return generate(path), True


def public_jwk(key: jwk.JWK) -> dict:
    """The public half as a JWK dict, with ``kid``, ``alg`` and ``use``."""
    public = key.export_public(as_dict=True)
    public.update(kid=kid(key), alg=SIGNING_ALG, use="sig")
    return public


def jwks(key: jwk.JWK) -> dict:
    """The tool's JWKS document (``{"keys": [...]}``), to serve at :data:`JWKS_PATH`."""
    return {"keys": [public_jwk(key)]}


def jwks_json(key: jwk.JWK) -> str:
    return json.dumps(jwks(key), indent=1)
