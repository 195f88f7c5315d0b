"""Risks from gaps and findings, decisions on them, and what expired acceptances trigger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.connectors.content.governance_file import load_governance
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.models.attack import Catalog
from dcoflow.models.followup import (
    DecisionPolicy,
    FindingInput,
    GapInput,
    Retest,
    Risk,
    RiskDecision,
    RiskDraft,
    RiskStatus,
    ScopeImpact,
    Targets,
    TechniqueContext,
    Treatment,
    as_utc,
    expired_acceptances,
    needs_decision,
    risk_from_finding,
    risk_from_gap,
    threat_levels,
    validate_decision,
)
from dcoflow.models.governance import Governance, WorkArea, places
from dcoflow.models.operation import Operation, utcnow
from dcoflow.models.repository.followup import decisions_for, get_risk, last_decision, list_risks
from dcoflow.models.repository.operation import get_operation, locked, record_event
from dcoflow.tasks.follow_up.retests import RetestSubmitter, schedule_retest
from dcoflow.tasks.retry import retry_when_retryable


def technique_context(catalog: Catalog | None, technique_id: str) -> TechniqueContext:
    """The technique's platforms and tactics from the catalog (empty without one, or for an unknown id)."""
    if catalog is None:
        return TechniqueContext()
    res = catalog.resolve(technique_id, warn=False)
    tech = catalog.get_technique(res.attack_id) if res.attack_id else None
    if tech is None:
        return TechniqueContext()
    return TechniqueContext(tuple(tech.platforms), tuple(tech.tactics))


def risk_owner(op: Operation, governance: Governance) -> str:
    """The organisation the RACI makes responsible for risks in the DCO's scope (most critical place first)."""
    scope = op.dco.scope
    return governance.owner(WorkArea.RISK, places(ScopeImpact.of(scope).reached(), scope.enclaves))


def derive_risks(
    session: Session,
    dco_id: str,
    gaps: Sequence[GapInput],
    findings: Sequence[FindingInput],
    *,
    catalog: Catalog | None = None,
    governance: Governance | None = None,
    targets: Targets | None = None,
    today: date | None = None,
) -> list[Risk]:
    """Store one risk per gap and per finding; a re-run updates scores in place (new version), never duplicates.

    Impact comes from the scope's asset groups the technique reaches (platforms and tactics from ``catalog``);
    the owner, the deciding body and the decide-by date from ``governance`` (the configured file when None);
    likelihood measures the shortfall against ``targets`` (the assessment's; the usual 3/2 when None)."""
    governance = governance or load_governance()
    policy = governance.policy
    op = get_operation(session, dco_id)
    today = today or utcnow().date()
    scope, owner = ScopeImpact.of(op.dco.scope), risk_owner(op, governance)
    threats = threat_levels([g.relevance for g in gaps]) if gaps else []
    drafts: list[RiskDraft] = [
        risk_from_gap(op.id, g, scope, owner, today, policy, targets=targets, threat=t,
                      technique=technique_context(catalog, g.technique_id)) for g, t in zip(gaps, threats, strict=True)]
    drafts += [risk_from_finding(op.id, f, scope, owner, today, policy,
                                 technique=technique_context(catalog, f.technique_id)) for f in findings]
    risks = []
    for draft in drafts:
        risks.append(_upsert_risk(session, draft, policy))
    session.flush()
    return risks


def _upsert_risk(session: Session, draft: RiskDraft, policy: DecisionPolicy) -> Risk:
    risk = session.get(Risk, draft.id)
    if risk is None:
        risk = Risk(
            id=draft.id, dco_id=draft.dco_id, source_key=draft.source_key, statement=draft.statement,
            technique_ids=draft.technique_ids, likelihood=draft.likelihood, impact=draft.impact, score=draft.score,
            owner=draft.owner, review_date=draft.review_date, decision_body=policy.body_for(draft.score),
        )
        session.add(risk)
        return risk
    # A re-run rescores; the owner stays as reassigned (``reassign_risk``), the statement follows the evidence.
    if risk.status != RiskStatus.CLOSED and (risk.likelihood, risk.impact, risk.statement) != (
        draft.likelihood, draft.impact, draft.statement
    ):
        risk.likelihood, risk.impact, risk.score = draft.likelihood, draft.impact, draft.score
        risk.statement = draft.statement
        risk.decision_body = policy.body_for(draft.score)
        risk.updated_at = utcnow()
        risk.version += 1
        session.add(risk)
    return risk


def reassign_risk(
    session: Session,
    risk_id: str,
    actor: str,
    reason: str,
    *,
    owner: str | None = None,
    review_date: date | None = None,
    governance: Governance | None = None,
    via: str | None = None,
    now: datetime | None = None,
) -> Risk:
    """Give a risk another owner (an organisation of the governance) and/or decide-by date, audited."""
    if owner is None and review_date is None:
        raise ValidationError("say the new owner or the new review date", field="owner", object=risk_id)
    if not reason.strip():
        raise ValidationError("say why the risk is reassigned", field="reason", object=risk_id)
    risk = get_risk(session, risk_id)
    before = {"owner": risk.owner, "review_date": risk.review_date.isoformat()}
    if owner is not None:
        risk.owner = (governance or load_governance()).organisation(owner, risk.id)
    if review_date is not None:
        risk.review_date = review_date
    risk.updated_at = now or utcnow()
    risk.version += 1
    session.add(risk)
    session.flush()
    record_event(session, risk.dco_id, actor, "risk-reassigned", {
        "risk": risk.id, "from": before, "to": {"owner": risk.owner, "review_date": risk.review_date.isoformat()},
        "reason": reason.strip(), "via": via,
    })
    return risk


def risk_now(session: Session, risk: Risk) -> dict[str, Any]:
    """What a risk is now, for a ConflictError: its treatment, status, version and the decision in force."""
    last = last_decision(session, risk.id)
    return {"treatment": risk.treatment.value, "status": risk.status.value,
            "version": risk.version,
            "decision": f"{last.decision.value} by {last.authority} ({last.decided_by})" if last else None}


def record_decision(
    session: Session,
    risk_id: str,
    decision: Treatment,
    authority: str,
    rationale: str,
    actor: str,
    *,
    expires_at: datetime | None = None,
    now: datetime | None = None,
    policy: DecisionPolicy | None = None,
    residual: tuple[int, int] | None = None,
    expected_version: int | None = None,
) -> RiskDecision:
    """Record a decision by ``authority`` (checked against the policy) and apply it to the risk.

    The risk is locked and must still be at ``expected_version`` (default: as just read): of decisions given
    at once exactly one is applied; the others get a ConflictError showing the decision now in force.
    """
    policy = policy or load_governance().policy
    now = now or utcnow()
    risk = get_risk(session, risk_id)
    risk = locked(session, risk, risk.version if expected_version is None else expected_version,
                  f"risk {risk.id}", risk_now)
    validate_decision(risk, decision, authority, expires_at, now, policy)
    row = RiskDecision(
        risk_id=risk.id, decision=decision, authority=authority, decided_by=actor, decided_at=now,
        expires_at=expires_at, rationale=rationale,
    )
    session.add(row)
    risk.treatment = decision
    risk.status = RiskStatus.ACCEPTED if decision == Treatment.ACCEPT else RiskStatus.OPEN
    if residual is not None:
        risk.residual_likelihood, risk.residual_impact = residual
    risk.updated_at = now
    risk.version += 1
    session.add(risk)
    session.flush()
    record_event(session, risk.dco_id, actor, "risk-decision", {
        "risk": risk.id, "decision": decision.value, "authority": authority,
        "expires_at": expires_at.isoformat() if expires_at else None, "rationale": rationale,
    })
    return row


def risks_needing_decision(
    session: Session, now: datetime | None = None, *, dco_id: str | None = None, policy: DecisionPolicy | None = None,
    risks: Sequence[Risk] | None = None,
) -> list[tuple[Risk, str]]:
    """Risks with no decision in force that need one, with the body that must decide, worst first
    (of ``risks`` when the caller has read them already, as ``list_risks`` orders them)."""
    policy = policy or load_governance().policy
    now = now or utcnow()
    risks = list_risks(session, dco_id=dco_id) if risks is None else risks
    by_risk: dict[str, list[RiskDecision]] = {}
    for d in decisions_for(session, [r.id for r in risks]):
        by_risk.setdefault(d.risk_id, []).append(d)
    out = []
    for risk in risks:
        body = needs_decision(risk, by_risk.get(risk.id, []), now, policy)
        if body is not None:
            out.append((risk, body))
    return out


def handle_expired_acceptances(
    session: Session,
    now: datetime | None = None,
    *,
    deployment: str | None = None,
    submit: RetestSubmitter | None = None,
) -> list[Retest]:
    """Every acceptance whose expiry passed puts its risk back for review and schedules a re-test
    of its techniques (once: the decision remembers it was handled)."""
    now = now or utcnow()
    retests = []
    for decision in expired_acceptances(decisions_for(session), now):
        risk = get_risk(session, decision.risk_id)
        retest = schedule_retest(
            session, risk.dco_id, risk.technique_ids, f"acceptance-expired|{decision.id}", now,
            deployment=deployment, submit=submit, now=now,
        )
        decision.expiry_handled_at = now
        risk.status = RiskStatus.REVIEW
        risk.updated_at = now
        risk.version += 1
        session.add_all([decision, risk])
        record_event(session, risk.dco_id, "dcoflow", "acceptance-expired", {
            "risk": risk.id, "decision": decision.id, "authority": decision.authority,
            "expired_at": as_utc(decision.expires_at).isoformat() if decision.expires_at else None,
            "retest": retest.id,
        })
        retests.append(retest)
    session.flush()
    return retests


def risk_row(risk: Risk, body: str | None = None) -> dict[str, Any]:
    return {
        "id": risk.id, "dco": risk.dco_id, "statement": risk.statement, "techniques": risk.technique_ids,
        "likelihood": risk.likelihood, "impact": risk.impact, "score": risk.score, "owner": risk.owner,
        "treatment": risk.treatment.value, "status": risk.status.value, "residual": risk.residual_score,
        "review_date": risk.review_date.isoformat(), "decision_body": body or risk.decision_body,
        "version": risk.version,
    }


# -- Prefect wrappers ------------------------------------------------------------------------------------


def expire_acceptances_batch(deployment: str | None = None) -> list[str]:
    with session_scope() as session:
        return [r.id for r in handle_expired_acceptances(session, deployment=deployment)]


expire_acceptances_task = task(name="expire-acceptances", cache_policy=NO_CACHE,
                               retry_condition_fn=retry_when_retryable, retries=2)(expire_acceptances_batch)
