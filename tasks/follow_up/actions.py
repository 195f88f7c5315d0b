"""Actions: remediation from the technique's ATT&CK mitigations, detection engineering from gaps —
each with an owner organisation, a priority-driven SLA and due date, a status and an overdue flag.
Every action is also a STIX course-of-action (``mitigates`` → the technique) in the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from dcoflow.connectors.content.governance_file import load_governance
from dcoflow.core.errors import BatchReport, NotFoundError, StateError, ValidationError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.followup import (
    Action,
    ActionKind,
    ActionStatus,
    DetectionTask,
    FindingInput,
    GapInput,
    Priority,
    Risk,
    ScopeImpact,
    as_utc,
    check_action_transition,
    due_date_for,
    followup_id,
    is_overdue,
    priority_for_score,
)
from dcoflow.models.governance import Governance, Place, WorkArea, places
from dcoflow.models.operation import Operation, utcnow
from dcoflow.models.repository.followup import get_action, risks_by_source
from dcoflow.models.repository.operation import get_operation, locked, record_event
from dcoflow.models.repository.stix_store import put_objects
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.followup_objects import action_objects


def detection_task_for(visibility: int, detection: int) -> DetectionTask | None:
    """What detection engineering a gap needs: see it first, then detect it, then detect it well."""
    if visibility <= 1:
        return DetectionTask.ONBOARD_DATA_SOURCE
    if detection <= 1:
        return DetectionTask.WRITE_SIGMA
    if detection <= 3:
        return DetectionTask.TUNE_SIGMA
    return None


@dataclass(slots=True)
class _Proposal:
    kind: ActionKind
    title: str
    technique_id: str
    mitigation_id: str | None
    detection_task: DetectionTask | None
    data_components: list[str]
    owner: str
    priority: Priority
    risk_id: str | None


def plan_actions(
    session: Session,
    dco_id: str,
    gaps: Sequence[GapInput],
    findings: Sequence[FindingInput],
    catalog: Catalog,
    *,
    governance: Governance | None = None,
    today: date | None = None,
) -> tuple[list[Action], BatchReport]:
    """Create the actions the gaps and findings call for (existing ones are kept as they are).

    Each action's owner is the organisation the governance RACI makes responsible for its kind of work
    (remediation of a mitigation, detection engineering, data-source onboarding) at the most critical
    place in scope the technique reaches; its due date follows the governance SLA of its priority."""
    governance = governance or load_governance()
    op = get_operation(session, dco_id)
    scope = ScopeImpact.of(op.dco.scope)
    today = today or utcnow().date()
    report = BatchReport(source=f"follow-up actions for {op.id}")
    risks = risks_by_source(session, op.id)
    proposals: list[_Proposal] = []

    def where(tech: Any) -> list[Place]:
        return places(scope.reached(tech.platforms), op.dco.scope.enclaves)

    for gap in gaps:
        report.read += 1
        risk = risks.get(f"gap|{gap.technique_id}")
        found = _technique(catalog, gap.technique_id, report, f"gap {gap.technique_id}")
        if found is None:
            continue
        tid, tech = found
        priority = priority_for_score(risk.score if risk else 1)
        at = where(tech)
        proposals += _remediations(catalog, tid, tech.mitigation_ids, governance, at, priority, risk)
        detection = detection_task_for(gap.visibility, gap.detection)
        if detection is not None:
            area = (WorkArea.DATA_SOURCE_ONBOARDING if detection == DetectionTask.ONBOARD_DATA_SOURCE
                    else WorkArea.DETECTION_ENGINEERING)
            components = [_component_name(catalog, d) for d in tech.data_component_ids]
            proposals.append(_Proposal(
                ActionKind.DETECTION_ENGINEERING, _detection_title(detection, tid, tech.name, components), tid, None,
                detection, components, governance.owner(area, at), priority, risk.id if risk else None,
            ))
        report.kept += 1
    for finding in findings:
        report.read += 1
        if not finding.escalates:
            continue
        risk = risks.get(f"finding|{finding.key}")
        found = _technique(catalog, finding.technique_id, report, f"finding {finding.key}")
        if found is None:
            continue
        tid, tech = found
        priority = priority_for_score(risk.score if risk else 25)
        proposals += _remediations(catalog, tid, tech.mitigation_ids, governance, where(tech), priority, risk)
        report.kept += 1
    actions = [_upsert_action(session, op.id, p, today, governance.sla_days) for p in proposals]
    session.flush()
    _store_stix(session, op, actions, catalog)
    return actions, report


def _technique(catalog: Catalog, technique_id: str, report: BatchReport, where: str) -> tuple[str, Any] | None:
    resolution = catalog.resolve(technique_id, warn=False)
    tech = catalog.get_technique(resolution.attack_id) if resolution.attack_id else None
    if tech is None:
        report.skip(where, f"technique {technique_id} is {resolution.status} in the loaded ATT&CK release")
        return None
    return tech.attack_id, tech


def _remediations(
    catalog: Catalog, tid: str, mitigation_ids: Sequence[str], governance: Governance, at: Sequence[Place],
    priority: Priority, risk: Risk | None,
) -> list[_Proposal]:
    out = []
    for mid in mitigation_ids:
        name = catalog.mitigation(mid).name
        out.append(_Proposal(
            ActionKind.REMEDIATION, f"{mid} {name} against {tid}", tid, mid, None, [],
            governance.owner(WorkArea.REMEDIATION, at, mid), priority, risk.id if risk else None,
        ))
    return out


def _component_name(catalog: Catalog, component_id: str) -> str:
    try:
        return catalog.data_component(component_id).name
    except NotFoundError:
        return component_id


def _detection_title(task_: DetectionTask, tid: str, name: str, components: list[str]) -> str:
    if task_ == DetectionTask.ONBOARD_DATA_SOURCE:
        what = ", ".join(components[:3]) or "the telemetry it needs"
        return f"Onboard {what} to see {tid} {name}"
    verb = "Write" if task_ == DetectionTask.WRITE_SIGMA else "Tune"
    return f"{verb} a Sigma rule detecting {tid} {name}"


def _upsert_action(
    session: Session, dco_id: str, p: _Proposal, today: date, sla: Mapping[Priority, int]
) -> Action:
    action_id = followup_id("act", dco_id, p.kind.value, p.technique_id, p.mitigation_id or p.detection_task or "")
    action = session.get(Action, action_id)
    if action is not None:
        return action  # the owner may have changed status, owner or due date: keep it
    action = Action(
        id=action_id, dco_id=dco_id, risk_id=p.risk_id, kind=p.kind, title=p.title, technique_id=p.technique_id,
        mitigation_id=p.mitigation_id, detection_task=p.detection_task, data_components=p.data_components,
        owner=p.owner, priority=p.priority, sla_days=sla[p.priority], due_date=due_date_for(p.priority, today, sla),
    )
    session.add(action)
    return action


def _store_stix(session: Session, op: Operation, actions: Sequence[Action], catalog: Catalog | None) -> None:
    ctx = DcoContext.for_operation(op)
    objects: list[dict[str, Any]] = []
    for a in actions:
        tech = catalog.get_technique(a.technique_id) if catalog else None
        mit = catalog.mitigation(a.mitigation_id) if catalog and a.mitigation_id else None
        objects += action_objects(
            ctx, a, tech.stix_id if tech else None, mit.stix_id if mit else None, mit.name if mit else None
        )
    put_objects(session, objects, op.id)


def action_now(_session: Session, a: Action) -> dict[str, Any]:
    """What an action is now, for a ConflictError."""
    return {"status": a.status.value, "version": a.version, "updated": as_utc(a.updated_at).isoformat()[:19]}


def update_action_status(
    session: Session,
    action_id: str,
    status: ActionStatus,
    actor: str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Action:
    """An owner moves an action (open → in-progress → done); verification is the re-test's job."""
    action = get_action(session, action_id)
    # Locked, and still at the version the owner acted on: of concurrent updates exactly one is applied.
    action = locked(session, action, action.version if expected_version is None else expected_version,
                    f"action {action.id}", action_now)
    check_action_transition(action.id, action.status, status)
    previous = action.status
    action.status = status
    # STIX versions are keyed by modified: each change must be a later instant.
    action.updated_at = max(as_utc(now or utcnow()), as_utc(action.updated_at) + timedelta(milliseconds=1))
    action.version += 1
    session.add(action)
    session.flush()
    record_event(session, action.dco_id, actor, "action-status", {
        "action": action.id, "from": previous.value, "to": status.value,
    })
    _store_stix(session, get_operation(session, action.dco_id), [action], None)
    return action


def reassign_action(
    session: Session,
    action_id: str,
    actor: str,
    reason: str,
    *,
    owner: str | None = None,
    due: date | None = None,
    expected_version: int | None = None,
    governance: Governance | None = None,
    via: str | None = None,
    now: datetime | None = None,
) -> Action:
    """Give an action another owner (an organisation of the governance) and/or due date, with an audit
    record of who, why, from what to what, and ``via`` (the meeting item that decided it, if any)."""
    if owner is None and due is None:
        raise ValidationError("say the new owner or the new due date", field="owner", object=action_id)
    if not reason.strip():
        raise ValidationError("say why the action is reassigned", field="reason", object=action_id)
    action = get_action(session, action_id)
    action = locked(session, action, action.version if expected_version is None else expected_version,
                    f"action {action.id}", action_now)
    if action.status == ActionStatus.VERIFIED:
        raise StateError("a verified action is closed; it cannot be reassigned", object=action.id)
    before = {"owner": action.owner, "due": action.due_date.isoformat()}
    if owner is not None:
        action.owner = (governance or load_governance()).organisation(owner, action.id)
    if due is not None:
        action.due_date = due
    action.updated_at = max(as_utc(now or utcnow()), as_utc(action.updated_at) + timedelta(milliseconds=1))
    action.version += 1
    session.add(action)
    session.flush()
    record_event(session, action.dco_id, actor, "action-reassigned", {
        "action": action.id, "from": before, "to": {"owner": action.owner, "due": action.due_date.isoformat()},
        "reason": reason.strip(), "via": via,
    })
    _store_stix(session, get_operation(session, action.dco_id), [action], None)
    return action


def action_row(a: Action, today: date | None = None) -> dict[str, Any]:
    today = today or utcnow().date()
    return {
        "id": a.id, "dco": a.dco_id, "kind": a.kind.value, "title": a.title, "technique": a.technique_id,
        "mitigation": a.mitigation_id, "detection_task": a.detection_task.value if a.detection_task else None,
        "owner": a.owner, "priority": a.priority.value, "sla_days": a.sla_days, "due": a.due_date.isoformat(),
        "status": a.status.value, "overdue": is_overdue(a.status, a.due_date, today),
        "verified_by": a.verified_by, "version": a.version, "updated": as_utc(a.updated_at).isoformat(),
    }
