"""App instances in their own registry: how a survivor notices a dead instance and takes over its workflows.

Open-source DBOS recovers only its own executor's workflows when it starts. When several app instances share a
PostgreSQL DBOS database, each registers itself in the registry it serves, under a reserved slug derived from its
executor id, with a TTL, and pings it. A killed instance stops pinging; the sweep that expires its registration runs
on one surviving instance only (sweeps are claimed atomically in the store), and that instance recovers the dead
executor's pending workflows. Nothing here imports DBOS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from litestar_registry.core.auth import Principal, Role
from litestar_registry.core.errors import AccessDenied
from litestar_registry.core.models import Registration, ServiceRecord, ServiceStatus
from litestar_registry.core.registry import Registry

__all__ = (
    "EXECUTOR_SLUG_PREFIX",
    "EXECUTOR_TAG",
    "INSTANCE_PRINCIPAL",
    "ReservingRegistry",
    "executor_registration",
    "executor_slug",
    "expired_executors",
    "is_executor_slug",
)

EXECUTOR_SLUG_PREFIX = "registry-executor-"
"""Slugs under this prefix are reserved for the registry's own instances: nobody else may register one."""
EXECUTOR_TAG = "litestar-registry-executor"
INSTANCE_PRINCIPAL = Principal(account="litestar-registry=instances", role=Role.ADMIN)
"""Who registers and pings the instances' records. The ``=`` keeps any configured account from having this name;
the reservation compares this very object, so no authenticator can produce it."""


def executor_slug(executor_id: str) -> str:
    """The reserved slug of the instance running DBOS executor ``executor_id`` (any text maps to a valid slug)."""
    return EXECUTOR_SLUG_PREFIX + hashlib.sha256(executor_id.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def is_executor_slug(slug: str) -> bool:
    """Whether ``slug`` is reserved for an instance's registration."""
    return slug.startswith(EXECUTOR_SLUG_PREFIX)


def executor_registration(
    executor_id: str, *, application_version: str, ttl_seconds: float, base_url: str | None
) -> Registration:
    """What an instance registers about itself: expiring after one missed window, so a survivor acts soon."""
    return Registration(
        slug=executor_slug(executor_id),
        name=f"litestar-registry instance {executor_id}"[:200],
        version=application_version[:64],
        description="An app instance running provisioning workflows; when it expires, a survivor recovers them.",
        base_url=base_url,
        tags=(EXECUTOR_TAG,),
        metadata={"executor_id": executor_id, "application_version": application_version},
        ttl_seconds=ttl_seconds,
        expiry_windows=1,
    )


def expired_executors(changes: Iterable[tuple[ServiceRecord, ServiceRecord]]) -> list[tuple[str, str]]:
    """``(slug, executor id)`` of each instance registration that a sweep's ``(before, after)`` pairs expired."""
    found = []
    for _, after in changes:
        executor = after.metadata.get("executor_id")
        if after.status is ServiceStatus.EXPIRED and is_executor_slug(after.slug) and isinstance(executor, str):
            found.append((after.slug, executor))
    return found


class ReservingRegistry(Registry):
    """The registry, refusing to register a reserved slug (``registry-executor-...``) for anyone but its instances.

    Only creation needs the check: once an instance holds its slug, every other account is refused as the owner
    check refuses it on any slug.
    """

    async def register(self, registration: Registration, principal: Principal) -> ServiceRecord:
        """See :meth:`Registry.register`; ``AccessDenied`` for a reserved slug."""
        _check_reserved(registration.slug, principal)
        return await super().register(registration, principal)

    async def upsert(self, registration: Registration, principal: Principal) -> tuple[ServiceRecord, bool]:
        """See :meth:`Registry.upsert`; ``AccessDenied`` for a reserved slug."""
        _check_reserved(registration.slug, principal)
        return await super().upsert(registration, principal)


def _check_reserved(slug: str, principal: Principal, allowed: Sequence[Principal] = (INSTANCE_PRINCIPAL,)) -> None:
    if is_executor_slug(slug) and not any(principal is owner for owner in allowed):
        raise AccessDenied(f"slugs starting with '{EXECUTOR_SLUG_PREFIX}' are reserved for the registry's instances")
