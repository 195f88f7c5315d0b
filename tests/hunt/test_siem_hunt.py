"""Hunting through a SIEM client: real Sigma rules converted by pySigma, run against a mocked
Elasticsearch/Splunk (response shapes as documented; see test_siem_connectors)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from dcoflow.connectors.siem.elastic import ElasticClient
from dcoflow.connectors.siem.splunk import SplunkClient
from dcoflow.core.errors import AuthError
from dcoflow.models.hunting import RuleInfo
from dcoflow.tasks.conduct.siem_hunt import convert_rule, run_siem_hunt

from .helpers import sysmon_event

START, END = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)


def test_convert_parses_fresh_each_time(rules: dict[str, RuleInfo]) -> None:
    first = convert_rule(rules["procdump"], "elastic-lucene")
    assert convert_rule(rules["procdump"], "elastic-lucene") == first  # no duplicated conditions
    assert "procdump64.exe" in first[0] and "EventID:1" in first[0]  # sysmon pipeline applied
    assert convert_rule(rules["procdump"], "elastic-eql")[0].startswith("any where")
    assert 'Image IN ("*\\\\procdump.exe"' in convert_rule(rules["procdump"], "splunk")[0]


def test_elastic_hunt_counts_samples_and_skips(rules: dict[str, RuleInfo]) -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/logs/_search"  # one counted search per rule, no PIT paging
        body = json.loads(request.content)
        assert body["track_total_hits"] is True and body["size"] == 2
        q = body["query"]["bool"]["must"][0]["query_string"]["query"]
        queries.append(q)
        if "netsvcs" in q:
            return httpx.Response(400, json={"error": {"type": "query_shard_exception", "reason": "bad field"}})
        n = 3 if "procdump" in q else 0
        hits = [{"_index": "logs", "_id": f"d{i}", "_source": sysmon_event(i)} for i in range(min(n, body["size"]))]
        return httpx.Response(200, json={"took": 1, "timed_out": False,
                                         "hits": {"total": {"value": n, "relation": "eq"}, "hits": hits}})

    broken = replace(rules["safeboot"], rule_id="broken", yaml="title: x\ndetection: {}\n")
    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(handler))
    out = run_siem_hunt([rules["procdump"], rules["safeboot"], rules["ps_persist"], broken], client,
                        backend="elastic-lucene", index="logs", start=START, end=END, sample=2)
    assert [r.rule_id for r in out.rules_run] == [rules["procdump"].rule_id, rules["safeboot"].rule_id]
    assert len(out.matches) == 1 and out.matches[0].count == 3 and len(out.matches[0].events) == 2
    assert out.matches[0].events[0]["_id"] == "d0"
    reasons = {s.rule_id: s.reason for s in out.skipped}
    assert "refused the query" in reasons[rules["ps_persist"].rule_id]
    assert reasons["broken"].startswith("cannot convert to elastic-lucene")
    assert out.source == "elasticsearch:http://es:9200/logs" and out.events_read == 2  # the sample, not the hits


def test_splunk_hunt_and_auth_failure_stops(rules: dict[str, RuleInfo]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"sid": "s"})
        if request.url.path.endswith("/results"):
            return httpx.Response(200, json={"results": [{"host": "wks01", "Image": "C:\\procdump.exe",
                                                          "_time": "1714557600"}]})
        return httpx.Response(200, json={"entry": [{"content": {"dispatchState": "DONE", "resultCount": 1}}]})

    client = SplunkClient("https://splunk:8089", "t", transport=httpx.MockTransport(handler))
    out = run_siem_hunt([rules["procdump"]], client, backend="splunk", index="main", start=START, end=END)
    assert out.matches[0].count == 1 and out.matches[0].events[0]["host"] == "wks01"

    denied = SplunkClient("https://splunk:8089", "t", transport=httpx.MockTransport(lambda r: httpx.Response(403)))
    with pytest.raises(AuthError):
        run_siem_hunt([rules["procdump"]], denied, backend="splunk", index="main", start=START, end=END)
