"""Escalation: a hunt hit triaged true positive, or an emulation step that exposed real compromise,
opens an incident — a row keyed by its finding (one incident per finding, however often this runs),
a STIX incident with its relationships, and a delivery to each configured channel (webhook, TheHive).

The row is committed before anything is sent, so a crash or an unreachable receiver never loses
the incident: it stays pending with its attempts, last error and next attempt time (exponential
backoff), and the next run sends it. Channels already delivered are not sent again; TheHive
deduplicates by sourceRef and the webhook carries an idempotency key, so a retry is never a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.db import session_scope, upsert
from dcoflow.core.errors import DcoError
from dcoflow.models.followup import (
    FindingInput,
    Incident,
    IncidentStatus,
    Severity,
    as_utc,
    followup_id,
    next_attempt,
)
from dcoflow.models.operation import utcnow
from dcoflow.models.repository.followup import incidents_by_finding, list_incidents, unacknowledged_incidents
from dcoflow.models.repository.operation import get_operation, record_event
from dcoflow.models.repository.stix_store import latest_objects, put_objects
from dcoflow.models.stix.common import DcoContext, marking_refs
from dcoflow.models.stix.followup_objects import incident_id, incident_objects
from dcoflow.models.stix.markings import tlp_marking
from dcoflow.tasks.retry import retry_when_retryable

# -- findings from the evidence store ------------------------------------------------------------------


def findings_from_store(session: Session, dco_id: str) -> list[FindingInput]:
    """Confirmed findings recorded as STIX (docs/STIX.md): sightings whose newest triage opinion
    says ``x_dco_verdict: true-positive``, and emulation outcomes flagged ``x_dco_compromise: true``
    (the step ran into real adversary activity, not the exercise's own)."""
    objects = latest_objects(session, dco_id, ["sighting", "opinion"])
    sightings = {o["id"]: o for o in objects if o["type"] == "sighting"}
    confirmed: dict[str, FindingInput] = {}
    for opinion in (o for o in objects if o["type"] == "opinion"):
        if opinion.get("x_dco_verdict") != "true-positive":
            continue
        for ref in opinion.get("object_refs", []):
            sighting = sightings.get(ref)
            if sighting is None or sighting.get("x_dco_exercise"):
                continue
            techniques = sighting.get("x_dco_technique_ids") or ["T0000"]
            host = sighting.get("x_dco_host")
            confirmed[ref] = FindingInput(
                kind="true-positive-hit", technique_id=str(techniques[0]).upper(), sighting_id=ref,
                summary=f"Hunt hit on {host or 'a host'} by rule {sighting.get('x_dco_rule_id', '?')} "
                f"triaged true positive" + (f": {opinion['explanation']}" if opinion.get("explanation") else ""),
                severity=_severity(sighting.get("x_dco_severity"), Severity.HIGH),
                observed_data_ids=list(sighting.get("observed_data_refs", [])), host=host,
            )
    for sighting in sightings.values():
        if sighting.get("x_dco_outcome") is not None and sighting.get("x_dco_compromise") is True:
            tid = str(sighting.get("x_dco_technique_id", "T0000")).upper()
            target = sighting.get("x_dco_target")
            confirmed[sighting["id"]] = FindingInput(
                kind="emulation-exposed-compromise", technique_id=tid, sighting_id=sighting["id"],
                summary=f"Emulation step {sighting.get('x_dco_step_id', '?')} on {target or 'a target'} "
                f"exposed real compromise",
                severity=_severity(sighting.get("x_dco_severity"), Severity.CRITICAL), host=target,
                observed_data_ids=list(sighting.get("observed_data_refs", [])),
            )
    return sorted(confirmed.values(), key=lambda f: f.key)


def _severity(value: Any, default: Severity) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        return default


# -- opening incidents ---------------------------------------------------------------------------------------


def open_incidents(
    session: Session,
    dco_id: str,
    findings: Sequence[FindingInput],
    *,
    technique_stix_ids: dict[str, str] | None = None,
    now: datetime | None = None,
) -> list[Incident]:
    """The incident of every escalating finding: inserted once (finding key unique), else the existing one."""
    op = get_operation(session, dco_id)
    now = now or utcnow()
    escalating = [f for f in findings if f.escalates]
    rows: list[dict[str, Any]] = [{
        "id": followup_id("inc", f.key), "finding_key": f.key, "dco_id": op.id, "kind": f.kind,
        "technique_id": f.technique_id, "sighting_id": f.sighting_id, "observed_data_ids": f.observed_data_ids,
        "host": f.host, "summary": f.summary, "severity": f.severity, "stix_id": incident_id(f.key),
        "status": IncidentStatus.PENDING, "deliveries": {}, "attempts": 0, "created_at": now, "updated_at": now,
    } for f in escalating]
    # ON CONFLICT (finding_key) DO NOTHING: concurrent or repeated runs converge on one row.
    upsert(session, Incident, rows, keys=("finding_key",))
    session.expire_all()
    incidents = incidents_by_finding(session, [f.key for f in escalating])
    fresh = [i for i in incidents if i.attempts == 0 and i.status == IncidentStatus.PENDING]
    ctx = DcoContext.for_operation(op)
    stix_ids = technique_stix_ids or {}
    put_objects(session, [o for i in fresh for o in incident_objects(ctx, i, stix_ids.get(i.technique_id))], op.id)
    for i in fresh:
        record_event(session, op.id, "dcoflow", "incident-opened", {"incident": i.id, "finding": i.finding_key})
    return sorted(incidents, key=lambda i: i.id)


# -- channels ---------------------------------------------------------------------------------------------------


class Channel(Protocol):
    """Somewhere an incident is delivered. ``deliver`` returns the receiver's reference once it has
    accepted (acknowledged) the incident, and raises a DcoError otherwise."""

    name: str

    def deliver(self, incident: Incident, stix_objects: list[dict[str, Any]]) -> str: ...


class WebhookPoster(Protocol):
    def post(self, event: str, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]: ...


class WebhookChannel:
    name = "webhook"

    def __init__(self, client: WebhookPoster) -> None:
        self.client = client

    def deliver(self, incident: Incident, stix_objects: list[dict[str, Any]]) -> str:
        answer = self.client.post(
            "dco.incident",
            {"incident": incident_payload(incident), "stix": {"type": "bundle", "objects": stix_objects}},
            incident.id,
        )
        return str(answer.get("id") or answer.get("ref") or incident.id)


if TYPE_CHECKING:
    from dcoflow.connectors.thehive import TheHiveClient


class TheHiveChannel:
    """A TheHive alert with sourceRef = incident id (idempotent), confirmed by reading it back."""

    name = "thehive"

    def __init__(self, client: TheHiveClient, *, promote: bool = False) -> None:
        self.client = client
        self.promote = promote

    def deliver(self, incident: Incident, stix_objects: list[dict[str, Any]]) -> str:
        observables = [{"dataType": "hostname", "data": incident.host}] if incident.host else []
        alert = self.client.create_alert(
            source_ref=incident.id,
            title=f"[{incident.dco_id}] {incident.technique_id}: {incident.summary}"[:250],
            description=f"{incident.summary}\n\nDCO: {incident.dco_id}\nFinding: {incident.finding_key}\n"
            f"STIX incident: {incident.stix_id}",
            severity=incident.severity.value,
            tags=[f"attack.{incident.technique_id}", f"dco:{incident.dco_id}", incident.kind],
            observables=observables,
            # the technique as a TheHive procedure too: what fills its TTP view (tags alone do not)
            procedures=[{"patternId": incident.technique_id, "description": incident.summary[:1000],
                         "occurDate": int(as_utc(incident.created_at).timestamp() * 1000)}],
        )
        confirmed = self.client.get_alert(str(alert["_id"]))
        if self.promote and not confirmed.get("caseId"):
            self.client.promote_to_case(str(alert["_id"]))
        return str(confirmed["_id"])


def channels_from_registry(registry: ConnectorRegistry) -> list[Channel]:
    """The channels configured (DCO_WEBHOOK_URL; DCO_THEHIVE_URL and DCO_THEHIVE_API_KEY), clients from the registry."""
    channels: list[Channel] = []
    if registry.webhook_configured:
        channels.append(WebhookChannel(registry.webhook()))
    if registry.thehive_configured:
        channels.append(TheHiveChannel(registry.thehive()))
    return channels


# -- delivery ---------------------------------------------------------------------------------------------------


def incident_payload(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id, "dco": incident.dco_id, "finding_key": incident.finding_key, "kind": incident.kind,
        "technique_id": incident.technique_id, "sighting_id": incident.sighting_id, "summary": incident.summary,
        "severity": incident.severity.value, "stix_id": incident.stix_id, "status": incident.status.value,
        "external_ref": incident.external_ref, "attempts": incident.attempts, "last_error": incident.last_error,
        "next_attempt_at": as_utc(incident.next_attempt_at).isoformat() if incident.next_attempt_at else None,
        "deliveries": incident.deliveries,
    }


def deliverable(session: Session, now: datetime, *, dco_id: str | None = None, force: bool = False) -> list[Incident]:
    """Incidents not yet acknowledged whose next attempt is due (all of them with ``force``)."""
    return [
        i for i in unacknowledged_incidents(session, dco_id=dco_id)
        if force or i.next_attempt_at is None or as_utc(i.next_attempt_at) <= as_utc(now)
    ]


def deliver_incidents(
    session: Session,
    channels: Sequence[Channel],
    *,
    dco_id: str | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> list[Incident]:
    """Send every due incident to the channels that have not accepted it yet; commit after each.

    All channels accepted → acknowledged. Any failure → failed-retrying with the error and the
    next attempt time; the channels that did accept are remembered and not sent again.
    """
    now = now or utcnow()
    if not channels:
        return []
    touched = []
    # Per DCO, read once: its marking context and its incidents' STIX objects (the incident and its
    # relationships) by incident id. Delivering one incident only adds a version of that incident.
    per_dco: dict[str, tuple[str, DcoContext, dict[str, list[dict[str, Any]]]]] = {}
    # The DCO's marking-definitions travel with its incident objects, so a receiver can read the marking.
    definitions: dict[str, list[dict[str, Any]]] = {}
    for incident in deliverable(session, now, dco_id=dco_id, force=force):
        if incident.dco_id not in per_dco:
            op = get_operation(session, incident.dco_id)
            by_incident: dict[str, list[dict[str, Any]]] = {}
            for o in latest_objects(session, op.id, ["incident", "relationship"]):
                by_incident.setdefault(o["id"] if o["type"] == "incident" else o.get("source_ref", ""), []).append(o)
            per_dco[incident.dco_id] = (op.id, DcoContext.for_operation(op), by_incident)
            definitions[incident.dco_id] = [tlp_marking(op.dco.marking.tlp), *marking_refs(op.dco.marking)[1]]
        op_id, ctx, by_incident = per_dco[incident.dco_id]
        objects = [*definitions[incident.dco_id], *by_incident.get(incident.stix_id, [])]
        deliveries = dict(incident.deliveries)
        errors = []
        for channel in channels:
            if channel.name in deliveries:
                continue
            try:
                ref = channel.deliver(incident, objects)
            except DcoError as exc:
                errors.append(f"{channel.name}: {exc.message}")
                continue
            deliveries[channel.name] = {"ref": ref, "at": as_utc(now).isoformat()}
            if channel.name == TheHiveChannel.name:
                incident.external_ref = ref
        incident.deliveries = deliveries
        incident.attempts += 1
        # STIX versions are keyed by modified: each status change must be a later instant.
        incident.updated_at = max(as_utc(now), as_utc(incident.updated_at) + timedelta(milliseconds=1))
        if errors:
            incident.status = IncidentStatus.FAILED_RETRYING
            incident.last_error = "; ".join(errors)
            incident.next_attempt_at = next_attempt(incident.attempts, now)
        else:
            incident.status = IncidentStatus.ACKNOWLEDGED
            incident.acknowledged_at, incident.next_attempt_at, incident.last_error = now, None, None
        session.add(incident)
        put_objects(session, incident_objects(ctx, incident, None)[:1], op_id)
        record_event(session, op_id, "dcoflow", "incident-delivery", {
            "incident": incident.id, "status": incident.status.value, "attempt": incident.attempts,
            "delivered": sorted(deliveries), "error": incident.last_error,
        })
        session.commit()  # each outcome is durable before the next incident is tried
        touched.append(incident)
    return touched


def escalate(
    dco_id: str,
    findings: Sequence[FindingInput] = (),
    channels: Sequence[Channel] | None = None,
    *,
    technique_stix_ids: dict[str, str] | None = None,
    now: datetime | None = None,
    force: bool = False,
    registry: ConnectorRegistry | None = None,
) -> list[dict[str, Any]]:
    """Open incidents for the given and stored findings (committed first), then deliver what is due to
    ``channels`` (default: those configured, from ``registry``). `dco followup escalate`, the ``escalate``
    flow and the follow-up flow all run this."""
    now = now or utcnow()
    if channels is None:
        channels = channels_from_registry(registry or ConnectorRegistry.from_settings())
    with session_scope() as session:
        found = list(findings) + findings_from_store(session, dco_id)
        open_incidents(session, get_operation(session, dco_id).id, found, technique_stix_ids=technique_stix_ids,
                       now=now)
    with session_scope() as session:
        op_id = get_operation(session, dco_id).id
        deliver_incidents(session, channels, dco_id=op_id, now=now, force=force)
        return [incident_payload(i) for i in list_incidents(session, dco_id=op_id)]


escalate_task = task(name="escalate-findings", cache_policy=NO_CACHE,
                     retry_condition_fn=retry_when_retryable, retries=1)(escalate)
