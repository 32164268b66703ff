"""Over real HTTP against a running server, with real (short) sleeps: what an outside client sees."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import httpx

from tests.e2e.conftest import Server

KEY = {"X-Service-Key": "demo-ttl-key-0000"}
PAYLOAD = {
    "url": "http://my-model:8080",
    "info": {"id": "my-model", "display_name": "My ML Model", "model_metadata": {"author": "A"}},
}


def test_ttl_client_flow_register_ping_go_silent_404_register_again(start_server: Callable[..., Server]) -> None:
    server = start_server(ttl_seconds="1", sweep_interval_seconds="0.2")
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        registered = client.post("/v2/services/$register", json=PAYLOAD, headers=KEY)
        assert registered.status_code == 200
        ping_url = registered.json()["ping_url"]
        assert ping_url == f"{server.base_url}/v2/services/my-model/$ping"

        for _ in range(4):  # 1.6 s of pinging every 0.4 s keeps a 1 s TTL alive
            time.sleep(0.4)
            pong = client.put(ping_url, headers=KEY)
            assert (pong.status_code, pong.json()["status"]) == (200, "alive")

        time.sleep(1.3)  # silence past the TTL
        gone = client.put(ping_url, headers=KEY)
        assert (gone.status_code, gone.json()) == (404, {"detail": "Service my-model not found"})
        assert client.get("/v2/services").json() == {"count": 0, "services": []}

        again = client.post("/v2/services/%24register", json=PAYLOAD, headers=KEY)
        assert again.status_code == 200
        assert client.put(ping_url, headers=KEY).status_code == 200


def test_the_lifespan_sweeper_persists_expiry(start_server: Callable[..., Server]) -> None:
    server = start_server(min_ttl_seconds="0.2", expiry_windows="2", sweep_interval_seconds="0.2")
    auth = {"Authorization": "Bearer demo-service-key"}
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        body = {"slug": "short-lived", "name": "Short", "version": "1", "ttl_seconds": 0.3}
        assert client.post("/api/v1/registry/register", json=body, headers=auth).status_code == 201
        time.sleep(1.2)  # two windows and a few sweeps later
        shown = client.get("/api/v1/registry/services/short-lived", headers=auth).json()["data"]
        assert (shown["status"], shown["failure_count"]) == ("expired", 2)
    with sqlite3.connect(server.database) as db:  # what the sweeper wrote, not what a read computed
        (status,) = db.execute("select status from registry_services where slug = 'short-lived'").fetchone()
    assert status == "expired"


def test_the_documented_client_keeps_itself_registered_and_comes_back_after_a_404(
    start_server: Callable[..., Server],
) -> None:
    from example_app.ttl_client import KEY as CLIENT_KEY
    from example_app.ttl_client import PAYLOAD as CLIENT_PAYLOAD
    from example_app.ttl_client import keep_alive

    server = start_server(ttl_seconds="1")
    service = CLIENT_PAYLOAD["info"]["id"]
    with httpx.Client(base_url=f"{server.base_url}/v2/services", headers=CLIENT_KEY, timeout=5) as client:
        assert keep_alive(client, CLIENT_PAYLOAD, pings=3) == 1  # every third of the TTL: never lapses
        assert client.get(f"/{service}").status_code == 200
        # Pinging slower than the TTL: the ping finds the service expired (404) and the client registers again.
        assert keep_alive(client, CLIENT_PAYLOAD, pings=1, interval=1.3) == 2
        listed = client.get("/").json()
        assert [entry["id"] for entry in listed["services"]] == [service]
