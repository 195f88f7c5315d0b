"""Evidence for the assessment, read from the STIX store (docs/STIX.md) and the hunt plan.

One query per source: every stored version of the DCO's groupings, sightings and opinions (so
corrected emulation outcomes and re-triages keep their history), the hunt hypotheses and the plan
record. Nothing is read per record, so a DCO with 100,000 objects is read in one pass.

| STIX | evidence |
|---|---|
| grouping with ``x_dco_rules`` (a hunt run) | ``hunt-rule-ran`` per rule and technique (coverage) |
| … its run's ``no_logsource`` (hunt_run row) | ``hunt-rule-no-data`` instead: no event of its log source |
| grouping ``x_dco_channels`` | ``telemetry-seen`` per technique whose ATT&CK analytics read that channel |
| sighting with ``x_dco_rule_id`` (a hunt hit) | ``hunt-hit`` per tagged technique, ``exercise`` as flagged |
| … its current verdict false-positive / benign | that ``hunt-hit`` superseded (listed, not scored) |
| opinion with ``x_dco_verdict`` | ``triage-tp`` / ``triage-fp`` / ``triage-benign`` for the sighting's techniques |
| sighting with ``x_dco_outcome`` | ``emulation-<outcome>``; older versions arrive superseded |
| hunt_hypothesis.sigma_rules | ``hunt-rule-available`` |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlmodel import Session

from dcoflow.core.errors import BatchReport
from dcoflow.models.assessment import Evidence, EvidenceKind
from dcoflow.models.assessment_rows import ImportedEvidence
from dcoflow.models.attack import Catalog
from dcoflow.models.plan import HuntHypothesis
from dcoflow.models.repository.assessment import (
    emulated_techniques,
    hunt_hypotheses,
    hunt_rules_without_data,
    imported_evidence,
    plan_records,
    stix_objects_of_types,
)
from dcoflow.models.timestamps import parse_utc

K = EvidenceKind
READ_TYPES = ("grouping", "sighting", "opinion")
_VERDICTS = {"true-positive": K.TRIAGE_TP, "false-positive": K.TRIAGE_FP, "benign": K.TRIAGE_BENIGN}
_OUTCOMES = {"prevented": K.EMULATION_PREVENTED, "alerted": K.EMULATION_ALERTED, "logged": K.EMULATION_LOGGED,
             "none": K.EMULATION_NONE}

# Event-log channels (as hunts record them) → the log-source names ATT&CK analytics use.
_CHANNEL_SOURCES: dict[str, tuple[str, ...]] = {
    "microsoft-windows-sysmon/operational": ("wineventlog:sysmon",),
    "windows powershell": ("wineventlog:powershell",),
    "microsoft-windows-powershell/operational": ("wineventlog:powershell",),
    "microsoft-windows-wmi-activity/operational": ("wineventlog:wmi",),
    "microsoft-windows-taskscheduler/operational": ("wineventlog:taskscheduler",),
    "microsoft-windows-windows defender/operational": (
        "wineventlog:microsoft-windows-windows defender/operational", "wineventlog:windows defender"),
    "microsoft-windows-bits-client/operational": ("wineventlog:microsoft-windows-bits-client/operational",),
}
# Sigma logsource categories → ATT&CK data component names.
_SIGMA_CATEGORIES: dict[str, tuple[str, ...]] = {
    "process_creation": ("Process Creation",),
    "process_access": ("Process Access",),
    "process_termination": ("Process Termination",),
    "image_load": ("Module Load",),
    "driver_load": ("Driver Load",),
    "file_event": ("File Creation",),
    "file_change": ("File Modification",),
    "file_delete": ("File Deletion",),
    "file_access": ("File Access",),
    "file_rename": ("File Modification",),
    "create_stream_hash": ("File Metadata",),
    "registry_add": ("Windows Registry Key Creation",),
    "registry_set": ("Windows Registry Key Modification",),
    "registry_event": ("Windows Registry Key Modification", "Windows Registry Key Creation"),
    "registry_delete": ("Windows Registry Key Deletion",),
    "network_connection": ("Network Connection Creation",),
    "dns_query": ("Active DNS",),
    "dns": ("Active DNS", "Passive DNS"),
    "pipe_created": ("Named Pipe Metadata",),
    "wmi_event": ("WMI Creation",),
    "ps_script": ("Script Execution",),
    "ps_module": ("Script Execution", "Command Execution"),
    "ps_classic_start": ("Command Execution",),
    "create_remote_thread": ("Process Access", "OS API Execution"),
}


@dataclass(slots=True)
class EvidenceSet:
    evidence: list[Evidence] = field(default_factory=list)
    report: BatchReport = field(default_factory=lambda: BatchReport("evidence"))
    planned: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # techniques of the emulation plan's steps
    objects_read: int = 0
    unmapped_channels: dict[str, int] = field(default_factory=dict)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


class TelemetryIndex:
    """Which techniques a telemetry source informs, and with which of their data components."""

    def __init__(self, catalog: Catalog) -> None:
        by_source: dict[str, dict[str, set[str]]] = {}
        for analytic in catalog.analytics:
            techniques = [t for ds in analytic.detection_strategy_ids
                          for t in catalog.detection_strategy(ds).technique_ids]
            for ls in analytic.log_sources:
                if not ls.data_component_id:
                    continue
                table = by_source.setdefault(ls.name.lower(), {})
                for tid in techniques:
                    table.setdefault(tid, set()).add(ls.data_component_id)
        self._by_source = by_source
        self._dc_by_name = {dc.name.lower(): dc for dc in catalog.data_components}
        self._dc_count = {t.attack_id: len(t.data_component_ids) for t in catalog.techniques}

    def share(self, technique_id: str) -> float:
        n = self._dc_count.get(technique_id, 0)
        return 1.0 / n if n else 1.0

    def components(self, source: str) -> dict[str, set[str]] | None:
        """technique → data component ids informed by ``source`` (a channel or a Sigma logsource)."""
        key = source.strip().lower()
        names = _CHANNEL_SOURCES.get(key, ("wineventlog:" + key,))
        found: dict[str, set[str]] = {}
        for name in names:
            for tid, dcs in self._by_source.get(name.lower(), {}).items():
                found.setdefault(tid, set()).update(dcs)
        if key in ("auditd", "linux/auditd"):
            for name, table in self._by_source.items():
                if name.startswith("auditd:"):
                    for tid, dcs in table.items():
                        found.setdefault(tid, set()).update(dcs)
        category = key.split("/")[-1]
        for dc_name in _SIGMA_CATEGORIES.get(category, ()):
            dc = self._dc_by_name.get(dc_name.lower())
            if dc is not None:
                for tid in dc.technique_ids:
                    found.setdefault(tid, set()).add(dc.attack_id)
        return found or None


@lru_cache(maxsize=4)
def _telemetry_index(content_hash: str, catalog: Catalog) -> TelemetryIndex:
    return TelemetryIndex(catalog)


def telemetry_index(catalog: Catalog) -> TelemetryIndex:
    return _telemetry_index(catalog.content_hash, catalog)


def evidence_from_stix(
    versions: Iterable[Mapping[str, Any]], catalog: Catalog | None = None, dco_id: str | None = None,
    no_data: Mapping[str, Iterable[str]] | None = None,
) -> EvidenceSet:
    """Evidence from STIX objects: every stored version of groupings, sightings and opinions.

    ``versions`` may hold several versions of one id; the newest ``modified`` is current, older
    emulation outcomes and triage verdicts arrive superseded (listed in explanations, not scored),
    and a hunt hit whose current verdict is false positive / benign is superseded by it.
    ``no_data``: per hunt run id, the rules that saw no event of their log source.
    Without a catalog, channels are not mapped to techniques (no ``telemetry-seen``).
    """
    out = EvidenceSet(report=BatchReport(f"STIX evidence{' of ' + dco_id if dco_id else ''}"))
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for obj in versions:
        out.objects_read += 1
        oid = obj.get("id")
        if not isinstance(oid, str):
            out.report.skip("?", "object without id")
            continue
        by_id.setdefault(oid, []).append(obj)
    for objs in by_id.values():
        objs.sort(key=lambda o: str(o.get("modified") or o.get("created") or ""))
    hunt_sightings: dict[str, Mapping[str, Any]] = {}
    hit_rows: dict[str, range] = {}
    index = telemetry_index(catalog) if catalog is not None else None
    empty = {run: set(rules) for run, rules in (no_data or {}).items()}
    ev = out.evidence
    for oid, objs in by_id.items():
        latest = objs[-1]
        kind = latest.get("type")
        out.report.read += 1
        if kind == "sighting" and "x_dco_rule_id" in latest:
            hunt_sightings[oid] = latest
            first = len(ev)
            _hunt_hit(latest, ev, out.report)
            hit_rows[oid] = range(first, len(ev))
        elif kind == "sighting" and "x_dco_outcome" in latest:
            for older in objs[:-1]:
                _emulation(older, ev, out.report, superseded_by=_version(latest))
            _emulation(latest, ev, out.report)
        elif kind == "grouping" and "x_dco_hunt_run" in latest:
            _hunt_run(latest, ev, out, index, empty.get(str(latest.get("x_dco_hunt_run")), set()))
        elif kind == "opinion" and "x_dco_verdict" in latest:
            continue  # needs the sightings: second pass
        else:
            out.report.read -= 1
            continue
        out.report.kept += 1
    for objs in by_id.values():
        latest = objs[-1]
        if latest.get("type") != "opinion" or "x_dco_verdict" not in latest:
            continue
        out.report.read += 1
        for older in objs[:-1]:
            _triage(older, hunt_sightings, ev, out.report, superseded_by=_version(latest))
        if _triage(latest, hunt_sightings, ev, out.report):
            out.report.kept += 1
        verdict = str(latest.get("x_dco_verdict", "")).lower()
        if _VERDICTS.get(verdict) in (K.TRIAGE_FP, K.TRIAGE_BENIGN):
            note = f"the {verdict} verdict of {latest.get('modified')}"
            for ref in latest.get("object_refs", []):
                for i in hit_rows.get(str(ref), ()):
                    ev[i] = dataclasses.replace(ev[i], superseded_by=note)
    return out


def short_source(source: str) -> str:
    """A hunt's data source for people: a list of files becomes '<n> files under <folder>'."""
    parts = [p.strip() for p in source.split(", ") if p.strip()]
    if len(parts) <= 1:
        return source
    try:
        common = os.path.commonpath(parts)
    except ValueError:
        return f"{len(parts)} inputs"
    return f"{len(parts)} files under {common}"


def _version(obj: Mapping[str, Any]) -> str:
    return f"the version of {obj.get('modified')}"


def _when(obj: Mapping[str, Any], *keys: str) -> datetime | None:
    for key in keys:
        moment = parse_time(obj.get(key))
        if moment is not None:
            return moment
    return None


def _techniques(obj: Mapping[str, Any], key: str) -> list[str]:
    value = obj.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [str(t).strip().upper() for t in value if isinstance(t, str) and t.strip()]


def _hunt_hit(obj: Mapping[str, Any], ev: list[Evidence], report: BatchReport) -> None:
    techniques = _techniques(obj, "x_dco_technique_ids")
    at = _when(obj, "modified", "created")
    if not techniques or at is None:
        report.skip(str(obj.get("id")), "hunt sighting without x_dco_technique_ids or modified")
        return
    count = obj.get("count")
    hits = float(count) if isinstance(count, int) and count > 0 else 1.0
    exercise = obj.get("x_dco_exercise") is True
    for tid in techniques:
        ev.append(Evidence(tid, K.HUNT_HIT, at, str(obj["id"]), value=hits, detail=f"rule {obj.get('x_dco_rule_id')}",
                           exercise=exercise, dco_id=obj.get("x_dco_id")))


def _emulation(
    obj: Mapping[str, Any], ev: list[Evidence], report: BatchReport, superseded_by: str | None = None
) -> None:
    outcome = _OUTCOMES.get(str(obj.get("x_dco_outcome", "")).lower())
    tid = str(obj.get("x_dco_technique_id") or "").strip().upper()
    at = _when(obj, "last_seen", "first_seen", "modified", "created")
    if outcome is None or not tid or at is None:
        report.skip(str(obj.get("id")), f"emulation sighting with outcome {obj.get('x_dco_outcome')!r}, "
                                        f"technique {tid or 'missing'}")
        return
    tool = ", ".join(str(r) for r in obj.get("where_sighted_refs", []))
    detail = f"step {obj.get('x_dco_step_id')}" + (f", {tool.split('--')[0]}" if tool else "")
    severity = obj.get("x_dco_severity")
    ev.append(Evidence(tid, outcome, at, str(obj["id"]), detail=detail,
                       severity=str(severity) if severity else None, superseded_by=superseded_by,
                       dco_id=obj.get("x_dco_id")))


def _hunt_run(obj: Mapping[str, Any], ev: list[Evidence], out: EvidenceSet, index: TelemetryIndex | None,
              no_data: set[str]) -> None:
    at = _when(obj, "modified", "created")
    if at is None:
        out.report.skip(str(obj.get("id")), "hunt grouping without modified")
        return
    dco = obj.get("x_dco_id")
    source = short_source(str(obj.get("x_dco_source") or "")) or None
    rules = obj.get("x_dco_rules") or []
    for n, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, Mapping):
            out.report.skip(f"{obj['id']} x_dco_rules[{n}]", "not an object")
            continue
        kind = K.HUNT_RULE_NO_DATA if str(rule.get("rule_id")) in no_data else K.HUNT_RULE_RAN
        for tid in _techniques(rule, "technique_ids"):
            ev.append(Evidence(tid, kind, at, str(obj["id"]), detail=f"rule {rule.get('rule_id')}",
                               value=float(rule.get("hits") or 0), dco_id=dco, data_source=source))
    channels = obj.get("x_dco_channels") or {}
    if index is None or not isinstance(channels, Mapping):
        return
    for channel, events in channels.items():
        if not isinstance(events, int) or events <= 0:
            continue
        informed = index.components(str(channel))
        if informed is None:
            out.unmapped_channels[str(channel)] = out.unmapped_channels.get(str(channel), 0) + events
            continue
        for tid, dcs in informed.items():
            share = index.share(tid)
            for dc in sorted(dcs):  # a set: sorted, or the deciding line among equal claims varies by run
                ev.append(Evidence(tid, K.TELEMETRY_SEEN, at, f"{obj['id']}#{channel}", value=share,
                                   detail=dc, dco_id=dco))


def _triage(
    obj: Mapping[str, Any], sightings: Mapping[str, Mapping[str, Any]], ev: list[Evidence], report: BatchReport,
    superseded_by: str | None = None,
) -> bool:
    kind = _VERDICTS.get(str(obj.get("x_dco_verdict", "")).lower())
    at = _when(obj, "modified", "created")
    refs = [r for r in obj.get("object_refs", []) if isinstance(r, str)]
    if kind is None or at is None:
        report.skip(str(obj.get("id")), f"opinion with verdict {obj.get('x_dco_verdict')!r}")
        return False
    found = False
    for ref in refs:
        hit = sightings.get(ref)
        if hit is None:
            continue
        found = True
        for tid in _techniques(hit, "x_dco_technique_ids"):
            ev.append(Evidence(tid, kind, at, str(obj["id"]), detail=f"rule {hit.get('x_dco_rule_id')}",
                               exercise=hit.get("x_dco_exercise") is True, superseded_by=superseded_by,
                               dco_id=obj.get("x_dco_id")))
    if not found and superseded_by is None:
        report.skip(str(obj.get("id")), f"opinion on sightings not in the store: {', '.join(refs) or 'none'}")
    return found


def evidence_from_plan(hypotheses: Sequence[HuntHypothesis], planned_at: datetime) -> list[Evidence]:
    """``hunt-rule-available`` for every Sigma rule a hunt hypothesis names."""
    out = []
    for h in hypotheses:
        for rule in h.sigma_rules:
            label = rule.get("title") or rule.get("rule_id") or "?"
            out.append(Evidence(h.technique_id.upper(), K.HUNT_RULE_AVAILABLE, planned_at, f"hunt_hypothesis:{h.id}",
                                detail=f"rule {rule.get('rule_id') or label}", dco_id=h.dco_id))
    return out


def evidence_from_catalog(catalog: Catalog, technique_ids: Iterable[str], at: datetime) -> list[Evidence]:
    """``detection-strategy`` for each technique ATT&CK has detection strategies for."""
    out = []
    for tid in technique_ids:
        tech = catalog.get_technique(tid)
        if tech is None:
            continue
        for ds in tech.detection_strategy_ids:
            out.append(Evidence(tid, K.DETECTION_STRATEGY, at, f"attack:{ds}", detail=ds))
    return out


def load_evidence(session: Session, dco_id: str | None, catalog: Catalog | None) -> EvidenceSet:
    """All evidence of one DCO (or of every DCO when ``dco_id`` is None): one query per kind of record."""
    no_data = hunt_rules_without_data(session, dco_id)
    out = evidence_from_stix(stix_objects_of_types(session, dco_id, READ_TYPES), catalog, dco_id, no_data)
    out.path = sorted({t.upper() for t in emulated_techniques(session, dco_id)})
    plans = plan_records(session, dco_id)
    hypotheses = hunt_hypotheses(session, dco_id)
    by_dco: dict[str, list[HuntHypothesis]] = {}
    for h in hypotheses:
        by_dco.setdefault(h.dco_id, []).append(h)
    for dco, hyps in by_dco.items():
        plan = plans.get(dco)
        planned_at = plan.created_at if plan is not None else datetime.now(UTC)
        out.evidence.extend(evidence_from_plan(hyps, planned_at))
    out.planned = sorted({t.upper() for p in plans.values() for t in p.techniques})
    for row in imported_evidence(session, dco_id):
        at = row.observed_at if row.observed_at.tzinfo else row.observed_at.replace(tzinfo=UTC)  # SQLite: naive
        out.evidence.append(Evidence(row.technique_id, EvidenceKind(row.kind), at, row.source_ref, weight=row.weight,
                                     value=row.value, detail=row.detail, dco_id=row.dco_id))
    return out


def store_imported(session: Session, dco_id: str, evidence: Iterable[Evidence]) -> int:
    """Keep imported evidence (DeTT&CT) for a DCO; re-importing the same entries is a no-op."""
    from dcoflow.core.db import upsert
    from dcoflow.models.stix.ids import row_id

    rows = {}
    for ev in evidence:
        key = row_id("evidence", dco_id, ev.source_ref, ev.technique_id, ev.kind.value, ev.observed_at.isoformat(),
                      ev.detail, ev.value)
        rows[key] = {"id": key, "dco_id": dco_id, "technique_id": ev.technique_id, "kind": ev.kind.value,
                     "observed_at": ev.observed_at, "source_ref": ev.source_ref, "value": ev.value,
                     "weight": ev.weight, "detail": ev.detail}
    return upsert(session, ImportedEvidence, list(rows.values()), keys=("id",))
