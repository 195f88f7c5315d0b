"""Briefings of a DCO for technical and non-technical audiences.

``gather_facts`` reads everything a brief says from the database once (plan record, hunt runs,
emulation outcomes, the score log, risks, actions, incidents) into a typed, pure ``BriefingFacts``;
the renderers only format those facts with the jinja2 templates shipped in
``tasks/reporting/templates`` — so every number in a brief is one the store holds, and a test can
compare the two. Every output carries the DCO's marking (TLP label and classification/releasability
statement) in its header and its footer.

The executive brief speaks business: each technique appears by its name with what an attacker
achieves with it (from its ATT&CK tactic), never as a bare identifier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jinja2
from sqlmodel import Session

from dcoflow.connectors.content.governance_file import load_governance
from dcoflow.core.errors import NotFoundError
from dcoflow.models.assessment import reaches
from dcoflow.models.assessment_rows import TechniqueScore
from dcoflow.models.attack import Catalog
from dcoflow.models.emulation import Outcome
from dcoflow.models.followup import (
    Action,
    ActionKind,
    DecisionPolicy,
    Incident,
    Risk,
    Severity,
    Treatment,
    as_utc,
    is_overdue,
)
from dcoflow.models.ir.activity import IrActivity
from dcoflow.models.marking import MarkingFacts
from dcoflow.models.meeting import DecisionCase, group_decisions, recommend
from dcoflow.models.operation import DcoType
from dcoflow.models.plan import PlanRecord
from dcoflow.models.repository.assessment import newest_and_previous_scores
from dcoflow.models.repository.emulation import current_outcomes, load_steps
from dcoflow.models.repository.followup import list_actions, list_incidents, list_risks
from dcoflow.models.repository.hunt import list_hunt_runs
from dcoflow.models.repository.operation import get_operation
from dcoflow.tasks.follow_up.risks import risks_needing_decision
from dcoflow.tasks.reporting.ir_brief import ir_activity_of

Audience = Literal["technical", "executive", "both"]
RagLevel = Literal["red", "amber", "green"]

# What an attacker achieves with a technique of each ATT&CK tactic, in words a board uses.
TACTIC_PLAIN: dict[str, str] = {
    "reconnaissance": "study our organisation before attacking",
    "resource-development": "prepare infrastructure for an attack",
    "initial-access": "get into our network",
    "execution": "run malicious programs on our computers",
    "persistence": "keep a foothold that survives restarts and password changes",
    "privilege-escalation": "gain administrator rights",
    "defense-evasion": "hide from our security tools",
    "stealth": "hide from our security tools",
    "credential-access": "steal passwords and account credentials",
    "discovery": "map our network, systems and accounts",
    "lateral-movement": "spread from one computer to others",
    "collection": "gather sensitive information",
    "command-and-control": "control compromised computers remotely",
    "exfiltration": "take data out of our network",
    "impact": "disrupt services or destroy data",
}
# -- facts ------------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class PlanFacts:
    techniques: int
    emulation_steps: int
    hypotheses: int
    sigma_rules: int
    without_procedure: int
    without_hunt_content: int
    warnings: int
    attack_version: str
    planned_at: datetime


@dataclass(slots=True, frozen=True)
class RuleHit:
    rule_id: str
    title: str
    technique_ids: tuple[str, ...]
    hits: int
    exercise_hits: int
    hosts: tuple[str, ...]

    @property
    def real_hits(self) -> int:
        return self.hits - self.exercise_hits


@dataclass(slots=True, frozen=True)
class TechniqueHits:
    technique_id: str
    name: str
    real: int
    exercise: int
    rules: tuple[str, ...]


@dataclass(slots=True)
class HuntFacts:
    runs: int = 0
    completed: int = 0
    failed: int = 0
    events_read: int = 0
    rules_run: int = 0
    hits: int = 0
    exercise_hits: int = 0
    no_logsource: int = 0
    sources: list[str] = field(default_factory=list)
    by_technique: list[TechniqueHits] = field(default_factory=list)
    rules_fired: list[RuleHit] = field(default_factory=list)

    @property
    def real_hits(self) -> int:
        return self.hits - self.exercise_hits


@dataclass(slots=True, frozen=True)
class ToolOutcomes:
    tool: str
    prevented: int
    alerted: int
    logged: int
    none: int

    @property
    def total(self) -> int:
        return self.prevented + self.alerted + self.logged + self.none

    @property
    def stopped_or_alerted(self) -> int:
        return self.prevented + self.alerted


@dataclass(slots=True, frozen=True)
class StepOutcome:
    step_id: str
    technique_id: str
    technique_name: str
    tool: str
    outcome: Outcome
    severity: str | None


@dataclass(slots=True)
class EmulationFacts:
    steps: int = 0
    done: int = 0
    tools: list[ToolOutcomes] = field(default_factory=list)
    outcomes: list[StepOutcome] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class CoverageSnapshot:
    assessed_at: datetime
    techniques: int
    mean_visibility: float
    mean_detection: float
    detected: int  # detection ≥ 1
    visible: int  # visibility ≥ 1


@dataclass(slots=True, frozen=True)
class BriefNumbers:
    """The numbers a brief, a pack or a slide quotes, computed once from the plan and the latest assessment."""

    planned: int  # techniques in the plan
    tested: int  # of those, exercised by this DCO: an emulation outcome or a hunt hit
    assessed: int  # techniques the latest assessment scored
    detected: int  # of those, with detection ≥ 1 (something would raise an alert)
    steps_done: int
    checks: int  # emulation outcomes recorded (one per tool per step)
    stopped_or_alerted: int
    events_read: int


@dataclass(slots=True, frozen=True)
class DecisionSummary:
    """One grouped decision as a board reads it (models.meeting.group_decisions over the risks awaiting one)."""

    title: str
    authority: str
    decide_by: date
    recommendation: str
    risks: int
    worst: int


@dataclass(slots=True, frozen=True)
class TrendPoint:
    """One assessment of the DCO, by its date: the same technique set is compared across dates."""

    assessed_at: datetime
    techniques: int
    detected: int


@dataclass(slots=True, frozen=True)
class TechniqueFacts:
    technique_id: str
    name: str
    tactics: tuple[str, ...]
    visibility: float
    detection: float
    priority: float
    evidence_count: int
    deciding: tuple[str, ...]
    evidence: tuple[str, ...]
    real_hits: int
    exercise_hits: int
    outcomes: dict[str, int]
    data_components: tuple[str, ...]
    previous_detection: float | None = None

    @property
    def plain(self) -> str:
        """What an attacker achieves with it, for non-technical readers."""
        return plain_effect(self.tactics)

    @property
    def seen(self) -> str:
        return seen_phrase(self.visibility, self.detection)


@dataclass(slots=True, frozen=True)
class RiskFacts:
    id: str
    dco_id: str
    statement: str
    plain: str
    score: int
    likelihood: int
    impact: int
    owner: str
    authority: str
    decide_by: date
    treatment: str
    status: str
    options: tuple[str, ...]
    recommendation: Treatment
    recommendation_reason: str
    techniques: tuple[tuple[str, str], ...]  # (id, name)
    finding: bool = False  # a confirmed finding (already happened), else an assessment gap

    @property
    def severity_word(self) -> str:
        return "severe" if self.score >= 16 else "significant" if self.score >= 8 else "moderate"


@dataclass(slots=True, frozen=True)
class ActionFacts:
    id: str
    dco_id: str
    title: str
    kind: str
    owner: str
    priority: str
    due: date
    status: str
    overdue: bool
    technique_id: str
    technique_name: str
    detection_task: str | None
    data_components: tuple[str, ...]
    risk_id: str | None
    plain: str  # the action in words a board uses


@dataclass(slots=True, frozen=True)
class IncidentFacts:
    id: str
    summary: str
    severity: str
    status: str
    technique_id: str
    technique_name: str
    created_at: datetime
    external_ref: str | None


@dataclass(slots=True, frozen=True)
class Rag:
    level: RagLevel
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.level.upper()


@dataclass(slots=True)
class BriefingFacts:
    """Everything a brief about one DCO says, read from the store at ``generated_at``."""

    dco_id: str
    name: str
    objective: str
    type: str
    state: str
    marking: MarkingFacts
    generated_at: datetime
    window: tuple[datetime, datetime] | None
    participants: list[tuple[str, str]]
    enclaves: list[str]
    threat: list[str]
    plan: PlanFacts | None
    hunts: HuntFacts
    emulation: EmulationFacts
    coverage_now: CoverageSnapshot | None
    coverage_before: CoverageSnapshot | None
    techniques: list[TechniqueFacts]
    gaps: list[TechniqueFacts]
    risks_total: int
    risks_open: int
    decisions: list[RiskFacts]
    actions: list[ActionFacts]
    incidents: list[IncidentFacts]
    rag: Rag = field(default_factory=lambda: Rag("green", ()))
    numbers: BriefNumbers | None = None
    trend: list[TrendPoint] = field(default_factory=list)
    decision_groups: list[DecisionSummary] = field(default_factory=list)
    ir: IrActivity | None = None  # incident-response support: the same facts as the IR brief

    @property
    def decisions_by_body(self) -> list[tuple[str, int, int]]:
        """(body, grouped decisions, risks) per deciding body, most risks first. Each body's meeting pack lists
        only its own decisions, so a brief that gives one total must also say how it splits, or the pack a
        reader opens shows a different number."""
        by: dict[str, list[int]] = {}
        for g in self.decision_groups:
            counts = by.setdefault(g.authority, [0, 0])
            counts[0] += 1
            counts[1] += g.risks
        return sorted(((b, n, r) for b, (n, r) in by.items()), key=lambda x: (-x[2], x[0]))

    @property
    def held(self) -> list[TechniqueFacts]:
        """Tested techniques our defences stopped or alerted on, best first."""
        return [t for t in self.techniques if (t.outcomes.get("prevented", 0) or t.outcomes.get("alerted", 0)
                                               or t.exercise_hits) and round(t.detection) >= 1]

    def top_risks(self, limit: int = 5) -> list[RiskFacts]:
        """The worst risks awaiting a decision, one per technique (a finding and a gap on the same technique
        are one story for a board)."""
        seen: set[str] = set()
        out = []
        for r in sorted(self.decisions, key=lambda r: (-r.score, r.decide_by, r.id)):
            key = ",".join(t for t, _ in r.techniques) or r.id
            if key in seen:
                continue
            seen.add(key)
            out.append(r)
        return out[:limit]

    @property
    def overdue_actions(self) -> list[ActionFacts]:
        return [a for a in self.actions if a.overdue]

    @property
    def open_actions(self) -> list[ActionFacts]:
        return [a for a in self.actions if a.status != "verified"]

    @property
    def detection_actions(self) -> list[ActionFacts]:
        return [a for a in self.open_actions if a.kind == ActionKind.DETECTION_ENGINEERING.value]

    def techniques_shown(self, limit: int) -> list[TechniqueFacts]:
        """Techniques this DCO tested (hunt hits, emulation outcomes) first, then the worst gaps, up to ``limit``."""
        tested = [t for t in self.techniques if t.real_hits or t.exercise_hits or t.outcomes]
        rest = [t for t in self.techniques if t not in tested]
        return (tested + rest)[:max(limit, len(tested))]

    @property
    def organisations(self) -> list[str]:
        return list(dict.fromkeys(org for org, _ in self.participants))


# -- plain language ------------------------------------------------------------------------------------


def plain_effect(tactics: Sequence[str]) -> str:
    effects = list(dict.fromkeys(TACTIC_PLAIN[t] for t in tactics if t in TACTIC_PLAIN))
    return " or ".join(effects[:2]) or "act against our systems"


def seen_phrase(visibility: float, detection: float) -> str:
    if round(visibility) <= 0:
        return "we cannot see this activity at all"
    if round(detection) <= 0:
        return "we would find traces afterwards, but no alert is raised"
    if round(detection) <= 2:
        return "our alerting on it is weak and untested"
    return "we see it and alert on it"


def technique_name(catalog: Catalog, technique_id: str) -> str:
    """``Parent: Sub`` for sub-techniques (what ATT&CK's own pages show), else the name; the id when unknown."""
    res = catalog.resolve(technique_id, warn=False)
    tech = catalog.get_technique(res.attack_id) if res.attack_id else None
    if tech is None:
        return technique_id
    parent = tech.parent if tech.is_subtechnique else None
    return f"{parent.name}: {tech.name}" if parent is not None else tech.name


def tactic_words(catalog: Catalog, technique_ids: Sequence[str]) -> str:
    """The first ATT&CK tactic of the first known technique, as a board reads it ("Credential Access")."""
    for tid in technique_ids:
        res = catalog.resolve(tid, warn=False)
        tech = catalog.get_technique(res.attack_id) if res.attack_id else None
        if tech is not None and tech.tactics:
            return " ".join(w if w == "and" else w.capitalize() for w in tech.tactics[0].split("-"))
    return "other techniques"


def _tactics(catalog: Catalog, technique_id: str) -> tuple[str, ...]:
    tech = catalog.get_technique(technique_id)
    return tuple(tech.tactics) if tech else ()


def _components(catalog: Catalog, technique_id: str) -> tuple[str, ...]:
    tech = catalog.get_technique(technique_id)
    if tech is None:
        return ()
    names = []
    for cid in tech.data_component_ids:
        try:
            names.append(catalog.data_component(cid).name)
        except NotFoundError:  # a component the release does not describe: keep its id
            names.append(cid)
    return tuple(names)


# -- gathering -----------------------------------------------------------------------------------------


def gather_facts(
    session: Session,
    dco: str,
    catalog: Catalog,
    *,
    now: datetime | None = None,
    policy: DecisionPolicy | None = None,
    top_gaps: int = 10,
) -> BriefingFacts:
    """Read one DCO's facts from the store (by id or name)."""
    now = as_utc(now or datetime.now(UTC))
    policy = policy or load_governance().policy
    op = get_operation(session, dco)
    spec = op.dco
    names: dict[str, str] = {}

    def name(tid: str) -> str:
        if tid not in names:
            names[tid] = technique_name(catalog, tid)
        return names[tid]

    now_scores, before_scores = newest_and_previous_scores(session, op.id)
    before_by_tid = {s.technique_id: s.detection for s in before_scores}
    techniques = [_technique_facts(s, catalog, name(s.technique_id), before_by_tid.get(s.technique_id))
                  for s in sorted(now_scores, key=_gap_order)]
    gaps = [t for t in techniques if t.priority > 0][:top_gaps]
    scores_by_tid = {t.technique_id: t for t in techniques}

    actions = list_actions(session, dco_id=op.id, today=now.date())
    action_facts = [_action_facts(a, name(a.technique_id), now.date(), catalog) for a in actions]
    all_risks = list_risks(session, dco_id=op.id)
    decisions = [
        _risk_facts(risk, body, actions, scores_by_tid, catalog, name)
        for risk, body in risks_needing_decision(session, now, dco_id=op.id, policy=policy, risks=all_risks)
    ]
    incidents = [_incident_facts(i, name(i.technique_id)) for i in list_incidents(session, dco_id=op.id)]

    facts = BriefingFacts(
        dco_id=op.id, name=spec.name, objective=spec.objective, type=spec.type.value, state=op.state.value,
        marking=MarkingFacts.of(spec.marking), generated_at=now,
        window=(spec.window.start, spec.window.end) if spec.window else None,
        participants=[(p.organisation, p.role.value) for p in spec.participants],
        enclaves=list(spec.scope.enclaves),
        threat=[*spec.threat_profile.groups, *spec.threat_profile.campaigns, *spec.threat_profile.software],
        plan=_plan_facts(session.get(PlanRecord, op.id)),
        hunts=_hunt_facts(session, op.id, name),
        emulation=_emulation_facts(session, op.id, name),
        coverage_now=_snapshot(now_scores), coverage_before=_snapshot(before_scores),
        techniques=techniques, gaps=gaps,
        risks_total=len(all_risks), risks_open=sum(1 for r in all_risks if r.status.value != "closed"),
        decisions=decisions, actions=action_facts, incidents=incidents,
    )
    facts.rag = rag_status(facts)
    facts.numbers = _numbers(facts)
    facts.trend = _trend(session, op.id)
    facts.decision_groups = _decision_groups(facts, catalog, policy, now)
    if spec.type is DcoType.INCIDENT_RESPONSE_SUPPORT:
        facts.ir = ir_activity_of(session, op)
    return facts


def _decision_groups(
    f: BriefingFacts, catalog: Catalog, policy: DecisionPolicy, now: datetime
) -> list[DecisionSummary]:
    by_id = {r.id: r for r in f.decisions}
    cases = [DecisionCase(r.id, r.id, r.score, r.authority, r.recommendation, r.finding,
                          tactic_words(catalog, [t for t, _ in r.techniques]), r.owner,
                          r.techniques[0][1] if r.techniques else r.statement) for r in f.decisions]
    out = []
    where = ", ".join(f.enclaves) or "the scope"
    for g in group_decisions(f.dco_id, cases):
        body = policy.body(g.authority)
        until = (now + timedelta(days=min(90, body.max_acceptance_days) if body else 90)).date()
        out.append(DecisionSummary(
            g.title(where, until if g.recommendation == Treatment.ACCEPT else None), g.authority,
            min(by_id[c.risk_id].decide_by for c in g.cases), g.recommendation.value, g.size, g.worst))
    return out


def _numbers(f: BriefingFacts) -> BriefNumbers:
    tested = {t.technique_id for t in f.techniques if t.outcomes or t.real_hits or t.exercise_hits}
    cov = f.coverage_now
    return BriefNumbers(
        planned=f.plan.techniques if f.plan else 0, tested=len(tested),
        assessed=cov.techniques if cov else 0, detected=cov.detected if cov else 0,
        steps_done=f.emulation.done, checks=sum(t.total for t in f.emulation.tools),
        stopped_or_alerted=sum(t.stopped_or_alerted for t in f.emulation.tools), events_read=f.hunts.events_read,
    )


def _trend(session: Session, dco_id: str) -> list[TrendPoint]:
    from dcoflow.models.repository.assessment import trend

    return [TrendPoint(p.assessed_at, p.techniques, p.detected) for p in trend(session, [dco_id])]


def _gap_order(s: TechniqueScore) -> tuple[bool, int, float, str]:
    """Gaps by the rank ``rank_gaps`` stored with the run (as the coverage table and follow-up order
    them), then the rest by id; a run logged before ranks were stored: by priority, then id."""
    rank = s.explanation.get("gap_rank")
    return (rank is None, int(rank or 0), -s.priority, s.technique_id)


def _plan_facts(record: PlanRecord | None) -> PlanFacts | None:
    if record is None:
        return None
    s = record.summary
    return PlanFacts(
        techniques=int(s.get("techniques", len(record.techniques))), emulation_steps=int(s.get("emulation_steps", 0)),
        hypotheses=int(s.get("hypotheses", 0)), sigma_rules=int(s.get("sigma_rules", 0)),
        without_procedure=len(s.get("without_procedure", [])),
        without_hunt_content=len(s.get("without_hunt_content", [])), warnings=len(record.warnings),
        attack_version=record.attack_version, planned_at=as_utc(record.created_at),
    )


def _hunt_facts(session: Session, dco_id: str, name: Any) -> HuntFacts:
    facts = HuntFacts()
    real: Counter[str] = Counter()
    exercise: Counter[str] = Counter()
    fired_by_tid: dict[str, list[str]] = {}
    for run in list_hunt_runs(session, dco_id):
        facts.runs += 1
        facts.completed += run.status.value == "completed"
        facts.failed += run.status.value == "failed"
        facts.events_read += run.events_read
        facts.rules_run += run.rule_count
        facts.hits += run.hits
        facts.exercise_hits += run.exercise_hits
        facts.no_logsource += len(run.no_logsource)
        facts.sources.append(run.source)
        for stat in run.rule_stats.values():
            hits, ex = int(stat.get("hits", 0)), int(stat.get("exercise_hits", 0))
            if hits <= 0:
                continue
            tids = tuple(str(t) for t in stat.get("technique_ids") or ())
            facts.rules_fired.append(RuleHit(str(stat["rule_id"]), str(stat.get("title", "")), tids, hits, ex,
                                             tuple(sorted(stat.get("hosts", {})))))
            for tid in tids:
                real[tid] += hits - ex
                exercise[tid] += ex
                fired_by_tid.setdefault(tid, []).append(str(stat.get("title") or stat["rule_id"]))
    facts.rules_fired.sort(key=lambda r: (-r.hits, r.rule_id))
    facts.by_technique = sorted(
        (TechniqueHits(tid, name(tid), real[tid], exercise[tid], tuple(dict.fromkeys(fired_by_tid[tid])))
         for tid in fired_by_tid),
        key=lambda t: (-(t.real + t.exercise), t.technique_id),
    )
    return facts


def _emulation_facts(session: Session, dco_id: str, name: Any) -> EmulationFacts:
    steps = load_steps(session, dco_id)
    outcomes = current_outcomes(session, dco_id)
    by_tool: dict[str, Counter[Outcome]] = {}
    for o in outcomes:
        by_tool.setdefault(o.tool, Counter())[o.outcome] += 1
    return EmulationFacts(
        steps=len(steps), done=sum(1 for s in steps if s.status.value == "done"),
        tools=[ToolOutcomes(tool, c[Outcome.PREVENTED], c[Outcome.ALERTED], c[Outcome.LOGGED], c[Outcome.NONE])
               for tool, c in sorted(by_tool.items())],
        outcomes=[StepOutcome(o.step_id, o.technique_id, name(o.technique_id), o.tool, o.outcome,
                              o.severity.value if o.severity else None) for o in outcomes],
    )


def _snapshot(scores: Sequence[TechniqueScore]) -> CoverageSnapshot | None:
    if not scores:
        return None
    n = len(scores)
    return CoverageSnapshot(
        assessed_at=as_utc(scores[0].assessed_at), techniques=n,
        mean_visibility=round(sum(s.visibility for s in scores) / n, 2),
        mean_detection=round(sum(s.detection for s in scores) / n, 2),
        detected=sum(1 for s in scores if reaches(s.detection, 1)),
        visible=sum(1 for s in scores if reaches(s.visibility, 1)),
    )


def _technique_facts(s: TechniqueScore, catalog: Catalog, name: str, before: float | None) -> TechniqueFacts:
    detection_lines = [str(x) for x in s.explanation.get("detection", [])]
    visibility_lines = [str(x) for x in s.explanation.get("visibility", [])]
    deciding = tuple(line[3:] for line in (*detection_lines, *visibility_lines) if line.startswith("=> "))
    return TechniqueFacts(
        technique_id=s.technique_id, name=name, tactics=_tactics(catalog, s.technique_id),
        visibility=s.visibility, detection=s.detection, priority=s.priority, evidence_count=s.evidence_count,
        deciding=deciding, evidence=tuple(line.strip() for line in detection_lines[:6]),
        real_hits=int(s.explanation.get("real_hits", 0)), exercise_hits=int(s.explanation.get("exercise_hits", 0)),
        outcomes={str(k): int(v) for k, v in dict(s.explanation.get("outcomes", {})).items()},
        data_components=_components(catalog, s.technique_id), previous_detection=before,
    )


_DETECTION_PLAIN = {
    "onboard-data-source": "Collect the records needed to see {}",
    "write-sigma-rule": "Build an alert for {}",
    "tune-sigma-rule": "Improve the alert for {}",
}


def _action_plain(a: Action, name: str, catalog: Catalog) -> str:
    if a.mitigation_id:
        try:
            measure = catalog.mitigation(a.mitigation_id).name
        except NotFoundError:  # a mitigation the loaded release does not have: its id is all we know
            measure = a.mitigation_id
        return f"{measure} against {name}"
    if a.detection_task is not None:
        return _DETECTION_PLAIN[a.detection_task.value].format(name)
    return a.title


def _action_facts(a: Action, name: str, today: date, catalog: Catalog) -> ActionFacts:
    return ActionFacts(
        id=a.id, dco_id=a.dco_id, title=a.title, kind=a.kind.value, owner=a.owner, priority=a.priority.value,
        due=a.due_date, status=a.status.value, overdue=is_overdue(a.status, a.due_date, today),
        technique_id=a.technique_id, technique_name=name, detection_task=a.detection_task.value if a.detection_task
        else None, data_components=tuple(a.data_components), risk_id=a.risk_id,
        plain=_action_plain(a, name, catalog),
    )


def _risk_facts(
    risk: Risk, authority: str, actions: Sequence[Action], scores: dict[str, TechniqueFacts], catalog: Catalog,
    name: Any,
) -> RiskFacts:
    related = [a for a in actions if a.risk_id == risk.id or a.technique_id in risk.technique_ids]
    decision, why = recommend(risk, related)
    techniques = tuple((t, str(name(t))) for t in risk.technique_ids)
    return RiskFacts(
        id=risk.id, dco_id=risk.dco_id, statement=risk.statement,
        plain=_plain_risk(risk, techniques, scores, catalog), score=risk.score, likelihood=risk.likelihood,
        impact=risk.impact, owner=risk.owner, authority=authority, decide_by=risk.review_date,
        treatment=risk.treatment.value, status=risk.status.value, options=tuple(t.value for t in Treatment),
        recommendation=decision, recommendation_reason=why, techniques=techniques,
        finding=risk.source_key.startswith("finding|"),
    )


def _plain_risk(
    risk: Risk, techniques: Sequence[tuple[str, str]], scores: dict[str, TechniqueFacts], catalog: Catalog
) -> str:
    tactics = tuple(t for tid, _ in techniques for t in _tactics(catalog, tid))
    what = ", ".join(f"{n} (ATT&CK {tid})" for tid, n in techniques) or "an attacker technique"
    if risk.source_key.startswith("finding|"):
        return (f"Confirmed hostile activity: an attacker was able to {plain_effect(tactics)} — "
                f"seen as {what}. This has already happened and needs a response.")
    seen = [scores[t].seen for t, _ in techniques if t in scores]
    state = seen[0] if seen else "we could not confirm that we detect it"
    return f"An attacker could {plain_effect(tactics)} using {what}, and today {state}."


def _incident_facts(i: Incident, name: str) -> IncidentFacts:
    return IncidentFacts(
        id=i.id, summary=i.summary, severity=i.severity.value, status=i.status.value, technique_id=i.technique_id,
        technique_name=name, created_at=as_utc(i.created_at), external_ref=i.external_ref,
    )


def rag_status(facts: BriefingFacts) -> Rag:
    """RED: a severe or critical incident, a severe risk awaiting a decision, or a critical/high action overdue.
    AMBER: any risk awaiting a decision, any overdue action, any incident, or fewer than half of the
    assessed techniques detected. GREEN otherwise."""
    red: list[str] = []
    amber: list[str] = []
    severe = [i for i in facts.incidents if i.severity in (Severity.HIGH.value, Severity.CRITICAL.value)]
    if severe:
        red.append(f"{len(severe)} serious incident(s) raised")
    elif facts.incidents:
        amber.append(f"{len(facts.incidents)} incident(s) raised")
    worst = [r for r in facts.decisions if r.score >= 16]
    if worst:
        red.append(f"{len(worst)} severe risk(s) awaiting a decision")
    elif facts.decisions:
        amber.append(f"{len(facts.decisions)} risk(s) awaiting a decision")
    late = facts.overdue_actions
    urgent_late = [a for a in late if a.priority in ("critical", "high")]
    if urgent_late:
        red.append(f"{len(urgent_late)} urgent action(s) overdue")
    elif late:
        amber.append(f"{len(late)} action(s) overdue")
    cov = facts.coverage_now
    if cov is not None and cov.techniques and cov.detected * 2 < cov.techniques:
        amber.append(f"only {cov.detected} of {cov.techniques} attacker techniques would raise an alert")
    if red:
        return Rag("red", tuple(red + amber))
    if amber:
        return Rag("amber", tuple(amber))
    return Rag("green", ("no risk awaits a decision, no action is overdue, no incident is open",))


# -- rendering -------------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    """A Markdown table cell: no pipes or line breaks that would break the row."""
    return str("" if value is None else value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


_ENVS: dict[bool, jinja2.Environment] = {}


def environment(html: bool) -> jinja2.Environment:
    """The template environment (package data, so an installed dcoflow finds its templates)."""
    env = _ENVS.get(html)
    if env is None:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("dcoflow.tasks.reporting", "templates"),
            autoescape=html, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters.update(cell=_cell, num=_num, date=_date, day=lambda v: _date(v)[:10])
        _ENVS[html] = env
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` (``*.html.j2`` autoescaped)."""
    return environment(template.endswith(".html.j2")).get_template(template).render(**context)


def technical_brief(facts: BriefingFacts, fmt: Literal["md", "html"] = "md", *, limit: int = 60) -> str:
    return render(f"technical.{fmt}.j2", f=facts, limit=limit, marking=facts.marking,
                  title=f"Technical brief — {facts.name}")


def executive_brief(facts: BriefingFacts, fmt: Literal["md", "html"] = "md", *, risks: int = 5,
                    decisions: int = 5) -> str:
    """One page: bottom line, what was tested and what held, top risks in plain words, the grouped decisions
    needed, the trend by date. Numbers come from ``facts.numbers`` (computed once); no rule ids."""
    return render(f"executive.{fmt}.j2", f=facts, key_risks=key_risks(facts, risks),
                  decisions=facts.decision_groups[:decisions],
                  more_decisions=max(0, len(facts.decision_groups) - decisions), marking=facts.marking,
                  title=f"Executive brief — {facts.name}")


def key_risks(facts: BriefingFacts, limit: int = 5) -> list[RiskFacts]:
    """The 3–5 risks a board should hear about: worst first, one per technique."""
    return facts.top_risks(limit)


def write_briefs(facts: BriefingFacts, out_dir: Path, audience: Audience = "both",
                 charts: Sequence[Any] = ()) -> dict[str, Path]:
    """Write the requested briefs (Markdown and self-contained HTML, the ``charts`` inline in the HTML —
    tasks/reporting/documents draws them); returns {kind-format: path}."""
    from dcoflow.tasks.reporting.documents.brief_pdf import with_charts

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    kinds = ["technical", "executive"] if audience == "both" else [audience]
    formats: tuple[Literal["md", "html"], ...] = ("md", "html")
    for kind in kinds:
        for fmt in formats:
            text = technical_brief(facts, fmt) if kind == "technical" else executive_brief(facts, fmt)
            if fmt == "html":
                text = with_charts(text, charts)
            path = out_dir / f"{facts.dco_id}-brief-{kind}.{fmt}"
            path.write_text(text, encoding="utf-8")
            written[f"{kind}-{fmt}"] = path
    return written
