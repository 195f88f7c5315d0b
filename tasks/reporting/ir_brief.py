"""`dco ir status` / `dco ir contain`: the IR activity of an incident-response-support DCO and its brief, and
containment actions added by hand (a course-of-action with owner and status; a status change is a new version)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from dcoflow.core.errors import ValidationError
from dcoflow.models.ir.activity import IrActivity, ir_activity, ir_brief_markdown
from dcoflow.models.operation import Operation, as_utc
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.repository.stix_store import latest_objects, object_history, put_objects
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.hunt_objects import parse_time
from dcoflow.models.stix.ids import stix_id

CONTAINMENT_STATUSES = ("open", "in-progress", "done", "cancelled")


def load_ir_activity(session: Session, dco: str) -> IrActivity:
    return ir_activity_of(session, get_operation(session, dco))


def ir_activity_of(session: Session, op: Operation) -> IrActivity:
    """The IR activity from the DCO's evidence: the one source of the IR brief and the meeting pack's IR section."""
    objects = latest_objects(session, op.id, ["grouping", "sighting", "indicator", "course-of-action", "incident"])
    incident = op.dco.incident
    detected = None
    if incident is not None:  # detection: when the incident was recorded, else when IR support began
        record = next((o for o in objects if o["id"] == incident.ref), None)
        detected = parse_time(str(record["created"])) if record and record.get("created") else None
    return ir_activity(op.id, incident, objects, detected or as_utc(op.created_at))


def write_ir_brief(session: Session, dco: str, out_dir: Path) -> tuple[IrActivity, Path]:
    activity = load_ir_activity(session, dco)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{activity.dco_id}-ir-brief.md"
    path.write_text(ir_brief_markdown(activity), encoding="utf-8")
    return activity, path


def add_containment(session: Session, dco: str, title: str, *, owner: str, status: str = "open",
                    at: datetime | None = None) -> dict[str, object]:
    """Record (or update the status of) a containment action of the DCO's incident."""
    if status not in CONTAINMENT_STATUSES:
        raise ValidationError(f"containment status {status!r} is not one of {', '.join(CONTAINMENT_STATUSES)}",
                              field="status", object=title)
    op = get_operation(session, dco)
    ctx = DcoContext.for_operation(op)
    oid = stix_id("course-of-action", op.id, "containment", title)
    history = object_history(session, oid, op.id)
    now = at or datetime.now(UTC)
    created = parse_time(str(history[0]["created"])) if history else None
    coa = ctx.sdo("course-of-action", oid, created or now, now)
    coa.update({"name": title, "description": f"Containment for {op.dco.incident.ref if op.dco.incident else op.id}",
                "x_dco_owner": owner, "x_dco_status": status, "x_dco_containment": True})
    if history and all(history[-1].get(k) == coa[k] for k in ("x_dco_owner", "x_dco_status", "name")):
        return history[-1]  # nothing changed: no new version
    put_objects(session, [coa], op.id)
    return coa
