"""Filter semantics shared by the stores that filter in Python (memory, Redis)."""

from __future__ import annotations

from litestar_registry.core.models import ServiceQuery, ServiceRecord

__all__ = ("matches",)


def matches(record: ServiceRecord, query: ServiceQuery) -> bool:
    """Whether ``record`` passes every filter of ``query`` (the page window is not checked here)."""
    if query.statuses is not None and record.status not in query.statuses:
        return False
    if query.tag is not None and query.tag not in record.tags:
        return False
    if query.capability is not None and query.capability not in record.capabilities:
        return False
    if query.text:
        needle = query.text.casefold()
        haystack = (record.slug, record.name, record.description or "")
        return any(needle in field.casefold() for field in haystack)
    return True
