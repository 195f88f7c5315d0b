"""Per-technique visibility and detection scores from dated evidence, and ranked gaps (pure).

Scales (DeTT&CT's, so scores compare with DeTT&CT administration files and its Navigator layers):

* **visibility 0–4** — 0 none, 1 minimal, 2 medium, 3 good, 4 excellent.
* **detection −1..5** — −1 none/unknown, 0 forensics/context (the data is there, nothing alerts),
  1 basic, 2 fair, 3 good, 4 very good, 5 excellent.

How each evidence kind claims a level (``None``: no claim, the line is listed as context):

| kind | visibility | detection | why |
|---|---|---|---|
| ``telemetry-seen`` | 1 / 2 / 3 by share of its data components seen (<⅓, <⅔, ≥⅔) | 0 | logs exist: forensics |
| ``hunt-rule-available`` | — | — | planned content only; marks the gap addressable |
| ``hunt-rule-ran`` | 1 | 1 | a rule for it ran on collected data (basic) |
| ``hunt-hit`` (real) | 3 | 1 | the technique's events are in the data; the rule fires, quality untested |
| ``hunt-hit`` (exercise) | 3 | 3 | the rule fired on the DCO's own emulation of it: tested |
| ``triage-tp`` | 3 | 3 | an analyst confirmed a true positive |
| ``triage-fp`` / ``triage-benign`` | — | 1 | the rule fires on benign activity: noisy, needs tuning |
| ``emulation-prevented`` | 3 | 4 (5 at severity high/critical) | a control stopped the executed procedure |
| ``emulation-alerted`` | 3 | 4 (5 at severity high/critical) | an alert fired on the executed procedure |
| ``emulation-logged`` | 3 | 0 | recorded, not alerted: forensics only |
| ``emulation-none`` | — | −1, and it **supersedes** every earlier detection claim | the latest test found nothing |
| ``detection-strategy`` | — | — | ATT&CK has analytics for it; marks the gap addressable |
| ``assessed-visibility`` / ``assessed-detection`` | its value | its value | a DeTT&CT score logbook entry |

Visibility 4 needs a tested observation (emulation prevented/alerted/logged or an exercise hit)
*and* telemetry for at least ⅔ of the technique's data components.

Age: a claim ``L`` observed ``a`` days ago with weight ``w`` counts as
``base + (L − base) · w · 0.5^(a / half_life)`` with base 0 (visibility) or −1 (detection), so stale
evidence fades towards "unknown" and a re-test restores the score. The score is the largest aged
claim; every evidence group is listed in the explanation, the deciding one marked ``=>``.
Corrected outcomes keep their history: the older versions arrive with ``superseded_by`` set and
are listed, not scored.

Gaps: priority = threat relevance (in-scope groups + campaigns using the technique, at least 1
when the DCO planned it, ¼ otherwise) × score deficit
(0.6 · (5 − detection) / 6 + 0.4 · (4 − visibility) / 4, in 0..1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from dcoflow.models.operation import as_utc

if TYPE_CHECKING:
    from dcoflow.models.attack import Catalog

DEFAULT_HALF_LIFE_DAYS = 180.0


def reaches(score: float, level: int) -> bool:
    """Whether an (aged, continuous) score counts at ``level``: it does when it rounds to it or above,
    so a week-old level-1 claim (0.97) still counts as detected/visible. Every count of "detected" and
    "visible" (summaries, trend, briefs, tables) uses this one rule."""
    return score >= level - 0.5
VISIBILITY_MIN, VISIBILITY_MAX = 0, 4
DETECTION_MIN, DETECTION_MAX = -1, 5


class EvidenceKind(StrEnum):
    HUNT_RULE_AVAILABLE = "hunt-rule-available"
    HUNT_RULE_RAN = "hunt-rule-ran"
    HUNT_HIT = "hunt-hit"
    TRIAGE_TP = "triage-tp"
    TRIAGE_FP = "triage-fp"
    TRIAGE_BENIGN = "triage-benign"
    EMULATION_PREVENTED = "emulation-prevented"
    EMULATION_ALERTED = "emulation-alerted"
    EMULATION_LOGGED = "emulation-logged"
    EMULATION_NONE = "emulation-none"
    TELEMETRY_SEEN = "telemetry-seen"
    DETECTION_STRATEGY = "detection-strategy"
    ASSESSED_VISIBILITY = "assessed-visibility"
    ASSESSED_DETECTION = "assessed-detection"


K = EvidenceKind
EMULATION_KINDS = frozenset({K.EMULATION_PREVENTED, K.EMULATION_ALERTED, K.EMULATION_LOGGED, K.EMULATION_NONE})
ADDRESSABLE_KINDS = frozenset({K.HUNT_RULE_AVAILABLE, K.HUNT_RULE_RAN, K.DETECTION_STRATEGY})
_HIGH_SEVERITY = frozenset({"high", "critical"})


@dataclass(slots=True, frozen=True)
class Evidence:
    """One dated observation about one technique.

    ``value``: the DeTT&CT score for ``assessed-*``, the share of the technique's data components
    this record stands for (``telemetry-seen``), the hit count (``hunt-hit``). ``detail``: what a
    person needs to find it again (rule, tool, data component, severity). ``exercise``: a hunt hit
    caused by the DCO's own emulation.
    """

    technique_id: str
    kind: EvidenceKind
    observed_at: datetime
    source_ref: str
    weight: float = 1.0
    value: float | None = None
    detail: str = ""
    exercise: bool = False
    severity: str | None = None
    superseded_by: str | None = None
    dco_id: str | None = None


@dataclass(slots=True, frozen=True)
class Score:
    value: float
    explanation: list[str]

    @property
    def level(self) -> int:
        return round(self.value)


@dataclass(slots=True)
class TechniqueAssessment:
    technique_id: str
    visibility: Score
    detection: Score
    evidence_count: int = 0
    real_hits: int = 0
    exercise_hits: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    addressable: bool = False
    newest: datetime | None = None


def age_factor(observed_at: datetime, now: datetime, half_life_days: float) -> float:
    """0.5^(age / half-life); evidence from the future (clock skew) counts as fresh."""
    if half_life_days <= 0:
        return 1.0
    age = (now - as_utc(observed_at)).total_seconds() / 86400.0
    return 1.0 if age <= 0 else 0.5 ** (age / half_life_days)


def _detection_claim(ev: Evidence) -> int | None:
    kind = ev.kind
    if kind in (K.EMULATION_PREVENTED, K.EMULATION_ALERTED):
        return 5 if (ev.severity or "").lower() in _HIGH_SEVERITY else 4
    if kind in (K.TRIAGE_TP,) or (kind is K.HUNT_HIT and ev.exercise):
        return 3
    if kind in (K.HUNT_HIT, K.HUNT_RULE_RAN, K.TRIAGE_FP, K.TRIAGE_BENIGN):
        return 1
    if kind in (K.EMULATION_LOGGED, K.TELEMETRY_SEEN):
        return 0
    if kind is K.EMULATION_NONE:
        return -1
    if kind is K.ASSESSED_DETECTION and ev.value is not None:
        return int(min(DETECTION_MAX, max(DETECTION_MIN, round(ev.value))))
    return None


def _visibility_claim(ev: Evidence) -> int | None:
    kind = ev.kind
    if kind in (K.HUNT_HIT, K.TRIAGE_TP, K.EMULATION_PREVENTED, K.EMULATION_ALERTED, K.EMULATION_LOGGED):
        return 3
    if kind is K.HUNT_RULE_RAN:
        return 1
    if kind is K.ASSESSED_VISIBILITY and ev.value is not None:
        return int(min(VISIBILITY_MAX, max(VISIBILITY_MIN, round(ev.value))))
    return None  # telemetry-seen is scored by coverage, below


def _tested_observation(ev: Evidence) -> bool:
    return ev.kind in (K.EMULATION_PREVENTED, K.EMULATION_ALERTED, K.EMULATION_LOGGED) or (
        ev.kind is K.HUNT_HIT and ev.exercise
    )


@dataclass(slots=True)
class _Line:
    """Evidence records of one kind and detail, aggregated into one explanation line."""

    kind: str
    detail: str
    count: int = 0
    newest: datetime | None = None
    best: float | None = None  # largest aged claim of the group
    claim: int | None = None
    note: str = ""
    refs: list[str] = field(default_factory=list)

    def add(self, ev: Evidence, aged: float | None, claim: int | None) -> None:
        self.count += 1
        at = as_utc(ev.observed_at)
        if self.newest is None or at > self.newest:
            self.newest = at
        if aged is not None and (self.best is None or aged > self.best):
            self.best, self.claim = aged, claim
        if len(self.refs) < 3 and ev.source_ref not in self.refs:
            self.refs.append(ev.source_ref)

    def render(self, scale: str, deciding: bool) -> str:
        when = self.newest.strftime("%Y-%m-%d") if self.newest else "undated"
        times = f" ×{self.count}" if self.count > 1 else ""
        what = f" ({self.detail})" if self.detail else ""
        if self.best is None:
            claim = f" — {self.note}" if self.note else " — no claim"
        else:
            claim = f" → {scale} {self.claim} aged {self.best:.1f}" + (f" ({self.note})" if self.note else "")
        refs = " [" + ", ".join(self.refs) + (" …" if self.count > len(self.refs) else "") + "]"
        return ("=> " if deciding else "   ") + f"{when} {self.kind}{times}{what}{claim}{refs}"


def _line_for(lines: dict[tuple[str, ...], _Line], ev: Evidence, *more_key: str) -> _Line | None:
    """The explanation line of ``ev``'s group (kind, detail, exercise, superseded + ``more_key``).

    A superseded record is kept there as history with no claim, and gives None: it does not score.
    """
    key = (ev.kind.value, ev.detail, "x" if ev.exercise else "", ev.superseded_by or "", *more_key)
    line = lines.get(key)
    if line is None:
        line = lines[key] = _Line(ev.kind.value + (" (exercise)" if ev.exercise else ""), ev.detail)
    if ev.superseded_by:
        line.note = f"superseded by {ev.superseded_by}"
        line.add(ev, None, None)
        return None
    return line


def _aged_weight(ev: Evidence, now: datetime, half_life_days: float) -> float:
    return max(0.0, min(1.0, ev.weight)) * age_factor(ev.observed_at, now, half_life_days)


def _finish(lines: dict[tuple[str, ...], _Line], floor: float, scale: str) -> Score:
    best_key: tuple[str, ...] | None = None
    value = floor
    for key, line in lines.items():
        if line.best is not None and line.best > value + 1e-9:
            value, best_key = line.best, key
    ordered = sorted(lines.items(), key=lambda kv: (kv[1].newest or datetime.min.replace(tzinfo=UTC)), reverse=True)
    explanation = [line.render(scale, key == best_key) for key, line in ordered]
    if not explanation:
        explanation = [f"no {scale} evidence"]
    return Score(round(value, 1), explanation)


def visibility_score(
    evidence: Sequence[Evidence], now: datetime, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> Score:
    """Visibility 0–4 of one technique from its evidence (see the module docstring)."""
    lines: dict[tuple[str, ...], _Line] = {}
    coverage: dict[str, float] = {}
    tested: float = 0.0
    for ev in evidence:
        line = _line_for(lines, ev)
        if line is None:
            continue
        w = _aged_weight(ev, now, half_life_days)
        if ev.kind is K.TELEMETRY_SEEN:
            share = (ev.value if ev.value is not None else 1.0) * w
            dc = ev.detail or ev.source_ref
            coverage[dc] = max(coverage.get(dc, 0.0), share)
            line.note = "counts towards data-component coverage"
            line.add(ev, None, None)
            continue
        if _tested_observation(ev):
            tested = max(tested, w)
        claim = _visibility_claim(ev)
        line.add(ev, claim * w if claim is not None else None, claim)
    seen = min(1.0, sum(coverage.values()))
    if seen > 0:
        level = 3 if seen >= 2 / 3 - 1e-9 else 2 if seen >= 1 / 3 - 1e-9 else 1
        cov = _Line("telemetry coverage", f"{seen:.0%} of data components, {len(coverage)} seen")
        cov.best, cov.claim = float(level), level
        if tested > 0 and seen >= 2 / 3 - 1e-9:
            cov.best, cov.claim, cov.note = 4 * tested, 4, "with a tested observation"
        newest = [ln.newest for k, ln in lines.items() if k[0] == K.TELEMETRY_SEEN.value and ln.newest]
        cov.newest = max(newest) if newest else None
        cov.count = len(coverage)
        lines[("coverage",)] = cov
    return _finish(lines, float(VISIBILITY_MIN), "visibility")


def detection_score(
    evidence: Sequence[Evidence], now: datetime, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> Score:
    """Detection −1..5 of one technique from its evidence (see the module docstring)."""
    last_miss: datetime | None = None
    for ev in evidence:
        if ev.kind is K.EMULATION_NONE and not ev.superseded_by:
            at = as_utc(ev.observed_at)
            if last_miss is None or at > last_miss:
                last_miss = at
    lines: dict[tuple[str, ...], _Line] = {}
    for ev in evidence:
        overruled = (
            last_miss is not None and ev.kind is not K.EMULATION_NONE and not ev.superseded_by
            and as_utc(ev.observed_at) < last_miss
        )
        line = _line_for(lines, ev, "o" if overruled else "")
        if line is None:
            continue
        claim = _detection_claim(ev)
        if claim is None:
            line.note = "context: makes the gap addressable" if ev.kind in ADDRESSABLE_KINDS else ""
            line.add(ev, None, None)
            continue
        if overruled:
            assert last_miss is not None
            line.note = f"overruled by emulation-none on {last_miss:%Y-%m-%d}"
            line.add(ev, float(DETECTION_MIN), claim)
            continue
        w = _aged_weight(ev, now, half_life_days)
        line.add(ev, DETECTION_MIN + (claim - DETECTION_MIN) * w, claim)
    return _finish(lines, float(DETECTION_MIN), "detection")


def assess_technique(
    technique_id: str, evidence: Sequence[Evidence], now: datetime, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
) -> TechniqueAssessment:
    outcomes: dict[str, int] = {}
    real = exercise = 0
    newest: datetime | None = None
    for ev in evidence:
        at = as_utc(ev.observed_at)
        if newest is None or at > newest:
            newest = at
        if ev.superseded_by:
            continue
        if ev.kind is K.HUNT_HIT:
            n = int(ev.value) if ev.value is not None else 1
            if ev.exercise:
                exercise += n
            else:
                real += n
        elif ev.kind in EMULATION_KINDS:
            name = ev.kind.value.removeprefix("emulation-")
            outcomes[name] = outcomes.get(name, 0) + 1
    return TechniqueAssessment(
        technique_id=technique_id,
        visibility=visibility_score(evidence, now, half_life_days),
        detection=detection_score(evidence, now, half_life_days),
        evidence_count=len(evidence),
        real_hits=real,
        exercise_hits=exercise,
        outcomes=outcomes,
        addressable=any(ev.kind in ADDRESSABLE_KINDS for ev in evidence),
        newest=newest,
    )


def group_by_technique(evidence: Iterable[Evidence]) -> dict[str, list[Evidence]]:
    grouped: dict[str, list[Evidence]] = {}
    for ev in evidence:
        bucket = grouped.get(ev.technique_id)
        if bucket is None:
            bucket = grouped[ev.technique_id] = []
        bucket.append(ev)
    return grouped


def assess_evidence(
    evidence: Iterable[Evidence],
    now: datetime,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    techniques: Iterable[str] = (),
) -> dict[str, TechniqueAssessment]:
    """Scores for every technique with evidence, plus ``techniques`` (scored from nothing)."""
    now = as_utc(now)
    grouped = group_by_technique(evidence)
    for tid in techniques:
        grouped.setdefault(tid, [])
    return {tid: assess_technique(tid, grouped[tid], now, half_life_days) for tid in sorted(grouped)}


# -- threat relevance and gaps ------------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class Relevance:
    """Who in the DCO's threat profile uses a technique."""

    groups: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    planned: bool = False

    @property
    def users(self) -> tuple[str, ...]:
        return self.groups + self.campaigns

    @property
    def weight(self) -> float:
        n = len(self.groups) + len(self.campaigns)
        return float(n) if n else (1.0 if self.planned else 0.25)


def threat_relevance(
    catalog: Catalog,
    groups: Iterable[str] = (),
    campaigns: Iterable[str] = (),
    via: Sequence[str] = ("direct", "campaigns"),
    planned: Iterable[str] = (),
) -> dict[str, Relevance]:
    """For every technique the in-scope groups/campaigns use (or the DCO planned), who uses it."""
    by_tid: dict[str, tuple[list[str], list[str]]] = {}
    for ref in groups:
        group = catalog.group(ref)
        label = f"{group.name} ({group.attack_id})"
        for tid in catalog.group_techniques(group.attack_id, via=via):
            by_tid.setdefault(tid, ([], []))[0].append(label)
    for ref in campaigns:
        camp = catalog.campaign(ref)
        label = f"{camp.name} ({camp.attack_id})"
        for tid in camp.technique_ids:
            by_tid.setdefault(tid, ([], []))[1].append(label)
    wanted = set(planned)
    out = {tid: Relevance(tuple(g), tuple(c), tid in wanted) for tid, (g, c) in by_tid.items()}
    for tid in wanted - set(out):
        out[tid] = Relevance(planned=True)
    return out


def score_deficit(visibility: float, detection: float) -> float:
    """How far from excellent (0: visibility 4 and detection 5; 1: nothing at all)."""
    det = (DETECTION_MAX - min(DETECTION_MAX, max(DETECTION_MIN, detection))) / (DETECTION_MAX - DETECTION_MIN)
    vis = (VISIBILITY_MAX - min(VISIBILITY_MAX, max(VISIBILITY_MIN, visibility))) / VISIBILITY_MAX
    return 0.6 * det + 0.4 * vis


@dataclass(slots=True, frozen=True)
class Gap:
    technique_id: str
    visibility: float
    detection: float
    deficit: float
    relevance: float
    users: tuple[str, ...]
    priority: float
    addressable: bool


def rank_gaps(
    assessments: Mapping[str, TechniqueAssessment], relevance: Mapping[str, Relevance]
) -> list[Gap]:
    """Gaps by priority (relevance × deficit), then addressable first, then id; perfect scores drop out."""
    gaps = []
    for tid, a in assessments.items():
        deficit = score_deficit(a.visibility.value, a.detection.value)
        if deficit <= 0:
            continue
        rel = relevance.get(tid, Relevance())
        gaps.append(Gap(tid, a.visibility.value, a.detection.value, round(deficit, 4), rel.weight, rel.users,
                        round(rel.weight * deficit, 4), a.addressable))
    gaps.sort(key=lambda g: (-g.priority, not g.addressable, g.technique_id))
    return gaps
