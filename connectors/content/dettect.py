"""DeTT&CT administration files → assessment evidence.

Formats (rabobank-cdc/DeTTECT, as the DeTT&CT Editor writes them):

* technique administration (``file_type: technique-administration``, version 1.2)::

    techniques:
      - technique_id: T1059.001
        detection:   # a list of objects (older files: one object)
          - applicable_to: [all]
            location: [EDR]
            score_logbook: [{date: 2026-01-10, score: 2, comment: initial}]
        visibility:
          - applicable_to: [all]
            score_logbook: [{date: 2026-01-10, score: 3, auto_generated: false}]

  Files before 1.2 carry ``score``/``date_implemented`` instead of ``score_logbook``; both are read.
* data source administration (``file_type: data-source-administration``)::

    data_sources:
      - data_source_name: Process Creation      # an ATT&CK data component name
        data_source: [{applicable_to: [all], date_connected: …, available_for_data_analytics: true,
                       data_quality: {device_completeness: 4, data_field_completeness: 5, …}}]

  (version 1.0 files keep the fields on the entry itself). A data source counts as seen when it is
  available for analytics and its data quality is not all zero.

``technique_administration`` writes the computed scores back as a technique administration file that
DeTT&CT's own health rules accept (``technique_file_problems`` applies them), so DeTT&CT users get their
scores filled in.

Every logbook entry becomes one dated ``assessed-detection`` / ``assessed-visibility`` record, so
the history a DeTT&CT file keeps stays history here. Bad entries are collected (BatchReport) and the
rest is read; a file that is not a DeTT&CT file at all raises ContentError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from dcoflow.core.errors import BatchReport, ContentError
from dcoflow.models.assessment import Evidence, EvidenceKind
from dcoflow.models.attack import Catalog
from dcoflow.models.strict_yaml import load_yaml, yaml_problem

TECHNIQUE_FILE = "technique-administration"
DATA_SOURCE_FILE = "data-source-administration"
_QUALITY = ("device_completeness", "data_field_completeness", "timeliness", "consistency", "retention")


@dataclass(slots=True)
class DettectImport:
    path: str
    file_type: str
    name: str
    evidence: list[Evidence] = field(default_factory=list)
    report: BatchReport = field(default_factory=lambda: BatchReport("dettect"))


def read_dettect(path: Path, *, catalog: Catalog | None = None, dco_id: str | None = None,
                 today: date | None = None) -> DettectImport:
    """Read a technique or data-source administration file into evidence.

    Data-source files need the catalog (data component → techniques). Undated entries are dated
    ``today``.
    """
    where = str(path)
    try:
        doc = load_yaml(path.read_bytes())
    except OSError as exc:
        raise ContentError(f"cannot read DeTT&CT file: {exc.strerror}", object=where) from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"not valid YAML: {yaml_problem(exc)}", object=where) from exc
    except UnicodeDecodeError as exc:
        raise ContentError(f"not UTF-8 text (byte {exc.start})", object=where) from exc
    if not isinstance(doc, Mapping):
        raise ContentError("not a DeTT&CT administration file (top level is not a mapping)", object=where)
    file_type = str(doc.get("file_type") or "")
    fallback = datetime.combine(today or datetime.now(UTC).date(), datetime.min.time(), UTC)
    out = DettectImport(where, file_type, str(doc.get("name") or path.stem), report=BatchReport(where))
    if file_type == TECHNIQUE_FILE or (not file_type and "techniques" in doc):
        entries = doc.get("techniques")
        if not isinstance(entries, list):
            raise ContentError("technique administration file without a 'techniques' list", object=where)
        for n, entry in enumerate(entries):
            _technique(entry, f"{where}: techniques[{n}]", out, fallback, dco_id)
    elif file_type == DATA_SOURCE_FILE or (not file_type and "data_sources" in doc):
        if catalog is None:
            raise ContentError("a data source administration file needs the ATT&CK catalog", object=where)
        entries = doc.get("data_sources")
        if not isinstance(entries, list):
            raise ContentError("data source administration file without a 'data_sources' list", object=where)
        index = {dc.name.casefold(): dc for dc in catalog.data_components}
        for n, entry in enumerate(entries):
            _data_source(entry, f"{where}: data_sources[{n}]", out, fallback, dco_id, index, catalog)
    else:
        raise ContentError(f"unsupported file_type {file_type!r}", object=where,
                           hint=f"expected {TECHNIQUE_FILE} or {DATA_SOURCE_FILE}")
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _date(value: Any, fallback: datetime) -> datetime | None:
    if value in (None, ""):
        return fallback
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), UTC)
    try:
        return datetime.combine(date.fromisoformat(str(value)), datetime.min.time(), UTC)
    except ValueError:
        return None


def _technique(entry: Any, where: str, out: DettectImport, fallback: datetime, dco_id: str | None) -> None:
    out.report.read += 1
    if not isinstance(entry, Mapping) or not isinstance(entry.get("technique_id"), str):
        out.report.skip(where, "entry without a technique_id")
        return
    tid = entry["technique_id"].strip().upper()
    where = f"{where} ({tid})"
    before = len(out.evidence)
    for field_name, kind, low, high in (("detection", EvidenceKind.ASSESSED_DETECTION, -1, 5),
                                        ("visibility", EvidenceKind.ASSESSED_VISIBILITY, 0, 4)):
        for m, block in enumerate(_as_list(entry.get(field_name))):
            if not isinstance(block, Mapping):
                out.report.skip(f"{where} {field_name}[{m}]", "not a mapping")
                continue
            applicable = ",".join(str(a) for a in _as_list(block.get("applicable_to"))) or "all"
            location = ",".join(str(a) for a in _as_list(block.get("location")) if a)
            logbook = _as_list(block.get("score_logbook")) or [
                {"date": block.get("date_implemented") or block.get("date_registered"), "score": block.get("score")}
            ]
            for k, item in enumerate(logbook):
                spot = f"{where} {field_name}[{m}].score_logbook[{k}]"
                if not isinstance(item, Mapping):
                    out.report.skip(spot, "not a mapping")
                    continue
                score = item.get("score")
                if score is None:
                    continue  # an empty template row
                if isinstance(score, bool) or not isinstance(score, int | float) or not low <= score <= high:
                    out.report.skip(spot, f"score {score!r} outside {low}..{high}")
                    continue
                when = _date(item.get("date"), fallback)
                if when is None:
                    out.report.skip(spot, f"bad date {item.get('date')!r}")
                    continue
                detail = f"DeTT&CT {out.name}, applicable to {applicable}" + (f", {location}" if location else "")
                out.evidence.append(Evidence(tid, kind, when, f"dettect:{out.path}#{tid}", value=float(score),
                                             detail=detail, dco_id=dco_id))
    if len(out.evidence) > before:
        out.report.kept += 1


def _data_source(entry: Any, where: str, out: DettectImport, fallback: datetime, dco_id: str | None,
                 index: Mapping[str, Any], catalog: Catalog) -> None:
    out.report.read += 1
    if not isinstance(entry, Mapping) or not isinstance(entry.get("data_source_name"), str):
        out.report.skip(where, "entry without a data_source_name")
        return
    name = entry["data_source_name"]
    dc = index.get(name.casefold())
    if dc is None:
        out.report.skip(f"{where} ({name})", "not an ATT&CK data component in this release")
        return
    details = _as_list(entry.get("data_source")) or [entry]
    for m, item in enumerate(details):
        if not isinstance(item, Mapping):
            out.report.skip(f"{where} ({name}) data_source[{m}]", "not a mapping")
            continue
        quality = item.get("data_quality") or {}
        if not isinstance(quality, Mapping):
            out.report.skip(f"{where} ({name})", "data_quality is not a mapping")
            continue
        scores = [quality.get(q, 0) or 0 for q in _QUALITY]
        if not all(isinstance(s, int | float) for s in scores):
            out.report.skip(f"{where} ({name})", f"non-numeric data_quality {dict(quality)}")
            continue
        if not item.get("available_for_data_analytics", True) or not any(scores):
            continue
        when = _date(item.get("date_connected") or item.get("date_registered"), fallback)
        if when is None:
            out.report.skip(f"{where} ({name})", f"bad date {item.get('date_connected')!r}")
            continue
        weight = sum(float(s) for s in scores) / (5 * len(scores))  # data quality 0..1
        for tid in dc.technique_ids:
            tech = catalog.get_technique(tid)
            n = len(tech.data_component_ids) if tech is not None and tech.data_component_ids else 1
            out.evidence.append(Evidence(tid, EvidenceKind.TELEMETRY_SEEN, when, f"dettect:{out.path}#{name}",
                                         weight=weight, value=1.0 / n, detail=dc.attack_id, dco_id=dco_id))
        out.report.kept += 1
        return


# -- export: computed scores as a technique administration file DeTT&CT reads back ---------------------------
TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
_PLATFORMS = {"windows": "Windows", "linux": "Linux", "macos": "macOS"}


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One technique's computed scores (DeTT&CT scales: visibility 0..4, detection -1..5)."""

    technique_id: str
    technique_name: str
    visibility: float
    detection: float
    assessed: date
    comment: str = ""


def technique_administration(rows: list[ScoreRow], *, name: str, platforms: list[str],
                             location: str = "dcoflow") -> str:
    """A DeTT&CT technique administration file (version 1.2) of the computed scores, one score_logbook entry
    per technique and dimension, marked ``auto_generated`` (DeTT&CT's flag for scores a tool filled in).
    DeTT&CT scores are integers: ours are rounded, then kept inside its ranges."""
    techniques = []
    for row in sorted(rows, key=lambda r: r.technique_id):
        entry = {"date": row.assessed, "comment": row.comment, "auto_generated": True}
        techniques.append({
            "technique_id": row.technique_id,
            "technique_name": row.technique_name,
            "detection": [{"applicable_to": ["all"], "location": [location], "comment": "",
                           "score_logbook": [{**entry, "score": max(-1, min(5, round(row.detection)))}]}],
            "visibility": [{"applicable_to": ["all"], "comment": "",
                            "score_logbook": [{**entry, "score": max(0, min(4, round(row.visibility)))}]}],
        })
    doc = {"version": 1.2, "file_type": TECHNIQUE_FILE, "name": name, "domain": "enterprise-attack",
           "platform": [_PLATFORMS.get(p.lower(), p) for p in platforms] or ["all"], "techniques": techniques}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def technique_file_problems(doc: Any) -> list[str]:
    """DeTT&CT's own health rules for a technique administration file (rabobank-cdc/DeTTECT ``health.py``):
    unique well-formed technique ids; detection and visibility per technique; ``applicable_to`` (and for
    detection ``location``) lists, ``comment`` and ``score_logbook``; logbook entries with ``date`` (a date),
    ``comment`` and an integer ``score`` in range; ``auto_generated`` a boolean. Empty: DeTT&CT accepts it."""
    problems: list[str] = []
    if not isinstance(doc, Mapping) or doc.get("file_type") != TECHNIQUE_FILE:
        return ["not a technique-administration file"]
    seen: set[str] = set()
    for tech in doc.get("techniques") or []:
        tid = str(tech.get("technique_id"))
        if tid in seen:
            problems.append(f"duplicate technique ID {tid}")
        seen.add(tid)
        if not TECHNIQUE_ID.match(tid):
            problems.append(f"invalid technique ID {tid}")
        for kind, low, high in (("detection", -1, 5), ("visibility", 0, 4)):
            if kind not in tech:
                problems.append(f"{tid}: missing {kind}")
                continue
            for obj in _as_list(tech[kind]):
                keys = ["applicable_to", "comment", "score_logbook", *(["location"] if kind == "detection" else [])]
                problems += [f"{tid} {kind}: missing {k}" for k in keys if k not in obj]
                problems += [f"{tid} {kind}: {k} is not a list" for k in ("applicable_to", "location")
                             if k in obj and not isinstance(obj[k], list)]
                for item in _as_list(obj.get("score_logbook")):
                    problems += [f"{tid} {kind} logbook: missing {k}" for k in ("date", "score", "comment")
                                 if k not in item]
                    score = item.get("score")
                    if not isinstance(score, int) or isinstance(score, bool) or not low <= score <= high:
                        problems.append(f"{tid} {kind}: score {score!r} not an integer in {low}..{high}")
                    if not isinstance(item.get("date"), date):
                        problems.append(f"{tid} {kind}: date {item.get('date')!r} is not YYYY-MM-DD")
                    if "auto_generated" in item and not isinstance(item["auto_generated"], bool):
                        problems.append(f"{tid} {kind}: auto_generated is not a boolean")
    return problems
