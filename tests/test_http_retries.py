"""The shared HTTP layer re-sends only what is safe to send twice, waits with jitter, and stops at once on a
rejected credential. MockTransports count what reached the "server"."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dcoflow.connectors.caldera import CalderaClient
from dcoflow.connectors.http import HttpConnector
from dcoflow.connectors.taxii import TaxiiClient
from dcoflow.connectors.thehive import TheHiveClient
from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.errors import AuthError, ConnectorError


class Server:
    """Answers each request with the next of ``answers`` (a status, an exception, or a Response); counts them."""

    def __init__(self, *answers: int | Exception | httpx.Response, ok: Any = None) -> None:
        self.answers = list(answers)
        self.ok = {"ok": True} if ok is None else ok
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(answer, json=self.ok if answer < 400 else {"message": "down"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def connector(server: Server, retries: int = 3, sleeps: list[float] | None = None) -> HttpConnector:
    return HttpConnector("http://svc", transport=server.transport, retries=retries, backoff_s=0.5,
                         sleep=(sleeps if sleeps is not None else []).append)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_methods_are_retried(method: str) -> None:
    server = Server(503, 502)
    assert connector(server).request(method, "/x").status_code == 200
    assert len(server.requests) == 3


@pytest.mark.parametrize("failure", [503, 500, 502, 504,
                                     httpx.ReadTimeout("read timed out"), httpx.RemoteProtocolError("reset")])
def test_a_post_that_may_have_been_applied_is_sent_once(failure: int | Exception) -> None:
    server = Server(failure)
    with pytest.raises(ConnectorError) as info:
        connector(server).request("POST", "/things", json={"name": "x"})
    assert len(server.requests) == 1
    # Still retryable: a caller that checks before writing again (find-or-create) may retry at its level.
    assert info.value.retryable and info.value.details["attempts"] == 1
    assert "not idempotent" in info.value.details["not_resent"]


@pytest.mark.parametrize("failure", [429, httpx.ConnectError("refused"), httpx.ConnectTimeout("no connect")])
def test_a_post_the_server_never_acted_on_is_re_sent(failure: int | Exception) -> None:
    server = Server(failure)
    assert connector(server).request("POST", "/things", json={}).status_code == 200
    assert len(server.requests) == 2


def test_a_post_marked_idempotent_is_retried_until_the_limit() -> None:
    server = Server(503, 503, 503, 503, 503)
    with pytest.raises(ConnectorError) as info:
        connector(server, retries=2).post_json("/_search", json={}, idempotent=True)
    assert len(server.requests) == 3 and info.value.details["attempts"] == 3
    assert "not_resent" not in info.value.details


def test_a_put_marked_not_idempotent_is_sent_once() -> None:
    server = Server(503)
    with pytest.raises(ConnectorError):
        connector(server).request("PUT", "/counter/increment", idempotent=False)
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_rejected_credentials_fail_at_once(status: int, method: str) -> None:
    server = Server(status, status, status)
    with pytest.raises(AuthError) as info:
        connector(server).request(method, "/x", idempotent=True)
    assert len(server.requests) == 1 and not info.value.retryable and info.value.status == status


def test_backoff_is_exponential_capped_and_jittered() -> None:
    sleeps: list[float] = []
    server = Server(*([503] * 6))
    conn = connector(server, retries=6, sleeps=sleeps)
    conn.max_backoff_s = 4.0
    conn.get_json("/x")
    for attempt, delay in enumerate(sleeps):
        full = min(0.5 * 2**attempt, 4.0)
        assert full / 2 <= delay <= full, (attempt, delay)
    # Jitter: two clients that failed together do not wait the same (60 draws all equal would be a bug).
    assert len({round(conn.backoff(2), 9) for _ in range(60)}) > 1


def test_retry_after_is_honoured_and_capped() -> None:
    sleeps: list[float] = []
    server = Server(httpx.Response(429, headers={"Retry-After": "7"}),
                    httpx.Response(503, headers={"Retry-After": "600"}))
    conn = connector(server, sleeps=sleeps)
    conn.get_json("/x")
    assert sleeps == [7.0, conn.max_backoff_s]


# -- each connector's writes ------------------------------------------------------------------------------------


def _caldera(server: Server) -> CalderaClient:
    return CalderaClient("http://caldera:8888", "key", transport=server.transport, retries=3, sleep=lambda _s: None)


def test_caldera_operation_is_created_at_most_once() -> None:
    server = Server(502)
    with pytest.raises(ConnectorError):
        _caldera(server).create_operation("dco op", "adv-1")
    assert [(r.method, r.url.path) for r in server.requests] == [("POST", "/api/v2/operations")]


def test_caldera_report_is_a_read_and_is_retried() -> None:
    server = Server(502, ok={"name": "op", "steps": {}})
    assert _caldera(server).operation_report("op-1")["name"] == "op"
    assert len(server.requests) == 2


def test_caldera_adversary_put_is_retried() -> None:
    server = Server(503, ok={"adversary_id": "a", "name": "n"})
    _caldera(server).ensure_adversary("n", ["ab-1"])
    assert [r.method for r in server.requests] == ["PUT", "PUT"]


def test_taxii_objects_are_posted_once() -> None:
    server = Server(503)
    client = TaxiiClient("https://taxii.example.org/api1/", transport=server.transport, retries=3,
                         sleep=lambda _s: None)
    with pytest.raises(ConnectorError):
        client.add_objects("c1", [{"type": "identity", "id": "identity--0b1e6a2a-8b55-4a2c-9b1e-1f0e1c8c6f11"}])
    assert [r.method for r in server.requests] == ["POST"]


def test_webhook_is_re_sent_with_the_same_idempotency_key() -> None:
    server = Server(503, httpx.ReadTimeout("slow"), 200)
    client = WebhookClient("https://soc.example.org/hook", transport=server.transport, retries=3,
                           sleep=lambda _s: None, allow_unsigned=True)
    client.post("incident", {"id": "x"}, idempotency_key="dco-1:finding-1")
    assert len(server.requests) == 3
    assert {r.headers["Idempotency-Key"] for r in server.requests} == {"dco-1:finding-1"}


def test_thehive_alert_re_sent_after_a_lost_answer_is_found_not_duplicated() -> None:
    """TheHive refuses a second alert with the same sourceRef (400); the client then finds the first."""
    created: list[dict[str, Any]] = []
    sent: list[str] = []

    def hive(request: httpx.Request) -> httpx.Response:
        import json

        sent.append(f"{request.method} {request.url.path}")
        if request.url.path == "/api/v1/query":
            return httpx.Response(200, json=created[:1])
        body = json.loads(request.content)
        if any(a["sourceRef"] == body["sourceRef"] for a in created):
            return httpx.Response(400, json={"type": "CreateError", "message": "Alert already exists"})
        created.append({**body, "_id": f"~{len(created) + 1}"})
        if len(created) == 1:
            raise httpx.ReadTimeout("answer lost")  # applied, but the client never heard
        return httpx.Response(201, json=created[-1])

    client = TheHiveClient("https://hive.example.org", "k", transport=httpx.MockTransport(hive), retries=3,
                           sleep=lambda _s: None)
    alert = client.create_alert(source_ref="dco-1:f1", title="t", description="d")
    assert alert["_id"] == "~1" and len(created) == 1
    assert sent == ["POST /api/v1/query", "POST /api/v1/alert", "POST /api/v1/alert", "POST /api/v1/query"]

