"""Follow-up as stored: risks and their decisions, actions, re-tests and incidents, as functions over a
caller's Session. Rules (transitions, SLAs, verdicts) stay in ``dcoflow.models.followup``; the writes that
apply them are in ``dcoflow.tasks.follow_up``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from sqlmodel import Session, col, select

from dcoflow.models.followup import (
    Action,
    Incident,
    IncidentStatus,
    Retest,
    Risk,
    RiskDecision,
    RiskStatus,
)
from dcoflow.models.operation import utcnow
from dcoflow.models.repository.operation import get_or_raise

# -- risks and decisions ------------------------------------------------------------------------------


def get_risk(session: Session, risk_id: str) -> Risk:
    return get_or_raise(session, Risk, risk_id, "risk", "see `dco followup risks`")


def risks_by_id(session: Session, risk_ids: Collection[str]) -> dict[str, Risk]:
    """The risks of ``risk_ids`` that exist, in one query."""
    if not risk_ids:
        return {}
    return {r.id: r for r in session.exec(select(Risk).where(col(Risk.id).in_(list(risk_ids))))}


def list_risks(session: Session, *, dco_id: str | None = None) -> list[Risk]:
    """Worst first, then by id."""
    stmt = select(Risk).order_by(col(Risk.score).desc(), col(Risk.id))
    if dco_id is not None:
        stmt = stmt.where(Risk.dco_id == dco_id)
    return list(session.exec(stmt))


def risks_by_source(session: Session, dco_id: str) -> dict[str, Risk]:
    """The DCO's risks by what raised them (``gap|T…``, ``finding|…``)."""
    return {r.source_key: r for r in session.exec(select(Risk).where(Risk.dco_id == dco_id))}


def open_risks(session: Session, dco_id: str) -> list[Risk]:
    """The DCO's risks still open (no decision closed or accepted them), in storage order."""
    return list(session.exec(select(Risk).where(Risk.dco_id == dco_id, Risk.status == RiskStatus.OPEN)))


def decisions_for(session: Session, risk_ids: Sequence[str] | None = None) -> list[RiskDecision]:
    """Decisions in the order taken (all of them, or those on ``risk_ids``)."""
    stmt = select(RiskDecision).order_by(col(RiskDecision.id))
    if risk_ids is not None:
        stmt = stmt.where(col(RiskDecision.risk_id).in_(list(risk_ids)))
    return list(session.exec(stmt))


def last_decision(session: Session, risk_id: str) -> RiskDecision | None:
    stmt = select(RiskDecision).where(RiskDecision.risk_id == risk_id).order_by(col(RiskDecision.id).desc())
    return session.exec(stmt).first()


# -- actions --------------------------------------------------------------------------------------------


def get_action(session: Session, action_id: str) -> Action:
    return get_or_raise(session, Action, action_id, "action", "see `dco followup actions`")


def list_actions(
    session: Session, *, dco_id: str | None = None, overdue_only: bool = False, today: date | None = None
) -> list[Action]:
    """By due date, then id; ``overdue_only``: those past due on ``today`` and not done."""
    today = today or utcnow().date()
    stmt = select(Action).order_by(col(Action.due_date), col(Action.id))
    if dco_id is not None:
        stmt = stmt.where(Action.dco_id == dco_id)
    actions = list(session.exec(stmt))
    return [a for a in actions if a.overdue(today)] if overdue_only else actions


def actions_for_techniques(session: Session, dco_id: str, technique_ids: Collection[str]) -> list[Action]:
    """The DCO's actions on any of ``technique_ids``, in one query."""
    if not technique_ids:
        return []
    stmt = select(Action).where(Action.dco_id == dco_id, col(Action.technique_id).in_(list(technique_ids)))
    return list(session.exec(stmt))


# -- re-tests -------------------------------------------------------------------------------------------


def get_retest(session: Session, retest_id: str) -> Retest:
    return get_or_raise(session, Retest, retest_id, "re-test", "see `dco followup retests`")


def list_retests(session: Session, *, dco_id: str | None = None) -> list[Retest]:
    stmt = select(Retest).order_by(col(Retest.scheduled_for), col(Retest.id))
    if dco_id is not None:
        stmt = stmt.where(Retest.dco_id == dco_id)
    return list(session.exec(stmt))


# -- incidents ------------------------------------------------------------------------------------------


def incidents_by_finding(session: Session, finding_keys: Collection[str]) -> list[Incident]:
    if not finding_keys:
        return []
    return list(session.exec(select(Incident).where(col(Incident.finding_key).in_(list(finding_keys)))))


def unacknowledged_incidents(session: Session, *, dco_id: str | None = None) -> list[Incident]:
    """Incidents some channel has not accepted yet, by id."""
    stmt = select(Incident).where(col(Incident.status) != IncidentStatus.ACKNOWLEDGED).order_by(col(Incident.id))
    if dco_id is not None:
        stmt = stmt.where(Incident.dco_id == dco_id)
    return list(session.exec(stmt))


def list_incidents(session: Session, *, dco_id: str | None = None) -> list[Incident]:
    stmt = select(Incident).order_by(col(Incident.created_at), col(Incident.id))
    if dco_id is not None:
        stmt = stmt.where(Incident.dco_id == dco_id)
    return list(session.exec(stmt))
