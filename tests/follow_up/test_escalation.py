"""Escalation: one incident per finding however often it runs; a failing receiver keeps it pending
(retried with backoff, never lost), and a later run delivers it exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stix2
from sqlmodel import select

from dcoflow.connectors.thehive import TheHiveClient
from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.db import session_scope
from dcoflow.models.followup import FindingInput, Incident, IncidentStatus
from dcoflow.models.repository.stix_store import latest_objects, object_history
from dcoflow.models.stix.followup_objects import INCIDENT_EXTENSION
from dcoflow.models.stix.ids import stix_id
from dcoflow.tasks.follow_up.escalation import TheHiveChannel, WebhookChannel, escalate, findings_from_store

from .helpers import FakeHive, hunt_hit, outcome, store, triage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Endpoint:
    """A webhook receiver that answers ``status`` until told otherwise, recording each delivery."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.status >= 400:
            return httpx.Response(self.status, text="upstream unavailable")
        return httpx.Response(202, json={"id": f"ack-{len(self.calls)}"})

    @property
    def delivered_keys(self) -> list[str]:
        return [r.headers["Idempotency-Key"] for r in self.calls]


def webhook(endpoint: Endpoint, retries: int = 2) -> WebhookChannel:
    sleeps: list[float] = []
    client = WebhookClient("https://soc.example.org/hooks/dco", secret="k", transport=httpx.MockTransport(endpoint),
                           retries=retries, backoff_s=0.5, sleep=sleeps.append)
    return WebhookChannel(client)


def tp_evidence(dco: str) -> str:
    hit = hunt_hit(dco, "rule-ps-cradle", "ws-01|4711", "T1059.001", "ws-01", T0)
    fp = hunt_hit(dco, "rule-ps-cradle", "ws-02|4712", "T1059.001", "ws-02", T0)
    store(dco, [hit, fp, triage(dco, hit["id"], "true-positive", T0), triage(dco, fp["id"], "false-positive", T0)])
    return str(hit["id"])


def incidents() -> list[Incident]:
    with session_scope() as s:
        return list(s.exec(select(Incident)))


def test_true_positive_opinions_and_compromise_outcomes_are_findings(dco: str) -> None:
    sighting = tp_evidence(dco)
    store(dco, [outcome(dco, "step-7", "T1003.001", "none", T0, x_dco_compromise=True),
                outcome(dco, "step-8", "T1003.001", "alerted", T0)])
    with session_scope() as s:
        found = findings_from_store(s, dco)
    kinds = {(f.kind, f.technique_id) for f in found}
    assert kinds == {("true-positive-hit", "T1059.001"), ("emulation-exposed-compromise", "T1003.001")}
    hit = next(f for f in found if f.kind == "true-positive-hit")
    assert hit.sighting_id == sighting and hit.host == "ws-01"


def test_one_incident_per_finding_across_runs(dco: str) -> None:
    tp_evidence(dco)
    endpoint = Endpoint()
    extra = FindingInput(kind="emulation-exposed-compromise", technique_id="T1003.001", sighting_id="sighting--x",
                         summary="LSASS dump found from an unknown actor", severity="critical")
    for run in range(3):
        escalate(dco, [extra], [webhook(endpoint)], now=T0 + timedelta(minutes=run))
    rows = incidents()
    assert len(rows) == 2
    assert all(r.status == IncidentStatus.ACKNOWLEDGED for r in rows)
    assert sorted(endpoint.delivered_keys) == sorted(r.id for r in rows)  # each delivered once
    with session_scope() as s:
        stix_incidents = latest_objects(s, dco, ["incident"])
    assert len(stix_incidents) == 2


def test_failing_webhook_is_retried_then_incident_stays_pending_and_is_sent_once_later(dco: str) -> None:
    tp_evidence(dco)
    endpoint = Endpoint(status=500)
    first = escalate(dco, (), [webhook(endpoint, retries=2)], now=T0)
    assert len(endpoint.calls) == 3  # the connector retried the 500 twice with backoff
    [inc] = first
    assert inc["status"] == "failed-retrying" and inc["attempts"] == 1
    assert "HTTP 500" in inc["last_error"]
    assert inc["next_attempt_at"] == (T0 + timedelta(seconds=60)).isoformat()

    # Before the backoff elapses nothing is sent; persistent failure keeps it pending, attempts grow.
    escalate(dco, (), [webhook(endpoint, retries=0)], now=T0 + timedelta(seconds=30))
    assert len(endpoint.calls) == 3
    second = escalate(dco, (), [webhook(endpoint, retries=0)], now=T0 + timedelta(seconds=61))
    assert second[0]["attempts"] == 2 and second[0]["status"] == "failed-retrying"
    assert second[0]["next_attempt_at"] == (T0 + timedelta(seconds=61 + 120)).isoformat()

    endpoint.status = 200
    endpoint.calls.clear()
    third = escalate(dco, (), [webhook(endpoint)], now=T0 + timedelta(hours=1))
    assert third[0]["status"] == "acknowledged" and third[0]["last_error"] is None
    escalate(dco, (), [webhook(endpoint)], now=T0 + timedelta(hours=2), force=True)
    assert len(endpoint.calls) == 1  # sent once, never again
    body = json.loads(endpoint.calls[0].content)
    assert body["event"] == "dco.incident"
    assert body["payload"]["incident"]["finding_key"] == inc["finding_key"]
    marked = {o["id"] for o in body["payload"]["stix"]["objects"] if o["type"] == "marking-definition"}
    incident_obj = next(o for o in body["payload"]["stix"]["objects"] if o["type"] == "incident")
    assert set(incident_obj["object_marking_refs"]) <= marked  # the bundle carries the marking it refers to
    assert len(incidents()) == 1


def test_thehive_and_webhook_each_get_it_once_even_when_one_fails(dco: str) -> None:
    tp_evidence(dco)
    hive = FakeHive()
    endpoint = Endpoint(status=503)
    channels: list[Any] = [webhook(endpoint, retries=0),
                           TheHiveChannel(TheHiveClient("https://hive.example.org", "k",
                                                        transport=httpx.MockTransport(hive), sleep=lambda _s: None))]
    [inc] = escalate(dco, (), channels, now=T0)
    assert inc["status"] == "failed-retrying"
    assert inc["external_ref"] == "~40964176"  # TheHive accepted; remembered
    endpoint.status = 200
    [inc] = escalate(dco, (), channels, now=T0 + timedelta(hours=1))
    assert inc["status"] == "acknowledged"
    assert len(hive.alerts) == 1
    assert sum(1 for r in hive.requests if r.url.path == "/api/v1/alert") == 1
    assert set(inc["deliveries"]) == {"webhook", "thehive"}


def test_incident_stix_is_valid_and_versioned(dco: str) -> None:
    sighting = tp_evidence(dco)
    escalate(dco, (), [webhook(Endpoint(status=500), retries=0)], now=T0)
    escalate(dco, (), [webhook(Endpoint())], now=T0 + timedelta(hours=1))
    with session_scope() as s:
        [obj] = latest_objects(s, dco, ["incident"])
        history = object_history(s, obj["id"])
        rels = [r for r in latest_objects(s, dco, ["relationship"]) if r["source_ref"] == obj["id"]]
    ext = obj["extensions"][INCIDENT_EXTENSION]
    assert ext["extension_type"] == "property-extension"
    assert ext["determination"] == "confirmed" and ext["investigation_status"] == "open"
    assert obj["x_dco_status"] == "acknowledged"
    assert [h["x_dco_status"] for h in history] == ["pending", "failed-retrying", "acknowledged"]
    assert obj["x_dco_sighting_ref"] == sighting
    assert {r["target_ref"] for r in rels} == {stix_id("observed-data", dco, "rule-ps-cradle", "ws-01|4711")}
    assert all(r["relationship_type"] == "related-to" for r in rels)
    parsed = stix2.parse({"type": "bundle", "id": "bundle--6f7e8d9c-0b1a-4c2d-8e3f-a4b5c6d7e8f9",
                          "objects": [obj, *rels]}, allow_custom=True)
    assert parsed.objects[0].id == obj["id"]


def test_no_channel_keeps_incidents_pending(dco: str) -> None:
    tp_evidence(dco)
    [inc] = escalate(dco, (), [], now=T0)
    assert inc["status"] == "pending" and inc["attempts"] == 0
