"""Per-technique visibility and detection scores from dated evidence, and ranked gaps (pure).

Scales (DeTT&CT's, so scores compare with DeTT&CT administration files and its Navigator layers):

* **visibility 0–4** — 0 none, 1 minimal, 2 medium, 3 good, 4 excellent.
* **detection −1..5** — −1 none/unknown, 0 forensics/context (the data is there, nothing alerts),
  1 basic, 2 fair, 3 good, 4 very good, 5 excellent.

How each evidence kind claims a level (``None``: no claim, the line is listed as context).
Detection needs something that *fired on the technique's activity*; visibility needs telemetry that
*held events* of the technique's data components. A rule that ran and found nothing is neither: it is
**hunt coverage** (``HuntCoverage``: "hunted with N rules over these data sources, nothing found"),
kept beside the scores.

| kind | visibility | detection | why |
|---|---|---|---|
| ``telemetry-seen`` | 1 / 2 / 3 by share of data components seen (<⅓, <⅔, ≥⅔) | 0 | its logs exist: forensics |
| ``hunt-rule-available`` | — | — | planned content only; marks the gap addressable |
| ``hunt-rule-ran`` | 1 | — (coverage) | its log source held events: a data component is collected |
| ``hunt-rule-no-data`` | — | — (coverage) | its log source held no events: nothing was looked at |
| ``hunt-hit`` (real, untriaged) | 2 | 0 | a lead: a rule fired in real data, maybe on something else |
| ``hunt-hit`` (exercise) | 3 | 3 | the rule fired on the DCO's own emulation of it: tested |
| ``hunt-hit`` triaged false positive / benign | — | — | superseded: the rule fired on something else |
| ``triage-tp`` | 3 | 3 | an analyst confirmed a true positive |
| ``triage-fp`` / ``triage-benign`` | — | — | context: the rule is noisy, needs tuning |
| ``emulation-prevented`` | 3 | 4 (5 at severity high/critical) | a control stopped the executed procedure |
| ``emulation-alerted`` | 3 | 4 (5 at severity high/critical) | an alert fired on the executed procedure |
| ``emulation-logged`` | 3 | 0 | recorded, not alerted: visibility only, forensics |
| ``emulation-none`` | — | −1, and it **supersedes** every earlier detection claim | the latest test found nothing |
| ``detection-strategy`` | — | — | ATT&CK has analytics for it; marks the gap addressable |
| ``assessed-visibility`` / ``assessed-detection`` | its value | its value | a DeTT&CT score logbook entry |

A technique counts as *detected* at detection ≥ 1 and *visible* at visibility ≥ 1 (``reaches``).
Only the DCO's own techniques (its plan) are scored; evidence about others is reported, not scored.

Visibility 4 needs a tested observation (emulation prevented/alerted/logged or an exercise hit)
*and* telemetry for at least ⅔ of the technique's data components.

Age: a claim ``L`` observed ``a`` days ago with weight ``w`` counts as
``base + (L − base) · w · 0.5^(a / half_life)`` with base 0 (visibility) or −1 (detection), so stale
evidence fades towards "unknown" and a re-test restores the score. The score is the largest aged
claim; every evidence group is listed in the explanation, the deciding one marked ``=>``.
Corrected outcomes keep their history: the older versions arrive with ``superseded_by`` set and
are listed, not scored.

Gaps: an in-scope technique whose detection or visibility is below the DCO's target
(``Targets``, default detection 3, visibility 2) is a gap. Priority = threat relevance × shortfall:

* relevance = (3 · in-profile groups using it + 2 · campaigns + 1 · software + 2 if on the emulation
  plan's path, at least 1 when planned, + up to 1 for its users anywhere in ATT&CK / 100)
  × recency (0.5 + 0.5 · 0.5^(years since the newest use / 3),
  by campaign last_seen and `uses` relationship dates) × exposure (share of the scope's platforms the
  technique runs on, at least ¼);
* shortfall = 0.6 · (target detection − detection) / (target detection + 1)
  + 0.4 · (target visibility − visibility) / target visibility, each part ≥ 0.

Each gap carries its reason (``Gap.reason``) and the parts (``Gap.breakdown``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from dcoflow.models.attack.catalog import PROFILE_VIA, Via
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
    HUNT_RULE_NO_DATA = "hunt-rule-no-data"
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
ADDRESSABLE_KINDS = frozenset({K.HUNT_RULE_AVAILABLE, K.HUNT_RULE_RAN, K.HUNT_RULE_NO_DATA, K.DETECTION_STRATEGY})
COVERAGE_KINDS = frozenset({K.HUNT_RULE_RAN, K.HUNT_RULE_NO_DATA})
_HIGH_SEVERITY = frozenset({"high", "critical"})


@dataclass(slots=True, frozen=True)
class Evidence:
    """One dated observation about one technique.

    ``value``: the DeTT&CT score for ``assessed-*``, the share of the technique's data components
    this record stands for (``telemetry-seen``), the hit count (``hunt-hit``, ``hunt-rule-ran``).
    ``detail``: what a person needs to find it again (rule, tool, data component, severity).
    ``exercise``: a hunt hit caused by the DCO's own emulation. ``data_source``: what a hunt ran over.
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
    data_source: str | None = None


@dataclass(slots=True, frozen=True)
class Score:
    value: float
    explanation: list[str]

    @property
    def level(self) -> int:
        return round(self.value)


@dataclass(slots=True, frozen=True)
class HuntCoverage:
    """How a technique was hunted, beside its scores: never detection by itself."""

    rules: int = 0  # distinct rules run over data that held their log source
    rules_without_data: int = 0  # distinct rules whose log source held no events
    hits: int = 0
    sources: tuple[str, ...] = ()
    newest: datetime | None = None

    @property
    def hunted(self) -> bool:
        return self.rules > 0

    @property
    def clean(self) -> bool:
        """Hunted over real telemetry and nothing found."""
        return self.rules > 0 and self.hits == 0

    def text(self) -> str:
        if not self.rules and not self.rules_without_data:
            return "not hunted"
        over = f" over {', '.join(self.sources)}" if self.sources else ""
        parts = []
        if self.rules:
            found = "nothing found" if self.hits == 0 else f"{self.hits} hits"
            parts.append(f"hunted with {self.rules} rule{'s' if self.rules != 1 else ''}{over}, {found}")
        if self.rules_without_data:
            n = self.rules_without_data
            parts.append(f"{n} rule{'s' if n != 1 else ''} had no telemetry for {'their' if n != 1 else 'its'} "
                         "log source")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {"rules": self.rules, "rules_without_data": self.rules_without_data, "hits": self.hits,
                "sources": list(self.sources), "clean": self.clean, "text": self.text(),
                "newest": self.newest.isoformat() if self.newest else None}


def hunt_coverage(evidence: Iterable[Evidence]) -> HuntCoverage:
    """The hunt coverage of one technique's evidence (``hunt-rule-ran`` / ``hunt-rule-no-data``)."""
    ran: dict[str, float] = {}
    no_data: set[str] = set()
    sources: dict[str, None] = {}
    newest: datetime | None = None
    for ev in evidence:
        if ev.kind not in COVERAGE_KINDS or ev.superseded_by:
            continue
        at = as_utc(ev.observed_at)
        newest = at if newest is None or at > newest else newest
        if ev.kind is K.HUNT_RULE_NO_DATA:
            no_data.add(ev.detail)
            continue
        ran[ev.detail] = max(ran.get(ev.detail, 0.0), ev.value or 0.0)
        if ev.data_source:
            sources.setdefault(ev.data_source, None)
    return HuntCoverage(len(ran), len(no_data - set(ran)), int(sum(ran.values())), tuple(sources), newest)


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
    coverage: HuntCoverage = field(default_factory=HuntCoverage)


def age_factor(observed_at: datetime, now: datetime, half_life_days: float) -> float:
    """0.5^(age / half-life); evidence from the future (clock skew) counts as fresh."""
    if half_life_days <= 0:
        return 1.0
    age = (now - as_utc(observed_at)).total_seconds() / 86400.0
    return 1.0 if age <= 0 else 0.5 ** (age / half_life_days)


def _detection_claim(ev: Evidence) -> int | None:
    """Detection needs something that fired on the technique's activity (see the module table)."""
    kind = ev.kind
    if kind in (K.EMULATION_PREVENTED, K.EMULATION_ALERTED):
        return 5 if (ev.severity or "").lower() in _HIGH_SEVERITY else 4
    if kind in (K.TRIAGE_TP,) or (kind is K.HUNT_HIT and ev.exercise):
        return 3
    if kind in (K.HUNT_HIT, K.EMULATION_LOGGED, K.TELEMETRY_SEEN):  # an untriaged real hit is a lead, not proof
        return 0
    if kind is K.EMULATION_NONE:
        return -1
    if kind is K.ASSESSED_DETECTION and ev.value is not None:
        return int(min(DETECTION_MAX, max(DETECTION_MIN, round(ev.value))))
    return None


def _visibility_claim(ev: Evidence) -> int | None:
    """Visibility needs telemetry that held events of the technique's data components."""
    kind = ev.kind
    if kind in (K.TRIAGE_TP, K.EMULATION_PREVENTED, K.EMULATION_ALERTED, K.EMULATION_LOGGED):
        return 3
    if kind is K.HUNT_HIT:
        return 3 if ev.exercise else 2
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


_CONTEXT = {
    K.HUNT_RULE_RAN: "hunt coverage, not detection: the rule ran over its log source",
    K.HUNT_RULE_NO_DATA: "hunt coverage: its log source held no events",
    K.HUNT_RULE_AVAILABLE: "context: makes the gap addressable",
    K.DETECTION_STRATEGY: "context: makes the gap addressable",
    K.TRIAGE_FP: "context: the rule fires on benign activity (tune it)",
    K.TRIAGE_BENIGN: "context: the rule fires on benign activity (tune it)",
}


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
            line.note = _CONTEXT.get(ev.kind, "")
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
        coverage=hunt_coverage(evidence),
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

DEFAULT_TARGET_DETECTION = 3
DEFAULT_TARGET_VISIBILITY = 2
RECENCY_HALF_LIFE_YEARS = 3.0


@dataclass(slots=True, frozen=True)
class Relevance:
    """Who in the DCO's threat profile uses a technique, how recently, and how exposed the scope is."""

    groups: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    planned: bool = False
    software: tuple[str, ...] = ()
    on_path: bool = False  # an emulation step of the plan exercises it
    newest_use: str | None = None  # ISO date: newest campaign last_seen / `uses` relationship date
    recency: float = 1.0  # 0.5..1: 0.5 + 0.5 · 0.5^(years since newest_use / 3)
    exposure: float = 1.0  # share of the scope's platforms the technique runs on (≥ ¼)
    platforms: tuple[str, ...] = ()  # the scope's platforms it runs on
    prevalence: int = 0  # groups, campaigns and software using it anywhere in ATT&CK

    @property
    def users(self) -> tuple[str, ...]:
        return self.groups + self.campaigns + self.software

    @property
    def usage(self) -> float:
        return 3.0 * len(self.groups) + 2.0 * len(self.campaigns) + 1.0 * len(self.software)

    @property
    def weight(self) -> float:
        base = self.usage + (2.0 if self.on_path else 0.0)
        if base == 0:
            base = 1.0 if self.planned else 0.25
        base += min(1.0, self.prevalence / 100)  # breaks ties: widely used beyond the profile
        return round(base * self.recency * self.exposure, 4)

    def reason(self) -> str:
        parts = []
        if self.groups:
            parts.append("used by " + ", ".join(self.groups))
        if self.campaigns:
            parts.append(f"{len(self.campaigns)} campaign{'s' if len(self.campaigns) > 1 else ''} ("
                         + ", ".join(self.campaigns[:3]) + (" …" if len(self.campaigns) > 3 else "") + ")")
        if self.software:
            parts.append(f"{len(self.software)} software (" + ", ".join(self.software[:3])
                         + (" …" if len(self.software) > 3 else "") + ")")
        if not parts:
            parts.append("planned, no in-profile user" if self.planned else "no in-profile user")
        if self.newest_use:
            parts.append(f"last seen {self.newest_use[:7]}")
        if self.on_path:
            parts.append("on the emulation path")
        if self.prevalence:
            parts.append(f"{self.prevalence} users in ATT&CK")
        if self.platforms:
            parts.append("runs on " + ", ".join(self.platforms))
        elif self.exposure < 1:
            parts.append("not on the scope's platforms")
        return "; ".join(parts)


def _years_between(iso: str, now: datetime) -> float:
    try:
        then = as_utc(datetime.fromisoformat(iso.replace("Z", "+00:00")))
    except ValueError:
        return RECENCY_HALF_LIFE_YEARS * 4
    return max(0.0, (now - then).total_seconds() / (365.25 * 86400))


def threat_relevance(
    catalog: Catalog,
    groups: Iterable[str] = (),
    campaigns: Iterable[str] = (),
    via: Iterable[Via] = PROFILE_VIA,
    planned: Iterable[str] = (),
    *,
    software: Iterable[str] = (),
    path: Iterable[str] = (),
    platforms: Iterable[str] = (),
    now: datetime | None = None,
) -> dict[str, Relevance]:
    """For every technique the in-profile groups/campaigns/software use (or the DCO planned): who uses
    it (a group's campaigns and software are in the profile; ``via`` decides only whether the group's
    direct use counts), how recently (newest campaign
    last_seen or `uses` relationship date), whether the emulation ``path`` has it, and the share of
    the scope's ``platforms`` it runs on."""
    now = as_utc(now or datetime.now(UTC))
    users: dict[str, tuple[dict[str, None], dict[str, None], dict[str, None]]] = {}
    dates: dict[str, str] = {}

    def add(tid: str, slot: int, label: str, when: str | None) -> None:
        users.setdefault(tid, ({}, {}, {}))[slot].setdefault(label, None)
        if when and when > dates.get(tid, ""):
            dates[tid] = when

    def use_date(tid: str, user: str) -> str | None:
        tech = catalog.get_technique(tid)
        return tech.use_dates.get(user) if tech is not None else None

    camp_refs = list(campaigns)
    soft_refs = list(software)
    for ref in groups:
        group = catalog.group(ref)
        add_via = set(via)
        for tid in group.technique_ids if Via.DIRECT in add_via else ():
            add(tid, 0, f"{group.name} ({group.attack_id})", use_date(tid, group.attack_id))
        # the group's campaigns and software are in the profile whatever ``via`` selected for the plan
        camp_refs.extend(group.campaign_ids)
        soft_refs.extend(group.software_ids)
    for ref in dict.fromkeys(camp_refs):
        camp = catalog.campaign(ref)
        label = f"{camp.name} ({camp.attack_id})"
        for tid in camp.technique_ids:
            add(tid, 1, label, max(filter(None, (camp.last_seen, use_date(tid, camp.attack_id))), default=None))
    for ref in dict.fromkeys(soft_refs):
        soft = catalog.software(ref)
        for tid in soft.technique_ids:
            add(tid, 2, f"{soft.name} ({soft.attack_id})", use_date(tid, soft.attack_id))
    wanted = set(planned)
    on_path = set(path)
    scope = [p.lower() for p in platforms]
    out: dict[str, Relevance] = {}
    for tid in sorted(set(users) | wanted):
        g, c, sw = users.get(tid, ({}, {}, {}))
        newest = dates.get(tid)
        recency = 0.5 + 0.5 * 0.5 ** (_years_between(newest, now) / RECENCY_HALF_LIFE_YEARS) if newest else 0.5
        tech = catalog.get_technique(tid)
        runs_on = tuple(p for p in scope if tech is not None and p in {x.lower() for x in tech.platforms})
        exposure = max(0.25, len(runs_on) / len(scope)) if scope and tech is not None else 1.0
        prevalence = len(tech.group_ids) + len(tech.campaign_ids) + len(tech.software_ids) if tech else 0
        out[tid] = Relevance(tuple(g), tuple(c), tid in wanted, tuple(sw), tid in on_path,
                             newest[:10] if newest else None, round(recency, 4), round(exposure, 4), runs_on,
                             prevalence)
    return out


@dataclass(slots=True, frozen=True)
class Targets:
    """The detection and visibility a DCO wants for each of its techniques (DeTT&CT levels)."""

    detection: int = DEFAULT_TARGET_DETECTION
    visibility: int = DEFAULT_TARGET_VISIBILITY


def score_deficit(visibility: float, detection: float, targets: Targets | None = None) -> float:
    """How far below target (0: at or above both targets; 1: nothing at all). Without ``targets``:
    how far from excellent (visibility 4, detection 5)."""
    t = targets or Targets(DETECTION_MAX, VISIBILITY_MAX)
    det = max(0.0, t.detection - min(DETECTION_MAX, max(DETECTION_MIN, detection))) / (t.detection - DETECTION_MIN)
    vis = max(0.0, t.visibility - min(VISIBILITY_MAX, max(VISIBILITY_MIN, visibility))) / max(1, t.visibility)
    return 0.6 * det + 0.4 * vis


def below_target(visibility: float, detection: float, targets: Targets) -> bool:
    """A gap: detection or visibility does not reach (``reaches``) the target."""
    return not reaches(detection, targets.detection) or not reaches(visibility, targets.visibility)


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
    reason: str = ""
    breakdown: dict[str, object] = field(default_factory=dict, hash=False, compare=False)


def rank_gaps(
    assessments: Mapping[str, TechniqueAssessment], relevance: Mapping[str, Relevance],
    targets: Targets | None = None,
) -> list[Gap]:
    """Techniques below target, by priority (relevance × shortfall), then addressable first, then id.

    Each gap says why it ranks where it does (``reason``) and carries the parts (``breakdown``)."""
    targets = targets or Targets()
    gaps = []
    for tid, a in assessments.items():
        vis, det = a.visibility.value + 0.0, a.detection.value + 0.0  # + 0.0: no "-0" in the reason
        if not below_target(vis, det, targets):
            continue
        deficit = round(score_deficit(vis, det, targets), 4)
        rel = relevance.get(tid, Relevance())
        short = []
        if not reaches(det, targets.detection):
            short.append(f"detection {det:g} < {targets.detection}")
        if not reaches(vis, targets.visibility):
            short.append(f"visibility {vis:g} < {targets.visibility}")
        reason = f"{', '.join(short)}; {rel.reason()}"
        if a.coverage.hunted:
            reason += f"; {a.coverage.text()}"
        breakdown: dict[str, object] = {
            "groups": len(rel.groups), "campaigns": len(rel.campaigns), "software": len(rel.software),
            "on_path": rel.on_path, "newest_use": rel.newest_use, "recency": rel.recency,
            "exposure": rel.exposure, "prevalence": rel.prevalence, "relevance": rel.weight, "shortfall": deficit,
            "target_detection": targets.detection, "target_visibility": targets.visibility,
        }
        gaps.append(Gap(tid, vis, det, deficit, rel.weight, rel.users, round(rel.weight * deficit, 4),
                        a.addressable, reason, breakdown))
    gaps.sort(key=lambda g: (-g.priority, not g.addressable, g.technique_id))
    return gaps
