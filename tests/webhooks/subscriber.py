"""A real HTTP server on 127.0.0.1 playing a webhook subscriber: it keeps every request exactly as it arrived (raw
body bytes, headers) and answers as scripted: a status, headers, a delay, a body of any size."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import msgspec


@dataclass
class Answer:
    """What the subscriber answers to one request."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds before it answers at all."""
    body_bytes: int = 0
    """Bytes of body it announces and tries to send (``x`` repeated): a huge answer."""


@dataclass
class Received:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass
class Subscriber:
    script: list[Answer] = field(default_factory=list)
    """The next answers, in order; once they run out, ``default``."""
    default: Answer = field(default_factory=Answer)
    requests: list[Received] = field(default_factory=list)
    sent_bytes: int = 0
    """Body bytes the server managed to hand to the connection (for huge answers)."""

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @classmethod
    def answering(cls, answers: Iterable[Answer | int], default: Answer | int = 204) -> Subscriber:
        as_answer = [a if isinstance(a, Answer) else Answer(a) for a in answers]
        return cls(script=as_answer, default=default if isinstance(default, Answer) else Answer(default))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def wait_for(self, count: int, within: float = 30.0) -> list[Received]:
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.requests) >= count)

        await asyncio.wait_for(enough(), within)
        return self.requests

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, value = line.decode().split(":", 1)
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            async with self._arrived:
                self.requests.append(Received(method, path, headers, body))
                self._arrived.notify_all()
            answer = self.script.pop(0) if self.script else self.default
            if answer.delay:
                await asyncio.sleep(answer.delay)
            extra = "".join(f"{name}: {value}\r\n" for name, value in answer.headers.items())
            writer.write(
                f"HTTP/1.1 {answer.status} Scripted\r\ncontent-type: text/plain\r\n"
                f"content-length: {answer.body_bytes}\r\n{extra}connection: close\r\n\r\n".encode()
            )
            chunk = b"x" * 65_536
            left = answer.body_bytes
            while left > 0:
                piece = chunk[: min(left, len(chunk))]
                writer.write(piece)
                await asyncio.wait_for(writer.drain(), 5)
                self.sent_bytes += len(piece)
                left -= len(piece)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
