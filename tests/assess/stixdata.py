"""STIX evidence as conduct writes it (docs/STIX.md), built by hand for the assessment tests."""

from __future__ import annotations

from typing import Any

from dcoflow.models.stix.ids import stix_id

IDENTITY = stix_id("identity", "dcoflow")
AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
LSASS_PATTERN = "attack-pattern--0fbd7f3a-3b1e-4c5e-a3d6-4d9c1b0b0f01"


def _common(dco: str) -> dict[str, Any]:
    return {"spec_version": "2.1", "created_by_ref": IDENTITY, "object_marking_refs": [AMBER], "x_dco_id": dco}


def hunt_run(dco: str, run: str, when: str, rules: list[dict[str, Any]], channels: dict[str, int],
             refs: list[str]) -> dict[str, Any]:
    return {"type": "grouping", "id": stix_id("grouping", dco, run), "created": when, "modified": when,
            "name": f"hunt {run}", "context": "suspicious-activity", "object_refs": refs or [IDENTITY],
            "x_dco_hunt_run": run, "x_dco_rules": rules, "x_dco_channels": channels, "x_dco_source": "evtx",
            **_common(dco)}


def hunt_hit(dco: str, rule: str, techniques: list[str], event: str, when: str, run: str,
             exercise: bool = False) -> dict[str, Any]:
    return {"type": "sighting", "id": stix_id("sighting", dco, rule, event), "created": when, "modified": when,
            "sighting_of_ref": stix_id("indicator", rule), "where_sighted_refs": [stix_id("identity", "evtx")],
            "count": 1, "first_seen": when, "last_seen": when, "x_dco_rule_id": rule,
            "x_dco_technique_ids": techniques, "x_dco_hunt_run": run, "x_dco_exercise": exercise,
            "x_dco_host": "ws01", **_common(dco)}


def verdict(dco: str, sighting: dict[str, Any], value: str, when: str, analyst: str = "ana") -> dict[str, Any]:
    opinion = {"true-positive": "agree", "false-positive": "disagree", "benign": "neutral"}[value]
    return {"type": "opinion", "id": stix_id("opinion", sighting["id"], analyst), "created": when, "modified": when,
            "opinion": opinion, "explanation": value, "authors": [analyst], "object_refs": [sighting["id"]],
            "x_dco_verdict": value, **_common(dco)}


def outcome(dco: str, step: str, tool: str, technique: str, value: str, created: str, modified: str,
            severity: str | None = None) -> dict[str, Any]:
    obj = {"type": "sighting", "id": stix_id("sighting", dco, step, tool), "created": created, "modified": modified,
           "sighting_of_ref": LSASS_PATTERN, "where_sighted_refs": [stix_id("identity", tool)],
           "count": 0 if value == "none" else 1, "first_seen": created, "last_seen": created,
           "x_dco_outcome": value, "x_dco_step_id": step, "x_dco_technique_id": technique,
           "x_dco_operator": "red1", "x_dco_target": "lab-ws01", **_common(dco)}
    if severity:
        obj["x_dco_severity"] = severity
    return obj
