"""What `dco ops list|show|audit` print, read in one session each (the CLI only formats them)."""

from __future__ import annotations

from typing import Any

from dcoflow.core.db import session_scope
from dcoflow.models.repository.operation import audit_trail, get_operation, list_operations
from dcoflow.models.repository.plan import list_hypotheses, list_steps, plan_record


def dco_list() -> list[dict[str, Any]]:
    """Every DCO with its state, oldest first."""
    with session_scope() as s:
        return [{"dco": o.id, "name": o.name, "type": o.type.value, "state": o.state.value,
                 "approved_by": o.approved_by, "updated": o.updated_at.isoformat()[:19]}
                for o in list_operations(s)]


def plan_view(dco: str) -> dict[str, Any]:
    """A DCO (by id or name) with its spec, plan record, emulation steps and hunt hypotheses."""
    with session_scope() as s:
        op = get_operation(s, dco)
        rec = plan_record(s, op.id)
        return {
            "dco": op.id, "name": op.name, "type": op.type.value, "state": op.state.value,
            "approved_by": op.approved_by, "approved_at": op.approved_at,
            "spec": op.spec,
            "plan": None if rec is None else {
                "attack": {"domain": rec.attack_domain, "version": rec.attack_version},
                "summary": rec.summary, "warnings": rec.warnings,
            },
            "emulation_plan": [st.model_dump(mode="json") for st in list_steps(s, op.id)],
            "hunt_plan": [h.model_dump(mode="json") for h in list_hypotheses(s, op.id)],
        }


def audit_view(dco: str) -> list[dict[str, Any]]:
    """The DCO's append-only audit trail, oldest first."""
    with session_scope() as s:
        return [e.model_dump(mode="json") for e in audit_trail(s, get_operation(s, dco).id)]
