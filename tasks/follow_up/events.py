"""Prefect events for follow-up: findings, incidents, overdue actions and re-tests.

Emitted through tasks/events.py (one resource shape for every DCO event). Only flows call these
(the plain task functions stay Prefect-free).
"""

from __future__ import annotations

from collections.abc import Sequence

from dcoflow.models.followup import FindingInput
from dcoflow.tasks.events import emit

FINDING_TRUE_POSITIVE = "dco.finding.true-positive"
FINDING_COMPROMISE = "dco.finding.compromise"
INCIDENT_STATUS = "dco.incident.{status}"
ACTIONS_OVERDUE = "dco.actions.overdue"
RETEST_SCHEDULED = "dco.retest.scheduled"
RETEST_COMPLETED = "dco.retest.{status}"


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
