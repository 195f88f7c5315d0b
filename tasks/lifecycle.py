"""State changes of a DCO as tasks: apply the transition, audit it, emit a Prefect event.

The event (``dco.phase.<state>``, resource ``dco.<id>``) is what deployment triggers in
prefect.yaml react to, e.g. follow-up work when a DCO enters follow-up.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from dcoflow.core.db import session_scope
from dcoflow.models.gates import require_approver
from dcoflow.models.lifecycle import allowed
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.repository.operation import create_operation, get_operation, operation_id_for, transition
from dcoflow.tasks import events
from dcoflow.tasks.conduct.deconfliction import overlapping_live_windows


def emit_dco_event(dco_id: str, name: str, payload: dict[str, Any] | None = None) -> None:
    """Emit ``dco.<name>`` about a DCO."""
    events.emit(f"dco.{name}", dco_id, payload)


def register_operation(spec: DcoSpec, actor: str) -> str:
    """Store (or find, unchanged) the DCO described by ``spec``; returns its id."""
    with session_scope() as session:
        op = create_operation(session, spec, actor)
        return op.id


def change_state(dco: str, target: DcoState, actor: str, reason: str | None = None, *,
                 expected_version: int | None = None) -> dict[str, Any]:
    """Move a DCO to ``target`` (a no-op if it is there already and the state allows no self-loop).

    An approval must name its approver (a blank one is refused, never recorded). ``expected_version``: the
    version the caller decided on; ConflictError if someone changed the DCO since.
    """
    if target == DcoState.APPROVED:
        actor = require_approver(actor)
    with session_scope() as session:
        op = get_operation(session, dco)
        previous = op.state
        if previous == target and not allowed(previous, target):  # no self-loop in the state machine
            return {"dco": op.id, "from": previous.value, "to": target.value, "changed": False,
                    "version": op.version}
        # overlapping live windows on shared hosts are flagged at approval, in the audit log and the answer
        warnings = overlapping_live_windows(session, op) if target == DcoState.APPROVED else []
        transition(session, op, target, actor, reason, expected_version=expected_version,
                   details={"warnings": warnings} if warnings else None)
        dco_id = op.id
    emit_dco_event(dco_id, f"phase.{target.value}", {"from": previous.value, "actor": actor, "reason": reason})
    out: dict[str, Any] = {"dco": dco_id, "from": previous.value, "to": target.value, "changed": True,
                           "version": op.version}
    if warnings:
        out["warnings"] = warnings
    return out


def operation_id(spec: DcoSpec) -> str:
    """The id ``spec`` has or will get when stored (its name's DCO, else a free slug)."""
    with session_scope() as session:
        return operation_id_for(session, spec)


register_operation_task = task(name="register-operation", cache_policy=NO_CACHE)(register_operation)
change_state_task = task(name="change-state", cache_policy=NO_CACHE)(change_state)
