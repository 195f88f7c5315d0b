"""One follow-up of a DCO — the single function behind the lifecycle's follow-up step, the deployment
the ``dco.phase.follow-up`` trigger runs, and the CLI: the DCO's latest stored assessment (its ranked
gaps) and its confirmed findings → risks → owned actions → the re-test that verifies them → expired
acceptances re-tested. Whoever calls it on the same data gets the same risks and actions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.connectors.content.governance_file import load_governance
from dcoflow.core.db import session_scope
from dcoflow.models.attack import Catalog
from dcoflow.models.followup import FindingInput, GapInput, Targets
from dcoflow.models.governance import Governance
from dcoflow.models.repository.assessment import latest_scores, runs
from dcoflow.models.repository.followup import list_actions
from dcoflow.models.repository.operation import get_operation
from dcoflow.tasks.follow_up.actions import action_row, plan_actions
from dcoflow.tasks.follow_up.escalation import findings_from_store
from dcoflow.tasks.follow_up.retests import retest_open_actions, retest_row
from dcoflow.tasks.follow_up.risks import derive_risks, handle_expired_acceptances, risk_row
from dcoflow.tasks.retry import retry_when_retryable

DEFAULT_GAP_LIMIT = 50


def latest_targets(session: Session, dco_id: str) -> Targets:
    """The detection/visibility targets the DCO's newest assessment measured gaps against."""
    found = runs(session, dco_id)
    summary = found[-1].summary if found else {}
    defaults = Targets()
    return Targets(detection=int(summary.get("target_detection", defaults.detection)),
                   visibility=int(summary.get("target_visibility", defaults.visibility)))


def latest_gaps(
    session: Session, dco_id: str, catalog: Catalog | None = None, limit: int = DEFAULT_GAP_LIMIT
) -> list[GapInput]:
    """The ranked gaps of the DCO's newest stored assessment (rank 1 = worst, as the assessment ranked
    them), relevance as a share of the most relevant gap's; empty when the DCO was never assessed."""
    ranked = sorted(
        (s for s in latest_scores(session, dco_id) if s.explanation.get("gap_rank") is not None),
        key=lambda s: (int(s.explanation["gap_rank"]), s.technique_id),
    )
    top = max((s.relevance for s in ranked), default=1.0) or 1.0

    def name(tid: str) -> str:
        tech = catalog.get_technique(tid) if catalog is not None else None
        return tech.name if tech is not None else ""

    return [
        GapInput(
            technique_id=s.technique_id, technique_name=name(s.technique_id),
            visibility=max(0, min(4, round(s.visibility))), detection=max(-1, min(5, round(s.detection))),
            relevance=round(min(1.0, max(0.0, s.relevance / top)), 4), rank=rank,
            reason=str(s.explanation.get("gap_reason", "")),
        )
        for rank, s in enumerate(ranked[:limit], start=1)
    ]


@dataclass(slots=True)
class FollowUpResult:
    dco_id: str
    gaps: int
    findings: list[FindingInput]
    risks: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    report: str
    retest: dict[str, Any] | None
    expired_acceptance_retests: list[str] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)  # the DCO's actions past due, as rows

    def summary(self) -> dict[str, Any]:
        return {"dco": self.dco_id, "gaps": self.gaps, "risks": len(self.risks), "actions": len(self.actions),
                "retest": self.retest["id"] if self.retest else None,
                "expired_acceptance_retests": self.expired_acceptance_retests,
                "findings": sum(1 for f in self.findings if f.escalates)}


def run_follow_up(
    session: Session,
    dco: str,
    catalog: Catalog,
    *,
    gaps: Sequence[GapInput] | None = None,
    findings: Sequence[FindingInput] = (),
    governance: Governance | None = None,
    retest_deployment: str | None = None,
    today: date | None = None,
    gap_limit: int = DEFAULT_GAP_LIMIT,
) -> FollowUpResult:
    """Follow up a DCO. ``gaps`` None: those of its latest stored assessment; ``findings`` adds to the
    confirmed findings recorded as STIX. Idempotent: a re-run updates in place and adds nothing twice."""
    governance = governance or load_governance()
    dco_id = get_operation(session, dco).id
    gap_list = list(gaps) if gaps is not None else latest_gaps(session, dco_id, catalog, gap_limit)
    given = list(findings)
    known = {f.key for f in given}
    all_findings = given + [f for f in findings_from_store(session, dco_id) if f.key not in known]
    risks = derive_risks(session, dco_id, gap_list, all_findings, catalog=catalog, governance=governance,
                         targets=latest_targets(session, dco_id), today=today)
    actions, report = plan_actions(session, dco_id, gap_list, all_findings, catalog, governance=governance,
                                   today=today)
    rows = [action_row(a) for a in actions]
    retest = retest_open_actions(session, dco_id, rows, deployment=retest_deployment)
    expired = handle_expired_acceptances(session, deployment=retest_deployment)
    return FollowUpResult(
        dco_id=dco_id, gaps=len(gap_list), findings=all_findings, risks=[risk_row(r) for r in risks], actions=rows,
        report=report.summary(), retest=retest_row(retest) if retest is not None else None,
        expired_acceptance_retests=[r.id for r in expired],
        overdue=[action_row(a) for a in list_actions(session, dco_id=dco_id, overdue_only=True)],
    )


# -- Prefect wrapper ------------------------------------------------------------------------------------


def _run_follow_up(
    dco: str, attack_source: str | None = None, gaps: list[GapInput] | None = None,
    findings: list[FindingInput] | None = None, retest_deployment: str | None = None,
) -> FollowUpResult:
    from dcoflow.connectors.attack import load_catalog

    catalog = load_catalog(attack_source)
    with session_scope() as session:
        return run_follow_up(session, dco, catalog, gaps=gaps, findings=findings or (),
                             retest_deployment=retest_deployment)


run_follow_up_task = task(name="follow-up", cache_policy=NO_CACHE, retry_condition_fn=retry_when_retryable,
                          retries=2)(_run_follow_up)
