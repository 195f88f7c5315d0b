"""CalderaClient and WebhookClient over httpx.MockTransport fed with the captured Caldera shapes
(../shared/caldera: swagger + sample responses from a Caldera 5.3 server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dcoflow.connectors.caldera import CalderaClient, LinkStatus, link_status
from dcoflow.connectors.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookClient, verify
from dcoflow.core.errors import AuthError, ConfigError, ConnectorError
from dcoflow.models.emulation import ExecutionStatus

URL = "http://caldera.lab:8888"
KEY = "red-key"


def sample(shared: Path, name: str) -> Any:
    return json.loads((shared / "caldera" / name).read_text())


def link(ability: dict[str, Any], status: int, paw: str = "abcd") -> dict[str, Any]:
    # Link shape per the swagger's Partial-Link definition.
    return {"id": f"link-{status}", "paw": paw, "command": "dW5hbWUgLWE=", "plaintext_command": "uname -a",
            "status": status, "score": 0, "jitter": 0, "decide": "2026-11-28T02:10:00Z", "pin": 0, "pid": "4242",
            "facts": [], "relationships": [], "used": [], "unique": "x", "collect": "2026-11-28T02:10:01Z",
            "finish": "2026-11-28T02:10:03Z", "ability": ability, "executor": ability["executors"][0],
            "cleanup": 0, "visibility": {"score": 50, "adjustments": []}, "host": "lab-linux-01",
            "output": "True", "deadman": False, "agent_reported_time": "2026-11-28T02:10:03Z"}


class FakeCaldera:
    """Answers like a Caldera server: the operation finishes on the second poll."""

    def __init__(self, shared: Path) -> None:
        self.abilities = sample(shared, "sample_GET_api_v2_abilities.json")
        self.adversaries = sample(shared, "sample_GET_api_v2_adversaries.json")
        self.created = sample(shared, "sample_POST_api_v2_operations_response.json")
        self.polls = 0
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("KEY") != KEY:
            return httpx.Response(401, text="unauthorized")
        path, method = request.url.path, request.method
        op_id = self.created["id"]
        if path == "/api/v2/abilities":
            return httpx.Response(200, json=self.abilities)
        if path == "/api/v2/adversaries":
            return httpx.Response(200, json=self.adversaries)
        if path.startswith("/api/v2/adversaries/") and method == "PUT":
            body = json.loads(request.content)
            return httpx.Response(200, json={"adversary_id": path.rsplit("/", 1)[1], "objective": "", "tags": [],
                                             "has_repeatable_abilities": False, "plugin": None, **body})
        if path == "/api/v2/operations" and method == "POST":
            return httpx.Response(200, json=self.created)
        if path == f"/api/v2/operations/{op_id}":
            self.polls += 1
            return httpx.Response(200, json={**self.created, "state": "running" if self.polls < 2 else "finished"})
        if path == f"/api/v2/operations/{op_id}/links":
            ab = self.abilities[0]
            return httpx.Response(200, json=[link(ab, 0), link(ab, 1), link(ab, -3)])
        if path == f"/api/v2/operations/{op_id}/report":
            return httpx.Response(200, json={"name": self.created["name"], "steps": {}})
        return httpx.Response(404, text="not found")


def client(transport: httpx.BaseTransport, key: str = KEY, sleeps: list[float] | None = None) -> CalderaClient:
    return CalderaClient(URL, key, transport=transport, retries=2, backoff_s=0.01,
                         sleep=(sleeps.append if sleeps is not None else lambda _s: None))


def test_content_and_operation_lifecycle(shared_dir: Path) -> None:
    fake = FakeCaldera(shared_dir)
    c = client(httpx.MockTransport(fake))
    assert len(c.abilities()) == 209 and len(c.adversaries()) == 28
    assert all(a["technique_id"] == "T1497.003" for a in c.abilities_for("t1497.003", "linux"))
    adversary = c.ensure_adversary("dcoflow lab step-1", ["36eecb80-ede3-442b-8774-956e906aff02"])
    assert adversary["atomic_ordering"] == ["36eecb80-ede3-442b-8774-956e906aff02"]
    assert c.ensure_adversary("dcoflow lab step-1", [])["adversary_id"] == adversary["adversary_id"]
    op = c.create_operation("dco-test-op", adversary["adversary_id"], group="red")
    sent = json.loads(fake.requests[-1].content)
    assert sent["adversary"] == {"adversary_id": adversary["adversary_id"]}
    assert sent["planner"]["id"] and sent["source"]["id"] and sent["group"] == "red"
    finished = c.wait(op["id"], poll_s=0)
    assert finished["state"] == "finished" and fake.polls == 2
    links = c.operation_links(op["id"])
    assert [lk.execution_status for lk in links] == [ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, None]
    assert links[0].command == "uname -a" and links[0].technique_id == "T1497.003"
    assert c.operation_report(op["id"])["name"] == "dco-test-op"


def test_link_status_codes() -> None:
    assert link_status(124) is LinkStatus.TIMEOUT and LinkStatus.TIMEOUT.execution_status == ExecutionStatus.TIMED_OUT
    assert LinkStatus.DISCARD.execution_status == ExecutionStatus.REFUSED
    assert not LinkStatus.EXECUTE.finished and not LinkStatus.PAUSE.finished and LinkStatus.ERROR.finished
    with pytest.raises(ConnectorError, match="unknown Caldera link status"):
        link_status(7)


def test_rejected_key_is_an_auth_error_without_retries(shared_dir: Path) -> None:
    fake = FakeCaldera(shared_dir)
    with pytest.raises(AuthError) as err:
        client(httpx.MockTransport(fake), key="wrong").abilities()
    assert err.value.status == 401 and len(fake.requests) == 1
    assert "caldera" in str(err.value)


def test_server_errors_are_retried_then_succeed(shared_dir: Path) -> None:
    fake = FakeCaldera(shared_dir)
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(500, text="boom") if calls["n"] <= 2 else fake(request)

    sleeps: list[float] = []
    assert len(client(httpx.MockTransport(flaky), sleeps=sleeps).adversaries()) == 28
    assert calls["n"] == 3 and len(sleeps) == 2


def test_persistent_500_fails_retryable(shared_dir: Path) -> None:
    with pytest.raises(ConnectorError) as err:
        client(httpx.MockTransport(lambda r: httpx.Response(500, text="boom"))).adversaries()
    assert err.value.retryable and err.value.status == 500


def test_server_down_and_timeouts(shared_dir: Path) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(ConnectorError, match="cannot reach") as err:
        client(httpx.MockTransport(down)).abilities()
    assert err.value.retryable
    with pytest.raises(ConnectorError, match="timed out"):
        client(httpx.MockTransport(slow)).operation("x")


def test_wait_gives_up_after_timeout(shared_dir: Path) -> None:
    fake = FakeCaldera(shared_dir)
    fake.polls = -100  # stays running
    ticks = iter(range(100))
    with pytest.raises(ConnectorError, match="still 'running'"):
        client(httpx.MockTransport(fake)).wait(fake.created["id"], poll_s=0, timeout_s=3,
                                              clock=lambda: float(next(ticks)))


def test_missing_key_is_refused_up_front() -> None:
    with pytest.raises(ConnectorError, match="API key"):
        CalderaClient(URL, "")


def test_webhook_signs_and_sets_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"id": "rcpt-1"})

    hook = WebhookClient("https://hooks.example.org/dco?team=soc", secret="s3cret",
                         transport=httpx.MockTransport(receiver), clock=lambda: 1_700_000_000.0)
    answer = hook.post("emulation.step.starting", {"step": "s1"}, idempotency_key="key-1")
    assert answer == {"id": "rcpt-1"}
    req = seen[0]
    assert req.url.path == "/dco" and req.url.params["team"] == "soc"
    assert req.headers["Idempotency-Key"] == "key-1"
    sent = req.headers[TIMESTAMP_HEADER], req.content, req.headers[SIGNATURE_HEADER]
    assert verify("s3cret", *sent, now=1_700_000_000.0)
    assert not verify("other", *sent, now=1_700_000_000.0)
    with pytest.raises(ConfigError, match="unsigned"):  # only when asked for explicitly
        WebhookClient("https://hooks.example.org/x", transport=httpx.MockTransport(receiver), allow_unsigned=False)
    unsigned = WebhookClient("https://hooks.example.org/x", transport=httpx.MockTransport(receiver),
                             allow_unsigned=True)
    unsigned.post("e", {}, idempotency_key="k2")
    assert SIGNATURE_HEADER not in seen[-1].headers


def test_webhook_rejects_bad_url() -> None:
    with pytest.raises(ConnectorError, match="http"):
        WebhookClient("ftp://nowhere")
