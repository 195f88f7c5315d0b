"""Elasticsearch (and OpenSearch) search client for hunts.

Lucene queries run through ``_search`` with a ``query_string`` query and an ``@timestamp`` range
filter, paged with a point in time + ``search_after`` (Elasticsearch reference, "Paginate search
results" and "Open point in time API": ``POST /<index>/_pit?keep_alive=1m`` → ``{"id": …}``, then
``POST /_search`` with ``pit`` and ``sort [{"@timestamp": "asc"}, {"_shard_doc": "asc"}]``, each
response carries ``pit_id`` (use the newest) and per-hit ``sort`` values; ``DELETE /_pit``).
EQL queries run through ``POST /<index>/_eql/search``; matching events are in ``hits.events``
(EQL search API), with a ``filter`` on the time range.

Counting (``count_and_sample``) asks the server: a Lucene query is one ``_search`` with
``track_total_hits: true`` (``hits.total = {"value": n, "relation": "eq"}``) and ``size`` = the sample,
so a rule with ten million hits costs one request. EQL has no ``search_after`` and returns at most
``size`` events: when a page comes back full, the time window is halved and each half asked again
(oldest first), within ``eql_max_requests`` per query; a window still full at the end of the budget
makes the count a lower bound (``exact=False``), which the hunt reports as such.

OpenSearch (``flavor="opensearch"``) differs: a PIT is opened with
``POST /<index>/_search/point_in_time?keep_alive=1m`` and answered with ``{"pit_id": …}``, closed
with ``DELETE /_search/point_in_time`` and body ``{"pit_id": [...]}``; ``_shard_doc`` only exists
from OpenSearch 3.3, so the tie-breaker is ``_id``; EQL is not available (the SQL/PPL plugins are
OpenSearch's analogue), so ``language="eql"`` is refused.
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

Language = Literal["lucene", "eql"]
Flavor = Literal["elasticsearch", "opensearch"]
KEEP_ALIVE = "1m"


class ElasticClient(HttpConnector):
    system = "elasticsearch"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        flavor: Flavor = "elasticsearch",
        timestamp_field: str = "@timestamp",
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        eql_page: int = 1000,
        eql_max_requests: int = 64,
    ) -> None:
        headers = {"Accept": "application/json"}
        self.eql_page = eql_page
        self.eql_max_requests = eql_max_requests
        if api_key:
            headers["Authorization"] = f"ApiKey {api_key}"
        auth = (username, password or "") if username and not api_key else None
        self.flavor = flavor
        self.timestamp_field = timestamp_field
        if flavor == "opensearch":
            self.system = "opensearch"
        super().__init__(base_url, headers=headers, auth=auth, transport=transport, timeout=timeout,
                         retries=retries, backoff_s=backoff_s, verify=verify, sleep=sleep)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, api_key: str | None = None, **kwargs: Any
    ) -> ElasticClient:
        """A client from ``DCO_ELASTIC_*`` settings; ``api_key`` (e.g. from a Prefect Secret) wins."""
        s = settings
        if not s.elastic_url:
            raise ConnectorError("no Elasticsearch URL configured", system=cls.system, hint="set DCO_ELASTIC_URL")
        key = api_key or (s.elastic_api_key.get_secret_value() if s.elastic_api_key else None)
        password = s.elastic_password.get_secret_value() if s.elastic_password else None
        kwargs.setdefault("eql_max_requests", s.elastic_eql_max_requests)
        return cls(s.elastic_url, api_key=key, username=s.elastic_user, password=password, **kwargs)

    # -- count --------------------------------------------------------------------------------
    def count_and_sample(
        self, index: str, query: str, *, language: Language = "lucene", start: datetime, end: datetime,
        sample: int = 20,
    ) -> CountedSample:
        """The number of events matching ``query`` in ``[start, end)`` and the oldest ``sample`` of them."""
        if language == "lucene":
            body = {"size": sample, "track_total_hits": True, "query": self._query(query, start, end),
                    "sort": [{self.timestamp_field: "asc"}]}
            page = self.post_json(f"/{index}/_search", json=body, idempotent=True)  # a count sent as POST
            hits = page.get("hits", {}).get("hits", [])
            count, exact = self._total(page, index, len(hits))
            return CountedSample(count, [_event(h) for h in hits[:sample]], exact, requests=1)
        if language == "eql":
            if self.flavor == "opensearch":
                raise ValidationError("OpenSearch has no EQL endpoint", field="language", suggestions=["lucene"])
            return self._eql_count(index, query, start, end, sample)
        raise ValidationError(f"unknown query language {language!r}", field="language", suggestions=["lucene", "eql"])

    def _total(self, page: dict[str, Any], index: str, returned: int) -> tuple[int, bool]:
        total = page.get("hits", {}).get("total")
        if total is None:
            return returned, False
        value = total.get("value") if isinstance(total, dict) else total  # ES 6 answered a bare number
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConnectorError(f"hits.total is not a count: {total!r:.100}", system=self.system, object=index)
        relation = total.get("relation", "eq") if isinstance(total, dict) else "eq"
        return value, relation == "eq"

    def _eql_count(self, index: str, query: str, start: datetime, end: datetime, sample: int) -> CountedSample:
        result = CountedSample(0)
        windows = [(start, end)]  # a stack: the older half is asked first, so samples stay oldest-first
        while windows:
            lo, hi = windows.pop()
            body = {"query": query, "filter": self._range(lo, hi), "size": self.eql_page,
                    "timestamp_field": self.timestamp_field}
            page = self.post_json(f"/{index}/_eql/search", json=body, idempotent=True)
            result.requests += 1
            hits = page.get("hits", {})
            events = [_event(h) for h in hits.get("events", [])]
            events += [_event(h) for seq in hits.get("sequences", []) for h in seq.get("events", [])]
            total, exact = self._total(page, index, len(events))
            full = len(events) >= self.eql_page and not (exact and total > len(events))
            mid = lo + (hi - lo) / 2
            if full and result.requests + len(windows) + 2 <= self.eql_max_requests and mid > lo:
                windows += [(mid, hi), (lo, mid)]
                continue
            part = CountedSample(max(total, len(events)), events, exact=exact and not full)
            result.merge(part, sample)
        return result

    # -- search ---------------------------------------------------------------------------------
    def search(
        self,
        index: str,
        query: str,
        *,
        language: Language = "lucene",
        start: datetime,
        end: datetime,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Every event matching ``query`` in ``[start, end)``, oldest first, as ``_source`` + ``_id``/``_index``."""
        if language == "lucene":
            return self._lucene(index, query, start, end, page_size)
        if language == "eql":
            if self.flavor == "opensearch":
                raise ValidationError("OpenSearch has no EQL endpoint", field="language", suggestions=["lucene"])
            return self._eql(index, query, start, end, page_size)
        raise ValidationError(f"unknown query language {language!r}", field="language", suggestions=["lucene", "eql"])

    def _query(self, query: str, start: datetime, end: datetime) -> dict[str, Any]:
        return {"bool": {"must": [{"query_string": {"query": query}}], "filter": [self._range(start, end)]}}

    def _range(self, start: datetime, end: datetime) -> dict[str, Any]:
        return {"range": {self.timestamp_field: {"gte": iso(start), "lt": iso(end),
                                                 "format": "strict_date_optional_time"}}}

    def _open_pit(self, index: str) -> str:
        # Opening a point in time only reads; a PIT orphaned by a re-sent request expires after keep_alive.
        if self.flavor == "opensearch":
            body = self.post_json(f"/{index}/_search/point_in_time", params={"keep_alive": KEEP_ALIVE},
                                  idempotent=True)
            return str(body["pit_id"])
        body = self.post_json(f"/{index}/_pit", params={"keep_alive": KEEP_ALIVE}, idempotent=True)
        return str(body["id"])

    def _close_pit(self, pit: str) -> None:
        try:
            if self.flavor == "opensearch":
                self.request("DELETE", "/_search/point_in_time", json={"pit_id": [pit]})
            else:
                self.request("DELETE", "/_pit", json={"id": pit})
        except ConnectorError:
            pass  # the PIT expires after keep_alive anyway; a failed close must not hide the results

    def _lucene(self, index: str, query: str, start: datetime, end: datetime, size: int) -> Iterator[dict[str, Any]]:
        pit = self._open_pit(index)
        tiebreak = {"_id": "asc"} if self.flavor == "opensearch" else {"_shard_doc": "asc"}
        after: list[Any] | None = None
        try:
            while True:
                body: dict[str, Any] = {
                    "size": size,
                    "query": self._query(query, start, end),
                    "pit": {"id": pit, "keep_alive": KEEP_ALIVE},
                    "sort": [{self.timestamp_field: "asc"}, tiebreak],
                    "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                page = self.post_json("/_search", json=body, idempotent=True)  # a search sent as POST
                pit = str(page.get("pit_id") or pit)
                hits = page.get("hits", {}).get("hits", [])
                for hit in hits:
                    yield _event(hit)
                if len(hits) < size:
                    return
                after = hits[-1].get("sort")
                if after is None:
                    raise ConnectorError("search_after paging needs sort values in hits", system=self.system,
                                         object=index)
        finally:
            self._close_pit(pit)

    def _eql(self, index: str, query: str, start: datetime, end: datetime, size: int) -> Iterator[dict[str, Any]]:
        # EQL has no search_after: ask for up to ``size`` events; a hunt samples anyway, and the
        # count says when the cap was reached.
        body = {"query": query, "filter": self._range(start, end), "size": size,
                "timestamp_field": self.timestamp_field}
        page = self.post_json(f"/{index}/_eql/search", json=body, idempotent=True)  # a search sent as POST
        hits = page.get("hits", {})
        for hit in hits.get("events", []):
            yield _event(hit)
        for seq in hits.get("sequences", []):  # sequence queries return their events per sequence
            for hit in seq.get("events", []):
                yield _event(hit)


def _event(hit: dict[str, Any]) -> dict[str, Any]:
    doc = dict(hit.get("_source") or {})
    doc["_id"] = hit.get("_id")
    doc["_index"] = hit.get("_index")
    return doc
