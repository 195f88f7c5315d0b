"""Prefect events for follow-up: findings, incidents, overdue actions and re-tests.

Resources follow tasks/lifecycle.py: ``prefect.resource.id = dco.<id>`` and
``prefect.resource.name = <id>``, so a deployment trigger can pass the DCO id as a parameter
(``{{ event.resource.name }}``). Only flows call these (the plain task functions stay Prefect-free).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.events import emit_event

from models.followup import FindingInput

FINDING_TRUE_POSITIVE = "dco.finding.true-positive"
FINDING_COMPROMISE = "dco.finding.compromise"
INCIDENT_STATUS = "dco.incident.{status}"
ACTIONS_OVERDUE = "dco.actions.overdue"
RETEST_SCHEDULED = "dco.retest.scheduled"
RETEST_COMPLETED = "dco.retest.{status}"


def _resource(dco_id: str) -> dict[str, str]:
    return {"prefect.resource.id": f"dco.{dco_id}", "prefect.resource.name": dco_id}


def emit(event: str, dco_id: str, payload: dict[str, Any] | None = None,
         related: Sequence[tuple[str, str]] = ()) -> None:
    emit_event(
        event=event,
        resource=_resource(dco_id),
        related=[{"prefect.resource.id": rid, "prefect.resource.role": role} for rid, role in related] or None,
        payload=payload or {},
    )


def emit_findings(dco_id: str, findings: Sequence[FindingInput]) -> int:
    """One event per escalating finding: true-positive hunt hits trigger the escalate deployment."""
    count = 0
    for f in findings:
        if not f.escalates:
            continue
        name = FINDING_TRUE_POSITIVE if f.kind == "true-positive-hit" else FINDING_COMPROMISE
        related = [(f"stix.{f.sighting_id}", "sighting")] if f.sighting_id else []
        emit(name, dco_id, {"finding_key": f.key, "technique_id": f.technique_id, "kind": f.kind,
                            "severity": f.severity.value, "summary": f.summary}, related)
        count += 1
    return count
