"""A STIX 2.1 incident bundle as an incident manager's tool would share it: an incident with the incident core
extension, its indicators, an observed process and host, the ATT&CK techniques it used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dcoflow.models.stix.followup_objects import INCIDENT_EXTENSION
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.markings import TLP2_IDS, Tlp

T = "2026-11-20T08:00:00.000Z"
FIRST_ACTIVITY = "2026-11-18T21:14:03.000Z"
INCIDENT = stix_id("incident", "case-4711")
LSASS_DUMP_PATTERN = "[process:command_line LIKE '%comsvcs.dll%MiniDump%']"
# T1003.001 and T1059.001 as ATT&CK v18.1 publishes them (ids from the enterprise bundle)
ATTACK = {"T1003.001": "attack-pattern--65f2d882-3f41-4d48-8a06-29af77ec9f90",
          "T1059.001": "attack-pattern--970a3432-3237-47ad-bcca-7d8cbb217736"}


def _sdo(kind: str, key: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": stix_id(kind, key), "created": T, "modified": T,
            "object_marking_refs": [TLP2_IDS[Tlp.AMBER]], **props}


def incident_bundle(*, extra_incident: bool = False) -> dict[str, Any]:
    incident = _sdo("incident", "case-4711", name="Credential theft on WKST-01", extensions={INCIDENT_EXTENSION: {
        "extension_type": "property-extension", "determination": "confirmed", "investigation_status": "open",
        "criticality": 75, "incident_types": ["compromise"]}})
    incident["id"] = INCIDENT
    indicators = [
        _sdo("indicator", "lsass", name="comsvcs MiniDump", pattern=LSASS_DUMP_PATTERN, pattern_type="stix",
             valid_from=T, indicator_types=["malicious-activity"]),
        _sdo("indicator", "c2", name="C2 domain", pattern="[domain-name:value = 'update-check.example.net']",
             pattern_type="stix", valid_from=T),
    ]
    attack = [{"type": "attack-pattern", "spec_version": "2.1", "id": sid, "created": T, "modified": T,
               "name": tid, "external_references": [{"source_name": "mitre-attack", "external_id": tid}]}
              for tid, sid in ATTACK.items()]
    host = _sdo("infrastructure", "wkst-01", name="WKST-01", infrastructure_types=["workstation"])
    observed = _sdo("observed-data", "od-1", first_observed=FIRST_ACTIVITY, last_observed="2026-11-19T02:00:00.000Z",
                    number_observed=1, object_refs=[stix_id("domain-name", "x")])
    rels = [_sdo("relationship", f"r-{o['id']}", relationship_type="related-to", source_ref=INCIDENT,
                 target_ref=o["id"]) for o in (*indicators, *attack, host, observed)]
    objects = [incident, *indicators, *attack, host, observed, *rels]
    if extra_incident:
        objects.append(_sdo("incident", "other", name="Another incident"))
    return {"type": "bundle", "id": stix_id("bundle", "incident-4711"), "objects": objects}


def approve(session: Any, dco: str) -> None:
    """Plan and approve the DCO (recording a sweep is conduct, which needs approval)."""
    from dcoflow.models.operation import DcoState
    from dcoflow.models.repository.operation import get_operation, transition

    op = get_operation(session, dco)
    for state in (DcoState.PLANNED, DcoState.APPROVED):
        transition(session, op, state, "incident-manager", "approved for the test")


def ir_telemetry(tmp_path: Path) -> Path:
    """Sysmon events: the C2 domain queried twice on WKST-01, an unrelated process on SRV-02."""
    sysmon = {"Channel": "Microsoft-Windows-Sysmon/Operational"}
    events = [
        {**sysmon, "EventID": 22, "Hostname": "WKST-01", "UtcTime": "2026-11-18 21:14:03.000",
         "QueryName": "update-check.example.net", "Image": "C:\\Users\\Public\\b.exe"},
        {**sysmon, "EventID": 22, "Hostname": "WKST-01", "UtcTime": "2026-11-19 09:00:00.000",
         "QueryName": "update-check.example.net", "Image": "C:\\Users\\Public\\b.exe"},
        {**sysmon, "EventID": 1, "Hostname": "SRV-02", "UtcTime": "2026-11-19 10:00:00.000",
         "Image": "C:\\Windows\\System32\\notepad.exe", "CommandLine": "notepad.exe"},
    ]
    path = tmp_path / "telemetry.json"
    path.write_text("\n".join(json.dumps(e) for e in events), encoding="utf-8")
    return path
