"""VECTR-compatible CSV of emulation outcomes: one row per test case (emulation step).

Columns follow VECTR's campaign CSV as read by SecurityRiskAdvisors' vectr-tools CSV importer
(vectr_tools/csv_import_example: ``models.TestCase`` and ``sample_data/DEMO_PURPLE_CE.csv``):
AssessmentGroup, Campaign, Phase, Variant (the test case name), MitreID, Method, Status, Outcome
(Blocked / Detected / NotDetected / TBD), Alert Severity, Alert Triggered, Activity Logged
(Yes / No / TBD), Outcome Notes, TargetAssets, DetectingTools, ExpectedDetectionLayers, Start/
Stop/Detection Time (ISO) with their epoch-millisecond twins, Organizations, Tags, Command.

VECTR's CSV has one outcome per test case, ours one per defensive tool, so three extra
columns keep what VECTR cannot hold (its importer ignores unknown columns): ``Operator``,
``DCO Step`` (our step id) and ``DCO Tool Outcomes`` (``tool=outcome;…``). The test-case
outcome is derived VECTR's way, best tool first: Blocked > Detected (alerted) > NotDetected.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dcoflow.core.errors import BatchReport, ContentError
from dcoflow.models.cells import safe_cell, unsafe_cell
from dcoflow.models.emulation import OUTCOME_ALIASES, Outcome
from dcoflow.models.timestamps import as_utc, utc_iso

COLUMNS = [
    "AssessmentGroup", "Campaign", "Phase", "Variant", "MitreID", "Method", "Status", "Outcome",
    "Alert Severity", "Alert Triggered", "Activity Logged", "Outcome Notes", "TargetAssets",
    "ExpectedDetectionLayers", "DetectingTools", "Start Time", "Start Time Epoch", "Stop Time",
    "Stop Time Epoch", "Detection Time", "Detection Time Epoch", "Organizations", "Tags", "Command",
    "Operator", "DCO Step", "DCO Tool Outcomes", "DCO Marking",
]
REQUIRED = ("Variant", "MitreID", "Outcome")
_VECTR_SEVERITY = {"info": "Info", "low": "Low", "medium": "Med", "high": "High", "critical": "Critical"}


@dataclass(slots=True)
class VectrTestCase:
    assessment: str
    campaign: str
    name: str
    technique_id: str
    tactic: str = ""
    method: str = ""
    status: str = "Completed"
    tool_outcomes: dict[str, Outcome] = field(default_factory=dict)
    severity: str | None = None
    notes: str = ""
    target_assets: list[str] = field(default_factory=list)
    start: datetime | None = None
    stop: datetime | None = None
    detected_at: datetime | None = None
    operator: str = ""
    organizations: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    command: str = ""
    step_id: str | None = None
    vectr_outcome: str | None = None  # as read, when importing

    @property
    def outcome(self) -> str:
        return vectr_outcome(self.tool_outcomes)


def vectr_outcome(tool_outcomes: Mapping[str, Outcome]) -> str:
    if not tool_outcomes:
        return "TBD"
    best = max(tool_outcomes.values(), key=lambda o: o.rank)
    return {Outcome.PREVENTED: "Blocked", Outcome.ALERTED: "Detected"}.get(best, "NotDetected")


def _iso(moment: datetime | None) -> tuple[str, str]:
    if moment is None:
        return "", ""
    return utc_iso(moment, ms=True), str(int(as_utc(moment).timestamp() * 1000))


def _yes_no(flag: bool | None) -> str:
    return "TBD" if flag is None else ("Yes" if flag else "No")


def write_vectr_csv(path: Path, cases: Iterable[VectrTestCase], marking: str) -> int:
    """The cases as a VECTR campaign CSV; ``marking`` (the DCO's banner) goes in a column of its own on
    every row, which VECTR's importer ignores and every row cut from the file keeps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for case in cases:
            outcomes = case.tool_outcomes
            alerted = any(o in (Outcome.PREVENTED, Outcome.ALERTED) for o in outcomes.values()) if outcomes else None
            logged = any(o != Outcome.NONE for o in outcomes.values()) if outcomes else None
            start, start_ms = _iso(case.start)
            stop, stop_ms = _iso(case.stop)
            det, det_ms = _iso(case.detected_at)
            writer.writerow({k: safe_cell(v) for k, v in {  # no cell a spreadsheet would run as a formula
                "AssessmentGroup": case.assessment,
                "Campaign": case.campaign,
                "Phase": case.tactic,
                "Variant": case.name,
                "MitreID": case.technique_id,
                "Method": case.method,
                "Status": case.status,
                "Outcome": case.outcome,
                "Alert Severity": _VECTR_SEVERITY.get((case.severity or "").lower(), "TBD"),
                "Alert Triggered": _yes_no(alerted),
                "Activity Logged": _yes_no(logged),
                "Outcome Notes": case.notes,
                "TargetAssets": ",".join(case.target_assets),
                "ExpectedDetectionLayers": ",".join(sorted(outcomes)),
                "DetectingTools": ",".join(sorted(t for t, o in outcomes.items() if o != Outcome.NONE)),
                "Start Time": start, "Start Time Epoch": start_ms,
                "Stop Time": stop, "Stop Time Epoch": stop_ms,
                "Detection Time": det, "Detection Time Epoch": det_ms,
                "Organizations": ",".join(case.organizations),
                "Tags": ",".join(case.tags),
                "Command": case.command,
                "Operator": case.operator,
                "DCO Step": case.step_id or "",
                "DCO Tool Outcomes": ";".join(f"{t}={o.value}" for t, o in sorted(outcomes.items())),
                "DCO Marking": marking,
            }.items()})
            n += 1
    return n


def _time(value: str, epoch: str) -> datetime | None:
    bad_epoch = None
    if epoch.strip():
        try:
            return datetime.fromtimestamp(int(epoch) / 1000, tz=UTC)
        except (ValueError, OverflowError, OSError):  # not a number, or outside the years datetime holds
            bad_epoch = epoch.strip()[:40]
    text = value.strip()
    if not text:
        if bad_epoch is not None:
            raise ValueError(f"epoch {bad_epoch!r} is not a time in milliseconds")
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _tool_outcomes(row: Mapping[str, str]) -> dict[str, Outcome]:
    """Per-tool outcomes: our column when present, else derived from VECTR's own columns."""
    explicit = (row.get("DCO Tool Outcomes") or "").strip()
    if explicit:
        out: dict[str, Outcome] = {}
        for part in explicit.split(";"):
            tool, _, value = part.partition("=")
            key = value.strip().lower()
            if not tool.strip() or key not in OUTCOME_ALIASES:
                raise ValueError(f"bad 'DCO Tool Outcomes' entry {part!r} (want tool=prevented|alerted|logged|none)")
            out[tool.strip()] = OUTCOME_ALIASES[key]
        return out
    verdict = (row.get("Outcome") or "").strip().lower()
    if verdict in ("", "tbd"):
        return {}
    if verdict not in OUTCOME_ALIASES:
        raise ValueError(f"unknown VECTR outcome {row.get('Outcome')!r} (Blocked, Detected, NotDetected, TBD)")
    base = OUTCOME_ALIASES[verdict]
    if base == Outcome.ALERTED and (row.get("Alert Triggered") or "").strip().lower() == "no":
        base = Outcome.LOGGED  # detected without an alert: the activity was only logged
    detecting = _split(row.get("DetectingTools"))
    expected = _split(row.get("ExpectedDetectionLayers"))
    if base == Outcome.NONE:
        return {t: Outcome.NONE for t in (expected or ["unspecified"])}
    out = {t: base for t in (detecting or ["unspecified"])}
    for t in expected:
        out.setdefault(t, Outcome.NONE)
    return out


def read_vectr_csv(path: Path) -> tuple[list[VectrTestCase], BatchReport]:
    """Test cases of a VECTR CSV (ours or VECTR's own); bad rows are reported, not fatal."""
    report = BatchReport(source=f"VECTR CSV {path}")
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ContentError(f"cannot read: {exc.strerror}", system="vectr", object=str(path)) from exc
    cases: list[VectrTestCase] = []
    with fh:
        reader = csv.DictReader(fh)
        try:
            header = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ContentError(f"unreadable CSV header: {exc}", system="vectr", object=str(path)) from exc
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ContentError(f"not a VECTR CSV: missing column(s) {', '.join(missing)}", system="vectr",
                               object=str(path), hint="expected at least " + ", ".join(REQUIRED))
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over the csv module's size limit: skip that row
                report.read += 1
                report.skip(f"line {reader.line_num}", f"unreadable CSV row: {exc}")
                continue
            except UnicodeDecodeError as exc:  # the decoder cannot resynchronise: stop, naming the file
                raise ContentError(f"not UTF-8 text (byte {exc.start}) after line {reader.line_num}",
                                   system="vectr", object=str(path)) from exc
            report.read += 1
            row = {k: unsafe_cell(v) if isinstance(v, str) else v for k, v in row.items()}
            where = f"line {reader.line_num} ({row.get('Variant') or '?'})"
            try:
                if not (row.get("Variant") or "").strip():
                    raise ValueError("empty Variant (test case name)")
                cases.append(VectrTestCase(
                    assessment=(row.get("AssessmentGroup") or "").strip(),
                    campaign=(row.get("Campaign") or "").strip(),
                    name=row["Variant"].strip(),
                    technique_id=(row.get("MitreID") or "").strip().upper(),
                    tactic=(row.get("Phase") or "").strip(),
                    method=(row.get("Method") or "").strip(),
                    status=(row.get("Status") or "").strip(),
                    tool_outcomes=_tool_outcomes(row),
                    severity=(row.get("Alert Severity") or "").strip() or None,
                    notes=(row.get("Outcome Notes") or "").strip(),
                    target_assets=_split(row.get("TargetAssets")),
                    start=_time(row.get("Start Time") or "", row.get("Start Time Epoch") or ""),
                    stop=_time(row.get("Stop Time") or "", row.get("Stop Time Epoch") or ""),
                    detected_at=_time(row.get("Detection Time") or "", row.get("Detection Time Epoch") or ""),
                    operator=(row.get("Operator") or "").strip(),
                    organizations=_split(row.get("Organizations")),
                    tags=_split(row.get("Tags")),
                    command=row.get("Command") or "",
                    step_id=(row.get("DCO Step") or "").strip() or None,
                    vectr_outcome=(row.get("Outcome") or "").strip() or None,
                ))
                report.kept += 1
            except ValueError as exc:
                report.skip(where, str(exc))
    return cases, report
