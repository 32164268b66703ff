"""DBOS as provisioning's durable-execution engine: its configuration, lifecycle and serializer (verified on 3.4).

What this module relies on, each checked by experiment and by the tests in ``tests/provisioning``:

* One DBOS instance per process. If the host constructed one already, it is used as it is (and its serializer and
  version apply); otherwise :class:`DBOSRuntime` creates, launches and destroys it.
* ``DBOS.launch()`` must run on the app's event loop thread: DBOS remembers the running loop and runs recovered and
  queued async workflows on it, where the store's connections live.
* DBOS tables have generic names (``queues``, ``notifications``): on SQLite they get a file of their own.
* ``application_version`` is set explicitly: DBOS recovers only the pending workflows of its own version, and by
  default derives the version from a hash of the workflow code, which changes with every deployment.
* ``executor_id`` must be the same when a crashed instance restarts, for ``launch`` to recover that instance's
  workflows; each instance sharing a PostgreSQL system database needs its own. Another instance's workflows are
  recovered with ``DBOS._recover_pending_workflows`` (internal, hence the pin ``dbos>=3.4,<4``).
* Data goes through :class:`MsgspecSerializer` (JSON), never pickle, when we create DBOS.
* ``DBOS.destroy`` shuts down the thread pool DBOS installed as the loop's default executor, after which
  ``asyncio.to_thread`` on that loop fails; :meth:`DBOSRuntime.stop` installs a fresh default executor.
* DBOS adds a console handler to the ``dbos`` logger, and stops its propagation, unless that logger has a handler
  already: we give it a ``NullHandler`` first, so its records reach the host's logging configuration instead.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec
from dbos import DBOS, DBOSConfig, Serializer
from dbos import _dbos as dbos_internals

__all__ = ("DBOSRuntime", "DBOSSettings", "MsgspecSerializer", "RecordedError")

_EXCEPTION_KEY = "$exception"


class RecordedError(Exception):
    """An exception DBOS recorded (a step timeout, for instance), as it comes back when a workflow is replayed."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message


def _encode_extra(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")


class MsgspecSerializer(Serializer):
    """DBOS's serializer as msgspec JSON: workflow inputs and results, step outputs, messages are all plain JSON.

    Exceptions DBOS records (a step that timed out) are kept as ``{"$exception": {"type", "message"}}`` and come back
    as :class:`RecordedError`: only their type name and message survive, never a pickled object.
    """

    _encoder = msgspec.json.Encoder(enc_hook=_encode_extra)

    def name(self) -> str:
        """The name DBOS stores beside every value it serialized; it must never change."""
        return "litestar_registry.msgspec_json"

    def serialize(self, data: Any) -> str:
        """``data`` as JSON text."""
        if isinstance(data, BaseException):
            kind = type(data)
            data = {_EXCEPTION_KEY: {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(data)}}
        return self._encoder.encode(data).decode()

    def deserialize(self, serialized_data: str) -> Any:
        """The value stored as ``serialized_data``."""
        value = msgspec.json.decode(serialized_data)
        if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_EXCEPTION_KEY), dict):
            error = value[_EXCEPTION_KEY]
            return RecordedError(str(error.get("type", "Exception")), str(error.get("message", "")))
        return value


@dataclass(kw_only=True)
class DBOSSettings:
    """How provisioning configures DBOS when the host has not."""

    system_database_url: str = "sqlite:///registry-dbos.sqlite"
    """DBOS's own database: a SQLite file of its own (one app instance), or PostgreSQL shared by every instance."""
    application_version: str = "1"
    """Set explicitly: DBOS recovers only workflows of its own version. Change it only with a migration plan."""
    executor_id: str = "local"
    """This instance's id: stable across its restarts, unique among instances sharing a system database."""
    app_name: str = "litestar-registry"
    log_level: str = "WARNING"
    """Level of the ``dbos`` logger (DBOS says a lot at INFO); its records propagate to the host's handlers."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further ``DBOSConfig`` keys (``sys_db_pool_size``, ``dbos_system_schema`` and the like)."""

    def config(self) -> DBOSConfig:
        """The ``DBOSConfig`` these settings describe."""
        config: dict[str, Any] = {
            **self.extra,
            "name": self.app_name,
            "system_database_url": self.system_database_url,
            "application_version": self.application_version,
            "executor_id": self.executor_id,
            "serializer": MsgspecSerializer(),
            "log_level": self.log_level,
        }
        return config  # type: ignore[return-value]


def existing_instance() -> Any | None:
    """The DBOS instance of this process, if one was constructed (internal: DBOS has no public accessor)."""
    return dbos_internals._dbos_global_instance


class DBOSRuntime:
    """Starts DBOS on the app's event loop and stops it again, unless the host brought its own instance.

    Provisioning and webhooks share one runtime (one DBOS per process): each user calls :meth:`start` and
    :meth:`stop`; the first start launches DBOS, the last stop destroys it.
    """

    def __init__(self, settings: DBOSSettings | None = None) -> None:
        self.settings = settings or DBOSSettings()
        self.owned = False
        self._users = 0

    async def start(self) -> None:
        """Construct and launch DBOS (here, on the running loop), or adopt the host's instance; a further user joins.

        Call this after every engine is activated: ``launch`` recovers this executor's pending workflows at once.
        """
        asyncio.get_running_loop()  # DBOS must be launched on the app's loop thread
        self._users += 1
        if self._users > 1:
            return
        instance = existing_instance()
        if instance is not None:
            self.owned = False
            if not getattr(instance, "_launched", False):
                DBOS.launch()
            return
        dbos_logger = logging.getLogger("dbos")
        if not dbos_logger.handlers:
            dbos_logger.addHandler(logging.NullHandler())
        DBOS(config=self.settings.config())
        self.owned = True
        DBOS.launch()

    async def stop(self) -> None:
        """Leave; the last user destroys the DBOS instance we created (the workflow registrations stay)."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users > 0 or not self.owned:
            return
        self.owned = False
        await asyncio.to_thread(DBOS.destroy)
        # DBOS made its (now shut down) thread pool this loop's default executor.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio"))

    @property
    def executor_id(self) -> str:
        """The id this process runs workflows under."""
        return str(DBOS.executor_id)

    @staticmethod
    async def recover(executor_ids: list[str]) -> list[str]:
        """Recover the pending workflows of other (dead) executors here; the ids of the workflows taken over.

        Uses DBOS's internal ``_recover_pending_workflows`` (open-source DBOS has no public cross-executor recovery):
        it re-enqueues them on DBOS's internal queue, from which this process runs them; repeating it is harmless.
        """
        handles = await asyncio.to_thread(DBOS._recover_pending_workflows, executor_ids)
        return [handle.get_workflow_id() for handle in handles]
