"""STIX evidence builders for follow-up tests (shapes per docs/STIX.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.db import session_scope
from models.stix.ids import stix_id
from models.stix.store import put_objects, stix_time


def hunt_hit(dco_id: str, rule: str, event: str, technique: str, host: str, when: datetime) -> dict[str, Any]:
    stamp = stix_time(when)
    return {
        "type": "sighting", "spec_version": "2.1", "id": stix_id("sighting", dco_id, rule, event),
        "created": stamp, "modified": stamp, "first_seen": stamp, "last_seen": stamp, "count": 1,
        "sighting_of_ref": stix_id("indicator", rule),
        "observed_data_refs": [stix_id("observed-data", dco_id, rule, event)],
        "x_dco_id": dco_id, "x_dco_rule_id": rule, "x_dco_technique_ids": [technique], "x_dco_host": host,
        "x_dco_exercise": False, "x_dco_hunt_run": "run-1",
    }


def triage(dco_id: str, sighting_id: str, verdict: str, when: datetime) -> dict[str, Any]:
    stamp = stix_time(when)
    return {
        "type": "opinion", "spec_version": "2.1", "id": stix_id("opinion", sighting_id, "analyst"),
        "created": stamp, "modified": stamp, "object_refs": [sighting_id],
        "opinion": {"true-positive": "agree", "false-positive": "disagree"}.get(verdict, "neutral"),
        "explanation": "encoded PowerShell download cradle", "x_dco_verdict": verdict, "x_dco_id": dco_id,
    }


def outcome(dco_id: str, step: str, technique: str, result: str, when: datetime, **extra: Any) -> dict[str, Any]:
    stamp = stix_time(when)
    return {
        "type": "sighting", "spec_version": "2.1", "id": stix_id("sighting", dco_id, step, "edr"),
        "created": stamp, "modified": stamp, "first_seen": stamp, "last_seen": stamp,
        "sighting_of_ref": "attack-pattern--00000000-0000-4000-8000-000000000001",
        "x_dco_id": dco_id, "x_dco_outcome": result, "x_dco_step_id": step, "x_dco_technique_id": technique,
        "x_dco_severity": "high", "x_dco_target": "lab-win10", **extra,
    }


def store(dco_id: str, objects: list[dict[str, Any]]) -> None:
    with session_scope() as s:
        put_objects(s, objects, dco_id)
