"""A webhook subscriber: a small Litestar app that verifies every delivery with ``standardwebhooks`` before it trusts
it, and drops a ``webhook-id`` it has seen (retries and replays carry the same one).

Run it beside the example registry (``python -m example_app.subscriber``, port 8002) with the secret its subscription
was created with in ``WEBHOOK_SECRET``; docs/webhooks.md walks through it.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, Request, post
from litestar.exceptions import HTTPException
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

received: dict[str, dict[str, Any]] = {}
"""Deliveries accepted, by webhook-id (a real subscriber keeps these in its database)."""


def create_app(secret: str) -> Litestar:
    """The subscriber, verifying with ``secret`` (``whsec_...``, as the registry showed it at creation)."""
    verifier = Webhook(secret)

    @post("/hooks", status_code=204)
    async def hooks(request: Request[Any, Any, Any]) -> None:
        body = await request.body()  # the raw bytes: the signature covers them exactly
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            raise HTTPException(status_code=400, detail="bad signature") from None
        webhook_id = request.headers["webhook-id"]
        if webhook_id in received:
            return  # seen before: a retry or a replay; acknowledge it again, act once
        received[webhook_id] = event
        print(f"{event['type']} {event['subject']} (event {event['event_id']})", flush=True)

    return Litestar(route_handlers=[hooks])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(os.environ["WEBHOOK_SECRET"]), host="127.0.0.1", port=8002, log_level="warning")
