"""Prefect events for follow-up: findings, incidents, overdue actions and re-tests.

Emitted through tasks/events.py (one resource shape for every DCO event). Only flows call these
(the plain task functions stay Prefect-free). A finding is announced once: the audit log remembers
each announcement (``finding-announced``), so neither a second triage nor every follow-up run
re-triggers the escalate deployment for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcoflow.core.db import session_scope
from dcoflow.models.followup import FindingInput
from dcoflow.models.repository.operation import audit_trail, record_event
from dcoflow.tasks.events import emit

ANNOUNCED = "finding-announced"

FINDING_TRUE_POSITIVE = "dco.finding.true-positive"
FINDING_COMPROMISE = "dco.finding.compromise"
INCIDENT_STATUS = "dco.incident.{status}"
ACTIONS_OVERDUE = "dco.actions.overdue"
RETEST_SCHEDULED = "dco.retest.scheduled"
RETEST_COMPLETED = "dco.retest.{status}"


def emit_findings(dco_id: str, findings: Sequence[FindingInput]) -> int:
    """One event per escalating finding not announced before (true-positive hunt hits and exposed
    compromise trigger the escalate deployment); returns how many were emitted now."""
    with session_scope() as session:
        announced = {str(e.details.get("finding_key")) for e in audit_trail(session, dco_id) if e.action == ANNOUNCED}
        count = 0
        for f in findings:
            if not f.escalates or f.key in announced:
                continue
            name = FINDING_TRUE_POSITIVE if f.kind == "true-positive-hit" else FINDING_COMPROMISE
            related = [(f"stix.{f.sighting_id}", "sighting")] if f.sighting_id else []
            emit(name, dco_id, {"finding_key": f.key, "technique_id": f.technique_id, "kind": f.kind,
                                "severity": f.severity.value, "summary": f.summary}, related)
            # Recorded after the emit: a crash in between announces again (at least once), never not at all.
            record_event(session, dco_id, "dcoflow", ANNOUNCED, {"finding_key": f.key, "event": name})
            announced.add(f.key)
            count += 1
    return count
