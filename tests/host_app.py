"""A host app with its own routes, SQLAlchemyPlugin, exception handler and dependency: the plugin must not touch them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, MediaType, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy.orm import Mapped


class Widget(BigIntBase):
    """The host's own table, in the host's (default) metadata."""

    __tablename__ = "host_widget"
    name: Mapped[str]


class HostError(Exception):
    """An error the host handles itself."""


def host_error_handler(request: Request[Any, Any, Any], exc: HostError) -> Response[dict[str, str]]:
    return Response({"host_error": str(exc)}, status_code=418, media_type=MediaType.JSON)


def provide_greeting() -> str:
    return "hello from the host"


@get("/widgets/{widget_id:int}", sync_to_thread=False)
def get_widget(widget_id: FromPath[int], greeting: NamedDependency[str]) -> dict[str, Any]:
    if widget_id == 0:
        raise NotFoundException("no widget 0")
    if widget_id == 13:
        raise HostError("unlucky")
    return {"id": widget_id, "greeting": greeting}


@get("/registry_core", sync_to_thread=False)
def host_route_named_like_ours(greeting: NamedDependency[str]) -> str:
    return greeting


def host_db_config(tmp_path: Path) -> SQLAlchemyAsyncConfig:
    return SQLAlchemyAsyncConfig(
        connection_string=f"sqlite+aiosqlite:///{tmp_path / 'host.db'}",
        create_all=True,
        engine_dependency_key="db_engine",
        engine_app_state_key="db_engine",
    )


def make_host(tmp_path: Path, *plugins: Any, db_config: SQLAlchemyAsyncConfig | None = None) -> Litestar:
    return Litestar(
        route_handlers=[get_widget, host_route_named_like_ours],
        plugins=[SQLAlchemyPlugin(config=db_config or host_db_config(tmp_path)), *plugins],
        exception_handlers={HostError: host_error_handler},
        dependencies={"greeting": Provide(provide_greeting, sync_to_thread=False)},
    )
