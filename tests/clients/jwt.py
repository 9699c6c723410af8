"""Unsigned JWTs for tests (clients read ``exp`` without verifying)."""

from __future__ import annotations

import base64
import json


def _part(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_jwt(exp: float, subject: str = "usr-1") -> str:
    return f"{_part({'alg': 'RS256'})}.{_part({'sub': subject, 'exp': exp})}.c2lnbmF0dXJl"
