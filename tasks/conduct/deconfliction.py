"""Deconfliction of a DCO's live window with the monitoring side.

Before live steps, one notice per contact (``rules_of_engagement.deconfliction_contacts``, else the
monitoring side at large) says which hosts, which time window and which exercise marker
(``DCO-<id>``) to expect. It goes out by webhook when one is configured and always lands in the
deconfliction inbox (the ``deconfliction`` table, step ``window``), which ``dco deconflict inbox``
lists for the monitoring side and ``dco deconflict ack`` answers. When the rules of engagement
set ``deconfliction_ack_required``, live steps wait for that acknowledgement.

An acknowledged window is what lets hunts in any DCO classify a hit as another DCO's exercise
activity (inside its window, on its hosts, carrying its marker) and say which DCO it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ConnectorError, ExecutionError, GateError, NotFoundError
from dcoflow.models.emulation import Deconfliction, dco_marker
from dcoflow.models.exercise import DeconflictedWindow
from dcoflow.models.gates import CONDUCT_STATES, overlapping_hosts, require_approver, windows_overlap
from dcoflow.models.marking import MarkingFacts, marking_json
from dcoflow.models.operation import Operation, as_utc, utcnow
from dcoflow.models.repository.deconfliction import (
    dcos_with_notice_status,
    get_notice,
    notices_for_step,
    notices_of_step_kind,
    operations_by_id,
)
from dcoflow.models.repository.operation import get_operation, list_operations, record_event
from dcoflow.models.stix.ids import row_id

WINDOW_STEP = "window"  # the step id of a DCO-wide window notice (per-step notices carry the step's id)
MONITORING = "monitoring side"
ACKNOWLEDGED = "acknowledged"


def emulation_hosts(op: Operation) -> list[str]:
    roe = op.dco.rules_of_engagement
    return list(roe.allowed_hosts or op.dco.scope.hosts)


def _window(op: Operation) -> dict[str, str | None]:
    w = op.dco.window
    return {"start": as_utc(w.start).isoformat() if w else None, "end": as_utc(w.end).isoformat() if w else None}


def deliver_notice(session: Session, row: Deconfliction, webhook: WebhookClient, event: str,
                   payload: dict[str, Any], *, subject: str, hint: str) -> dict[str, Any]:
    """Post ``row``'s notice (idempotent by the row id) and mark it sent with the receiver's receipt. A failure
    is recorded on the row, flushed and raised as ExecutionError naming ``subject``: nothing runs unannounced."""
    try:
        answer = webhook.post(event, payload, idempotency_key=row.id)
    except ConnectorError as exc:
        row.status, row.error = "failed", exc.message
        session.add(row)
        session.flush()
        raise ExecutionError(f"deconfliction notice to {row.notified} failed: {exc.reason}", object=subject,
                             retryable=exc.retryable, hint=hint) from exc
    row.status, row.error = "sent", None
    row.receipt = str(answer.get("id") or answer.get("receipt") or answer.get("status") or "accepted")
    return answer


def notify_window(session: Session, op: Operation, *, webhook: WebhookClient | None = None,
                  actor: str = "dcoflow") -> list[Deconfliction]:
    """Send (once) the DCO's window notice to every contact; a receiver may acknowledge in its answer
    (``{"acknowledged": true, "by": "…"}``). A webhook failure is recorded and raised: live steps must
    not start unannounced."""
    roe = op.dco.rules_of_engagement
    marker = dco_marker(op.id)
    rows: list[Deconfliction] = []
    for contact in roe.deconfliction_contacts or [MONITORING]:
        decon_id = row_id("x-dco-deconfliction", op.id, WINDOW_STEP, contact)
        row = get_notice(session, decon_id)
        if row is not None and row.status in ("sent", "recorded", ACKNOWLEDGED):
            rows.append(row)
            continue
        row = row or Deconfliction(id=decon_id, dco_id=op.id, step_id=WINDOW_STEP, notified=contact,
                                   channel="webhook" if webhook else "record", marker=marker)
        row.notified_at = utcnow()
        if webhook is None:
            row.status, row.error = "recorded", None
        else:
            payload: dict[str, Any] = {"dco": op.id, "dco_name": op.name, "contact": contact, "marker": marker,
                                       "hosts": emulation_hosts(op), "window": _window(op),
                                       "ack_required": roe.deconfliction_ack_required,
                                       "ack": f"dco deconflict ack {op.id} --by NAME",
                                       "marking": marking_json(MarkingFacts.of(op.dco.marking))}
            answer = deliver_notice(session, row, webhook, "emulation.deconfliction", payload, subject=f"DCO {op.id}",
                                    hint="no step was run; retry once the receiver is reachable")
            if answer.get("acknowledged") is True and str(answer.get("by") or "").strip():
                row.status = ACKNOWLEDGED
                row.receipt = f"acknowledged by {str(answer['by']).strip()[:200]} (webhook)"
        session.add(row)
        rows.append(row)
    session.flush()
    record_event(session, op.id, actor, "deconfliction-notified",
                 {"contacts": [r.notified for r in rows], "hosts": emulation_hosts(op), "window": _window(op),
                  "marker": marker, "statuses": {r.notified: r.status for r in rows}})
    return rows


def window_notices(session: Session, dco_id: str) -> list[Deconfliction]:
    return notices_for_step(session, dco_id, WINDOW_STEP)


def acknowledge(session: Session, dco: str, by: str, *, contact: str | None = None,
                note: str | None = None) -> list[Deconfliction]:
    """The monitoring side's answer to a DCO's window notice (all contacts', or one contact's)."""
    who = require_approver(by)
    op = get_operation(session, dco)
    rows = [r for r in window_notices(session, op.id) if contact is None or r.notified == contact]
    if not rows:
        raise NotFoundError("no deconfliction notice to acknowledge", object=f"DCO {op.id}"
                            + (f" contact {contact}" if contact else ""),
                            hint="notices go out when live steps start (`dco emulate run DCO --execute`)")
    for row in rows:
        if row.status != ACKNOWLEDGED:
            row.status = ACKNOWLEDGED
            row.receipt = f"acknowledged by {who}" + (f": {note}" if note else "")
            session.add(row)
    record_event(session, op.id, who, "deconfliction-acknowledged",
                 {"contacts": [r.notified for r in rows], "note": note})
    session.flush()
    return rows


def acknowledged(session: Session, dco_id: str) -> bool:
    rows = window_notices(session, dco_id)
    return bool(rows) and all(r.status == ACKNOWLEDGED for r in rows)


def require_acknowledged(session: Session, op: Operation) -> None:
    """GateError unless the DCO's rules of engagement ask for no acknowledgement or it has been given."""
    if op.dco.rules_of_engagement.deconfliction_ack_required and not acknowledged(session, op.id):
        raise GateError("live steps wait for the monitoring side to acknowledge the deconfliction notice",
                        object=f"DCO {op.id} (state {op.state.value})",
                        hint=f"the monitoring side runs `dco deconflict ack {op.id} --by NAME` "
                             "(see `dco deconflict inbox`)")


def wait_for_acknowledgement(read: Callable[[], bool], timeout_s: float, *, poll_s: float = 2.0,
                             sleep: Callable[[float], None] = time.sleep) -> bool:
    """Poll ``read`` until it is true or ``timeout_s`` has passed (a bounded wait)."""
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        if read():
            return True
        if time.monotonic() >= deadline:
            return False
        sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def inbox(session: Session, *, include_acknowledged: bool = False) -> list[dict[str, Any]]:
    """Window notices for the monitoring side, newest first, with what each DCO will do and where."""
    rows = notices_of_step_kind(session, WINDOW_STEP, except_status=None if include_acknowledged else ACKNOWLEDGED)
    ops = operations_by_id(session, (r.dco_id for r in rows))
    out: list[dict[str, Any]] = []
    for row in rows:
        op = ops.get(row.dco_id)
        out.append({"dco": row.dco_id, "name": op.name if op else None, "state": op.state.value if op else None,
                    "hosts": emulation_hosts(op) if op else [], "window": _window(op) if op else None,
                    "marker": row.marker, "contact": row.notified, "channel": row.channel, "status": row.status,
                    "notified_at": as_utc(row.notified_at).isoformat(), "receipt": row.receipt,
                    "ack_required": op.dco.rules_of_engagement.deconfliction_ack_required if op else None})
    return out


def deconfliction_inbox(*, include_acknowledged: bool = False) -> list[dict[str, Any]]:
    """``dco deconflict inbox``: the window notices for the monitoring side (``inbox``)."""
    with session_scope() as session:
        return inbox(session, include_acknowledged=include_acknowledged)


def acknowledge_window(dco: str, by: str, *, contact: str | None = None, note: str | None = None) -> list[str]:
    """``dco deconflict ack``: the monitoring side acknowledges a DCO's window notice (``acknowledge``);
    returns the contacts whose notices are now acknowledged."""
    with session_scope() as session:
        return [r.notified for r in acknowledge(session, dco, by, contact=contact, note=note)]


def deconflicted_windows(session: Session, *, except_dco: str | None = None) -> list[DeconflictedWindow]:
    ids = [d for d in dcos_with_notice_status(session, WINDOW_STEP, ACKNOWLEDGED) if d != except_dco]
    out: list[DeconflictedWindow] = []
    for _, op in sorted(operations_by_id(session, ids).items()):
        w = op.dco.window
        out.append(DeconflictedWindow(op.id, dco_marker(op.id), tuple(emulation_hosts(op)),
                                      w.start if w else None, w.end if w else None))
    return out


def overlapping_live_windows(session: Session, op: Operation) -> list[str]:
    """Warnings for an approval: other approved or conducting DCOs whose windows overlap this one's
    on shared hosts (two exercises on one host at once confuse the monitoring side)."""
    warnings: list[str] = []
    mine = emulation_hosts(op)
    for other in list_operations(session, sorted(CONDUCT_STATES)):
        if other.id == op.id:
            continue
        shared = overlapping_hosts(mine, emulation_hosts(other))
        if shared and windows_overlap(op.dco.window, other.dco.window):
            w = other.dco.window
            when = f"{as_utc(w.start):%Y-%m-%d %H:%M}–{as_utc(w.end):%Y-%m-%d %H:%M} UTC" if w else "no window"
            warnings.append(f"live window overlaps DCO {other.id} ({other.state.value}, {when}) on "
                            + ", ".join(shared))
    return warnings
