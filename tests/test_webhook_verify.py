"""The webhook verifier checks the signature and refuses stale or future timestamps (replays)."""

from __future__ import annotations

import httpx
import pytest

from dcoflow.connectors.webhook import (
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookClient,
    sign,
    verify,
)

SECRET = "s3cret"
T0 = 1_765_000_000.0


def _signed_request(clock: float) -> tuple[str, bytes, str]:
    seen: list[httpx.Request] = []
    hook = WebhookClient("https://hooks.example.org/in", secret=SECRET, clock=lambda: clock,
                         transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(204)))
    hook.post("dco.incident", {"id": "i-1"}, idempotency_key="k-1")
    request = seen[0]
    return request.headers[TIMESTAMP_HEADER], request.content, request.headers[SIGNATURE_HEADER]


@pytest.mark.parametrize("age_s", [0, 59, -30, REPLAY_WINDOW_S])
def test_fresh_message_is_accepted(age_s: float) -> None:
    assert verify(SECRET, *_signed_request(T0), now=T0 + age_s)


@pytest.mark.parametrize("age_s", [REPLAY_WINDOW_S + 1, 3600, -(REPLAY_WINDOW_S + 1)])
def test_stale_or_future_message_is_refused(age_s: float) -> None:
    """A captured message replayed later carries a valid signature but an old timestamp."""
    assert not verify(SECRET, *_signed_request(T0), now=T0 + age_s)


def test_the_window_is_the_receivers_choice() -> None:
    message = _signed_request(T0)
    assert not verify(SECRET, *message, now=T0 + 20, tolerance_s=10)
    assert verify(SECRET, *message, now=T0 + 20, tolerance_s=30)


def test_a_re_dated_message_fails_the_signature() -> None:
    """Moving the timestamp into the window breaks the HMAC, which covers it."""
    _, body, signature = _signed_request(T0)
    assert not verify(SECRET, str(int(T0) + 3600), body, signature, now=T0 + 3600)


@pytest.mark.parametrize("timestamp", ["", "soon", "1.5e9"])
def test_a_malformed_timestamp_is_refused(timestamp: str) -> None:
    body = b"{}"
    assert not verify(SECRET, timestamp, body, sign(SECRET, timestamp, body), now=T0)


def test_wrong_secret_or_body_is_refused() -> None:
    timestamp, body, signature = _signed_request(T0)
    assert not verify("other", timestamp, body, signature, now=T0)
    assert not verify(SECRET, timestamp, body + b" ", signature, now=T0)
