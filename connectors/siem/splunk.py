"""Splunk search client for hunts (REST API v2 search jobs).

Splunk REST API reference, "Search endpoint descriptions":
``POST /services/search/v2/jobs`` (form: ``search``, ``earliest_time``, ``latest_time``,
``output_mode=json``) → ``{"sid": "…"}``; ``GET /services/search/v2/jobs/{sid}?output_mode=json`` →
``{"entry": [{"content": {"dispatchState": "QUEUED|PARSING|RUNNING|FINALIZING|DONE|FAILED", "isDone":
…, "resultCount": …, "messages": […]}}]}``; ``GET /services/search/v2/jobs/{sid}/results?output_mode=json
&count=&offset=`` → ``{"results": [{field: value}], …}``. Authentication: ``Authorization: Bearer <token>``
(Splunk authentication tokens).

Counting (``count_and_sample``) reads the finished job's own ``resultCount`` (``eventCount`` when larger:
a non-transforming search keeps at most ``max_count`` results but counts every event) and fetches one
page of ``sample`` results: a rule with ten million hits costs the job, its polls and one page.
A search quota that is full answers the job creation with HTTP 503 (or 429); the connector retries
those, and the hunt's throttle waits them out rather than failing the hunt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx

from dcoflow.connectors.http import HttpConnector
from dcoflow.connectors.siem import CountedSample, iso
from dcoflow.core.errors import ConnectorError, ValidationError

if TYPE_CHECKING:
    from dcoflow.core.settings import Settings

JOBS = "/services/search/v2/jobs"
FINAL_STATES = frozenset({"DONE", "FAILED"})


class SplunkClient(HttpConnector):
    system = "splunk"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        poll_s: float = 1.0,
        max_wait_s: float = 600.0,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ConnectorError("no Splunk token configured", system=self.system, hint="set DCO_SPLUNK_TOKEN")
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        super().__init__(base_url, headers={"Authorization": f"Bearer {token}"}, transport=transport,
                         timeout=timeout, retries=retries, backoff_s=backoff_s, verify=verify, sleep=sleep)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, token: str | None = None, **kwargs: Any
    ) -> SplunkClient:
        """A client from ``DCO_SPLUNK_*`` settings; ``token`` (e.g. from a Prefect Secret) wins."""
        s = settings
        if not s.splunk_url:
            raise ConnectorError("no Splunk URL configured", system=cls.system, hint="set DCO_SPLUNK_URL")
        tok = token or (s.splunk_token.get_secret_value() if s.splunk_token else "")
        return cls(s.splunk_url, tok, **kwargs)

    def count_and_sample(
        self, index: str, query: str, *, language: Literal["spl"] = "spl", start: datetime, end: datetime,
        sample: int = 20,
    ) -> CountedSample:
        """The job's count of events matching ``query`` in ``[start, end)`` and its first ``sample`` results."""
        sid = self.create_job(self._spl(index, query, language), start, end)
        content = self.wait(sid)
        count = max(_count(content.get("resultCount"), sid), _count(content.get("eventCount"), sid))
        events: list[dict[str, Any]] = []
        if count and sample > 0:
            body = self.get_json(f"{JOBS}/{sid}/results", params={"output_mode": "json", "count": sample, "offset": 0})
            events = list(body.get("results", []))[:sample]
        return CountedSample(count, events, exact=True)

    def _spl(self, index: str, query: str, language: str) -> str:
        if language != "spl":
            raise ValidationError(f"Splunk runs SPL, not {language!r}", field="language", suggestions=["spl"])
        return query if query.lstrip().startswith(("search ", "|")) else f"search index={index} {query}"

    def search(
        self,
        index: str,
        query: str,
        *,
        language: Literal["spl"] = "spl",
        start: datetime,
        end: datetime,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Every result of ``search index=<index> <query>`` in ``[start, end)``."""
        sid = self.create_job(self._spl(index, query, language), start, end)
        self.wait(sid)
        return self.results(sid, page_size)

    def create_job(self, spl: str, start: datetime, end: datetime) -> str:
        # A search job only reads; one orphaned by a re-sent request expires with its TTL.
        body = self.post_json(JOBS, data={"search": spl, "earliest_time": iso(start), "latest_time": iso(end),
                                          "output_mode": "json"}, idempotent=True)
        sid = body.get("sid") if isinstance(body, dict) else None
        if not sid:
            raise ConnectorError(f"search job created without a sid: {body!r:.200}", system=self.system, object=JOBS)
        return str(sid)

    def wait(self, sid: str) -> dict[str, Any]:
        """Poll the job until DONE; FAILED or a timeout raise with Splunk's own messages."""
        waited = 0.0
        while True:
            body = self.get_json(f"{JOBS}/{sid}", params={"output_mode": "json"})
            content: dict[str, Any] = (body.get("entry") or [{}])[0].get("content", {})
            state = str(content.get("dispatchState", ""))
            if state == "DONE":
                return content
            if state == "FAILED" or content.get("isFailed"):
                messages = "; ".join(str(m.get("text", m)) for m in content.get("messages", []) if m) or "no message"
                raise ConnectorError(f"search job {sid} failed: {messages}", system=self.system, object=sid)
            if waited >= self.max_wait_s:
                raise ConnectorError(f"search job {sid} not done after {self.max_wait_s:.0f} s (state {state})",
                                     system=self.system, object=sid, retryable=True)
            self._sleep(self.poll_s)
            waited += self.poll_s

    def results(self, sid: str, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            body = self.get_json(f"{JOBS}/{sid}/results",
                                 params={"output_mode": "json", "count": page_size, "offset": offset})
            rows = body.get("results", [])
            yield from rows
            if len(rows) < page_size:
                return
            offset += len(rows)


def _count(value: Any, sid: str) -> int:
    """A job count as Splunk sends it (a number, sometimes as a string); anything else is an error."""
    if value is None:
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConnectorError(f"search job {sid} reported a count that is not a number: {value!r:.60}",
                             system=SplunkClient.system, object=sid) from None
    if number < 0:
        raise ConnectorError(f"search job {sid} reported a negative count {number}", system=SplunkClient.system,
                             object=sid)
    return number
