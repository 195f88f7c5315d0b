"""The HTTP behaviour every dcoflow connector shares (SIEMs, Caldera, TheHive, webhooks).

Subclass :class:`HttpConnector`, set ``system`` (the name errors carry) and call
:meth:`HttpConnector.request` (or :meth:`get_json` / :meth:`post_json`). It gives:

- one ``httpx.Client`` per connector with a base URL, default headers and a timeout (timeout,
  retries and backoff are passed in — the connector registry passes the ``DCO_HTTP_*`` settings — and
  fall back to those settings for a client built elsewhere);
  ``transport=`` swaps the network for ``httpx.MockTransport`` in tests; a request path that is
  an absolute ``http(s)://`` URL is sent as is (downloaders that hop between hosts);
- retries for 5xx, 429, timeouts and transport errors, with exponential backoff and jitter
  (``backoff_s * 2**attempt`` capped by ``max_backoff_s``, then a random 50–100 % of it so clients
  that failed together do not retry together), honouring a numeric ``Retry-After``;
- only requests that are safe to send twice are re-sent: GET, HEAD, PUT, DELETE and OPTIONS, or a
  call marked ``idempotent=True`` (a search sent as POST, a POST carrying an idempotency key the
  receiver honours). Any other request — a POST that creates a Caldera operation, a TheHive alert,
  TAXII objects — is re-sent only when the server certainly did not act on it (the connection was never
  made, or HTTP 429); otherwise its failure is raised at once, still ``retryable``, for a caller that
  checks before it writes again (find-or-create, diff-then-send) to retry at its own level;
- :class:`~core.errors.AuthError` at once on 401/403 (retrying rejected credentials only locks
  accounts), :class:`~core.errors.ConnectorError` with ``retryable=False`` on other 4xx;
- errors that name the system, the method + URL and the status, with the start of the body.

``sleep`` is injectable so tests of the retry path do not wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import httpx

from dcoflow.core.errors import AuthError, ConnectorError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# RFC 9110 §9.2.2: sending these twice has the effect of sending them once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_BODY_PREVIEW = 300


class HttpConnector:
    """Base class for clients of one remote system over HTTP(S)."""

    system: str = "http"

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        max_backoff_s: float = 30.0,
        verify: bool | str = True,
        follow_redirects: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url:
            raise ConnectorError("no base URL configured", system=self.system, hint="set the system's URL setting")
        # Unset timeout/retries/backoff come from DCO_HTTP_TIMEOUT_S / DCO_HTTP_RETRIES / DCO_HTTP_BACKOFF_S, as
        # the registry passes them, so one setting governs every connector however it was built.
        if timeout is None or retries is None or backoff_s is None:
            from dcoflow.connectors.registry import configured

            settings = configured()
            timeout = settings.http_timeout_s if timeout is None else timeout
            retries = settings.http_retries if retries is None else retries
            backoff_s = settings.http_backoff_s if backoff_s is None else backoff_s
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=dict(headers or {}),
            auth=auth,
            transport=transport,
            timeout=timeout,
            verify=verify,
            follow_redirects=follow_redirects,
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any) -> httpx.Response:
        """Send one request with the shared retry and error policy; returns a 2xx/3xx response.

        ``idempotent`` overrides the method's own rule (see the module docstring): ``True`` for a POST that
        only reads or that the receiver de-duplicates, ``False`` for a PUT/DELETE that is not safe to repeat.
        """
        if path.startswith(("http://", "https://")):
            url = path
        else:
            url = f"{self.base_url}{path if path.startswith('/') else '/' + path}"
        where = f"{method} {url}"
        resend = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                failure: ConnectorError = ConnectorError(
                    f"timed out: {where} ({type(exc).__name__})", system=self.system, object=url, retryable=True
                )
                unsent = isinstance(exc, httpx.ConnectTimeout)
                retry_after = None
            except httpx.TransportError as exc:
                failure = ConnectorError(
                    f"cannot reach {where}: {exc}", system=self.system, object=url, retryable=True
                )
                unsent = isinstance(exc, httpx.ConnectError)
                retry_after = None
            else:
                status = response.status_code
                if status < 400:
                    return response
                body = response.text[:_BODY_PREVIEW]
                if status in (401, 403):
                    raise AuthError(
                        f"{where} was refused with HTTP {status}: credentials rejected or lacking permission",
                        system=self.system, object=url, status=status,
                        hint="check the API key/token or user and password for " + self.system,
                        details={"body": body},
                    )
                retryable = status in RETRY_STATUSES
                failure = ConnectorError(
                    f"{where} failed with HTTP {status}: {body}",
                    system=self.system, object=url, status=status, retryable=retryable,
                )
                unsent = status == 429  # RFC 6585: rate-limited requests were not processed
                retry_after = _retry_after(response)
            if not failure.retryable or attempt >= self.retries or not (resend or unsent):
                if failure.retryable:
                    failure.details["attempts"] = attempt + 1
                    if not (resend or unsent):
                        failure.details["not_resent"] = f"{method} is not idempotent and may have been applied"
                raise failure
            self._sleep(min(retry_after, self.max_backoff_s) if retry_after is not None else self.backoff(attempt))
            attempt += 1

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt + 1``: exponential, capped, with 50–100 % jitter."""
        delay: float = min(self.backoff_s * 2.0**attempt, self.max_backoff_s)
        return delay * (0.5 + random.random() / 2)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self._decode(self.request("GET", path, **kwargs))

    def post_json(self, path: str, *, idempotent: bool | None = None, **kwargs: Any) -> Any:
        return self._decode(self.request("POST", path, idempotent=idempotent, **kwargs))

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectorError(
                f"{response.request.method} {response.request.url} returned non-JSON: {response.text[:_BODY_PREVIEW]}",
                system=self.system, object=str(response.request.url), status=response.status_code,
            ) from exc


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
