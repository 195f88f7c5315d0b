"""Follow-up phase flows.

- ``follow_up``: risks from gaps and findings → actions (remediation, detection engineering) →
  re-test scheduled for the actioned techniques → expired acceptances re-tested → findings
  escalated → events (findings, overdue actions).
- ``escalate``: open and deliver incidents for a DCO's confirmed findings (triggered by
  ``dco.finding.true-positive``; safe to run any number of times).
- ``run_due_retests``: evaluate due re-tests against new evidence; close or reopen actions.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from dcoflow.connectors.attack import load_catalog
from dcoflow.core.db import session_scope
from dcoflow.flows.forms import described
from dcoflow.models.followup import FindingInput, GapInput, RetestStatus, as_utc
from dcoflow.models.repository import get_operation
from dcoflow.tasks.events import emit
from dcoflow.tasks.follow_up import events
from dcoflow.tasks.follow_up.actions import action_row, list_actions, plan_actions_task
from dcoflow.tasks.follow_up.escalation import escalate_task, findings_from_store
from dcoflow.tasks.follow_up.retests import get_retest, retest_open_actions, run_due_retests_task
from dcoflow.tasks.follow_up.risks import derive_risks_task, expire_acceptances_task


@flow(name="follow-up")
@described
def follow_up(
    dco: Annotated[str, Field(description="DCO id or name.")],
    gaps: Annotated[list[GapInput] | None, Field(description="Ranked gaps from the assessment.")] = None,
    findings: Annotated[
        list[FindingInput] | None,
        Field(description="Findings beyond those recorded as STIX (true-positive opinions, compromise outcomes)."),
    ] = None,
    criticality: Annotated[int, Field(ge=1, le=5, description="How critical the DCO's assets are (impact).")] = 3,
    attack_source: Annotated[str | None, Field(description="ATT&CK bundle; the configured one when empty.")] = None,
    retest_deployment: Annotated[
        str | None, Field(description="Deployment for scheduled re-tests, e.g. 'run-due-retests/retests'.")
    ] = None,
    escalate_now: Annotated[bool, Field(description="Escalate confirmed findings in this run too.")] = True,
) -> dict[str, Any]:
    """Turn a DCO's gaps and findings into risks, owned actions with SLAs and a scheduled re-test."""
    log = get_run_logger()
    with session_scope() as session:
        dco_id = get_operation(session, dco).id
        stored = findings_from_store(session, dco_id)
    given = list(findings or [])
    all_findings = given + [f for f in stored if f.key not in {x.key for x in given}]
    gap_list = list(gaps or [])
    risks = derive_risks_task(dco_id, gap_list, all_findings, criticality)
    catalog = load_catalog(attack_source)
    planned = plan_actions_task(dco_id, gap_list, all_findings, catalog)
    log.info("%d risks, %d actions (%s)", len(risks), len(planned["actions"]), planned["report"])

    retest_id = None
    with session_scope() as session:
        retest = retest_open_actions(session, dco_id, planned["actions"], deployment=retest_deployment)
        if retest is not None:
            retest_id = retest.id
            if retest.status == RetestStatus.SCHEDULED:
                emit(events.RETEST_SCHEDULED, dco_id, {
                    "retest": retest.id, "techniques": retest.technique_ids,
                    "scheduled_for": as_utc(retest.scheduled_for).isoformat(),
                })
    expired = expire_acceptances_task(retest_deployment)

    emitted = events.emit_findings(dco_id, all_findings)
    incidents = escalate_task(dco_id, all_findings) if escalate_now and emitted else []

    with session_scope() as session:
        overdue = [action_row(a) for a in list_actions(session, dco_id=dco_id, overdue_only=True)]
    if overdue:
        emit(events.ACTIONS_OVERDUE, dco_id, {"actions": [a["id"] for a in overdue]})
    return {
        "dco": dco_id, "risks": len(risks), "actions": len(planned["actions"]), "overdue": len(overdue),
        "retest": retest_id, "expired_acceptance_retests": expired, "findings": emitted,
        "incidents": [{"id": i["id"], "status": i["status"]} for i in incidents],
    }


@flow(name="escalate")
@described
def escalate(
    dco: Annotated[str, Field(description="DCO id or name.")],
    force: Annotated[bool, Field(description="Retry pending incidents now, ignoring their backoff.")] = False,
) -> list[dict[str, Any]]:
    """Open an incident per confirmed finding of the DCO and deliver it (webhook, TheHive); pending ones retry."""
    incidents = escalate_task(dco, force=force)
    for i in incidents:
        emit(events.INCIDENT_STATUS.format(status=i["status"]), i["dco"], {
            "incident": i["id"], "finding_key": i["finding_key"], "attempts": i["attempts"],
            "external_ref": i["external_ref"], "last_error": i["last_error"],
        })
    return incidents


@flow(name="run-due-retests")
@described
def run_due_retests(
    retest_id: Annotated[str | None, Field(description="One re-test (scheduled run); all due when empty.")] = None,
    conduct_deployment: Annotated[
        str | None, Field(description="Conduct deployment to start for techniques with no new evidence yet.")
    ] = None,
) -> list[dict[str, Any]]:
    """Evaluate due re-tests (or one) against evidence recorded since they were scheduled."""
    report = run_due_retests_task(retest_id, conduct_deployment)
    with session_scope() as session:
        for entry in report:
            if entry["status"] in ("passed", "failed"):
                r = get_retest(session, entry["retest"])
                emit(events.RETEST_COMPLETED.format(status=entry["status"]), r.dco_id, {
                    "retest": r.id, "results": r.results, **entry.get("changed", {}),
                })
    return report
