"""Assess a DCO: read its evidence once, score every technique, rank the gaps, log the scores.

Technique ids in evidence come from many releases (Sigma and atomics already use v19 ids, emulation
plans v7–13): each distinct id is resolved once against the catalog; revoked ids move to their
replacement, newer-release ids to their id here (models/attack/newer_ids.py), unknown and deprecated
ids are kept under their own id, and all are reported (``id_report_lines``: one line for the moved ids).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from dcoflow.core.db import upsert
from dcoflow.core.errors import DcoError
from dcoflow.models.assessment import (
    DEFAULT_HALF_LIFE_DAYS,
    Evidence,
    Gap,
    Relevance,
    Targets,
    TechniqueAssessment,
    assess_evidence,
    rank_gaps,
    reaches,
    threat_relevance,
)
from dcoflow.models.assessment_rows import AssessmentRun, TechniqueScore
from dcoflow.models.attack import Catalog
from dcoflow.models.operation import Operation
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.stix.ids import row_id
from dcoflow.tasks.assess.evidence import evidence_from_catalog, load_evidence

if TYPE_CHECKING:
    from dcoflow.core.settings import Settings


@dataclass(slots=True, frozen=True)
class IdNote:
    """A technique id that did not map one-to-one onto the loaded release."""

    requested: str
    status: str  # revoked / deprecated / unknown / not-found (threat profile entries)
    attack_id: str | None
    note: str
    records: int = 0


def id_report_lines(notes: Sequence[IdNote]) -> list[str]:
    """The id report for people: one line for all ids a newer ATT&CK release moved (v19's T1685 →
    T1562.001 …, with their record counts), then one line per other note (revoked, unknown …)."""
    newer = [n for n in notes if n.status == "newer-release"]
    lines = []
    if newer:
        lines.append(f"{len(newer)} ids of a newer ATT&CK release mapped (models/attack/newer_ids.py): " + ", ".join(
            f"{n.requested}→{n.attack_id}" + (f" ×{n.records}" if n.records else "") for n in newer))
    lines.extend(f"{n.status} {n.requested}: {n.note}" for n in notes if n.status != "newer-release")
    return lines


@dataclass(slots=True)
class AssessmentResult:
    dco_id: str
    run_id: str
    assessed_at: datetime
    attack_version: str
    half_life_days: float
    assessments: dict[str, TechniqueAssessment]
    gaps: list[Gap]
    relevance: dict[str, Relevance]
    id_report: list[IdNote] = field(default_factory=list)
    evidence_report: str = ""
    evidence_count: int = 0
    unmapped_channels: dict[str, int] = field(default_factory=dict)
    targets: Targets = field(default_factory=Targets)
    out_of_scope: dict[str, int] = field(default_factory=dict)  # technique → evidence records, not scored

    def out_of_scope_line(self) -> str:
        """Evidence about techniques outside the DCO's plan, in one line (reported, not scored)."""
        if not self.out_of_scope:
            return ""
        listed = ", ".join(f"{t} ×{n}" for t, n in sorted(self.out_of_scope.items())[:15])
        more = f" and {len(self.out_of_scope) - 15} more" if len(self.out_of_scope) > 15 else ""
        return (f"{len(self.out_of_scope)} techniques outside the DCO's plan have evidence "
                f"({sum(self.out_of_scope.values())} records), reported, not scored: {listed}{more}")

    @property
    def real_hits(self) -> int:
        return sum(a.real_hits for a in self.assessments.values())

    @property
    def exercise_hits(self) -> int:
        return sum(a.exercise_hits for a in self.assessments.values())

    def summary(self) -> dict[str, Any]:
        scores = list(self.assessments.values())
        n = len(scores) or 1
        return {
            "techniques": len(scores),
            "evidence": self.evidence_count,
            "mean_visibility": round(sum(a.visibility.value for a in scores) / n, 2),
            "mean_detection": round(sum(a.detection.value for a in scores) / n, 2),
            "detected": sum(1 for a in scores if reaches(a.detection.value, 1)),
            "visible": sum(1 for a in scores if reaches(a.visibility.value, 1)),
            "hunted": sum(1 for a in scores if a.coverage.hunted),
            "hunted_clean": sum(1 for a in scores if a.coverage.clean),
            "gaps": len(self.gaps),
            "target_detection": self.targets.detection,
            "target_visibility": self.targets.visibility,
            "out_of_scope": len(self.out_of_scope),
            "real_hits": self.real_hits,
            "exercise_hits": self.exercise_hits,
            "ids_reported": len(self.id_report),
        }


def resolve_evidence(evidence: list[Evidence], catalog: Catalog) -> tuple[list[Evidence], list[IdNote]]:
    """Map evidence onto the catalog's ids: one resolve per distinct id, a copy only for moved records."""
    counts: dict[str, int] = {}
    for ev in evidence:
        counts[ev.technique_id] = counts.get(ev.technique_id, 0) + 1
    moved: dict[str, str] = {}
    notes: list[IdNote] = []
    for tid in sorted(counts):
        res = catalog.resolve(tid, warn=False)
        if res.status == "current" and res.attack_id == tid:
            continue
        notes.append(IdNote(tid, res.status, res.attack_id, res.note, counts[tid]))
        if res.attack_id is not None and res.attack_id != tid:
            moved[tid] = res.attack_id
    if not moved:
        return evidence, notes
    out = [dataclasses.replace(ev, technique_id=moved[ev.technique_id], detail=f"{ev.detail} (as {ev.technique_id})")
           if ev.technique_id in moved else ev for ev in evidence]
    return out, notes


def _profile_relevance(
    op: Operation, catalog: Catalog, planned: Iterable[str], path: Iterable[str] = (), now: datetime | None = None,
) -> tuple[dict[str, Relevance], list[IdNote]]:
    profile = op.dco.threat_profile
    notes: list[IdNote] = []
    groups, campaigns, software = [], [], []
    for ref in profile.groups:
        try:
            groups.append(catalog.group(ref).attack_id)
        except DcoError as exc:
            notes.append(IdNote(ref, "not-found", None, exc.message))
    for ref in profile.campaigns:
        try:
            campaigns.append(catalog.campaign(ref).attack_id)
        except DcoError as exc:
            notes.append(IdNote(ref, "not-found", None, exc.message))
    for ref in profile.software:
        try:
            software.append(catalog.software(ref).attack_id)
        except DcoError as exc:
            notes.append(IdNote(ref, "not-found", None, exc.message))
    extra = []
    for tid in profile.techniques:
        res = catalog.resolve(tid, warn=False)
        if res.attack_id is None or res.status != "current":
            notes.append(IdNote(tid, res.status, res.attack_id, res.note))
        extra.append(res.attack_id or tid.upper())
    relevance = threat_relevance(catalog, groups, campaigns, profile.via, [*planned, *extra],
                                 software=software, path=path, platforms=[str(p) for p in op.dco.scope.platforms],
                                 now=now)
    return relevance, notes


def configured_targets(settings: Settings) -> Targets:
    """The targets a DCO without its own gets (DCO_TARGET_DETECTION / _VISIBILITY), read by the caller."""
    return Targets(settings.target_detection, settings.target_visibility)


def dco_targets(op: Operation, defaults: Targets) -> Targets:
    """The DCO's targets, each unset one from ``defaults`` (``configured_targets``)."""
    t = op.dco.targets
    return Targets(defaults.detection if t.detection is None else t.detection,
                   defaults.visibility if t.visibility is None else t.visibility)


def assess_dco(
    session: Session,
    dco_id: str,
    catalog: Catalog,
    now: datetime | None = None,
    *,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    default_targets: Targets | None = None,
) -> AssessmentResult:
    """Score the DCO's own techniques (its plan; the threat profile when it has none) from its evidence,
    rank the gaps below its targets (``default_targets`` where the DCO sets none: the callers pass
    ``configured_targets(settings)``), log the scores. Evidence about other techniques is reported."""
    op = get_operation(session, dco_id)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    evset = load_evidence(session, op.id, catalog)
    items, id_notes = resolve_evidence(evset.evidence, catalog)
    planned = [catalog.resolve(t, warn=False).attack_id or t for t in evset.planned]
    path = [catalog.resolve(t, warn=False).attack_id or t for t in evset.path]
    relevance, profile_notes = _profile_relevance(op, catalog, planned, path, now)
    techniques = set(planned) if planned else set(relevance)
    relevance = {t: r for t, r in relevance.items() if t in techniques}
    out_of_scope: dict[str, int] = {}
    for ev in items:
        if ev.technique_id not in techniques:
            out_of_scope[ev.technique_id] = out_of_scope.get(ev.technique_id, 0) + 1
    items = [ev for ev in items if ev.technique_id in techniques]
    items = items + evidence_from_catalog(catalog, sorted(techniques), now)
    assessments = assess_evidence(items, now, half_life_days, techniques)
    targets = dco_targets(op, default_targets or Targets())
    result = AssessmentResult(
        dco_id=op.id,
        run_id=row_id("assessment", op.id, now.isoformat()),
        assessed_at=now,
        attack_version=catalog.version,
        half_life_days=half_life_days,
        assessments=assessments,
        gaps=rank_gaps(assessments, relevance, targets),
        relevance=relevance,
        id_report=id_notes + profile_notes,
        evidence_report=evset.report.summary(),
        evidence_count=len(evset.evidence),
        unmapped_channels=evset.unmapped_channels,
        targets=targets,
        out_of_scope=out_of_scope,
    )
    write_scores(session, result)
    return result


def write_scores(session: Session, result: AssessmentResult) -> int:
    """One AssessmentRun and one TechniqueScore per technique; re-running the same assessment is a no-op.

    The explanation keeps each gap's rank as ``rank_gaps`` ordered it (its tie-break on addressable
    gaps is not recoverable from the stored columns), so every table of the run ranks as follow-up does.
    """
    gaps = {g.technique_id: g for g in result.gaps}
    ranks = {g.technique_id: rank for rank, g in enumerate(result.gaps, start=1)}
    rows = []
    for tid, a in result.assessments.items():
        gap = gaps.get(tid)
        rows.append({
            "id": row_id("technique-score", result.dco_id, tid, result.assessed_at.isoformat()),
            "dco_id": result.dco_id, "run_id": result.run_id, "technique_id": tid,
            "visibility": a.visibility.value, "detection": a.detection.value,
            "priority": gap.priority if gap else 0.0, "relevance": gap.relevance if gap else 0.0,
            "evidence_count": a.evidence_count, "assessed_at": result.assessed_at,
            "explanation": {"visibility": a.visibility.explanation, "detection": a.detection.explanation,
                            "outcomes": a.outcomes, "real_hits": a.real_hits, "exercise_hits": a.exercise_hits,
                            "gap_rank": ranks.get(tid), "hunt_coverage": a.coverage.as_dict(),
                            "gap_reason": gap.reason if gap else None,
                            "gap_breakdown": gap.breakdown if gap else None},
        })
    upsert(session, AssessmentRun, [{
        "id": result.run_id, "dco_id": result.dco_id, "assessed_at": result.assessed_at,
        "attack_version": result.attack_version, "half_life_days": result.half_life_days,
        "techniques": len(result.assessments), "evidence": result.evidence_count,
        "summary": {**result.summary(), "out_of_scope_ids": dict(sorted(result.out_of_scope.items()))},
        "id_report": [dataclasses.asdict(n) for n in result.id_report],
    }], keys=("id",))
    return upsert(session, TechniqueScore, rows, keys=("id",))


def gaps_for_follow_up(result: AssessmentResult, catalog: Catalog, limit: int = 50) -> list[dict[str, Any]]:
    """The ranked gaps in the shape follow-up takes (``dcoflow.models.followup.GapInput``): integer scores,
    relevance as a 0–1 share of the most-used technique's users, rank 1 = worst."""
    top = max((g.relevance for g in result.gaps), default=1.0) or 1.0
    out = []
    for rank, g in enumerate(result.gaps[:limit], start=1):
        tech = catalog.get_technique(g.technique_id)
        out.append({"technique_id": g.technique_id, "technique_name": tech.name if tech else "",
                    "visibility": max(0, min(4, round(g.visibility))), "detection": max(-1, min(5, round(g.detection))),
                    "relevance": round(min(1.0, g.relevance / top), 4), "rank": rank})
    return out
