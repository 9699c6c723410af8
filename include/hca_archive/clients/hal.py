"""Reading HAL / Spring Data REST documents: embedded lists, links and pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from hca_archive.http import JsonHttp, ServiceError

# A server that ignores the page parameter would otherwise be walked forever.
MAX_PAGES = 10_000

T = TypeVar("T")


def parsed(parse: Callable[[Any], T], doc: Any, url: str, method: str = "GET") -> T:
    """``parse(doc)``, with a ValueError (an answer of the wrong shape) as a ServiceError."""
    try:
        return parse(doc)
    except ValueError as error:
        raise ServiceError(f"unexpected answer: {error}", method=method, url=url) from None


def embedded_items(doc: Any, key: str) -> list[Any]:
    """The list ``key`` of a HAL page; also accepts a bare list or a Spring ``content`` page."""
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, Mapping):
        return []
    embedded = doc.get("_embedded")
    if isinstance(embedded, Mapping) and isinstance(embedded.get(key), list):
        return embedded[key]
    for fallback in (key, "content"):
        if isinstance(doc.get(fallback), list):
            return doc[fallback]
    return []


def links(doc: Any) -> dict[str, str]:
    """``_links`` flattened to ``{relation: href}`` (the first href when a relation is a list)."""
    raw = doc.get("_links") if isinstance(doc, Mapping) else None
    flat: dict[str, str] = {}
    for relation, link in raw.items() if isinstance(raw, Mapping) else ():
        if isinstance(link, list):
            link = link[0] if link else None
        if isinstance(link, Mapping) and isinstance(link.get("href"), str):
            flat[relation] = link["href"]
    return flat


def optional_text(value: Any) -> str | None:
    """A field that should be a string or absent, as one (services are not trusted to agree)."""
    return None if value is None or value == "" else str(value)


def _has_next(doc: Any, next_page: int, count: int, size: int) -> bool:
    if count == 0:
        return False
    if isinstance(doc, Mapping):
        page = doc.get("page")
        if isinstance(page, Mapping) and isinstance(page.get("totalPages"), int):
            return next_page < page["totalPages"]
        if "_links" in doc:
            return "next" in links(doc)
    return count >= size  # no paging metadata: a full page may have a successor


def iter_pages(
    http: JsonHttp, path: str, key: str, *, params: Mapping[str, Any] | None = None, size: int = 20
) -> Iterator[Any]:
    """Every item of a paged listing, requesting ``page=0,1,...`` with ``size`` until the last.

    Pages are requested by number rather than by following ``_links.next``, so a proxy that
    renders links with another host or scheme cannot redirect the walk elsewhere.
    """
    for page in range(MAX_PAGES):
        doc = http.get_json(path, params={**(params or {}), "page": page, "size": size})
        items = embedded_items(doc, key)
        yield from items
        if not _has_next(doc, page + 1, len(items), size):
            return
    raise ServiceError(f"more than {MAX_PAGES} pages", method="GET", url=http.url(path))
