"""The follow-up register as people read and change it: one function per `dco followup …` command (and what
the follow-up flows read back), each in its own session, returning the rows the CLI prints and the flows emit.

The rules live in ``actions``, ``risks`` and ``retests``; the queries in ``dcoflow.models.repository.followup``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from dcoflow.core.db import session_scope
from dcoflow.models.followup import ActionStatus, Treatment
from dcoflow.models.repository.followup import get_retest, list_actions, list_incidents, list_retests, list_risks
from dcoflow.tasks.follow_up.actions import action_row, reassign_action, update_action_status
from dcoflow.tasks.follow_up.escalation import incident_payload
from dcoflow.tasks.follow_up.retests import retest_row
from dcoflow.tasks.follow_up.risks import reassign_risk, record_decision, risk_row, risks_needing_decision


def actions(dco_id: str | None = None, *, overdue_only: bool = False) -> list[dict[str, Any]]:
    """Actions with owner, due date, status and the overdue flag (`dco followup actions`)."""
    with session_scope() as session:
        return [action_row(a) for a in list_actions(session, dco_id=dco_id, overdue_only=overdue_only)]


def set_action_status(action_id: str, status: ActionStatus, actor: str, *,
                      expected_version: int | None = None) -> dict[str, Any]:
    """An owner moves an action (`dco followup action-update`); verification is the re-test's."""
    with session_scope() as session:
        return action_row(update_action_status(session, action_id, status, actor, expected_version=expected_version))


def risks(dco_id: str | None = None, *, needs_decision: bool = False) -> list[dict[str, Any]]:
    """Risks worst first, or those awaiting a decision with the body that must take it (`dco followup risks`)."""
    with session_scope() as session:
        if needs_decision:
            return [risk_row(r, body) for r, body in risks_needing_decision(session, dco_id=dco_id)]
        return [risk_row(r) for r in list_risks(session, dco_id=dco_id)]


def decide_risk(risk_id: str, decision: Treatment, authority: str, rationale: str, actor: str, *,
                expires_at: datetime | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Record a decision on a risk in the register (`dco followup decide`)."""
    with session_scope() as session:
        row = record_decision(session, risk_id, decision, authority, rationale, actor, expires_at=expires_at,
                              expected_version=expected_version)
        return {"risk": row.risk_id, "decision": row.decision.value, "authority": row.authority,
                "expires_at": row.expires_at.isoformat() if row.expires_at else None, "id": row.id}


def reassign(ref: str, actor: str, reason: str, *, owner: str | None = None, due: date | None = None,
             expected_version: int | None = None) -> dict[str, Any]:
    """Another owner and/or date for an action (``act-…``) or a risk (``risk-…``), audited (`dco followup reassign`)."""
    with session_scope() as session:
        if ref.startswith("risk-"):
            r = reassign_risk(session, ref, actor, reason, owner=owner, review_date=due)
            return {"risk": r.id, "owner": r.owner, "review_date": r.review_date.isoformat(), "version": r.version}
        a = reassign_action(session, ref, actor, reason, owner=owner, due=due, expected_version=expected_version)
        return {"action": a.id, "owner": a.owner, "due": a.due_date.isoformat(), "version": a.version}


def incidents(dco_id: str | None = None) -> list[dict[str, Any]]:
    """Incidents with their delivery status (`dco followup incidents`)."""
    with session_scope() as session:
        return [incident_payload(i) for i in list_incidents(session, dco_id=dco_id)]


def retests(dco_id: str | None = None) -> list[dict[str, Any]]:
    """Re-tests with their techniques, schedule, flow run, status and results (`dco followup retests`)."""
    with session_scope() as session:
        return [retest_row(r) for r in list_retests(session, dco_id=dco_id)]


def retests_by_id(retest_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of the given re-tests, in that order (what the re-test flows announce)."""
    with session_scope() as session:
        return [retest_row(get_retest(session, rid)) for rid in retest_ids]
