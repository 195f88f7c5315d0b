"""What a hunt found, for people: hits by technique, rule and host, visibility gaps, skipped rules; of an
unrecorded outcome (ad-hoc hunts) or of a recorded hunt run, and as markdown (Prefect artifacts, reports)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcoflow.models.exercise import ExerciseMarker, is_exercise
from dcoflow.models.hunt_run import HuntRun
from dcoflow.models.hunting import HuntOutcome
from dcoflow.models.stix import hunt_objects as ho


@dataclass(slots=True)
class HuntSummary:
    """What a hunt found, for people: hits by technique, rule and host, and the visibility gaps."""

    source: str
    rules_run: int
    events_read: int
    bad_records: int
    hits: int
    exercise_hits: int = 0
    by_technique: dict[str, int] = field(default_factory=dict)
    by_rule: list[dict[str, Any]] = field(default_factory=list)
    by_host: dict[str, int] = field(default_factory=dict)
    gaps: list[dict[str, Any]] = field(default_factory=list)  # rules with no matching log source
    skipped: list[dict[str, Any]] = field(default_factory=list)
    unknown_techniques: list[str] = field(default_factory=list)
    run_id: str | None = None
    status: str | None = None


def _by_technique(rules: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in rules:
        for tid in r["technique_ids"] or ["(untagged)"]:
            counts[tid] += int(r["hits"])
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize_outcome(outcome: HuntOutcome, exercise_markers: Sequence[ExerciseMarker] = ()) -> HuntSummary:
    """The summary of an unrecorded outcome (ad-hoc hunts from the CLI); hosts come from the sampled events."""
    hits = {m.rule.rule_id: m for m in outcome.matches}
    rules = [{"rule_id": r.rule_id, "title": r.title, "technique_ids": r.technique_ids, "tags": r.tags,
              "hits": hits[r.rule_id].count if r.rule_id in hits else 0,
              "exact": hits[r.rule_id].exact if r.rule_id in hits else True} for r in outcome.rules_run]
    hosts: Counter[str] = Counter()
    exercise = 0
    for m in outcome.matches:
        for ev in m.events:
            hosts[ho.event_host(ev) or "(unknown)"] += 1
            exercise += is_exercise(ev, exercise_markers)
    return HuntSummary(
        source=outcome.source, rules_run=len(outcome.rules_run), events_read=outcome.events_read,
        bad_records=sum(r.skipped for r in outcome.reports), hits=sum(m.count for m in outcome.matches),
        exercise_hits=exercise, by_technique=_by_technique(rules),
        by_rule=sorted(rules, key=lambda r: (-int(r["hits"]), str(r["rule_id"]))),
        by_host=dict(hosts.most_common()),
        gaps=[{"rule_id": r.rule_id, "title": r.title, "logsource": r.logsource} for r in outcome.no_logsource],
        skipped=[{"path": s.path, "rule_id": s.rule_id, "reason": s.reason} for s in outcome.skipped],
    )


def hunt_summary(run: HuntRun) -> HuntSummary:
    """The summary of a recorded run (hosts counted over the sampled, recorded events)."""
    stats = list(run.rule_stats.values())
    hosts: Counter[str] = Counter()
    for s in stats:
        hosts.update({h: int(n) for h, n in s.get("hosts", {}).items()})
    return HuntSummary(
        source=run.source, rules_run=len(stats), events_read=run.events_read, bad_records=run.bad_records,
        hits=run.hits, exercise_hits=run.exercise_hits, by_technique=_by_technique(stats),
        by_rule=sorted(({k: s[k] for k in ("rule_id", "title", "technique_ids", "hits")} for s in stats),
                       key=lambda r: (-int(r["hits"]), str(r["rule_id"]))),
        by_host=dict(hosts.most_common()), gaps=[{"rule_id": r} for r in run.no_logsource],
        skipped=list(run.skipped), unknown_techniques=list(run.unknown_techniques), run_id=run.id,
        status=str(run.status),
    )


def summary_markdown(summary: HuntSummary, *, top: int = 25) -> str:
    """The hunt summary as markdown (Prefect artifact, reports)."""
    lines = [
        f"# Hunt summary{f' — run `{summary.run_id}`' if summary.run_id else ''}",
        "",
        f"- source: `{summary.source}`",
        f"- rules run: {summary.rules_run}; events read: {summary.events_read}; bad records: {summary.bad_records}",
        f"- hits: {summary.hits} (of which exercise activity in the samples: {summary.exercise_hits})",
    ]
    if summary.status:
        lines.append(f"- status: {summary.status}")
    if summary.unknown_techniques:
        lines.append(f"- technique ids unknown to the loaded ATT&CK release: {', '.join(summary.unknown_techniques)}")
    lines += ["", "## Hits by technique", "", "| technique | hits |", "|---|---:|"]
    lines += [f"| {t} | {n} |" for t, n in list(summary.by_technique.items())[:top]]
    lines += ["", "## Hits by rule", "", "| rule | title | techniques | hits |", "|---|---|---|---:|"]
    # ≥: a SIEM that could only bound the count (EQL past its request budget) — never shown as exact
    lines += [f"| `{r['rule_id']}` | {r['title']} | {', '.join(r['technique_ids'])} | "
              f"{'' if r.get('exact', True) else '≥'}{r['hits']} |"
              for r in summary.by_rule[:top] if r["hits"]]
    lines += ["", "## Hits by host (sampled events)", "", "| host | hits |", "|---|---:|"]
    lines += [f"| {h} | {n} |" for h, n in list(summary.by_host.items())[:top]]
    lines += ["", f"## Visibility gaps ({len(summary.gaps)} rules with no matching log source)", ""]
    lines += [f"- `{g['rule_id']}` {g.get('title', '')} {g.get('logsource', '')}".rstrip() for g in summary.gaps[:top]]
    if summary.skipped:
        lines += ["", f"## Skipped rules ({len(summary.skipped)})", ""]
        lines += [f"- `{s.get('rule_id') or s['path']}`: {s['reason']}" for s in summary.skipped[:top]]
    return "\n".join(lines) + "\n"
