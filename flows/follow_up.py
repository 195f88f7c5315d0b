"""Follow-up phase flows.

- ``follow_up``: the DCO's latest assessment and findings → risks → actions (remediation, detection
  engineering) → re-test scheduled for the actioned techniques → expired acceptances re-tested →
  new findings announced once and escalated → events. One task function (tasks/follow_up/run.py), so
  the ``dco.phase.follow-up`` trigger, the lifecycle and the CLI produce the same risks and actions.
- ``expire_acceptances``: on a schedule, expired risk acceptances schedule their re-test by themselves.
- ``escalate``: open and deliver incidents for a DCO's confirmed findings (triggered by
  ``dco.finding.true-positive``; safe to run any number of times).
- ``run_due_retests``: evaluate due re-tests against new evidence; close or reopen actions.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from dcoflow.flows.forms import described
from dcoflow.models.followup import FindingInput, GapInput, RetestStatus
from dcoflow.tasks.events import emit
from dcoflow.tasks.follow_up import events
from dcoflow.tasks.follow_up.escalation import escalate_task
from dcoflow.tasks.follow_up.register import retests_by_id
from dcoflow.tasks.follow_up.retests import run_due_retests_task
from dcoflow.tasks.follow_up.risks import expire_acceptances_task
from dcoflow.tasks.follow_up.run import run_follow_up_task


@flow(name="follow-up")
@described
def follow_up(
    dco: Annotated[str, Field(description="DCO id or name.")],
    gaps: Annotated[list[GapInput] | None, Field(
        description="Ranked gaps; empty: those of the DCO's latest assessment (what the trigger and lifecycle use).")
    ] = None,
    findings: Annotated[
        list[FindingInput] | None,
        Field(description="Findings beyond those recorded as STIX (true-positive opinions, compromise outcomes)."),
    ] = None,
    attack_source: Annotated[str | None, Field(description="ATT&CK bundle; the configured one when empty.")] = None,
    retest_deployment: Annotated[
        str | None, Field(description="Deployment for scheduled re-tests, e.g. 'run-due-retests/retests'.")
    ] = None,
    escalate_now: Annotated[bool, Field(description="Escalate confirmed findings in this run too.")] = True,
) -> dict[str, Any]:
    """Turn a DCO's latest assessment and its findings into risks, owned actions with SLAs and a scheduled re-test."""
    log = get_run_logger()
    result = run_follow_up_task(dco, attack_source, gaps, findings, retest_deployment)
    dco_id = result.dco_id
    log.info("%d gaps → %d risks, %d actions (%s)", result.gaps, len(result.risks), len(result.actions),
             result.report)
    if result.retest is not None and result.retest["status"] == RetestStatus.SCHEDULED.value:
        emit(events.RETEST_SCHEDULED, dco_id, {
            "retest": result.retest["id"], "techniques": result.retest["techniques"],
            "scheduled_for": result.retest["scheduled_for"],
        })
    announced = events.emit_findings(dco_id, result.findings)
    escalating = [f for f in result.findings if f.escalates]
    incidents = escalate_task(dco_id, escalating) if escalate_now and escalating else []
    overdue = result.overdue
    if overdue:
        emit(events.ACTIONS_OVERDUE, dco_id, {"actions": [a["id"] for a in overdue]})
    return {
        **result.summary(), "overdue": len(overdue), "announced": announced,
        "incidents": [{"id": i["id"], "status": i["status"]} for i in incidents],
    }


@flow(name="expire-acceptances")
@described
def expire_acceptances(
    retest_deployment: Annotated[
        str | None, Field(description="Deployment for the scheduled re-tests, e.g. 'run-due-retests/run-due-retests'.")
    ] = None,
) -> list[str]:
    """Every risk acceptance whose expiry passed goes back for review and gets a re-test of its techniques
    (runs on a schedule, so an expiry acts by itself; each expiry is handled once)."""
    retests = expire_acceptances_task(retest_deployment)
    for r in retests_by_id(retests):
        emit(events.RETEST_SCHEDULED, r["dco"], {
            "retest": r["id"], "techniques": r["techniques"], "scheduled_for": r["scheduled_for"],
            "reason": r["reason"],
        })
    return retests


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
    completed = [entry for entry in report if entry["status"] in ("passed", "failed")]
    for entry, r in zip(completed, retests_by_id([e["retest"] for e in completed]), strict=True):
        emit(events.RETEST_COMPLETED.format(status=entry["status"]), r["dco"], {
            "retest": r["id"], "results": r["results"], **entry.get("changed", {}),
        })
    return report
