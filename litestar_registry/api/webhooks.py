"""Webhook admin routes: subscriptions, their deliveries, and each delivery's attempts.

Subscriptions are created, listed, read, updated, enabled, disabled, deleted, and their secrets rotated; deliveries
are listed by state, read and replayed.

Thin: an admin key is required on every route (none: 401; a service or tenant key: 403), the engine does the rest.
Without webhooks (off, or the ``workflows`` extra missing) every route answers 501, before any credential is looked
at. An id that cannot name a subscription or a delivery answers 404, as one that names none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Router, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from litestar.types import Guard

from litestar_registry.api.bodies import held_to_schema
from litestar_registry.api.openapi import ADMIN_KEY
from litestar_registry.api.pagination import (
    decode_position_cursor,
    decode_workflow_cursor,
    encode_position_cursor,
    encode_workflow_cursor,
    page_size_dependency,
)
from litestar_registry.api.problems import problems
from litestar_registry.api.registry_dialect import envelope
from litestar_registry.api.routers import registry_router, requires
from litestar_registry.api.schemas import CLOSED_JSON, UUID, CursorQuery, Envelope
from litestar_registry.api.webhooks_schemas import (
    AttemptView,
    DeliveryDetailView,
    DeliveryView,
    RotateSecretRequest,
    SecretShown,
    SubscriptionCreate,
    SubscriptionUpdate,
    SubscriptionView,
)
from litestar_registry.core.auth import Authenticator, Principal
from litestar_registry.core.errors import AccessDenied, AuthenticationRequired
from litestar_registry.webhooks.errors import DeliveryNotFound, SubscriptionNotFound
from litestar_registry.webhooks.models import WEBHOOK_ID_PATTERN, DeliveryQuery
from litestar_registry.webhooks.service import WebhookService
from litestar_registry.webhooks.states import DeliveryState

__all__ = ("WebhooksController", "webhooks_router")

Service = NamedDependency[WebhookService]
Admin = NamedDependency[Principal]
PageSize = NamedDependency[int]
AnyRequest = Request[Any, Any, Any]

CreateBody = Annotated[SubscriptionCreate, CLOSED_JSON]
UpdateBody = Annotated[SubscriptionUpdate, CLOSED_JSON]
RotateBody = Annotated[RotateSecretRequest, CLOSED_JSON]
_WEBHOOK_ID = re.compile(WEBHOOK_ID_PATTERN)
ADMIN_PROBLEMS = (401, 403, 501)
"""What every route can answer besides its own: no credential, a credential that is not an admin's, no webhooks."""


def _subscription_id(value: str) -> str:
    if UUID.fullmatch(value) is None:
        raise SubscriptionNotFound(f"no webhook subscription {value[:64]!r}")
    return value


def _webhook_id(value: str) -> str:
    if _WEBHOOK_ID.fullmatch(value) is None:
        raise DeliveryNotFound(f"no delivery {value[:80]!r}")
    return value


class WebhooksController(Controller):
    """Admin-only: webhook subscriptions and their deliveries."""

    path = "/admin/webhooks"

    @post(
        "/subscriptions",
        status_code=201,
        responses=problems(*ADMIN_PROBLEMS, 413),
        summary="Create a webhook subscription",
        security=ADMIN_KEY,
    )
    async def create(
        self, request: AnyRequest, data: CreateBody, registry_webhooks: Service, registry_admin: Admin
    ) -> Envelope[SecretShown]:
        """Subscribe a URL to topics. The answer shows the signing secret, once: no other answer ever shows it.

        The subscription receives the events appended from now on. A URL the outbound policy refuses (loopback or
        private addresses unless allowed, other schemes than HTTP(S)) answers 422.
        """
        await held_to_schema(request, data)
        engine = registry_webhooks.require()
        record, secret = await engine.create_subscription(
            url=data.url, topics=data.topics, description=data.description, enabled=data.enabled, secret=data.secret
        )
        view = SecretShown(**SubscriptionView.fields_of(record, engine.clock.now()), secret=secret)
        return envelope(request, view)

    @get(
        "/subscriptions",
        responses=problems(*ADMIN_PROBLEMS),
        summary="List webhook subscriptions",
        security=ADMIN_KEY,
    )
    async def list_subscriptions(
        self,
        request: AnyRequest,
        registry_webhooks: Service,
        registry_admin: Admin,
        registry_page_size: PageSize,
        cursor: CursorQuery = None,
    ) -> Envelope[list[SubscriptionView]]:
        """Every subscription, oldest first, a page at a time (never with a secret)."""
        engine = registry_webhooks.require()
        page = await engine.list_subscriptions(after=decode_workflow_cursor(cursor), limit=registry_page_size)
        now = engine.clock.now()
        views = [SubscriptionView.of(record, now) for record in page.items]
        return envelope(
            request,
            views,
            count=len(views),
            next_cursor=encode_workflow_cursor(page.next_after),
            limit=registry_page_size,
        )

    @get(
        "/subscriptions/{subscription_id:str}",
        responses=problems(*ADMIN_PROBLEMS, 404),
        summary="Get a webhook subscription",
        security=ADMIN_KEY,
    )
    async def get_subscription(
        self, request: AnyRequest, subscription_id: FromPath[str], registry_webhooks: Service, registry_admin: Admin
    ) -> Envelope[SubscriptionView]:
        """The subscription, without its secret."""
        engine = registry_webhooks.require()
        record = await engine.get_subscription(_subscription_id(subscription_id))
        return envelope(request, SubscriptionView.of(record, engine.clock.now()))

    @patch(
        "/subscriptions/{subscription_id:str}",
        responses=problems(*ADMIN_PROBLEMS, 404, 409, 413),
        summary="Update a webhook subscription",
        security=ADMIN_KEY,
    )
    async def update(
        self,
        request: AnyRequest,
        subscription_id: FromPath[str],
        data: UpdateBody,
        registry_webhooks: Service,
        registry_admin: Admin,
    ) -> Envelope[SubscriptionView]:
        """Change the URL, the topics, the description or whether it is enabled; what is left out stays.

        Deliveries waiting for their next attempt go to the new URL; disabling ends them (``dead``, replayable).
        """
        await held_to_schema(request, data)
        engine = registry_webhooks.require()
        record = await engine.update_subscription(_subscription_id(subscription_id), **_given(data))
        return envelope(request, SubscriptionView.of(record, engine.clock.now()))

    @post(
        "/subscriptions/{subscription_id:str}/disable",
        status_code=200,
        responses=problems(*ADMIN_PROBLEMS, 404, 409),
        summary="Disable a webhook subscription",
        security=ADMIN_KEY,
    )
    async def disable(
        self, request: AnyRequest, subscription_id: FromPath[str], registry_webhooks: Service, registry_admin: Admin
    ) -> Envelope[SubscriptionView]:
        """Stop delivering to it.

        Events appended while it is disabled are not sent to it, and deliveries waiting for their next attempt end
        ``dead`` (replayable once it is enabled again).
        """
        engine = registry_webhooks.require()
        record = await engine.set_enabled(_subscription_id(subscription_id), False)
        return envelope(request, SubscriptionView.of(record, engine.clock.now()))

    @post(
        "/subscriptions/{subscription_id:str}/enable",
        status_code=200,
        responses=problems(*ADMIN_PROBLEMS, 404, 409),
        summary="Enable a webhook subscription",
        security=ADMIN_KEY,
    )
    async def enable(
        self, request: AnyRequest, subscription_id: FromPath[str], registry_webhooks: Service, registry_admin: Admin
    ) -> Envelope[SubscriptionView]:
        """Deliver to it again, from the next event on (also after the subscriber answered 410 Gone)."""
        engine = registry_webhooks.require()
        record = await engine.set_enabled(_subscription_id(subscription_id), True)
        return envelope(request, SubscriptionView.of(record, engine.clock.now()))

    @delete(
        "/subscriptions/{subscription_id:str}",
        status_code=204,
        responses=problems(*ADMIN_PROBLEMS, 404),
        summary="Delete a webhook subscription",
        security=ADMIN_KEY,
    )
    async def delete_subscription(
        self, subscription_id: FromPath[str], registry_webhooks: Service, registry_admin: Admin
    ) -> None:
        """Remove it with its deliveries and their attempts; deliveries in flight are cancelled."""
        await registry_webhooks.require().delete_subscription(_subscription_id(subscription_id))

    @post(
        "/subscriptions/{subscription_id:str}/rotate-secret",
        status_code=200,
        responses=problems(*ADMIN_PROBLEMS, 404, 409, 413),
        summary="Rotate a webhook subscription's secret",
        security=ADMIN_KEY,
    )
    async def rotate_secret(
        self,
        request: AnyRequest,
        subscription_id: FromPath[str],
        data: RotateBody,
        registry_webhooks: Service,
        registry_admin: Admin,
    ) -> Envelope[SecretShown]:
        """Replace the signing secret; the answer shows the new one, once.

        During the grace period deliveries carry two signatures in ``webhook-signature`` (the new secret's first), so
        the subscriber verifies with either while it switches over. Send ``{}`` for a new secret and the configured
        grace.
        """
        await held_to_schema(request, data)
        engine = registry_webhooks.require()
        record, secret = await engine.rotate_secret(
            _subscription_id(subscription_id), secret=data.secret, grace_seconds=data.grace_seconds
        )
        view = SecretShown(**SubscriptionView.fields_of(record, engine.clock.now()), secret=secret)
        return envelope(request, view)

    @get(
        "/subscriptions/{subscription_id:str}/deliveries",
        responses=problems(*ADMIN_PROBLEMS, 404),
        summary="List a webhook subscription's deliveries",
        security=ADMIN_KEY,
    )
    async def list_deliveries(
        self,
        request: AnyRequest,
        subscription_id: FromPath[str],
        registry_webhooks: Service,
        registry_admin: Admin,
        registry_page_size: PageSize,
        states: Annotated[
            list[DeliveryState] | None,
            QueryParameter(name="state", description="Any of these states (``dead``, say); repeatable."),
        ] = None,
        cursor: CursorQuery = None,
    ) -> Envelope[list[DeliveryView]]:
        """The subscription's deliveries, newest event first, in any of the given states, a page at a time."""
        engine = registry_webhooks.require()
        query = DeliveryQuery(
            subscription_id=_subscription_id(subscription_id),
            states=frozenset(states) if states else None,
            after=decode_position_cursor(cursor),
            limit=registry_page_size,
        )
        page = await engine.list_deliveries(query)
        views = [DeliveryView.of(record) for record in page.items]
        return envelope(
            request,
            views,
            count=len(views),
            next_cursor=encode_position_cursor(page.next_after),
            limit=registry_page_size,
        )

    @get(
        "/deliveries/{webhook_id:str}",
        responses=problems(*ADMIN_PROBLEMS, 404),
        summary="Get a webhook delivery",
        security=ADMIN_KEY,
    )
    async def get_delivery(
        self, request: AnyRequest, webhook_id: FromPath[str], registry_webhooks: Service, registry_admin: Admin
    ) -> Envelope[DeliveryDetailView]:
        """The delivery and the envelope it sends (its ``webhook-id`` is the ``webhook-id`` header)."""
        record = await registry_webhooks.require().get_delivery(_webhook_id(webhook_id))
        return envelope(request, DeliveryDetailView(**DeliveryView.fields_of(record), envelope=json.loads(record.body)))

    @get(
        "/deliveries/{webhook_id:str}/attempts",
        responses=problems(*ADMIN_PROBLEMS, 404),
        summary="List a webhook delivery's attempts",
        security=ADMIN_KEY,
    )
    async def list_attempts(
        self, request: AnyRequest, webhook_id: FromPath[str], registry_webhooks: Service, registry_admin: Admin
    ) -> Envelope[list[AttemptView]]:
        """Every attempt of every run: status code, latency, error, time."""
        attempts = await registry_webhooks.require().list_attempts(_webhook_id(webhook_id))
        views = [AttemptView.of(record) for record in attempts]
        return envelope(request, views, count=len(views))

    @post(
        "/deliveries/{webhook_id:str}/replay",
        status_code=202,
        responses=problems(*ADMIN_PROBLEMS, 404, 409),
        summary="Replay a webhook delivery",
        security=ADMIN_KEY,
    )
    async def replay(
        self, request: AnyRequest, webhook_id: FromPath[str], registry_webhooks: Service, registry_admin: Admin
    ) -> Envelope[DeliveryView]:
        """Send a dead or delivered delivery again: a new run with the same ``webhook-id`` and body.

        The new run walks the schedule afresh. 409 while the delivery is still in flight; 422 while its subscription
        is disabled.
        """
        record = await registry_webhooks.require().replay(_webhook_id(webhook_id))
        return envelope(request, DeliveryView.of(record))


def _given(data: SubscriptionUpdate) -> dict[str, Any]:
    """The fields an update sets (those it does not leave unset)."""
    return {name: getattr(data, name) for name in data.__struct_fields__ if getattr(data, name) is not msgspec.UNSET}


def webhooks_router(
    *,
    path: str,
    service: WebhookService,
    authenticator: Authenticator,
    guards: Sequence[Guard],
    tags: list[str],
    include_in_schema: bool,
    max_body_bytes: int,
) -> Router:
    """The webhook admin Router at ``path`` (the registry's own), with its dependencies and problem+json errors."""
    policy = service.registry.policy

    def provide_service() -> WebhookService:
        return service

    async def provide_admin(request: AnyRequest) -> Principal:
        principal = await authenticator.authenticate(request.headers)
        if principal is None:
            raise AuthenticationRequired("send an admin key as 'Authorization: Bearer <key>'")
        if not principal.is_admin:
            raise AccessDenied("webhook subscriptions are for admins only")
        return principal

    return registry_router(
        path=path,
        route_handlers=[WebhooksController],
        dependencies={
            "registry_webhooks": Provide(provide_service, sync_to_thread=False),
            "registry_admin": Provide(provide_admin),
            "registry_page_size": page_size_dependency(default=policy.default_page_size, maximum=policy.max_page_size),
        },
        guards=[*guards, requires(service)],  # 501 before the credential or the body is looked at, without webhooks
        tags=tags,
        include_in_schema=include_in_schema,
        max_body_bytes=max_body_bytes,
    )
