"""Operations and their audit trail, as functions over a Session (the FastAPI template's
repository style): create, find, list, transition."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlmodel import Session, SQLModel, col, func, select

from dcoflow.core.db import insert_if_absent
from dcoflow.core.errors import ConflictError, NotFoundError, StateError
from dcoflow.models.audit import AuditEvent
from dcoflow.models.lifecycle import allowed, next_states
from dcoflow.models.operation import DcoSpec, DcoState, Marking, Operation, utcnow
from dcoflow.models.stix.markings import Tlp


def create_operation(session: Session, spec: DcoSpec, actor: str, *, replace_draft: bool = True) -> Operation:
    """Store a new DCO in draft; re-submitting the same spec for a draft/planned DCO updates it.

    Returns the existing row untouched when nothing changed, so a re-run is idempotent. Two people creating
    one DCO at the same time: the first insert wins; the others get their own unchanged result back when their
    spec is the same, else a ConflictError showing the stored DCO (their file is not applied, nothing is lost).
    """
    data = spec.model_dump(mode="json")
    for _attempt in range(5):  # another name may take the free id between looking and inserting
        dco_id = operation_id_for(session, spec)
        existing = session.get(Operation, dco_id)
        if existing is not None:
            return _update_spec(session, existing, spec, data, actor, replace_draft)
        key = insert_if_absent(session, Operation(id=dco_id, name=spec.name, type=spec.type, spec=data))
        if key is not None:
            op = session.get_one(Operation, key[0])
            _audit(session, op.id, actor, "create", None, DcoState.DRAFT, None)
            return op
        other = session.exec(select(Operation).where(Operation.name == spec.name)).first()
        if other is not None:  # the same name was created meanwhile
            if other.spec == data:
                return other
            raise ConflictError(
                f"DCO {other.id} was created by someone else meanwhile, with a different spec; yours was not stored",
                object=other.id, details={"current": operation_now(session, other)},
                hint="compare with `dco ops show`, then run `dco ops create` again to replace its draft spec")
    raise ConflictError("no free id for this DCO name after five tries", object=spec.name)


def _update_spec(session: Session, existing: Operation, spec: DcoSpec, data: dict[str, Any], actor: str,
                 replace_draft: bool) -> Operation:
    if existing.spec == data:
        return existing
    existing = locked(session, existing, existing.version, f"DCO {existing.id}", operation_now)
    if not replace_draft or existing.state not in (DcoState.DRAFT, DcoState.PLANNED):
        raise StateError(
            f"DCO already exists in state {existing.state}; its spec can only change while draft or planned",
            object=existing.id,
        )
    refuse_looser_marking(session, existing, spec)
    previous = existing.spec
    existing.spec = data
    existing.type = spec.type
    existing.updated_at = utcnow()
    existing.version += 1
    session.add(existing)
    _audit(session, existing.id, actor, "update-spec", existing.state, existing.state, None,
           {"previous_spec": previous})
    return existing


TLP_ORDER = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)


def refuse_looser_marking(session: Session, existing: Operation, spec: DcoSpec) -> None:
    """A DCO that holds a plan or evidence keeps at least its marking: a lower TLP, or a dropped
    classification or releasability statement, would publish what was gathered under the old one."""
    old = Marking.model_validate(existing.spec.get("marking") or {})
    new = spec.marking
    looser = [what for what, lost in (
        (f"TLP:{old.tlp.value.upper()} → TLP:{new.tlp.value.upper()}",
         TLP_ORDER.index(new.tlp) < TLP_ORDER.index(old.tlp)),
        ("classification dropped", bool(old.classification) and not new.classification),
        ("releasability dropped", bool(old.releasability) and not new.releasability),
    ) if lost]
    if looser and (existing.state != DcoState.DRAFT or _holds_evidence(session, existing.id)):
        raise StateError(f"marking cannot loosen ({'; '.join(looser)}) once the DCO holds a plan or evidence",
                         object=existing.id, hint="keep the marking, or create a new DCO for the looser release")


def _holds_evidence(session: Session, dco_id: str) -> bool:
    from dcoflow.models.assessment_rows import ImportedEvidence
    from dcoflow.models.stix.rows import StixObjectRow

    return any(session.exec(select(model.dco_id).where(model.dco_id == dco_id).limit(1)).first() is not None
               for model in (StixObjectRow, ImportedEvidence))


def delete_operation(session: Session, op: Operation, actor: str, *, expected_version: int | None = None) -> None:
    """Delete a DCO that is still a draft (nothing planned, approved or recorded for it yet). Its audit trail
    stays, with who deleted it; anything past draft is closed with a reason instead, never deleted."""
    op = locked(session, op, op.version if expected_version is None else expected_version, f"DCO {op.id}",
                operation_now)
    if op.state != DcoState.DRAFT:
        raise StateError(f"only a draft DCO can be deleted; {op.id} is {op.state}", object=op.id,
                         hint=f"close it with a reason instead: `dco ops move {op.id} closed --by NAME --reason …`")
    if _holds_evidence(session, op.id):
        raise StateError(f"{op.id} holds evidence; a DCO with evidence is closed with a reason, never deleted",
                         object=op.id, hint=f"`dco ops move {op.id} closed --by NAME --reason …`")
    _audit(session, op.id, actor, "delete", op.state, None, None, {"spec": op.spec, "version": op.version})
    session.delete(op)


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


def lock_row(session: Session, row: M) -> M:
    """``row`` read again with SELECT … FOR UPDATE and refreshed: waits until a concurrent writer of the row
    commits, then holds it until this transaction ends (SQLite has one writer at a time and no row locks)."""
    session.flush()  # our own pending changes reach the row before it is read back
    identity = inspect(row).identity
    if identity is None:
        raise StateError("only a stored row can be locked", object=type(row).__name__)
    fresh = session.get(type(row), identity if len(identity) > 1 else identity[0], with_for_update=True,
                        populate_existing=True)
    if fresh is None:
        raise ConflictError(f"{type(row).__name__} {identity} was deleted by someone else", object=str(identity))
    return fresh


def locked(session: Session, row: M, seen_version: int, what: str,
           describe: Callable[[Session, M], dict[str, Any]]) -> M:
    """``row`` locked (``lock_row``) and checked against the version the caller acted on: a row someone else
    changed since raises ConflictError with what is stored now (``describe``), and nothing is written."""
    fresh = lock_row(session, row)
    now = int(getattr(fresh, "version"))  # noqa: B009  (every edited row has one; SQLModel types cannot say so)
    if now != seen_version:
        current = describe(session, fresh)
        raise ConflictError(
            f"{what} changed since it was read, by someone else (version {seen_version} → {now}); now: "
            + ", ".join(f"{k} {v}" for k, v in current.items() if v is not None),
            object=what, details={"current": current},
            hint=f"nothing was written; look again and retry (with --version {now} where the command takes it)")
    return fresh


def operation_now(session: Session, op: Operation) -> dict[str, Any]:
    """What a DCO is now, for a ConflictError: state, version and the last change (who, what, when)."""
    last = session.exec(select(AuditEvent).where(AuditEvent.dco_id == op.id)
                        .order_by(col(AuditEvent.id).desc())).first()
    return {"state": op.state.value, "version": op.version, "approved_by": op.approved_by,
            "last_change": f"{last.action} by {last.actor} at {last.at.isoformat()[:19]}" if last else None}


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
    """Move a DCO to ``target`` if the state machine allows it, and record who, when and why.

    The row is locked first and must still be at ``expected_version`` (default: the version ``op`` was read
    at), so of concurrent transitions from one state exactly one happens and the others get a ConflictError.
    """
    op = locked(session, op, op.version if expected_version is None else expected_version, f"DCO {op.id}",
                operation_now)
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
