"""Unsigned notices need an explicit setting; the demo inbox refuses stale messages and unsafe names (issue 14)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dcoflow.connectors.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookClient, sign
from dcoflow.core.errors import ConfigError
from dcoflow.core.settings import get_settings
from dcoflow.flows.demo.incident_inbox import notification_inbox


def _ok(_r: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={})


def test_unsigned_notices_are_refused_unless_allowed(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for secret in (None, ""):
        with pytest.raises(ConfigError, match="DCO_WEBHOOK_ALLOW_UNSIGNED"):
            WebhookClient("https://soc.example.org/hook", secret=secret, transport=httpx.MockTransport(_ok))
    monkeypatch.setenv("DCO_WEBHOOK_ALLOW_UNSIGNED", "true")
    get_settings.cache_clear()
    WebhookClient("https://soc.example.org/hook", transport=httpx.MockTransport(_ok)).close()


@pytest.mark.parametrize("key", ["../../X", "..", "/etc/passwd", "a/../../b", "..\\..\\w", "x" * 5000, "\x00", ""])
def test_inbox_keeps_every_file_inside_itself(tmp_path: Path, key: str) -> None:
    inbox = tmp_path / "inbox"
    with notification_inbox(inbox, "s3cret") as url:
        for event in ("dco.test", "../escape", ".."):
            body = b'{"event": "%s", "payload": {}}' % event.encode()
            stamp = str(int(time.time()))
            headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign("s3cret", stamp, body),
                       "Content-Type": "application/json"}
            if key:
                headers["Idempotency-Key"] = key.replace("\x00", "%00") if key == "\x00" else key
            r = httpx.post(url, content=body, headers=headers)
            assert r.status_code == 200, r.text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.resolve().is_relative_to(inbox.resolve()) for p in written)
    assert all(len(p.name) < 200 for p in written)


@pytest.mark.parametrize("age_s", [3600, 6 * 365 * 86400, -3600])
def test_inbox_refuses_stale_or_future_messages(tmp_path: Path, age_s: int) -> None:
    inbox = tmp_path / "inbox"
    with notification_inbox(inbox, "s3cret") as url:
        body = b'{"event": "dco.test", "payload": {}}'
        stamp = str(int(time.time()) - age_s)
        r = httpx.post(url, content=body, headers={TIMESTAMP_HEADER: stamp,
                                                   SIGNATURE_HEADER: sign("s3cret", stamp, body)})
        assert r.status_code == 401
    assert not [p for p in inbox.rglob("*") if p.is_file()]
