"""Reading a Caldera operation report (the JSON of ``POST /api/v2/operations/{id}/report`` or the
UI's "download report").

Shape from mitre/caldera ``app/objects/c_operation.py`` ``Operation.report``: ``name``, ``start``,
``finish``, ``planner``, ``adversary``, ``host_group`` (agents with ``paw`` and ``host``) and
``steps`` = ``{paw: {"steps": [{link_id, ability_id, command (base64), delegated, run, status,
platform, executor, pid, description, name, attack: {tactic, technique_name, technique_id},
output?, agent_reported_time?}]}}``; timestamps are ``%Y-%m-%d %H:%M:%S`` (server time, UTC).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcoflow.connectors.caldera import LinkStatus
from dcoflow.core.errors import BatchReport, ContentError
from dcoflow.models.strict_yaml import load_json

_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class CalderaReportStep:
    paw: str
    host: str | None
    link_id: str
    ability_id: str
    name: str
    technique_id: str | None
    technique_name: str
    tactic: str
    command: str
    status: LinkStatus
    delegated: datetime | None
    finished: datetime | None
    platform: str
    executor: str
    output: str | None = None


@dataclass(slots=True)
class CalderaReport:
    name: str
    adversary: str
    start: datetime | None
    finish: datetime | None
    steps: list[CalderaReportStep]
    report: BatchReport
    hosts: dict[str, str] = field(default_factory=dict)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).strip()
    try:
        moment = datetime.strptime(text, _TIME)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"unreadable time {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _decode(command: str) -> str:
    """Caldera stores commands base64-encoded; older reports carry plain text."""
    try:
        return base64.b64decode(command, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return command


def parse_caldera_report(doc: Any, source: str) -> CalderaReport:
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), dict):
        raise ContentError("not a Caldera operation report: no 'steps' mapping of agents", system="caldera",
                           object=source)
    report = BatchReport(source=f"Caldera report {source}")
    hosts = {str(a.get("paw")): str(a.get("host")) for a in doc.get("host_group") or []
             if isinstance(a, dict) and a.get("paw")}
    adversary = doc.get("adversary")
    steps: list[CalderaReportStep] = []
    for paw, body in doc["steps"].items():
        entries = body.get("steps") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            report.skip(f"agent {paw}", "no 'steps' list")
            continue
        for i, raw in enumerate(entries):
            report.read += 1
            where = f"agent {paw} step {i + 1}"
            try:
                if not isinstance(raw, dict):
                    raise ValueError("not a mapping")
                attack = raw.get("attack") or {}
                steps.append(CalderaReportStep(
                    paw=str(paw),
                    host=hosts.get(str(paw)),
                    link_id=str(raw.get("link_id") or ""),
                    ability_id=str(raw["ability_id"]),
                    name=str(raw.get("name") or ""),
                    technique_id=str(attack["technique_id"]).upper() if attack.get("technique_id") else None,
                    technique_name=str(attack.get("technique_name") or ""),
                    tactic=str(attack.get("tactic") or ""),
                    command=_decode(str(raw.get("command") or "")),
                    status=LinkStatus(int(raw.get("status", LinkStatus.EXECUTE))),
                    delegated=_when(raw.get("delegated")),
                    finished=_when(raw.get("run")),
                    platform=str(raw.get("platform") or ""),
                    executor=str(raw.get("executor") or ""),
                    output=raw.get("output") if isinstance(raw.get("output"), str) else None,
                ))
                report.kept += 1
            except (KeyError, ValueError, TypeError) as exc:
                report.skip(where, f"{type(exc).__name__}: {exc}")
    try:
        start, finish = _when(doc.get("start")), _when(doc.get("finish"))
    except ValueError as exc:
        raise ContentError(str(exc), system="caldera", object=source) from exc
    return CalderaReport(
        name=str(doc.get("name") or ""),
        adversary=str(adversary.get("name") if isinstance(adversary, dict) else adversary or ""),
        start=start, finish=finish, steps=steps, report=report, hosts=hosts,
    )


def load_caldera_report(path: Path) -> CalderaReport:
    try:
        doc = load_json(path.read_bytes())
    except OSError as exc:
        raise ContentError(f"cannot read: {exc.strerror}", system="caldera", object=str(path)) from exc
    except ValueError as exc:
        raise ContentError(f"not JSON: {exc}", system="caldera", object=str(path)) from exc
    return parse_caldera_report(doc, str(path))
