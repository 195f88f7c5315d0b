"""Sweep telemetry for indicators (``dco ir sweep``): STIX-pattern indicators through our pattern engine
(``dcoflow.models.patterns``), ``pattern_type: sigma`` indicators through the Sigma engine, both over the same
telemetry readers and field normalisation as the hunt.

Per indicator the result says what happened: ``found`` (match count, hosts, first/last seen, sample events),
``not-found``, ``not-evaluable`` (the data carries no field the pattern needs — never reported as not found),
``skipped`` (revoked, or ``valid_until`` past), ``refused`` (an unsupported pattern feature or pattern_type) or
``invalid`` (syntax error, unknown object type or property), each with the reason. With a DCO, every found
indicator is stored as evidence with a sighting (count, first/last seen, observed-data of the sample events,
where_sighted = the data set), linked to the DCO's incident by ``x_dco_incident_ref``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session

from dcoflow.connectors.content.sigma_rules import rule_info_from_mapping
from dcoflow.connectors.stix_source import read_stix
from dcoflow.connectors.telemetry import iter_data_files, iter_file_records, match_view, normalise_event
from dcoflow.core.errors import BatchReport, ContentError
from dcoflow.models.gates import require_conduct
from dcoflow.models.patterns.compile import Pattern, PatternError, compile_pattern
from dcoflow.models.patterns.engine import PatternSweep
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.repository.stix_store import put_objects
from dcoflow.models.sigma.compiler import CompiledRule, RuleCompileError, RuleSet, compile_rule
from dcoflow.models.stix import hunt_objects as ho
from dcoflow.models.stix.common import dcoflow_identity, marking_refs
from dcoflow.models.stix.hunt_objects import event_host, event_time, parse_time
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.rows import stix_now, stix_time
from dcoflow.tasks.conduct.local_hunt import DEFAULT_MAX_MEMBER_BYTES, hunt_compiled


@dataclass(slots=True)
class IndicatorResult:
    id: str
    name: str
    pattern_type: str
    pattern: str
    status: str  # found / not-found / not-evaluable / skipped / refused / invalid
    matches: int = 0
    reason: str | None = None
    hosts: dict[str, int] = field(default_factory=dict)
    first_seen: str | None = None
    last_seen: str | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "pattern_type": self.pattern_type, "pattern": self.pattern,
                "status": self.status, "matches": self.matches, "reason": self.reason, "hosts": self.hosts,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "samples": self.samples}


@dataclass(slots=True)
class SweepResult:
    source: str
    indicators: list[IndicatorResult]
    events_read: int = 0
    files: int = 0
    duration_s: float = 0.0
    reports: list[BatchReport] = field(default_factory=list)
    dco_id: str | None = None
    sightings: int = 0
    hosts_seen: dict[str, int] = field(default_factory=dict)  # host → events read from it (the hosts swept)
    swept_at: str = ""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.indicators:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dco": self.dco_id, "events_read": self.events_read, "files": self.files,
                "duration_s": round(self.duration_s, 3), "counts": self.counts(), "sightings": self.sightings,
                "swept_at": self.swept_at, "hosts_seen": self.hosts_seen,
                "bad_records": sum(len(r.bad) for r in self.reports),
                "indicators": [r.as_dict() for r in self.indicators]}


def load_indicators(source: str) -> list[dict[str, Any]]:
    """The indicators of a bundle file or ``taxii+https://…/collections/<id>/``."""
    return [o for o in read_stix(source, types=["indicator"]) if o.get("type") == "indicator"]


def indicator_results(
    indicators: Sequence[dict[str, Any]], now: datetime
) -> tuple[list[IndicatorResult], list[tuple[dict[str, Any], IndicatorResult]]]:
    """One result per indicator in the given order (revoked and expired ones already marked skipped), and the
    (indicator, result) pairs still to evaluate: the local and SIEM sweeps report the same way."""
    results: list[IndicatorResult] = []
    usable: list[tuple[dict[str, Any], IndicatorResult]] = []
    for ind in indicators:
        res = IndicatorResult(str(ind.get("id") or "indicator (no id)"), str(ind.get("name") or ""),
                              str(ind.get("pattern_type") or ""), str(ind.get("pattern") or ""), "not-found")
        results.append(res)
        skip = _skip_reason(ind, now)
        if skip:
            res.status, res.reason = "skipped", skip
        else:
            usable.append((ind, res))
    return results, usable


def _skip_reason(ind: dict[str, Any], now: datetime) -> str | None:
    if ind.get("revoked") is True:
        return "revoked"
    until = parse_time(str(ind["valid_until"])) if ind.get("valid_until") else None
    if until is not None and until <= now:
        return f"expired (valid_until {ind['valid_until']})"
    return None


def _sigma_rule(ind: dict[str, Any]) -> CompiledRule:
    text = str(ind.get("pattern", ""))
    try:
        doc = yaml.safe_load(text)
        info = rule_info_from_mapping(doc, str(ind["id"]), text)
        return compile_rule(info)
    except (yaml.YAMLError, ValueError, RuleCompileError) as exc:
        raise PatternError(f"indicator {ind['id']}: invalid Sigma rule: {exc}", object=str(ind["id"])) from exc


def sweep(indicators: Sequence[dict[str, Any]], data: Path | Sequence[Path], *, sample: int = 5,
          now: datetime | None = None, source: str = "",
          max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> SweepResult:
    """Evaluate every usable indicator over every telemetry file below ``data``; see the module doc."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    stix_patterns: list[tuple[IndicatorResult, Pattern]] = []
    sigma: list[tuple[IndicatorResult, CompiledRule]] = []
    results, usable = indicator_results(indicators, now)
    for ind, res in usable:
        ind_id, kind = res.id, res.pattern_type
        try:
            if kind == "stix":
                stix_patterns.append((res, compile_pattern(res.pattern, ind_id)))
            elif kind == "sigma":
                sigma.append((res, _sigma_rule(ind)))
            else:
                res.status, res.reason = "refused", f"pattern_type {kind!r} is not evaluated (stix and sigma are)"
        except PatternError as exc:
            refused = "not supported" in exc.message
            res.status, res.reason = ("refused" if refused else "invalid"), exc.message
    paths = [Path(data)] if isinstance(data, str | Path) else [Path(p) for p in data]
    files = list(iter_data_files(paths))
    out = SweepResult(source=source or ", ".join(str(p) for p in paths), indicators=results, files=len(files),
                      swept_at=stix_time(now))
    hosts: Counter[str] = Counter()
    engine = PatternSweep([p for _, p in stix_patterns], sample=sample)
    limit = max_member_bytes
    for path in files:  # one pass, also when only Sigma indicators came: it says which hosts were swept
        report = BatchReport(source=str(path))
        out.reports.append(report)
        for raw in iter_file_records(path, report, max_member_bytes=limit):
            view = match_view(raw)
            host = view.get("computer") or view.get("hostname")
            hosts[str(host).lower() if host else "(unknown)"] += 1
            if stix_patterns:
                engine.feed(view, lambda raw=raw: normalise_event(raw))  # type: ignore[misc]
    out.events_read = sum(hosts.values())
    out.hosts_seen = dict(hosts)
    if stix_patterns:
        for (res, _), hits in zip(stix_patterns, engine.results(), strict=True):
            if hits.matched:
                res.status, res.matches, res.hosts, res.samples = "found", hits.count, hits.hosts, hits.samples
                res.first_seen = stix_time(hits.first_seen) if hits.first_seen else None
                res.last_seen = stix_time(hits.last_seen) if hits.last_seen else None
            elif not hits.evaluable:
                res.status = "not-evaluable"
                res.reason = "not evaluable on this data: nothing in it carries " + ", ".join(hits.missing)
    if sigma:
        hunted = hunt_compiled(RuleSet([r for _, r in sigma]), files, sample=sample, workers=1,
                               max_member_bytes=limit)
        out.events_read = max(out.events_read, hunted.events_read)
        by_rule = {m.rule.path: m for m in hunted.matches}
        silent = {r.path for r in hunted.no_logsource}
        for res, _ in sigma:
            match = by_rule.get(res.id)
            if match is not None:
                times = [t for t in (event_time(e) for e in match.events) if t]
                res.status, res.matches, res.samples = "found", match.count, match.events[:sample]
                res.hosts = {h: 1 for h in {event_host(e) or "(unknown)" for e in match.events}}
                res.first_seen = stix_time(min(times)) if times else None
                res.last_seen = stix_time(max(times)) if times else None
            elif res.id in silent:
                res.status, res.reason = "not-evaluable", "not evaluable on this data: no event of the rule's logsource"
    out.duration_s = time.perf_counter() - started
    return out


def record_sweep(session: Session, dco: str, result: SweepResult, indicators: Sequence[dict[str, Any]]) -> int:
    """Store each found indicator and a sighting of it (with the sample events' observed-data) in the DCO."""
    op = get_operation(session, dco)
    # recording evidence is conduct: the same gate as a hunt (approved, inside the DCO's window)
    require_conduct(op.id, op.state, op.dco.window, datetime.now(UTC), "ir sweep")
    refs, definitions = marking_refs(op.dco.marking)
    source_identity = ho.data_source_identity(result.source, op.id)
    ctx = ho.StixContext(op.id, tuple(refs), source_identity["id"], stix_now())
    incident = op.dco.incident
    by_id = {str(i.get("id")): i for i in indicators}
    objects: list[dict[str, Any]] = [dcoflow_identity(), source_identity, *definitions]
    sightings = 0
    for res in result.indicators:
        if res.status != "found" or res.id not in by_id:
            continue
        observed: list[str] = []
        for event in res.samples:
            scos = ho.observables(event, ctx)
            if scos:
                od = ho.observed_data(event, scos, ctx)
                objects += [*scos, od]
                observed.append(od["id"])
        sighting: dict[str, Any] = {
            "type": "sighting", "spec_version": "2.1", "id": stix_id("sighting", op.id, res.id, result.source),
            "created": ctx.now, "modified": ctx.now, "sighting_of_ref": res.id,
            "where_sighted_refs": [source_identity["id"]], "count": min(res.matches, 999_999_999),
            "x_dco_hosts": sorted(res.hosts), "x_dco_sweep": True, **ctx.properties(),
        }
        if res.first_seen:
            sighting["first_seen"], sighting["last_seen"] = res.first_seen, res.last_seen or res.first_seen
        if observed:
            sighting["observed_data_refs"] = observed
        if incident is not None:
            sighting["x_dco_incident_ref"] = incident.ref
        objects += [by_id[res.id], sighting]
        sightings += 1
    # the sweep itself: when, over what, which hosts, what it found (the IR activity reads these)
    found_refs = [o["id"] for o in objects if o["type"] in ("sighting", "indicator")]
    objects.append({
        "type": "grouping", "spec_version": "2.1", "id": stix_id("grouping", op.id, "sweep", result.source),
        "created": ctx.now, "modified": ctx.now, "name": f"Indicator sweep of {result.source}"[:250],
        "context": "suspicious-activity", "object_refs": found_refs or [source_identity["id"]],
        "x_dco_sweep": {"source": result.source, "hosts": result.hosts_seen, "events": result.events_read,
                        "counts": result.counts(), "indicators": len(result.indicators)},
        "x_dco_swept_at": result.swept_at, **ctx.properties()})
    from dcoflow.tasks.conduct.hunt_record import settle_versions

    put_objects(session, settle_versions(session, op.id, objects), op.id)
    result.dco_id, result.sightings = op.id, sightings
    return sightings


def run_sweep(session: Session | None, indicators_source: str, data: Path | Sequence[Path], *,
              dco: str | None = None, sample: int = 5, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> SweepResult:
    """Load, sweep, and (with a DCO and a session) record; ``dcoflow.tasks.conduct.ir.sweep_indicators`` is the
    use case that opens the session."""
    indicators = load_indicators(indicators_source)
    if not indicators:
        raise ContentError(f"{indicators_source} holds no indicator", object=indicators_source)
    result = sweep(indicators, data, sample=sample, max_member_bytes=max_member_bytes)
    if dco is not None and session is not None:
        record_sweep(session, dco, result, indicators)
    return result
