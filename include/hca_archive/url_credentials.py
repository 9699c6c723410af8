"""URLs shown without the ``user:password@`` a connection's host may hold (stdlib only: the plan
model and the DAG's links use it without loading an HTTP client)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# ``scheme://user:password@`` anywhere in a text, up to the last "@" before "/", "?" or "#"
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")


def redact_url(url: str) -> str:
    """Drop any ``user:password@`` part of a URL so it can be shown."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def redact_urls(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it dropped."""
    return _USERINFO.sub(r"\1", text)
