"""Operations and their audit trail, as functions over a Session (the FastAPI template's
repository style): create, find, list, transition."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, col, func, select

from dcoflow.core.errors import NotFoundError, StateError
from dcoflow.models.audit import AuditEvent
from dcoflow.models.lifecycle import allowed, next_states
from dcoflow.models.operation import DcoSpec, DcoState, Operation, utcnow


def create_operation(session: Session, spec: DcoSpec, actor: str, *, replace_draft: bool = True) -> Operation:
    """Store a new DCO in draft; re-submitting the same spec for a draft/planned DCO updates it.

    Returns the existing row untouched when nothing changed, so a re-run is idempotent.
    """
    dco_id = operation_id_for(session, spec)
    existing = session.get(Operation, dco_id)
    data = spec.model_dump(mode="json")
    if existing is not None:
        if existing.spec == data:
            return existing
        if not replace_draft or existing.state not in (DcoState.DRAFT, DcoState.PLANNED):
            raise StateError(
                f"DCO already exists in state {existing.state}; its spec can only change while draft or planned",
                object=existing.id,
            )
        existing.spec = data
        existing.type = spec.type
        existing.updated_at = utcnow()
        existing.version += 1
        session.add(existing)
        _audit(session, existing.id, actor, "update-spec", existing.state, existing.state, None)
        return existing
    op = Operation(id=dco_id, name=spec.name, type=spec.type, spec=data)
    session.add(op)
    _audit(session, op.id, actor, "create", None, DcoState.DRAFT, None)
    return op


def operation_id_for(session: Session, spec: DcoSpec) -> str:
    """The id of the DCO named ``spec.name`` (exactly), else the first free one of its slug, slug-2, …

    Two names with one slug (``Hunt FIN7`` and ``hunt fin7!``, two Cyrillic spellings) get two DCOs:
    a new name never takes over another DCO's id and spec.
    """
    same = session.exec(select(Operation.id).where(Operation.name == spec.name)).first()
    if same is not None:
        return same
    base = spec.slug
    taken = set(session.exec(select(Operation.id).where(col(Operation.id).startswith(base, autoescape=True))))
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def get_operation(session: Session, ref: str) -> Operation:
    """Find a DCO by id or by name (case-insensitive, exact: no pattern), or say which ones exist."""
    op = session.get(Operation, ref)
    if op is None:
        op = session.exec(select(Operation).where(func.lower(Operation.name) == ref.lower())).first()
    if op is None:
        known = [o.id for o in session.exec(select(Operation))]
        close = difflib.get_close_matches(ref, known, n=3, cutoff=0.5)
        raise NotFoundError(
            "no such DCO", object=ref, hint=("did you mean: " + ", ".join(close)) if close else "see `dco ops list`"
        )
    return op


M = TypeVar("M", bound=SQLModel)


def get_or_raise(session: Session, model: type[M], key: str, what: str, hint: str) -> M:
    """The row of ``model`` with primary key ``key``, or a NotFoundError naming it and where to look."""
    row = session.get(model, key)
    if row is None:
        raise NotFoundError(f"no such {what}", object=key, hint=hint)
    return row


def list_operations(session: Session, states: Sequence[DcoState] | None = None) -> list[Operation]:
    stmt = select(Operation).order_by(col(Operation.created_at))
    if states:
        stmt = stmt.where(col(Operation.state).in_(list(states)))
    return list(session.exec(stmt))


def transition(
    session: Session,
    op: Operation,
    target: DcoState,
    actor: str,
    reason: str | None = None,
    *,
    expected_version: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Move a DCO to ``target`` if the state machine allows it, and record who, when and why."""
    if expected_version is not None and op.version != expected_version:
        raise StateError(
            f"DCO changed since it was read (version {op.version}, expected {expected_version})", object=op.id
        )
    if not allowed(op.state, target):
        raise StateError(
            f"cannot go from {op.state} to {target}",
            object=op.id,
            hint="allowed next: " + (", ".join(next_states(op.state)) or "none (closed)"),
        )
    if target == DcoState.CLOSED and op.state != DcoState.FOLLOW_UP and not reason:
        raise StateError("closing a DCO before follow-up needs a reason", object=op.id)
    previous = op.state
    op.state = target
    op.updated_at = utcnow()
    op.version += 1
    if target == DcoState.APPROVED:
        op.approved_by, op.approved_at = actor, op.updated_at
    session.add(op)
    return _audit(session, op.id, actor, "transition", previous, target, reason, details)


def record_event(
    session: Session, dco_id: str, actor: str, action: str, details: dict[str, Any] | None = None
) -> AuditEvent:
    """Audit something that is not a state change (plan made, hunt run, outcome recorded…)."""
    return _audit(session, dco_id, actor, action, None, None, None, details)


def audit_trail(session: Session, dco_id: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.dco_id == dco_id).order_by(col(AuditEvent.id))
    return list(session.exec(stmt))


def _audit(
    session: Session,
    dco_id: str,
    actor: str,
    action: str,
    from_state: DcoState | None,
    to_state: DcoState | None,
    reason: str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    ev = AuditEvent(
        dco_id=dco_id,
        actor=actor,
        action=action,
        from_state=from_state.value if from_state else None,
        to_state=to_state.value if to_state else None,
        reason=reason,
        details=details or {},
    )
    session.add(ev)
    return ev
