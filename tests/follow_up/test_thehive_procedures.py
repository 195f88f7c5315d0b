"""TheHive 5 incidents carry their ATT&CK technique as a TheHive procedure (the TTP view), not only a tag:
the alert dcoflow creates holds ``procedures`` [{patternId, occurDate, description}] (TheHive 5 InputAlert)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from dcoflow.connectors.thehive import TheHiveClient
from dcoflow.models.followup import Incident, Severity
from dcoflow.tasks.follow_up.escalation import TheHiveChannel

from .helpers import FakeHive


def test_escalated_incident_carries_its_technique_as_a_procedure() -> None:
    hive = FakeHive()
    client = TheHiveClient("https://hive.example.org", "s3cr3t", transport=httpx.MockTransport(hive),
                           sleep=lambda _s: None)
    created = datetime(2026, 11, 18, 21, 14, tzinfo=UTC)
    incident = Incident(id="inc-1", finding_key="sighting--1", dco_id="apt29", kind="true-positive-hit",
                        technique_id="T1003.001", summary="comsvcs MiniDump of LSASS", severity=Severity.HIGH,
                        stix_id="incident--1", host="wkst-01", created_at=created)
    TheHiveChannel(client).deliver(incident, [])
    sent = json.loads(next(r for r in hive.requests if r.method == "POST" and r.url.path == "/api/v1/alert").content)
    assert sent["procedures"] == [{"patternId": "T1003.001", "description": "comsvcs MiniDump of LSASS",
                                   "occurDate": int(created.timestamp() * 1000)}]
    assert "attack.T1003.001" in sent["tags"]
