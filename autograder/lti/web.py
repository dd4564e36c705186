"""The tool's public JWKS as a tornado route, for the application that serves it.

The LMS reads the tool's public key from this URL (no login: the document is
public) whenever it checks a token request of the tool.
"""

from __future__ import annotations

from jwcrypto import jwk
from tornado import web

from autograder.lti import keys

JWKS_MAX_AGE = 300  # seconds an LMS may cache the document


class JwksHandler(web.RequestHandler):
    def initialize(self, document: str):
        self.document = document

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", f"public, max-age={JWKS_MAX_AGE}")
        self.finish(self.document)


def jwks_route(prefix: str, key: jwk.JWK) -> tuple:
    """``(prefix/`` :data:`keys.JWKS_PATH` ``, JwksHandler, ...)``: one route of an Application."""
    return (prefix.rstrip("/") + "/" + keys.JWKS_PATH, JwksHandler,
            {"document": keys.jwks_json(key)})
