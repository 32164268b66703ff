"""The example's provisioning demo: a definition named ``provision``, and a stand-in for the external service.

``provision`` allocates a database (a Python step), hands the service's provisioning endpoint a callback token and
waits for its callback (up to an hour), then activates what the callback delivered. The external service is played
by this app itself, at ``/demo/provisioner``: it keeps what it is sent, so that a person with curl can read the token
(``GET /demo/provisioner/inbox/{workflow_id}``) and call back as the service would. It runs on 127.0.0.1, which is
why the demo allows loopback addresses (``REGISTRY_PROVISIONING_ALLOW_LOOPBACK=true``); a deployment keeps them
closed.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Controller, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from litestar_registry.provisioning import (
    Call,
    Callback,
    CompensationContext,
    RetryPolicy,
    Step,
    StepContext,
    WorkflowDefinition,
)

__all__ = ("PROVISION", "DemoProvisioner")

logger = logging.getLogger("example_app")


async def allocate(ctx: StepContext) -> dict[str, Any]:
    """Pretend to reserve a database for the service; what it returns becomes the step's outputs."""
    return {"database": f"{ctx.service_slug}-db", "plan": ctx.inputs.get("plan", "basic")}


async def release(ctx: CompensationContext) -> None:
    """Undo ``allocate`` when a later step fails for good."""
    logger.info("releasing %s", ctx.outputs.get("database"))


async def activate(ctx: StepContext) -> dict[str, Any]:
    """Use what the external service called back with (its credentials arrive decrypted, in memory only)."""
    external = ctx.dependencies["external"]
    received = external["credentials"] is not None
    return {"active": True, "endpoint": external["endpoint"], "credentials_received": received}


PROVISION = WorkflowDefinition(
    "provision",
    [
        Step("allocate", Call(allocate), compensation=release),
        Step("external", Callback(), depends_on=("allocate",), timeout_seconds=3600, retry=RetryPolicy(attempts=5)),
        Step("activate", Call(activate), depends_on=("external",)),
    ],
)
"""The demo definition: allocate, then wait for the external service's callback, then activate."""


class DemoProvisioner(Controller):
    """The external service of the demo: it keeps the notifications a callback step sends it (tokens included)."""

    path = "/demo/provisioner"
    tags = ["host"]
    received: dict[str, dict[str, Any]] = {}
    """The demo's in-memory inbox: the latest notification of each workflow."""

    @post("/", status_code=202)
    async def notify(self, data: JSONBody[dict[str, Any]]) -> dict[str, str]:
        """Where the registry sends ``{callback_token, callback_url, workflow_id, step, service_slug, inputs}``."""
        DemoProvisioner.received[str(data.get("workflow_id"))] = data
        return {"status": "accepted"}

    @get("/inbox/{workflow_id:str}", sync_to_thread=False, raises=[NotFoundException])
    def inbox(self, workflow_id: FromPath[str]) -> dict[str, Any]:
        """What the demo service was sent for one workflow (404 before anything arrived)."""
        if workflow_id not in DemoProvisioner.received:
            raise NotFoundException(f"nothing received for workflow {workflow_id}")
        return DemoProvisioner.received[workflow_id]
