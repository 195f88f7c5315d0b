"""Re-tests: schedule them (a Prefect scheduled flow run when a deployment exists, else a row the
due-retests sweep picks up), read their result from new evidence, and close or reopen actions.

A re-test adds evidence; it never overwrites what the first test found. Its verdict per
technique comes from sightings recorded after it was scheduled (models.followup.retest_verdict).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.core.db import session_scope
from dcoflow.core.errors import StateError
from dcoflow.models.followup import (
    Action,
    ActionStatus,
    Retest,
    RetestStatus,
    RetestVerdict,
    RiskStatus,
    as_utc,
    followup_id,
    hunt_retest_verdict,
    retest_verdict,
)
from dcoflow.models.operation import utcnow
from dcoflow.models.repository.followup import actions_for_techniques, get_retest, list_retests, open_risks
from dcoflow.models.repository.operation import get_operation, record_event
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.tasks.retry import retry_when_retryable


class RetestSubmitter(Protocol):
    """Creates a scheduled flow run of ``deployment``; returns its id, or None when the deployment does not exist."""

    def __call__(
        self, deployment: str, parameters: dict[str, Any], scheduled_time: datetime, idempotency_key: str
    ) -> str | None: ...


def submit_with_prefect(
    deployment: str, parameters: dict[str, Any], scheduled_time: datetime, idempotency_key: str
) -> str | None:
    """``run_deployment(..., scheduled_time=…, timeout=0)``: create the scheduled run and return at once.

    The idempotency key makes a re-submission return the same flow run instead of a second one.
    """
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run = run_deployment(
            deployment, parameters=parameters, scheduled_time=scheduled_time, timeout=0,
            idempotency_key=idempotency_key, as_subflow=False,
        )
    except ObjectNotFound:
        return None
    if inspect.isawaitable(run):  # called from async code: run_deployment returned its coroutine
        raise StateError("submit re-tests from synchronous code", object=deployment)
    return str(run.id)


def schedule_retest(
    session: Session,
    dco_id: str,
    technique_ids: Sequence[str],
    reason: str,
    when: datetime,
    *,
    deployment: str | None = None,
    submit: RetestSubmitter | None = None,
    now: datetime | None = None,
) -> Retest:
    """The re-test for ``reason`` (one per reason: a re-run returns the existing one).

    Its verdict counts only evidence recorded after ``now`` (when it was asked for)."""
    retest_id = followup_id("retest", dco_id, reason)
    existing = session.get(Retest, retest_id)
    if existing is not None:
        return existing
    retest = Retest(
        id=retest_id, dco_id=dco_id, reason=reason, technique_ids=sorted({t.upper() for t in technique_ids}),
        scheduled_for=as_utc(when), created_at=as_utc(now or utcnow()),
    )
    if deployment:
        run_id = (submit or submit_with_prefect)(
            deployment, {"retest_id": retest_id}, as_utc(when), retest_id
        )
        if run_id is not None:
            retest.deployment, retest.flow_run_id = deployment, run_id
    session.add(retest)
    session.flush()
    record_event(session, dco_id, "dcoflow", "retest-scheduled", {
        "retest": retest.id, "techniques": retest.technique_ids, "scheduled_for": retest.scheduled_for.isoformat(),
        "reason": reason, "flow_run_id": retest.flow_run_id,
    })
    return retest


def retest_open_actions(
    session: Session, dco_id: str, actions: Sequence[Mapping[str, Any]], *, deployment: str | None = None
) -> Retest | None:
    """The re-test that will verify the open actions (rows as ``plan_actions`` returns them): their
    techniques, on the first due date at 09:00 UTC; one per (due date, techniques), so re-runs reuse it."""
    open_actions = [a for a in actions if a["status"] != "verified"]
    if not open_actions:
        return None
    techniques = sorted({a["technique"] for a in open_actions})
    first_due = min(a["due"] for a in open_actions)
    when = as_utc(datetime.fromisoformat(first_due)) + timedelta(hours=9)
    return schedule_retest(session, dco_id, techniques, f"follow-up|{first_due}|{','.join(techniques)}", when,
                           deployment=deployment)


def due_retests(session: Session, now: datetime) -> list[Retest]:
    open_ = [r for r in list_retests(session) if r.status in (RetestStatus.SCHEDULED, RetestStatus.RUNNING)]
    return [r for r in open_ if as_utc(r.scheduled_for) <= as_utc(now)]


def record_retest_result(
    session: Session, retest: Retest, verdicts: dict[str, RetestVerdict], now: datetime | None = None
) -> dict[str, list[str]]:
    """Apply a re-test's verdicts: a passed technique verifies its done actions; a failed one reopens
    done and verified actions. Risks whose actions are all verified close. Returns what changed."""
    now = now or utcnow()
    changed: dict[str, list[str]] = {"verified": [], "reopened": [], "closed_risks": []}
    actions = actions_for_techniques(session, retest.dco_id, list(verdicts))
    for action in actions:
        verdict = verdicts[action.technique_id]
        if verdict == "pass" and action.status == ActionStatus.DONE:
            action.status, action.verified_by = ActionStatus.VERIFIED, retest.id
            changed["verified"].append(action.id)
        elif verdict == "fail" and action.status in (ActionStatus.DONE, ActionStatus.VERIFIED):
            action.status, action.verified_by = ActionStatus.REOPENED, None
            changed["reopened"].append(action.id)
        else:
            continue
        action.updated_at = now
        action.version += 1
        session.add(action)
    session.flush()
    changed["closed_risks"] = _close_verified_risks(session, retest, verdicts, now)
    retest.results = dict(sorted(verdicts.items()))
    retest.status = RetestStatus.PASSED if all(v == "pass" for v in verdicts.values()) else RetestStatus.FAILED
    retest.completed_at = now
    session.add(retest)
    record_event(session, retest.dco_id, "dcoflow", "retest-result", {
        "retest": retest.id, "status": retest.status.value, "results": retest.results, **changed,
    })
    session.flush()
    return changed


def _close_verified_risks(
    session: Session, retest: Retest, verdicts: dict[str, RetestVerdict], now: datetime
) -> list[str]:
    """Close the open risks whose techniques all passed and whose actions are all verified (two queries,
    whatever the number of risks)."""
    passed = [r for r in open_risks(session, retest.dco_id)
              if r.technique_ids and all(verdicts.get(t) == "pass" for t in r.technique_ids)]
    by_technique: dict[str, list[Action]] = {}
    for a in actions_for_techniques(session, retest.dco_id, {t for r in passed for t in r.technique_ids}):
        by_technique.setdefault(a.technique_id, []).append(a)
    closed = []
    for risk in passed:
        actions = [a for t in dict.fromkeys(risk.technique_ids) for a in by_technique.get(t, [])]
        if actions and all(a.status == ActionStatus.VERIFIED for a in actions):
            risk.status = RiskStatus.CLOSED
            # Verified controls: what remains is the rare case of a bypass of a detected technique.
            risk.residual_likelihood, risk.residual_impact = 1, risk.impact
            risk.updated_at, risk.version = now, risk.version + 1
            session.add(risk)
            closed.append(risk.id)
    return closed


ConductStarter = Callable[[str, list[str]], None]


def run_due_retests(
    session: Session,
    now: datetime | None = None,
    *,
    retest_id: str | None = None,
    start_conduct: ConductStarter | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every due re-test (or one) against the evidence recorded since it was scheduled.

    Complete evidence → verdicts applied. Missing evidence → conduct is started for the missing
    techniques once (``start_conduct``, e.g. the conduct deployment) and the re-test waits (running).
    """
    now = now or utcnow()
    retests = [get_retest(session, retest_id)] if retest_id else due_retests(session, now)
    report = []
    for retest in retests:
        if retest.status in (RetestStatus.PASSED, RetestStatus.FAILED):
            report.append({"retest": retest.id, "status": retest.status.value, "changed": {}})
            continue
        sightings = latest_objects(session, retest.dco_id, ["sighting"])
        # A threat hunt (no emulation) re-tests by hunting again: its hunt runs count, hit or clean.
        hunt_only = not get_operation(session, retest.dco_id).dco.type.emulates
        hunt_runs = latest_objects(session, retest.dco_id, ["grouping"]) if hunt_only else []
        verdicts: dict[str, RetestVerdict] = {}
        missing = []
        for tid in retest.technique_ids:
            verdict = retest_verdict(tid, sightings, retest.created_at)
            if verdict is None and hunt_only:
                verdict = hunt_retest_verdict(tid, hunt_runs, retest.created_at)
            if verdict is None:
                missing.append(tid)
            else:
                verdicts[tid] = verdict
        if missing:
            if retest.status == RetestStatus.SCHEDULED and start_conduct is not None:
                start_conduct(retest.dco_id, missing)
                retest.status = RetestStatus.RUNNING
                session.add(retest)
            report.append({"retest": retest.id, "status": retest.status.value, "waiting_for": missing})
            continue
        changed = record_retest_result(session, retest, verdicts, now)
        report.append({"retest": retest.id, "status": retest.status.value, "changed": changed})
    session.flush()
    return report


def retest_row(r: Retest) -> dict[str, Any]:
    return {
        "id": r.id, "dco": r.dco_id, "reason": r.reason, "techniques": r.technique_ids,
        "scheduled_for": as_utc(r.scheduled_for).isoformat(), "deployment": r.deployment,
        "flow_run_id": r.flow_run_id, "status": r.status.value, "results": r.results,
    }


# -- Prefect wrappers ------------------------------------------------------------------------------------


def run_due_retests_batch(retest_id: str | None = None, conduct_deployment: str | None = None) -> list[dict[str, Any]]:
    starter: ConductStarter | None = None
    if conduct_deployment:
        deployment = conduct_deployment

        def starter(dco_id: str, techniques: list[str]) -> None:
            submit_with_prefect(
                deployment, {"dco": dco_id, "techniques": techniques}, utcnow(),
                f"retest-conduct|{dco_id}|{','.join(techniques)}",
            )

    with session_scope() as session:
        return run_due_retests(session, retest_id=retest_id, start_conduct=starter)


run_due_retests_task = task(name="run-due-retests", cache_policy=NO_CACHE,
                            retry_condition_fn=retry_when_retryable, retries=2)(run_due_retests_batch)
