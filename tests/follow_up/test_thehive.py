"""TheHive 5 connector against httpx.MockTransport.

Response shapes follow TheHive 5's API v1 as documented by StrangeBee
(https://docs.strangebee.com/thehive/api-docs/ — "Create Alert", "Get Alert", "Promote Alert to
Case", and the Query API https://docs.strangebee.com/thehive/user-guides/query-syntax/) and the
OutputAlert/OutputCase types of TheHive4py 2.x (thehive4py/types/alert.py, case.py): ``_id``,
``_type``, ``_createdBy``, ``_createdAt``, ``type``, ``source``, ``sourceRef``, ``severity``,
``tlp``, ``pap``, ``status``, ``stage``… A duplicate (type, source, sourceRef) is refused with
HTTP 400 (TheHive issue #1094: "creating an Alert with a sourceRef that already exists returns 400").
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from connectors.thehive import TheHiveClient
from core.errors import AuthError, ConnectorError


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


def client(hive: FakeHive, **kw: Any) -> TheHiveClient:
    return TheHiveClient("https://hive.example.org", "s3cr3t", organisation="CyOC",
                         transport=httpx.MockTransport(hive), sleep=lambda _s: None, **kw)


def create(c: TheHiveClient, ref: str = "inc-1") -> dict[str, Any]:
    return c.create_alert(source_ref=ref, title="T1059.001 on ws-01", description="found", tags=["attack.T1059.001"],
                          observables=[{"dataType": "hostname", "data": "ws-01"}])


def test_create_alert_sends_documented_fields_and_headers() -> None:
    hive = FakeHive()
    alert = create(client(hive))
    post = next(r for r in hive.requests if r.method == "POST" and r.url.path == "/api/v1/alert")
    body = json.loads(post.content)
    assert post.headers["Authorization"] == "Bearer s3cr3t"
    assert post.headers["X-Organisation"] == "CyOC"
    assert {k: body[k] for k in ("type", "source", "sourceRef", "severity", "tlp", "pap")} == {
        "type": "dco-finding", "source": "dcoflow", "sourceRef": "inc-1", "severity": 3, "tlp": 2, "pap": 2,
    }
    assert body["observables"] == [{"dataType": "hostname", "data": "ws-01"}]
    assert alert["_id"] == "~40964176" and alert["status"] == "New"


def test_create_alert_is_idempotent_by_source_ref() -> None:
    hive = FakeHive()
    c = client(hive)
    first, second = create(c), create(c)
    assert first["_id"] == second["_id"]
    assert len(hive.alerts) == 1
    assert sum(1 for r in hive.requests if r.url.path == "/api/v1/alert") == 1  # second call only looked up


def test_duplicate_refusal_is_treated_as_already_created() -> None:
    hive = FakeHive(hide_from_first_query=True)  # an earlier attempt created it, the lookup raced it
    existing = alert_out({"type": "dco-finding", "source": "dcoflow", "sourceRef": "inc-1", "title": "t",
                          "description": "d", "severity": 3, "tlp": 2, "pap": 2}, "~1")
    hive.alerts["~1"] = existing
    alert = create(client(hive))
    assert alert["_id"] == "~1"
    assert len(hive.alerts) == 1
    statuses = [r.url.path for r in hive.requests]
    assert statuses == ["/api/v1/query", "/api/v1/alert", "/api/v1/query"]


def test_get_alert_and_promote_to_case() -> None:
    hive = FakeHive()
    c = client(hive)
    alert = create(c)
    assert c.get_alert(alert["_id"])["sourceRef"] == "inc-1"
    case = c.promote_to_case(alert["_id"])
    assert case["_type"] == "Case" and case["number"] == 42
    assert c.get_alert(alert["_id"])["caseId"] == case["_id"]


def test_server_errors_are_retried_then_reported() -> None:
    hive = FakeHive(fail_first=2)
    alert = create(client(hive, retries=3))
    assert alert["_id"].startswith("~")
    hive = FakeHive(fail_first=10)
    with pytest.raises(ConnectorError) as err:
        create(client(hive, retries=2))
    assert err.value.retryable and err.value.status == 500
    assert len(hive.requests) == 3


def test_rejected_key_fails_at_once() -> None:
    hive = FakeHive(fail_first=10, status=401)
    with pytest.raises(AuthError):
        create(client(hive))
    assert len(hive.requests) == 1


def test_unknown_alert_is_a_final_error() -> None:
    with pytest.raises(ConnectorError) as err:
        client(FakeHive()).get_alert("~nope")
    assert err.value.status == 404 and not err.value.retryable
