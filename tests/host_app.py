"""A host app with its own routes, SQLAlchemyPlugin, error handler and dependency, for the plugin to leave be."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.extensions.litestar import AlembicAsyncConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, MediaType, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy.orm import Mapped

HOST_KEY = "host-service-key-0123"
"""The registry key of the host app's one service account."""


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


def host_db_config(tmp_path: Path, filename: str = "host.db") -> SQLAlchemyAsyncConfig:
    """The host's advanced-alchemy config, one SQLite file in ``tmp_path``.

    advanced-alchemy 1.12 disposes the engine at shutdown only when ``engine_dependency_key`` equals
    ``engine_app_state_key``, and it renames the state key of every later config in the process (``db_engine_1``, ...)
    to keep keys unique. Tests build many host apps in one process, so the dependency key follows the renamed state
    key; otherwise every host engine but the first leaks its connections.
    """
    config = SQLAlchemyAsyncConfig(connection_string=f"sqlite+aiosqlite:///{tmp_path / filename}", create_all=True)
    config.engine_dependency_key = config.engine_app_state_key
    return config


def make_host(tmp_path: Path, *plugins: Any, db_config: SQLAlchemyAsyncConfig | None = None) -> Litestar:
    return Litestar(
        route_handlers=[get_widget, host_route_named_like_ours],
        plugins=[SQLAlchemyPlugin(config=db_config or host_db_config(tmp_path)), *plugins],
        exception_handlers={HostError: host_error_handler},
        dependencies={"greeting": Provide(provide_greeting, sync_to_thread=False)},
    )


def create_app() -> Litestar:
    """For ``litestar --app tests.host_app:create_app``: host and registry tables in one database.

    Read from the environment, since the host's CLI builds the app itself:

    - ``HOST_APP_DIR`` (required): where the SQLite file ``shared.db``, the host's ``alembic.ini`` and its
      ``migrations/`` live (``litestar database init`` writes them there, never into the checkout);
    - ``HOST_APP_DATABASE_URL``: the shared database instead of ``shared.db`` (a PostgreSQL URL, say);
    - ``HOST_APP_SHARE_ENGINE=1``: the registry uses the host's own advanced-alchemy config (``sqlalchemy_config=``)
      instead of opening the same database through ``store_url``;
    - ``HOST_APP_CREATE_ALL=0``: the host leaves its tables to its migrations instead of ``create_all`` at startup.
    """
    from litestar_registry import RegistryConfig, RegistryPlugin

    base = Path(os.environ["HOST_APP_DIR"])
    url = os.environ.get("HOST_APP_DATABASE_URL") or f"sqlite+aiosqlite:///{base / 'shared.db'}"
    db_config = SQLAlchemyAsyncConfig(
        connection_string=url,
        create_all=os.environ.get("HOST_APP_CREATE_ALL", "1") == "1",
        alembic_config=AlembicAsyncConfig(
            script_config=str(base / "alembic.ini"), script_location=str(base / "migrations")
        ),
    )
    db_config.engine_dependency_key = db_config.engine_app_state_key  # see host_db_config
    if os.environ.get("HOST_APP_SHARE_ENGINE") == "1":
        config = RegistryConfig(sqlalchemy_config=db_config, service_keys={"a": HOST_KEY})
    else:
        config = RegistryConfig(store_url=url, service_keys={"a": HOST_KEY})
    return make_host(base, RegistryPlugin(config), db_config=db_config)
