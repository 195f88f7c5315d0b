"""The assessment as stored: the score log (one AssessmentRun per assessment, a TechniqueScore per technique)
and the rows evidence is read from besides STIX (hunt runs without data, the emulation path, plans,
hypotheses, imported DeTT&CT entries), as functions over a caller's Session."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from dcoflow.models.assessment_rows import AssessmentRun, ImportedEvidence, TechniqueScore
from dcoflow.models.hunt_run import HuntRun
from dcoflow.models.plan import EmulationStep, HuntHypothesis, PlanRecord
from dcoflow.models.stix.rows import StixObjectRow

# -- the score log --------------------------------------------------------------------------------------


def runs(session: Session, dco_id: str | None = None) -> list[AssessmentRun]:
    stmt = select(AssessmentRun).order_by(col(AssessmentRun.assessed_at))
    if dco_id is not None:
        stmt = stmt.where(AssessmentRun.dco_id == dco_id)
    return list(session.exec(stmt))


def run_scores(session: Session, run_id: str) -> list[TechniqueScore]:
    stmt = select(TechniqueScore).where(TechniqueScore.run_id == run_id).order_by(col(TechniqueScore.technique_id))
    return list(session.exec(stmt))


def latest_scores(session: Session, dco_id: str, back: int = 0) -> list[TechniqueScore]:
    """The scores of the DCO's newest assessment (``back=1``: the one before it)."""
    found = runs(session, dco_id)
    if len(found) <= back:
        return []
    return run_scores(session, found[-1 - back].id)


def newest_and_previous_scores(session: Session, dco_id: str) -> tuple[list[TechniqueScore], list[TechniqueScore]]:
    """The scores of the DCO's newest assessment and of the one before it (empty when there is none), in two
    queries: what ``latest_scores`` and ``latest_scores(back=1)`` give."""
    found = runs(session, dco_id)[-2:]
    if not found:
        return [], []
    stmt = (select(TechniqueScore).where(col(TechniqueScore.run_id).in_([r.id for r in found]))
            .order_by(col(TechniqueScore.technique_id)))
    by_run: dict[str, list[TechniqueScore]] = {r.id: [] for r in found}
    for score in session.exec(stmt):
        by_run[score.run_id].append(score)
    return by_run[found[-1].id], by_run[found[0].id] if len(found) == 2 else []


def score_history(session: Session, dco_id: str, technique_id: str) -> list[TechniqueScore]:
    stmt = (select(TechniqueScore).where(TechniqueScore.dco_id == dco_id, TechniqueScore.technique_id == technique_id)
            .order_by(col(TechniqueScore.assessed_at)))
    return list(session.exec(stmt))


@dataclass(slots=True, frozen=True)
class TrendPoint:
    dco_id: str
    assessed_at: datetime
    techniques: int
    mean_visibility: float
    mean_detection: float
    detected: int


def trend(session: Session, dco_ids: Sequence[str] | None = None) -> list[TrendPoint]:
    """One point per assessment run, across DCOs, oldest first then by DCO (one aggregate query)."""
    detected = func.sum(case((col(TechniqueScore.detection) >= 0.5, 1), else_=0))  # reaches(score, 1), in SQL
    query = (
        sa_select(col(TechniqueScore.dco_id), col(TechniqueScore.assessed_at), func.count(),
               func.avg(col(TechniqueScore.visibility)), func.avg(col(TechniqueScore.detection)), detected)
        .group_by(col(TechniqueScore.dco_id), col(TechniqueScore.assessed_at))
        .order_by(col(TechniqueScore.assessed_at), col(TechniqueScore.dco_id))
    )
    if dco_ids:
        query = query.where(col(TechniqueScore.dco_id).in_(list(dco_ids)))
    return [
        TrendPoint(d, at if at.tzinfo else at.replace(tzinfo=UTC), int(n), round(float(v or 0), 2),
                   round(float(det or 0), 2), int(k or 0))
        for d, at, n, v, det, k in session.execute(query).all()
    ]


# -- what evidence is read from -----------------------------------------------------------------------


def stix_objects_of_types(
    session: Session, dco_id: str | None, types: Sequence[str]
) -> Iterable[Mapping[str, Any]]:
    """Every stored version of the DCO's (or every DCO's) STIX objects of ``types``, streamed."""
    stmt = select(StixObjectRow.object).where(col(StixObjectRow.type).in_(list(types)))
    if dco_id is not None:
        stmt = stmt.where(StixObjectRow.dco_id == dco_id)
    return session.exec(stmt)


def hunt_rules_without_data(session: Session, dco_id: str | None) -> dict[str, list[str]]:
    """Per hunt run, the rules that had no log source to read."""
    stmt = select(HuntRun.id, HuntRun.no_logsource)
    if dco_id is not None:
        stmt = stmt.where(HuntRun.dco_id == dco_id)
    return {run_id: list(rules or []) for run_id, rules in session.exec(stmt)}


def emulated_techniques(session: Session, dco_id: str | None) -> list[str]:
    """The technique of every emulation step (the attack path), as stored."""
    stmt = select(EmulationStep.technique_id)
    if dco_id is not None:
        stmt = stmt.where(EmulationStep.dco_id == dco_id)
    return list(session.exec(stmt))


def plan_records(session: Session, dco_id: str | None) -> dict[str, PlanRecord]:
    stmt = select(PlanRecord)
    if dco_id is not None:
        stmt = stmt.where(PlanRecord.dco_id == dco_id)
    return {p.dco_id: p for p in session.exec(stmt)}


def hunt_hypotheses(session: Session, dco_id: str | None) -> list[HuntHypothesis]:
    stmt = select(HuntHypothesis)
    if dco_id is not None:
        stmt = stmt.where(HuntHypothesis.dco_id == dco_id)
    return list(session.exec(stmt))


def imported_evidence(session: Session, dco_id: str | None) -> list[ImportedEvidence]:
    stmt = select(ImportedEvidence)
    if dco_id is not None:
        stmt = stmt.where(ImportedEvidence.dco_id == dco_id)
    return list(session.exec(stmt))
