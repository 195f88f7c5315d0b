"""SIEM connectors against httpx.MockTransport fed with the vendors' documented response shapes.

Elasticsearch: "Open point in time API" (POST /<index>/_pit → {"id": ...}), "Search API" with pit +
search_after (response: pit_id, hits.hits[*]._source/_id/sort), "Close point in time API"
(DELETE /_pit {"id": ...}), "EQL search API" (POST /<index>/_eql/search → hits.events[*]._source).
Splunk: REST API reference, search/v2/jobs (POST → {"sid"}), search/v2/jobs/{sid} (entry[0].content.
dispatchState), search/v2/jobs/{sid}/results (results[], paged with count/offset).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dcoflow.connectors.http import HttpConnector
from dcoflow.connectors.siem.elastic import ElasticClient
from dcoflow.connectors.siem.splunk import SplunkClient
from dcoflow.core.errors import AuthError, ConnectorError

START = datetime(2024, 5, 1, tzinfo=UTC)
END = datetime(2024, 5, 2, tzinfo=UTC)


def _hit(i: int) -> dict[str, Any]:
    return {"_index": "logs-1", "_id": f"doc{i}", "_score": None,
            "_source": {"@timestamp": f"2024-05-01T10:00:{i:02d}Z", "Image": "C:\\x.exe", "n": i},
            "sort": [1714557600000 + i, i]}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.delays: list[float] = []

    def sleep(self, s: float) -> None:
        self.delays.append(s)


def test_elastic_lucene_pages_with_pit_and_search_after() -> None:
    rec = Recorder()
    docs = [_hit(i) for i in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        rec.requests.append(request)
        if request.method == "POST" and request.url.path == "/logs-*/_pit":
            assert request.url.params["keep_alive"] == "1m"
            return httpx.Response(200, json={"id": "pit-1"})
        if request.method == "POST" and request.url.path == "/_search":
            body = json.loads(request.content)
            assert body["pit"]["id"] in ("pit-1", "pit-2")
            assert body["sort"] == [{"@timestamp": "asc"}, {"_shard_doc": "asc"}]
            assert body["query"]["bool"]["must"][0]["query_string"]["query"] == "Image:*x.exe"
            rng = body["query"]["bool"]["filter"][0]["range"]["@timestamp"]
            assert rng["gte"].startswith("2024-05-01T00:00:00") and rng["lt"].startswith("2024-05-02")
            after = body.get("search_after")
            start = 0 if after is None else after[1] + 1
            page = docs[start:start + body["size"]]
            return httpx.Response(200, json={"pit_id": "pit-2", "took": 1, "timed_out": False,
                                             "hits": {"hits": page}})
        if request.method == "DELETE" and request.url.path == "/_pit":
            assert json.loads(request.content) == {"id": "pit-2"}  # the newest pit id is closed
            return httpx.Response(200, json={"succeeded": True, "num_freed": 1})
        return httpx.Response(404, json={"error": "unexpected"})

    client = ElasticClient("http://es:9200", api_key="k", transport=httpx.MockTransport(handler), sleep=rec.sleep)
    events = list(client.search("logs-*", "Image:*x.exe", language="lucene", start=START, end=END, page_size=2))
    assert [e["n"] for e in events] == [0, 1, 2, 3, 4]
    assert events[0]["_id"] == "doc0"
    searches = [r for r in rec.requests if r.url.path == "/_search"]
    assert len(searches) == 3  # 2 + 2 + 1
    assert rec.requests[0].headers["Authorization"] == "ApiKey k"
    assert rec.requests[-1].method == "DELETE"


def test_elastic_eql_reads_hits_events() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/logs-*/_eql/search"
        body = json.loads(request.content)
        assert body["query"].startswith("any where")
        assert "range" in body["filter"]
        return httpx.Response(200, json={"is_partial": False, "is_running": False, "took": 3, "timed_out": False,
                                         "hits": {"total": {"value": 2, "relation": "eq"},
                                                  "events": [_hit(1), _hit(2)]}})

    client = ElasticClient("http://es:9200", username="u", password="p", transport=httpx.MockTransport(handler))
    events = list(client.search("logs-*", 'any where Image like~ "*x.exe"', language="eql", start=START, end=END))
    assert [e["n"] for e in events] == [1, 2]


def test_opensearch_flavor_uses_its_pit_endpoints() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/_search/point_in_time") and request.method == "POST":
            return httpx.Response(200, json={"pit_id": "os-pit", "_shards": {}, "creation_time": 1})
        if request.url.path == "/_search":
            assert json.loads(request.content)["sort"][1] == {"_id": "asc"}
            return httpx.Response(200, json={"pit_id": "os-pit", "hits": {"hits": [_hit(0)]}})
        return httpx.Response(200, json={"pits": [{"pit_id": "os-pit", "successful": True}]})

    client = ElasticClient("http://os:9200", flavor="opensearch", transport=httpx.MockTransport(handler))
    assert len(list(client.search("logs", "*", start=START, end=END))) == 1
    assert paths == ["POST /logs/_search/point_in_time", "POST /_search", "DELETE /_search/point_in_time"]


def test_500_then_success_is_retried_with_backoff() -> None:
    rec = Recorder()
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(503, text="unavailable")
        return httpx.Response(200, json={"ok": True})

    conn = HttpConnector("http://svc", transport=httpx.MockTransport(handler), retries=3, backoff_s=0.5,
                         sleep=rec.sleep)
    assert conn.get_json("/x") == {"ok": True}
    assert len(rec.delays) == 2  # exponential, each with 50–100 % jitter
    assert 0.25 <= rec.delays[0] <= 0.5 and 0.5 <= rec.delays[1] <= 1.0


def test_429_honours_retry_after() -> None:
    rec = Recorder()
    responses = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={})])
    conn = HttpConnector("http://svc", transport=httpx.MockTransport(lambda r: next(responses)), sleep=rec.sleep)
    conn.get_json("/x")
    assert rec.delays == [7.0]


def test_timeouts_exhaust_retries_with_a_retryable_error() -> None:
    rec = Recorder()

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(handler), retries=2, sleep=rec.sleep)
    with pytest.raises(ConnectorError) as info:
        list(client.search("logs", "*", start=START, end=END))
    err = info.value
    assert err.retryable and err.system == "elasticsearch" and "timed out" in err.reason
    assert "http://es:9200/logs/_pit" in err.message
    assert len(rec.delays) == 2


def test_401_fails_at_once_with_a_clear_message() -> None:
    rec = Recorder()
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(401, json={"error": {"type": "security_exception"}})

    client = SplunkClient("https://splunk:8089", "bad-token", transport=httpx.MockTransport(handler),
                          sleep=rec.sleep)
    with pytest.raises(AuthError) as info:
        list(client.search("main", "Image=*", start=START, end=END))
    assert calls["n"] == 1 and rec.delays == []
    assert info.value.status == 401 and info.value.system == "splunk"
    assert "credentials rejected" in info.value.message and "/services/search/v2/jobs" in info.value.message


def test_other_4xx_is_final() -> None:
    conn = HttpConnector("http://svc", transport=httpx.MockTransport(lambda r: httpx.Response(400, text="bad q")))
    with pytest.raises(ConnectorError) as info:
        conn.get_json("/x")
    assert not info.value.retryable and info.value.status == 400 and "bad q" in info.value.reason


def test_splunk_job_polls_until_done_and_pages_results() -> None:
    rec = Recorder()
    polls = {"n": 0}
    rows = [{"_time": f"2024-05-01T10:00:0{i}.000+00:00", "host": "wks01", "Image": "C:\\x.exe", "i": str(i)}
            for i in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/services/search/v2/jobs":
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            assert form["output_mode"] == "json" and form["search"].startswith("search+index%3Dmain+")
            assert form["earliest_time"].startswith("2024-05-01T00")
            return httpx.Response(201, json={"sid": "1714557600.42"})
        if path == "/services/search/v2/jobs/1714557600.42":
            polls["n"] += 1
            state = "RUNNING" if polls["n"] < 3 else "DONE"
            return httpx.Response(200, json={"entry": [{"name": "1714557600.42", "content": {
                "sid": "1714557600.42", "dispatchState": state, "isDone": state == "DONE", "isFailed": False,
                "resultCount": 5, "messages": []}}]})
        if path == "/services/search/v2/jobs/1714557600.42/results":
            off, cnt = int(request.url.params["offset"]), int(request.url.params["count"])
            return httpx.Response(200, json={"preview": False, "init_offset": off, "messages": [],
                                             "fields": [{"name": "Image"}], "results": rows[off:off + cnt]})
        return httpx.Response(404)

    client = SplunkClient("https://splunk:8089", "tok", transport=httpx.MockTransport(handler), sleep=rec.sleep,
                          poll_s=0.25)
    out = list(client.search("main", 'Image="*x.exe"', start=START, end=END, page_size=2))
    assert [r["i"] for r in out] == ["0", "1", "2", "3", "4"]
    assert polls["n"] == 3 and rec.delays == [0.25, 0.25]


def test_splunk_failed_job_reports_splunk_messages() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"sid": "s1"})
        return httpx.Response(200, json={"entry": [{"content": {"dispatchState": "FAILED", "isFailed": True,
                                                                 "messages": [{"type": "FATAL",
                                                                               "text": "Unknown search command"}]}}]})

    client = SplunkClient("https://splunk:8089", "tok", transport=httpx.MockTransport(handler))
    with pytest.raises(ConnectorError, match="Unknown search command"):
        list(client.search("main", "| bogus", start=START, end=END))
