"""A small real HTTP server on 127.0.0.1 that plays the external service: it records what it is sent (JSON bodies
and headers) and answers with scripted statuses. Real sockets, so the outbound client is tested as it runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    """Status of each next answer (200 once they run out); a 3xx carries ``Location: /elsewhere``."""
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self.port = 0

    @classmethod
    def answering(cls, statuses: Iterable[int]) -> Receiver:
        return cls(statuses=list(statuses))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/provision"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def wait_for(self, count: int, within: float = 20.0) -> list[Received]:
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.requests) >= count)

        await asyncio.wait_for(enough(), within)
        return self.requests

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, value = line.decode().split(":", 1)
                headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.statuses.pop(0) if self.statuses else 200
            extra = "location: /elsewhere\r\n" if 300 <= status < 400 else ""
            payload = json.dumps({"received": True}).encode()
            writer.write(
                f"HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
                f"{extra}connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            async with self._arrived:
                self.requests.append(Received(method, path, headers, json.loads(raw) if raw else None))
                self._arrived.notify_all()
        finally:
            writer.close()
