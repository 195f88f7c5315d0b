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

from dcoflow.connectors.thehive import TheHiveClient
from dcoflow.core.errors import AuthError, ConnectorError

from .helpers import FakeHive, alert_out


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
