"""A DCO's lifecycle actions, one function each: move it to another state (``dco ops move``, the lifecycle
flow), decide its approval (``dco ops approve``, the approve-dco flow, the plan flow's approval pause) and
delete a draft (``dco ops delete``). A state change is applied, audited and announced as a Prefect event.

The event (``dco.phase.<state>``, resource ``dco.<id>``) is what deployment triggers in
prefect.yaml react to, e.g. follow-up work when a DCO enters follow-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dcoflow.core.db import session_scope
from dcoflow.models.gates import require_approver
from dcoflow.models.lifecycle import allowed
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.repository.operation import delete_operation, get_operation, operation_id_for, transition
from dcoflow.tasks import events
from dcoflow.tasks.conduct.deconfliction import overlapping_live_windows


def emit_dco_event(dco_id: str, name: str, payload: dict[str, Any] | None = None) -> None:
    """Emit ``dco.<name>`` about a DCO."""
    events.emit(f"dco.{name}", dco_id, payload)


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


def decide_approval(dco: str, approver: str, *, approve: bool = True, comment: str | None = None,
                    expected_version: int | None = None,
                    answer_paused_run: Callable[[str, bool, str, str | None], str | None] | None = None,
                    ) -> dict[str, Any]:
    """Approve a planned DCO, or send its plan back (to planned), as ``approver``; a blank approver is refused
    either way, never recorded. The audit reason is the comment, else "approved" / "sent back".

    ``answer_paused_run(dco_id, approve, approver, comment)``: the caller's way to hand the answer to a plan run
    paused for this approval (the CLI's Resume); when it returns a run id, that run records the decision (through
    this function) and nothing is recorded here. ``expected_version``: the version the approver reviewed.
    """
    approver = require_approver(approver)
    if answer_paused_run is not None:
        with session_scope() as session:  # read and closed before the paused run writes
            op = get_operation(session, dco)
            dco, expected_version = op.id, op.version if expected_version is None else expected_version
        run_id = answer_paused_run(dco, approve, approver, comment)
        if run_id is not None:
            return {"dco": dco, "resumed_flow_run": run_id, "approve": approve, "by": approver}
    target, default = (DcoState.APPROVED, "approved") if approve else (DcoState.PLANNED, "sent back")
    return change_state(dco, target, approver, comment or default, expected_version=expected_version)


def delete_dco(dco: str, actor: str, *, expected_version: int | None = None) -> str:
    """Delete a draft DCO (a mistake, never planned); its audit trail keeps who deleted it. Returns its id."""
    with session_scope() as session:
        op = get_operation(session, dco)
        dco_id = op.id
        delete_operation(session, op, actor, expected_version=expected_version)
    return dco_id


def dco_state(dco: str) -> DcoState:
    """The DCO's state now (NotFoundError when it is not stored)."""
    with session_scope() as session:
        return get_operation(session, dco).state


def operation_id(spec: DcoSpec) -> str:
    """The id ``spec`` has or will get when stored (its name's DCO, else a free slug)."""
    with session_scope() as session:
        return operation_id_for(session, spec)

