"""STIX 2.1 for follow-up (docs/STIX.md): remediation as course-of-action + ``mitigates``, an
escalated finding as ``incident`` with the incident core extension and relationships to its
sighting and observed-data. Plain dicts with deterministic ids; pure, no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dcoflow.models.followup import Action, ActionKind, Incident, IncidentStatus, Severity
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.rows import stix_time

# The STIX incident core extension (STIX Incident Working Group, oasis-open/cti-stix-common-objects,
# extension-definition-specifications/incident-core): property-extension on the incident SDO.
INCIDENT_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
ATTACK_SOURCE = "mitre-attack"

# investigation_status vocabulary of the extension: new, open, closed.
_INVESTIGATION = {
    IncidentStatus.PENDING: "new",
    IncidentStatus.FAILED_RETRYING: "new",
    IncidentStatus.SENT: "new",
    IncidentStatus.ACKNOWLEDGED: "open",
}
# criticality is 0–100 in the extension.
_CRITICALITY = {Severity.LOW: 25, Severity.MEDIUM: 50, Severity.HIGH: 75, Severity.CRITICAL: 95}


def _relationship(ctx: DcoContext, kind: str, source: str, target: str, created: datetime) -> dict[str, Any]:
    rel = ctx.sdo("relationship", stix_id("relationship", kind, source, target), created)
    rel.update({"relationship_type": kind, "source_ref": source, "target_ref": target})
    return rel


def action_objects(
    ctx: DcoContext, action: Action, technique_stix_id: str | None, mitigation_stix_id: str | None = None,
    mitigation_name: str | None = None,
) -> list[dict[str, Any]]:
    """A course-of-action for the action (referencing the ATT&CK mitigation by external id) and
    ``mitigates`` → the technique's attack-pattern when the catalog knows it.

    ``modified`` follows the action's last update, so a status change is a new version of the
    same object and history is kept.
    """
    coa = ctx.sdo("course-of-action", stix_id("course-of-action", ctx.dco_id, action.id), action.created_at)
    coa["modified"] = stix_time(max(action.updated_at, action.created_at))
    coa.update({
        "name": action.title,
        "description": _action_description(action, mitigation_name),
        "x_dco_owner": action.owner,
        "x_dco_due": action.due_date.isoformat(),
        "x_dco_status": action.status.value,
        "x_dco_kind": action.kind.value,
        "x_dco_technique_id": action.technique_id,
    })
    refs: list[dict[str, Any]] = []
    if action.kind == ActionKind.REMEDIATION and action.mitigation_id:
        ref: dict[str, Any] = {
            "source_name": ATTACK_SOURCE,
            "external_id": action.mitigation_id,
            "url": f"https://attack.mitre.org/mitigations/{action.mitigation_id}",
        }
        if mitigation_stix_id:
            ref["description"] = f"ATT&CK object {mitigation_stix_id}"
        refs.append(ref)
    if action.detection_task:
        coa["x_dco_detection_task"] = action.detection_task.value
    if refs:
        coa["external_references"] = refs
    objects = [coa]
    if technique_stix_id:
        objects.append(_relationship(ctx, "mitigates", coa["id"], technique_stix_id, action.created_at))
    return objects


def _action_description(action: Action, mitigation_name: str | None) -> str:
    text = f"{action.kind.value} for {action.technique_id}"
    if action.mitigation_id:
        text += f" — ATT&CK mitigation {action.mitigation_id}" + (f" {mitigation_name}" if mitigation_name else "")
    if action.detection_task:
        text += f" — {action.detection_task.value}"
    return text


def incident_id(finding_key: str) -> str:
    return stix_id("incident", finding_key)


def incident_objects(ctx: DcoContext, incident: Incident, technique_stix_id: str | None) -> list[dict[str, Any]]:
    """The incident (core extension: determination confirmed, investigation status from our
    delivery status, criticality from severity), ``x_dco_sighting_ref`` to its sighting and
    ``related-to`` relationships to its observed-data and technique. ``modified`` moves with the
    incident's status."""
    obj = ctx.sdo("incident", incident.stix_id, incident.created_at)
    obj["modified"] = stix_time(max(incident.updated_at, incident.created_at))
    detection = "automated-tool" if incident.kind == "true-positive-hit" else "exercise"
    obj.update({
        "name": f"{incident.technique_id}: {incident.summary}"[:250],
        "description": f"Escalated from DCO {ctx.dco_id} ({incident.kind}). {incident.summary}",
        "extensions": {
            INCIDENT_EXTENSION: {
                "extension_type": "property-extension",
                "determination": "confirmed",
                "investigation_status": _INVESTIGATION[incident.status],
                "criticality": _CRITICALITY[incident.severity],
                "detection_methods": [detection],
                "incident_types": ["compromise"],
            }
        },
        "x_dco_status": incident.status.value,
        "x_dco_finding_key": incident.finding_key,
        "x_dco_technique_id": incident.technique_id,
    })
    if incident.external_ref:
        obj["external_references"] = [{"source_name": "thehive", "external_id": incident.external_ref}]
    if incident.sighting_id:
        # STIX 2.1 forbids relationships to SROs (a sighting is one): reference it by property.
        obj["x_dco_sighting_ref"] = incident.sighting_id
    objects = [obj]
    targets = [t for t in (technique_stix_id, *incident.observed_data_ids) if t]
    for target in targets:
        objects.append(_relationship(ctx, "related-to", obj["id"], target, incident.created_at))
    return objects
