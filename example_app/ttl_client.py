"""A service that keeps itself registered through the TTL dialect, as a client of that protocol must.

    python -m example_app.ttl_client     # against the example app on 127.0.0.1:8000; Ctrl-C to stop

It registers, then pings at a third of its TTL through the ``ping_url`` the registry answered with. A 404 means the
registry no longer knows the service (it expired, or the registry lost its state): the client registers again. A ping
that fails any other way (the registry unreachable, a 5xx, a 2xx without the JSON body) is retried at the next tick.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

logger = logging.getLogger("example_app.ttl_client")

REGISTRY = "http://127.0.0.1:8000/v2/services"
KEY = {"X-Service-Key": "demo-ttl-key-0000"}  # the example app's demo key; a real registry has its own
PAYLOAD: dict[str, Any] = {
    "url": "http://127.0.0.1:9000",
    "info": {"id": "demo-model", "display_name": "Demo model", "model_metadata": {"author": "You"}},
}


def register(client: httpx.Client, payload: dict[str, Any]) -> dict[str, Any]:
    """Register (or re-register: latest wins); the answer holds ``ping_url`` and ``ttl_seconds``."""
    response = client.post("/$register", json=payload)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    logger.info("%s: %s, ping within %ss", answer["id"], answer["message"], answer["ttl_seconds"])
    return answer


def ping_ok(response: httpx.Response) -> bool:
    """A ping counts only with a 2xx and the JSON body that says when the service now expires."""
    try:
        return response.is_success and "expires_at" in response.json()
    except ValueError:
        return False


def keep_alive(
    client: httpx.Client, payload: dict[str, Any], *, pings: int | None = None, interval: float | None = None
) -> int:
    """Register, then ping ``pings`` times (forever if ``None``) every ``interval`` seconds (a third of the TTL).

    Returns how many times the service registered: one, plus one for every 404 that made it register again.
    """
    registration = register(client, payload)
    registrations = 1
    every = interval if interval is not None else registration["ttl_seconds"] / 3
    sent = 0
    while pings is None or sent < pings:
        time.sleep(every)
        sent += 1
        try:
            response = client.put(registration["ping_url"])
            if response.status_code == 404:  # expired or forgotten: the one answer that means "register again"
                registration = register(client, payload)
                registrations += 1
            elif not ping_ok(response):
                logger.warning("ping failed (%s); retrying at the next tick", response.status_code)
        except httpx.HTTPError as exc:  # the registry is unreachable or refused the registration: try again later
            logger.warning("registry not reachable (%s); retrying at the next tick", exc)
    return registrations


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with httpx.Client(base_url=REGISTRY, headers=KEY, timeout=5) as client:
        try:
            keep_alive(client, PAYLOAD)
        except KeyboardInterrupt:
            client.delete(f"/{PAYLOAD['info']['id']}")  # leave politely: deregister instead of waiting to expire


if __name__ == "__main__":
    main()
