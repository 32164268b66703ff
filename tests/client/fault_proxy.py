"""A reverse proxy in front of a real registry that answers 503 while told to, and logs every request it sees.

    python -m tests.client.fault_proxy --port 9000 --target http://127.0.0.1:8000

Control routes: ``POST /__proxy/fail`` (``?retry_after=1`` adds that header), ``POST /__proxy/pass``, and
``GET /__proxy/log``: every proxied request as ``{at, method, path, status}``, ``at`` from ``time.monotonic()``
(one clock for every process of the machine).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


class FaultProxy:
    def __init__(self, target: str) -> None:
        self.target = target
        self.failing = False
        self.retry_after: str | None = None
        self.log: list[dict[str, Any]] = []
        self.http: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.http = httpx.AsyncClient(base_url=self.target, timeout=10)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.http is not None:
                        await self.http.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if path.startswith("/__proxy/"):
            await self.control(path, method, parse_qs(scope["query_string"].decode()), send)
            return
        entry = {"at": time.monotonic(), "method": method, "path": path}
        if self.failing:
            headers = [(b"content-type", b"text/plain")]
            if self.retry_after is not None:
                headers.append((b"retry-after", self.retry_after.encode()))
            status, content = 503, b"registry unavailable (fault proxy)"
        else:
            assert self.http is not None
            query = scope["query_string"].decode()
            forwarded = {
                key.decode(): value.decode()
                for key, value in scope["headers"]
                if key.decode().lower() not in HOP_BY_HOP
            }
            try:
                answer = await self.http.request(
                    method, path + (f"?{query}" if query else ""), content=body, headers=forwarded
                )
                status, content = answer.status_code, answer.content
                headers = [
                    (key.encode(), value.encode())
                    for key, value in answer.headers.items()
                    if key.lower() not in HOP_BY_HOP
                ]
            except httpx.TransportError:
                status, content, headers = (
                    502,
                    b"registry unreachable (fault proxy)",
                    [(b"content-type", b"text/plain")],
                )
        entry["status"] = status
        self.log.append(entry)
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def control(self, path: str, method: str, query: dict[str, list[str]], send: Any) -> None:
        if path == "/__proxy/fail" and method == "POST":
            self.failing, self.retry_after = True, (query.get("retry_after") or [None])[0]
            answer: Any = {"failing": True, "retry_after": self.retry_after}
        elif path == "/__proxy/pass" and method == "POST":
            self.failing, self.retry_after = False, None
            answer = {"failing": False}
        else:
            answer = self.log
        content = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    args = parser.parse_args()
    uvicorn.run(FaultProxy(args.target), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
