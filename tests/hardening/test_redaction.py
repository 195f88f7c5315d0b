"""No URL credential, token or auth header in an error message or a log record (issue 14)."""

from __future__ import annotations

import logging

import httpx
import pytest

from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.errors import ConnectorError, DcoError, install_log_redaction, redact

SECRETS = ["hunter2", "tok-123456", "k3y", "pa55", "eyJhbGciOi.secret", "splunk-hec-1"]
TEXTS = [
    "cannot reach POST https://bob:hunter2@hooks.example.org/in?token=tok-123456&x=1",
    "GET http://h/api?api_key=k3y failed",
    "postgresql+psycopg://dco:pa55@db.example.org:5432/dco",
    "headers: {'Authorization': 'Bearer eyJhbGciOi.secret'}",
    "Authorization: Splunk splunk-hec-1",
    "taxii+https://user:pa55@taxii.example.org/api/collections/x/",
    "form password=pa55&user=alice",
]


@pytest.mark.parametrize("text", TEXTS)
def test_redact(text: str) -> None:
    out = redact(text)
    assert not any(s in out for s in SECRETS), out
    assert "***" in out


@pytest.mark.parametrize("text", ["plain http://example.org/a?b=c", "T1059.001 on host-1", "user@example.org"])
def test_redact_leaves_ordinary_text(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", TEXTS)
def test_errors_never_carry_secrets(text: str) -> None:
    exc = DcoError(text, object=text, hint=text)
    assert not any(s in exc.message or s in str(exc) or s in repr(exc.as_dict()) for s in SECRETS)


@pytest.mark.parametrize("status", [500, 404, 401])
def test_failing_webhook_error_has_no_credentials(status: int) -> None:
    client = WebhookClient("https://bob:hunter2@hooks.example.org/in?token=tok-123456", secret="s",
                           transport=httpx.MockTransport(lambda r: httpx.Response(status, text="nope")),
                           retries=0, backoff_s=0)
    with pytest.raises(ConnectorError) as info:
        client.post("dco.test", {}, "key-1")
    assert "hunter2" not in str(info.value) and "tok-123456" not in str(info.value)
    assert "hooks.example.org" in str(info.value)


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent
    log = logging.getLogger("prefect.task_runs")
    with caplog.at_level(logging.INFO, logger="prefect.task_runs"):
        log.info("posting to %s", TEXTS[0])
        try:
            raise RuntimeError(TEXTS[2])
        except RuntimeError:
            log.exception("failed")
    text = caplog.text
    assert "hunter2" not in text and "tok-123456" not in text and "pa55" not in text
    assert "hooks.example.org" in text and "RuntimeError" in text
