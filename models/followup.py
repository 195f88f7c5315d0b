"""Follow-up: risks, decisions, actions, re-tests and incidents, and the pure rules over them.

The loop is finding → action → re-test → verified closure. Risks come from assessment gaps
and confirmed findings; a risk is mitigated (actions), accepted (a recorded decision by the
right body, with an expiry — an expired acceptance triggers a re-test), transferred or avoided.
Incidents are keyed by their finding so one finding never opens two, however often the
escalation runs. Everything here is data and rules; tasks/follow_up does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel

from dcoflow.core.errors import StateError, ValidationError
from dcoflow.models.governance import DecisionPolicy as DecisionPolicy  # noqa: PLC0414  (re-exported)
from dcoflow.models.governance import Priority as Priority  # noqa: PLC0414  (re-exported)
from dcoflow.models.operation import AssetGroup, Criticality, Scope, utcnow
from dcoflow.models.operation import as_utc as as_utc  # noqa: PLC0414  (re-exported: follow-up callers import it from here)
from dcoflow.models.stix.ids import natural_uuid
from dcoflow.models.timestamps import parse_utc

# -- identifiers ------------------------------------------------------------------------------------


def followup_id(prefix: str, *natural_key: object) -> str:
    """A short deterministic id (``act-…``, ``risk-…``) so a re-run upserts instead of duplicating."""
    return f"{prefix}-{natural_uuid(prefix, *natural_key).hex[:16]}"


# -- inputs from assessment and conduct ---------------------------------------------------------------

_Strict = ConfigDict(extra="forbid")


class GapInput(BaseModel):
    """A ranked assessment gap (what follow-up needs of the assessment's output)."""

    model_config = _Strict
    technique_id: str = Field(description="ATT&CK technique id, e.g. T1059.001")
    technique_name: str = ""
    visibility: int = Field(ge=0, le=4, description="DeTT&CT visibility 0–4")
    detection: int = Field(ge=-1, le=5, description="DeTT&CT detection −1..5")
    relevance: float = Field(ge=0.0, le=1.0, description="Threat relevance 0–1 (share of the threat profile)")
    rank: int = Field(ge=1, description="1 = the worst gap")
    reason: str = Field("", description="Why it ranks where it does (the assessment's words)")


FindingKind = Literal["true-positive-hit", "emulation-exposed-compromise", "gap"]


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class FindingInput(BaseModel):
    """A confirmed finding: a hunt hit triaged true positive, or an emulation step that exposed real compromise."""

    model_config = _Strict
    kind: FindingKind
    technique_id: str
    sighting_id: str | None = Field(None, description="The STIX sighting behind the finding (its key)")
    summary: str
    severity: Severity = Severity.HIGH
    observed_data_ids: list[str] = Field(default_factory=list)
    host: str | None = None

    @property
    def key(self) -> str:
        """The finding's identity: its sighting, else technique+summary (gaps have no sighting)."""
        return self.sighting_id or f"{self.kind}|{self.technique_id}|{self.summary}"

    @property
    def escalates(self) -> bool:
        return self.kind in ("true-positive-hit", "emulation-exposed-compromise")


# -- finite sets ---------------------------------------------------------------------------------------


class Treatment(StrEnum):
    MITIGATE = "mitigate"
    ACCEPT = "accept"
    TRANSFER = "transfer"
    AVOID = "avoid"


class RiskStatus(StrEnum):
    OPEN = "open"  # identified, being treated per its treatment
    ACCEPTED = "accepted"  # a valid acceptance decision is on record
    REVIEW = "review"  # the acceptance expired: re-tested and back to a body for a decision
    CLOSED = "closed"  # residual risk verified by re-test


class ActionKind(StrEnum):
    REMEDIATION = "remediation"
    DETECTION_ENGINEERING = "detection-engineering"


class DetectionTask(StrEnum):
    WRITE_SIGMA = "write-sigma-rule"
    TUNE_SIGMA = "tune-sigma-rule"
    ONBOARD_DATA_SOURCE = "onboard-data-source"


class ActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in-progress"
    DONE = "done"  # the owner says it is done; only a re-test makes it verified
    VERIFIED = "verified"
    REOPENED = "reopened"


class RetestStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time (a Prefect scheduled run or the due-retests sweep)
    RUNNING = "running"  # conduct was started; waiting for its evidence
    PASSED = "passed"
    FAILED = "failed"  # at least one technique still not detected/prevented


class IncidentStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED_RETRYING = "failed-retrying"


# -- tables ----------------------------------------------------------------------------------------------


class Risk(SQLModel, table=True):
    __tablename__ = "followup_risk"

    id: str = SqlField(primary_key=True, max_length=40)
    dco_id: str = SqlField(index=True, max_length=64)
    source_key: str = SqlField(sa_type=Text, description="The gap or finding the risk comes from")
    statement: str
    technique_ids: list[str] = SqlField(default_factory=list, sa_column=Column(JSON, nullable=False))
    likelihood: int = SqlField(ge=1, le=5)
    impact: int = SqlField(ge=1, le=5)
    score: int = SqlField(ge=1, le=25)
    owner: str = SqlField(sa_type=Text)
    treatment: Treatment = Treatment.MITIGATE
    residual_likelihood: int | None = None
    residual_impact: int | None = None
    review_date: date
    status: RiskStatus = RiskStatus.OPEN
    decision_body: str | None = SqlField(sa_type=Text, default=None, description="Who must decide (CRMG, BCISOA…)")
    created_at: datetime = SqlField(default_factory=utcnow)
    updated_at: datetime = SqlField(default_factory=utcnow)
    version: int = 1

    @property
    def residual_score(self) -> int | None:
        if self.residual_likelihood is None or self.residual_impact is None:
            return None
        return self.residual_likelihood * self.residual_impact


class RiskDecision(SQLModel, table=True):
    """A decision on a risk by a named authority. Append-only: a new decision supersedes, history stays."""

    __tablename__ = "followup_risk_decision"

    id: int | None = SqlField(default=None, primary_key=True)
    risk_id: str = SqlField(index=True, foreign_key="followup_risk.id", max_length=40)
    decision: Treatment
    authority: str = SqlField(sa_type=Text)
    decided_by: str = SqlField(sa_type=Text)
    decided_at: datetime = SqlField(default_factory=utcnow)
    expires_at: datetime | None = None
    rationale: str
    expiry_handled_at: datetime | None = SqlField(default=None, description="When the expiry triggered a re-test")


class Action(SQLModel, table=True):
    __tablename__ = "followup_action"

    id: str = SqlField(primary_key=True, max_length=40)
    dco_id: str = SqlField(index=True, max_length=64)
    risk_id: str | None = SqlField(default=None, index=True, max_length=40)
    kind: ActionKind
    title: str
    technique_id: str = SqlField(index=True, max_length=16)
    mitigation_id: str | None = SqlField(default=None, max_length=16, description="ATT&CK M####")
    detection_task: DetectionTask | None = None
    data_components: list[str] = SqlField(default_factory=list, sa_column=Column(JSON, nullable=False))
    owner: str = SqlField(sa_type=Text)
    priority: Priority
    sla_days: int
    due_date: date
    status: ActionStatus = ActionStatus.OPEN
    created_at: datetime = SqlField(default_factory=utcnow)
    updated_at: datetime = SqlField(default_factory=utcnow)
    verified_by: str | None = SqlField(default=None, max_length=40, description="The re-test that verified it")
    version: int = 1

    def overdue(self, today: date) -> bool:
        return is_overdue(self.status, self.due_date, today)


class Retest(SQLModel, table=True):
    __tablename__ = "followup_retest"

    id: str = SqlField(primary_key=True, max_length=40)
    dco_id: str = SqlField(index=True, max_length=64)
    reason: str = SqlField(sa_type=Text)
    technique_ids: list[str] = SqlField(default_factory=list, sa_column=Column(JSON, nullable=False))
    scheduled_for: datetime
    deployment: str | None = SqlField(default=None, sa_type=Text)
    flow_run_id: str | None = SqlField(default=None, max_length=64)
    status: RetestStatus = RetestStatus.SCHEDULED
    results: dict[str, str] = SqlField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = SqlField(default_factory=utcnow)
    completed_at: datetime | None = None


class Incident(SQLModel, table=True):
    __tablename__ = "followup_incident"
    __table_args__ = (UniqueConstraint("finding_key", name="uq_followup_incident_finding"),)

    id: str = SqlField(primary_key=True, max_length=40)
    finding_key: str = SqlField(sa_type=Text)
    dco_id: str = SqlField(index=True, max_length=64)
    kind: str = SqlField(max_length=40)
    technique_id: str = SqlField(max_length=16)
    sighting_id: str | None = SqlField(default=None, max_length=120)
    observed_data_ids: list[str] = SqlField(default_factory=list, sa_column=Column(JSON, nullable=False))
    host: str | None = SqlField(default=None, sa_type=Text)
    summary: str
    # Named apart from emulation's Severity (which has INFO): by class name both would be PostgreSQL type
    # `severity`, and the incident column would get whichever labels were created first.
    severity: Severity = SqlField(sa_column=Column(SAEnum(Severity, name="incident_severity"), nullable=False))
    stix_id: str = SqlField(max_length=120)
    status: IncidentStatus = IncidentStatus.PENDING
    external_ref: str | None = SqlField(sa_type=Text, default=None, description="TheHive alert id")
    deliveries: dict[str, Any] = SqlField(
        default_factory=dict, sa_column=Column(JSON, nullable=False),
        description="Per channel (webhook, thehive): {'ref': …, 'at': …} once it accepted the incident",
    )
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime = SqlField(default_factory=utcnow)
    updated_at: datetime = SqlField(default_factory=utcnow)
    acknowledged_at: datetime | None = None


class Targets(BaseModel):
    """The coverage a DCO aims for (its assessment's targets): below either is a gap."""

    model_config = _Strict
    detection: int = Field(3, ge=-1, le=5, description="DeTT&CT detection score to reach (−1..5)")
    visibility: int = Field(2, ge=0, le=4, description="DeTT&CT visibility score to reach (0–4)")


# -- scoring rules ------------------------------------------------------------------------------------------
#
# A risk's likelihood is how likely a technique is used against this scope *and succeeds unseen*: the
# product of its threat level (its rank by threat relevance among the DCO's gaps, 0–1) and our coverage
# deficit (0–1, how far detection and visibility fall short of the DCO's targets), mapped onto 1–5. Either factor alone
# cannot make a risk likely: an unused technique we cannot see is rare, a favourite one we detect well too.
# Its impact is what the technique would touch: the criticality of the most critical asset group in
# scope it can reach (by platform), one lower for techniques that only yield information (discovery,
# reconnaissance, resource development); a confirmed finding's severity floors it.

CRITICALITY_IMPACT: dict[Criticality, int] = {
    Criticality.LOW: 2, Criticality.MEDIUM: 3, Criticality.HIGH: 4, Criticality.CRITICAL: 5}
SEVERITY_IMPACT: dict[Severity, int] = {Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
INFORMATION_TACTICS = frozenset({"reconnaissance", "resource-development", "discovery"})


def clamp(value: int, low: int = 1, high: int = 5) -> int:
    return max(low, min(high, value))


def coverage_deficit(detection: int, visibility: int, targets: Targets | None = None) -> float:
    """How far a technique falls short of the targets, 0 (meets both) to 1 (blind): detection weighs 0.7
    (an alert is what stops an attack), visibility 0.3 (seeing it afterwards still helps)."""
    targets = targets or Targets()
    # Nothing that alerts (DeTT&CT −1 none, 0 forensics only) is the whole shortfall; each level closes a share.
    det = max(0.0, min(1.0, (targets.detection - max(0, detection)) / targets.detection)) if targets.detection > 0 \
        else 0.0
    vis = max(0.0, min(1.0, (targets.visibility - visibility) / targets.visibility)) if targets.visibility else 0.0
    return round(0.7 * det + 0.3 * vis, 4)


def threat_levels(relevances: Sequence[float]) -> list[float]:
    """Each gap's threat level: the share of the DCO's gaps at most as relevant as it (the most relevant is 1,
    ties share the higher level). Ranks, not raw shares: relevance weights are heavy-tailed (one technique on
    every campaign dwarfs the rest), so a share of the top would call nearly everything unlikely."""
    n = len(relevances)
    return [sum(1 for other in relevances if other <= r) / n if r > 0 else 0.0 for r in relevances]


def likelihood_from_gap(threat: float, detection: int, visibility: int, targets: Targets | None = None) -> int:
    """1 + 4 × threat level × coverage deficit, rounded: 1 rare … 5 almost certain."""
    deficit = coverage_deficit(detection, visibility, targets)
    return clamp(1 + round(4 * max(0.0, min(1.0, threat)) * deficit))


@dataclass(frozen=True, slots=True)
class ScopeImpact:
    """What the DCO's scope says about impact: its asset groups (criticality, platforms) and platforms."""

    asset_groups: tuple[AssetGroup, ...] = ()
    platforms: tuple[str, ...] = ()

    @classmethod
    def of(cls, scope: Scope) -> ScopeImpact:
        return cls(tuple(scope.asset_groups), tuple(p.value for p in scope.platforms))

    def reached(self, technique_platforms: Sequence[str] = ()) -> list[AssetGroup]:
        """The asset groups a technique can act on (by platform), most critical first; all when none match
        (a technique in scope is never impact-free)."""
        wanted = {p.lower() for p in technique_platforms}
        order = list(Criticality)
        groups = sorted(self.asset_groups, key=lambda g: -order.index(g.criticality))
        if not wanted:
            return groups
        hit = [g for g in groups if wanted & {p.value for p in (g.platforms or ())} or (
            not g.platforms and (not self.platforms or wanted & set(self.platforms)))]
        return hit or groups

    def impact(
        self, technique_platforms: Sequence[str] = (), tactics: Sequence[str] = (), severity: Severity | None = None
    ) -> tuple[int, str]:
        """(impact 1–5, why in a few words)."""
        groups = self.reached(technique_platforms)
        if groups:
            value, why = CRITICALITY_IMPACT[groups[0].criticality], f"{groups[0].name} ({groups[0].criticality})"
        else:
            value, why = CRITICALITY_IMPACT[Criticality.MEDIUM], "scope without asset groups (medium)"
        if tactics and set(tactics) <= INFORMATION_TACTICS:
            value, why = value - 1, f"{why}, information only"
        if severity is not None and SEVERITY_IMPACT[severity] > value:
            value, why = SEVERITY_IMPACT[severity], f"{why}, {severity} finding"
        return clamp(value), why


class RiskDraft(BaseModel):
    """A risk as the rules derive it, before it is stored (pure, comparable in tests)."""

    id: str
    dco_id: str
    source_key: str
    statement: str
    technique_ids: list[str]
    likelihood: int
    impact: int
    owner: str
    review_date: date

    @property
    def score(self) -> int:
        return self.likelihood * self.impact


@dataclass(frozen=True, slots=True)
class TechniqueContext:
    """What the catalog says about a technique that risk rules need."""

    platforms: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()


def risk_from_gap(
    dco_id: str, gap: GapInput, scope: ScopeImpact, owner: str, today: date, policy: DecisionPolicy,
    *, targets: Targets | None = None, technique: TechniqueContext | None = None, threat: float | None = None,
) -> RiskDraft:
    technique = technique or TechniqueContext()
    likelihood = likelihood_from_gap(gap.relevance if threat is None else threat, gap.detection, gap.visibility,
                                     targets)
    impact, where = scope.impact(technique.platforms, technique.tactics)
    name = gap.technique_name or gap.technique_id
    if gap.visibility == 0:
        what = "cannot be seen"
    else:
        what = "is not detected" if gap.detection <= 0 else "is weakly detected"
    return RiskDraft(
        id=followup_id("risk", dco_id, "gap", gap.technique_id),
        dco_id=dco_id,
        source_key=f"gap|{gap.technique_id}",
        statement=f"{name} ({gap.technique_id}) {what} (visibility {gap.visibility}, detection {gap.detection}); "
        f"an adversary using it could act unnoticed against {where} (gap rank {gap.rank}, "
        f"threat relevance {gap.relevance:.2f}).",
        technique_ids=[gap.technique_id],
        likelihood=likelihood,
        impact=impact,
        owner=owner,
        review_date=review_date_for(likelihood * impact, today, policy),
    )


def risk_from_finding(
    dco_id: str, finding: FindingInput, scope: ScopeImpact, owner: str, today: date, policy: DecisionPolicy,
    *, technique: TechniqueContext | None = None,
) -> RiskDraft:
    technique = technique or TechniqueContext()
    # A confirmed finding already happened: likelihood is certain.
    likelihood = 5 if finding.escalates else 3
    impact, where = scope.impact(technique.platforms, technique.tactics, finding.severity)
    return RiskDraft(
        id=followup_id("risk", dco_id, "finding", finding.key),
        dco_id=dco_id,
        source_key=f"finding|{finding.key}",
        statement=f"{finding.summary} ({finding.technique_id}, {finding.kind}; affects {where}).",
        technique_ids=[finding.technique_id],
        likelihood=likelihood,
        impact=impact,
        owner=owner,
        review_date=review_date_for(likelihood * impact, today, policy),
    )


# -- priorities, SLAs, overdue ------------------------------------------------------------------------------

SLA_DAYS: dict[Priority, int] = {Priority.CRITICAL: 7, Priority.HIGH: 30, Priority.MEDIUM: 60, Priority.LOW: 90}


def priority_for_score(score: int) -> Priority:
    if score >= 20:
        return Priority.CRITICAL
    if score >= 12:
        return Priority.HIGH
    if score >= 6:
        return Priority.MEDIUM
    return Priority.LOW


def review_date_for(score: int, today: date, policy: DecisionPolicy | None = None) -> date:
    """Decide on (and review) a risk within the review period of the body its score needs; without a
    policy, within its priority's SLA."""
    if policy is None:
        return today + timedelta(days=SLA_DAYS[priority_for_score(score)])
    return today + timedelta(days=policy.required(score).review_days)


def due_date_for(priority: Priority, start: date, sla: Mapping[Priority, int] | None = None) -> date:
    return start + timedelta(days=(sla or SLA_DAYS)[priority])


def is_overdue(status: ActionStatus, due: date, today: date) -> bool:
    """Overdue: past its due date and not yet done (done awaits verification, which is not the owner's delay)."""
    return status in (ActionStatus.OPEN, ActionStatus.IN_PROGRESS, ActionStatus.REOPENED) and today > due


# Which status changes an owner may make; VERIFIED (and reopening a verified action) belong to re-tests.
ACTION_TRANSITIONS: dict[ActionStatus, frozenset[ActionStatus]] = {
    ActionStatus.OPEN: frozenset({ActionStatus.IN_PROGRESS, ActionStatus.DONE}),
    ActionStatus.IN_PROGRESS: frozenset({ActionStatus.OPEN, ActionStatus.DONE}),
    ActionStatus.DONE: frozenset({ActionStatus.IN_PROGRESS, ActionStatus.REOPENED}),
    ActionStatus.REOPENED: frozenset({ActionStatus.IN_PROGRESS, ActionStatus.DONE}),
    ActionStatus.VERIFIED: frozenset({ActionStatus.REOPENED}),
}


def check_action_transition(action_id: str, current: ActionStatus, target: ActionStatus) -> None:
    if target == ActionStatus.VERIFIED:
        raise StateError(
            "an action becomes verified only through a passing re-test", object=action_id,
            hint="mark it done; `dco followup retests` shows when its re-test runs",
        )
    if target not in ACTION_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ACTION_TRANSITIONS[current])) or "none"
        raise StateError(f"cannot go from {current} to {target}", object=action_id, hint=f"allowed next: {allowed}")


# -- decisions -----------------------------------------------------------------------------------------------


def validate_decision(
    risk: Risk, decision: Treatment, authority: str, expires_at: datetime | None, now: datetime,
    policy: DecisionPolicy,
) -> None:
    """Refuse a decision the governance does not allow: unknown body, too low a body, an open-ended acceptance."""
    rank = policy.rank(authority)
    if rank < 0:
        raise ValidationError(
            f"unknown decision authority {authority!r}", field="authority", suggestions=policy.names, object=risk.id
        )
    required = policy.body_for(risk.score)
    if rank < policy.rank(required):
        raise ValidationError(
            f"a risk scored {risk.score} must be decided by {required} or above, not {authority}",
            field="authority", suggestions=policy.names[policy.rank(required):], object=risk.id,
        )
    if decision == Treatment.ACCEPT:
        if expires_at is None:
            raise ValidationError("an acceptance needs an expiry date", field="expires", object=risk.id)
        if as_utc(expires_at) <= as_utc(now):
            raise ValidationError("the acceptance expiry must be in the future", field="expires", object=risk.id)
        body = policy.bodies[rank]
        if as_utc(expires_at) > as_utc(now) + timedelta(days=body.max_acceptance_days):
            raise ValidationError(
                f"{body.name} may accept a risk for at most {body.max_acceptance_days} days", field="expires",
                object=risk.id,
            )


def current_decision(decisions: Iterable[RiskDecision]) -> RiskDecision | None:
    """The decision in force: the latest one (decisions are appended, never edited)."""
    latest: RiskDecision | None = None
    for d in decisions:
        if latest is None or (as_utc(d.decided_at), d.id or 0) > (as_utc(latest.decided_at), latest.id or 0):
            latest = d
    return latest


def decision_valid(decision: RiskDecision | None, now: datetime) -> bool:
    if decision is None:
        return False
    return decision.expires_at is None or as_utc(decision.expires_at) > as_utc(now)


def needs_decision(risk: Risk, decisions: Sequence[RiskDecision], now: datetime, policy: DecisionPolicy) -> str | None:
    """The body that must decide on ``risk`` now, or None when no decision is needed.

    A decision is needed when the risk is not closed and has no decision in force, and either
    its score reaches the policy's threshold or someone proposes to accept it.
    """
    if risk.status == RiskStatus.CLOSED:
        return None
    if decision_valid(current_decision(decisions), now):
        return None
    if risk.score >= policy.decision_from or risk.treatment == Treatment.ACCEPT or risk.status == RiskStatus.REVIEW:
        return policy.body_for(risk.score)
    return None


def expired_acceptances(decisions: Iterable[RiskDecision], now: datetime) -> list[RiskDecision]:
    """Acceptances in force whose expiry has passed and that have not yet triggered their re-test."""
    by_risk: dict[str, list[RiskDecision]] = {}
    for d in decisions:
        by_risk.setdefault(d.risk_id, []).append(d)
    expired = []
    for items in by_risk.values():
        latest = current_decision(items)
        if (
            latest is not None
            and latest.decision == Treatment.ACCEPT
            and latest.expires_at is not None
            and as_utc(latest.expires_at) <= as_utc(now)
            and latest.expiry_handled_at is None
        ):
            expired.append(latest)
    return sorted(expired, key=lambda d: (d.risk_id, d.id or 0))


# -- re-test verdicts from evidence -------------------------------------------------------------------------------

RetestVerdict = Literal["pass", "fail"]
DETECTED_OUTCOMES = frozenset({"prevented", "alerted"})


def retest_verdict(technique_id: str, sightings: Iterable[dict[str, Any]], since: datetime) -> RetestVerdict | None:
    """Did evidence gathered after ``since`` show the technique detected or prevented?

    Emulation outcomes (``x_dco_outcome``) decide: prevented/alerted pass, logged/none fail. A hunt
    hit on the DCO's own exercise activity (``x_dco_exercise``) for the technique also passes. The
    newest emulation outcome wins; None when no evidence arrived yet (the re-test has not run).
    """
    cutoff = as_utc(since)
    newest: tuple[str, str] | None = None
    hunted = False
    for s in sightings:
        stamp = str(s.get("last_seen") or s.get("modified") or s.get("created") or "")
        if not stamp or parse_utc(stamp) < cutoff:
            continue
        outcome = s.get("x_dco_outcome")
        if outcome is not None and str(s.get("x_dco_technique_id", "")).upper() == technique_id.upper():
            if newest is None or stamp > newest[0]:
                newest = (stamp, str(outcome))
        elif s.get("x_dco_exercise") and technique_id.upper() in [t.upper() for t in s.get("x_dco_technique_ids", [])]:
            hunted = True
    if newest is not None:
        return "pass" if newest[1] in DETECTED_OUTCOMES or hunted else "fail"
    return "pass" if hunted else None


def hunt_retest_verdict(
    technique_id: str, hunt_runs: Iterable[dict[str, Any]], since: datetime
) -> RetestVerdict | None:
    """A threat hunt's re-test: a hunt run recorded after ``since`` (its STIX grouping) that ran a rule for the
    technique resolves its hunt actions — with a hit (the rule fires on the activity) or clean (the rule and its
    data are in place and the activity is absent). None while no such re-hunt happened."""
    cutoff = as_utc(since)
    wanted = technique_id.upper()
    for run in hunt_runs:
        stamp = str(run.get("modified") or run.get("created") or "")
        if not stamp or parse_utc(stamp) < cutoff:
            continue
        for rule in run.get("x_dco_rules") or []:
            if isinstance(rule, dict) and wanted in [str(t).upper() for t in rule.get("technique_ids") or []]:
                return "pass"
    return None


# -- incident retry ---------------------------------------------------------------------------------------------------


def next_attempt(attempts: int, now: datetime, base_s: float = 60.0, cap_s: float = 6 * 3600.0) -> datetime:
    """Exponential backoff between escalation attempts: 1 min, 2, 4 … capped at 6 h."""
    return as_utc(now) + timedelta(seconds=min(cap_s, base_s * 2 ** max(0, attempts - 1)))
