"""The Prefect events dcoflow emits about a DCO, in one place.

Every event's resource is ``{prefect.resource.id: dco.<id>, prefect.resource.name: <id>}``, so a
deployment trigger passes the DCO id on with ``{{ event.resource.name }}`` (see prefect.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext
from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL


def resource(dco_id: str) -> dict[str, str]:
    return {"prefect.resource.id": f"dco.{dco_id}", "prefect.resource.name": dco_id}


def events_reach_a_server() -> bool:
    """True inside a flow/task run or when a Prefect API is configured. Otherwise (a CLI call on a
    workstation) nobody can react to an event, and emitting one would start a throw-away server."""
    return bool(PREFECT_API_URL.value()) or FlowRunContext.get() is not None or TaskRunContext.get() is not None


def emit(event: str, dco_id: str, payload: dict[str, Any] | None = None,
         related: Sequence[tuple[str, str]] = ()) -> None:
    """Emit ``event`` about a DCO (the audit log and the store record what happened either way)."""
    if not events_reach_a_server():
        return
    emit_event(
        event=event,
        resource=resource(dco_id),
        related=[{"prefect.resource.id": rid, "prefect.resource.role": role} for rid, role in related] or None,
        payload=payload or {},
    )
