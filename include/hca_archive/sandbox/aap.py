"""The AAP token endpoint: HTTP basic auth in, a signed JWT with an ``exp`` claim out as text."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid

import jwt

from hca_archive.sandbox.web import Request, Response, Router, json_response, text_response

ISSUER = "https://explore.aai.ebi.ac.uk/sp"
ALGORITHM = "HS256"


class TokenIssuer:
    """Issues and checks the tokens that the DSP stand-in accepts."""

    def __init__(self, username: str, password: str, secret: str, ttl: float) -> None:
        self.username = username
        self._password = password
        self._secret = secret
        self.ttl = ttl

    def issue(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": f"usr-{uuid.uuid5(uuid.NAMESPACE_URL, self.username)}",
            "nickname": self.username,
            "name": "HCA archiver (sandbox)",
            "domains": ["subs.team-hca"],
            "iat": now,
            "exp": now + max(1, round(self.ttl)),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def problem(self, token: str) -> str | None:
        """Why ``token`` is not acceptable, or None when it is."""
        try:
            jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp"]})
        except jwt.ExpiredSignatureError:
            return "JWT expired"
        except jwt.InvalidTokenError as error:
            return f"invalid JWT: {error}"
        return None

    def check_basic(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(username, self.username) and hmac.compare_digest(
            password, self._password
        )


def aap_router(issuer: TokenIssuer) -> Router:
    def token(request: Request) -> Response:
        if not issuer.check_basic(request.headers.get("Authorization")):
            response = json_response(
                401, {"status": 401, "error": "Unauthorized", "message": "Bad credentials"}
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="aap"'
            return response
        return text_response(200, issuer.issue())

    router = Router()
    router.add("GET", "/auth", token)
    return router
