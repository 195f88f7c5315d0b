"""STIX evidence builders for follow-up tests (shapes per docs/STIX.md) and a fake TheHive 5."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from dcoflow.core.db import session_scope
from dcoflow.models.repository.stix_store import put_objects
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.rows import stix_time


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


def alert_out(body: dict[str, Any], alert_id: str = "~40964176") -> dict[str, Any]:
    return {
        "_id": alert_id, "_type": "Alert", "_createdBy": "dcoflow@example.org", "_createdAt": 1718000000000,
        "type": body["type"], "source": body["source"], "sourceRef": body["sourceRef"], "title": body["title"],
        "description": body["description"], "severity": body["severity"], "severityLabel": "HIGH",
        "date": 1718000000000, "tags": body.get("tags", []), "tlp": body["tlp"], "tlpLabel": "AMBER",
        "pap": body["pap"], "papLabel": "AMBER", "follow": True, "customFields": [], "observableCount": 1,
        "status": "New", "stage": "New", "extraData": {}, "newDate": 1718000000000, "timeToDetect": 0,
    }


class FakeHive:
    """A TheHive 5 that keeps alerts and enforces (type, source, sourceRef) uniqueness."""

    def __init__(self, *, hide_from_first_query: bool = False, fail_first: int = 0, status: int = 500) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.hide_from_first_query = hide_from_first_query
        self.fail_first = fail_first
        self.fail_status = status
        self.queries = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail_first > 0:
            self.fail_first -= 1
            return httpx.Response(self.fail_status, json={"type": "InternalError", "message": "boom"})
        path = request.url.path
        if path == "/api/v1/query":
            self.queries += 1
            query = json.loads(request.content)["query"]
            wanted = {c["_field"]: c["_value"] for c in query[1]["_and"]}
            hits = [a for a in self.alerts.values() if all(a.get(k) == v for k, v in wanted.items())]
            if self.hide_from_first_query and self.queries == 1:
                hits = []
            return httpx.Response(200, json=hits)
        if path == "/api/v1/alert" and request.method == "POST":
            body = json.loads(request.content)
            key = (body["type"], body["source"], body["sourceRef"])
            if any((a["type"], a["source"], a["sourceRef"]) == key for a in self.alerts.values()):
                return httpx.Response(400, json={"type": "CreateError", "message": "Alert already exists"})
            alert = alert_out(body, f"~{40964176 + len(self.alerts)}")
            self.alerts[alert["_id"]] = alert
            return httpx.Response(201, json=alert)
        if path.startswith("/api/v1/alert/") and path.endswith("/case"):
            alert_id = path.split("/")[4]
            self.alerts[alert_id]["caseId"] = "~81924208"
            return httpx.Response(201, json={
                "_id": "~81924208", "_type": "Case", "_createdBy": "dcoflow@example.org", "_createdAt": 1718000001000,
                "number": 42, "title": self.alerts[alert_id]["title"], "description": "…", "severity": 3,
                "startDate": 1718000001000, "tags": [], "flag": False, "tlp": 2, "pap": 2, "status": "New",
                "stage": "New", "assignee": None, "customFields": [], "extraData": {}, "newDate": 1718000001000,
                "timeToDetect": 0,
            })
        if path.startswith("/api/v1/alert/") and request.method == "GET":
            alert_id = path.rsplit("/", 1)[1]
            if alert_id not in self.alerts:
                return httpx.Response(404, json={"type": "NotFoundError", "message": f"Alert {alert_id} not found"})
            return httpx.Response(200, json=self.alerts[alert_id])
        return httpx.Response(404, json={"type": "NotFoundError", "message": path})
