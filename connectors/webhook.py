"""Outgoing webhooks (deconfliction notices now, escalations later).

Each POST carries a JSON body ``{"event", "sent_at", "payload"}``, an ``Idempotency-Key`` header
(the receiver drops repeats, so our retries never notify twice) and, when a secret is set, an
``X-Dco-Signature: sha256=<hex>`` HMAC-SHA256 of ``<timestamp>.<body>`` with the timestamp in
``X-Dco-Timestamp`` (GitHub/Stripe-style signing: the receiver recomputes it to check the
sender, and :func:`verify` refuses a timestamp outside the replay window, so a captured message
cannot be replayed later). Retries and error mapping come from ``dcoflow.connectors.http``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from dcoflow.connectors.http import HttpConnector
from dcoflow.core.errors import ConfigError, ConnectorError

SIGNATURE_HEADER = "X-Dco-Signature"
TIMESTAMP_HEADER = "X-Dco-Timestamp"
# Stripe's default tolerance; longer than any retry backoff of one delivery (max_backoff_s x retries).
REPLAY_WINDOW_S = 300.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = REPLAY_WINDOW_S,
           now: float | None = None) -> bool:
    """True when ``signature`` signs ``timestamp.body`` with ``secret`` and the timestamp is within
    ``tolerance_s`` of ``now`` (either way: the clocks of sender and receiver drift).

    Inside the window a receiver still drops repeats by ``Idempotency-Key``; outside it the message is stale.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookClient(HttpConnector):
    system = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        allow_unsigned: bool | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConnectorError("webhook URL must be http(s)://host/…", system=self.system, object=url)
        if not secret:
            # The registry passes DCO_WEBHOOK_ALLOW_UNSIGNED; a client built elsewhere reads it here.
            if allow_unsigned is None:
                from dcoflow.connectors.registry import configured

                allow_unsigned = configured().webhook_allow_unsigned
            if not allow_unsigned:  # a receiver could not tell our notices from anyone's
                raise ConfigError("no signing secret: notices would go out unsigned", object="DCO_WEBHOOK_SECRET",
                                  hint="set DCO_WEBHOOK_SECRET, or DCO_WEBHOOK_ALLOW_UNSIGNED=true to send unsigned")
        super().__init__(f"{parts.scheme}://{parts.netloc}", transport=transport, timeout=timeout,
                         retries=retries, backoff_s=backoff_s, sleep=sleep)
        self.path = parts.path or "/"
        if parts.query:
            self.path += "?" + parts.query
        self.secret = secret
        self._clock = clock

    def post(self, event: str, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Deliver one event; returns the receiver's JSON answer (or its status when it sent none)."""
        timestamp = str(int(self._clock()))
        body = orjson.dumps({"event": event, "sent_at": timestamp, "payload": payload},
                            option=orjson.OPT_SORT_KEYS, default=str)
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key,
                   TIMESTAMP_HEADER: timestamp, "X-Dco-Event": event}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        # Re-sent on failure: the receiver drops a repeated Idempotency-Key.
        response = self.request("POST", self.path, content=body, headers=headers, idempotent=True)
        if not response.content:
            return {"status": response.status_code}
        try:
            answer = response.json()
        except ValueError:
            return {"status": response.status_code, "text": response.text[:300]}
        return answer if isinstance(answer, dict) else {"status": response.status_code, "answer": answer}
