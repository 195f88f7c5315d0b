"""SIEM push-down at scale, against httpx.MockTransport fed with the vendors' documented shapes.

Elasticsearch Search API: ``track_total_hits: true`` answers ``hits.total = {"value": n, "relation":
"eq"}`` beside ``size`` hits. EQL search API: ``hits.total`` and at most ``size`` events in
``hits.events``. Splunk REST search/v2/jobs: the job's ``entry[0].content`` carries ``dispatchState``,
``resultCount`` and ``eventCount``; ``/results?count=&offset=`` pages results. A busy Elasticsearch
answers 429 (``es_rejected_execution_exception``); a full Splunk search quota answers 503.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dcoflow.connectors.siem.elastic import ElasticClient
from dcoflow.connectors.siem.splunk import SplunkClient
from dcoflow.connectors.siem.throttle import Throttle
from dcoflow.core.errors import ConnectorError
from dcoflow.core.settings import Settings
from dcoflow.models.hunting import RuleInfo
from dcoflow.models.sigma.siem_convert import FieldMapping, convert_rule, siem_backend
from dcoflow.tasks.conduct.siem_hunt import run_siem_hunt, time_slices

START, END = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
TEN_MILLION = 10_000_000
NETWORK_RULE = "rules/windows/network_connection/net_connection_win_rdp_reverse_tunnel.yml"


def _es_doc(i: int) -> dict[str, Any]:
    return {"_index": "logs", "_id": f"d{i}", "_source": {"@timestamp": f"2024-05-01T00:00:{i % 60:02d}Z", "n": i}}


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


class Counter:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.delays: list[float] = []

    def sleep(self, s: float) -> None:
        self.delays.append(s)


def test_lucene_rule_with_ten_million_hits_costs_one_request(rules: dict[str, RuleInfo]) -> None:
    rec = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        rec.requests.append(request)
        body = json.loads(request.content)
        hits = [_es_doc(i) for i in range(body["size"])]
        return httpx.Response(200, json={"hits": {"total": {"value": TEN_MILLION, "relation": "eq"}, "hits": hits}})

    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(handler))
    out = run_siem_hunt([rules["procdump"]], client, backend="elastic-lucene", index="logs", start=START, end=END,
                        sample=5)
    assert len(rec.requests) == 1
    assert out.matches[0].count == TEN_MILLION and out.matches[0].exact
    assert len(out.matches[0].events) == 5 and out.events_read == 5


class EqlServer:
    """An EQL endpoint over ``n`` events spread evenly over the day: at most ``size`` per answer, oldest first."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.requests = 0
        self.step = (END - START) / n

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/logs/_eql/search"
        self.requests += 1
        body = json.loads(request.content)
        rng = body["filter"]["range"]["@timestamp"]
        lo, hi = _parse(rng["gte"]), _parse(rng["lt"])
        first = max(0, -(-(lo - START) // self.step))  # ceil: the first event at or after lo
        last = min(self.n, -(-(hi - START) // self.step))  # events before hi
        ids = list(range(int(first), int(last)))[: body["size"]]
        events = [{"_index": "logs", "_id": f"e{i}", "_source": {"@timestamp": (START + i * self.step).isoformat()}}
                  for i in ids]
        return httpx.Response(200, json={"is_partial": False, "is_running": False, "took": 3, "timed_out": False,
                                         "hits": {"total": {"value": len(events), "relation": "eq"},
                                                  "events": events}})


def test_eql_counts_past_one_page_by_slicing_the_window(rules: dict[str, RuleInfo]) -> None:
    server = EqlServer(2500)
    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(server), eql_page=1000)
    out = run_siem_hunt([rules["procdump"]], client, backend="elastic-eql", index="logs", start=START, end=END,
                        sample=3)
    match = out.matches[0]
    assert match.count == 2500 and match.exact
    assert [e["_id"] for e in match.events] == ["e0", "e1", "e2"]  # oldest first
    assert server.requests <= 16


def test_eql_with_ten_million_hits_reports_a_lower_bound_within_its_budget(rules: dict[str, RuleInfo]) -> None:
    server = EqlServer(TEN_MILLION)
    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(server), eql_page=1000,
                           eql_max_requests=20)
    out = run_siem_hunt([rules["procdump"]], client, backend="elastic-eql", index="logs", start=START, end=END)
    match = out.matches[0]
    assert server.requests <= 20
    assert not match.exact and 1000 <= match.count < TEN_MILLION  # "at least", never presented as exact
    from dcoflow.models.hunt_summary import summarize_outcome, summary_markdown

    assert f"≥{match.count}" in summary_markdown(summarize_outcome(out))


def test_splunk_takes_the_count_from_the_job_and_fetches_one_sample_page(rules: dict[str, RuleInfo]) -> None:
    rec = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        rec.requests.append(request)
        if request.method == "POST":
            return httpx.Response(201, json={"sid": "1714.42"})
        if request.url.path.endswith("/results"):
            assert request.url.params["count"] == "4" and request.url.params["offset"] == "0"
            return httpx.Response(200, json={"preview": False, "init_offset": 0,
                                             "results": [{"host": f"wks{i}", "_time": "1714557600"} for i in range(4)]})
        return httpx.Response(200, json={"entry": [{"name": "search index=main", "content": {
            "dispatchState": "DONE", "isDone": True, "resultCount": 10000, "eventCount": TEN_MILLION}}]})

    client = SplunkClient("https://splunk:8089", "t", transport=httpx.MockTransport(handler))
    out = run_siem_hunt([rules["procdump"]], client, backend="splunk", index="main", start=START, end=END, sample=4)
    assert out.matches[0].count == TEN_MILLION and len(out.matches[0].events) == 4
    assert [r.method for r in rec.requests] == ["POST", "GET", "GET"]  # job, its status, one page


def test_splunk_non_numeric_count_is_a_clear_error(rules: dict[str, RuleInfo]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"sid": "s"})
        return httpx.Response(200, json={"entry": [{"content": {"dispatchState": "DONE", "resultCount": "lots"}}]})

    client = SplunkClient("https://splunk:8089", "t", transport=httpx.MockTransport(handler))
    with pytest.raises(ConnectorError, match="not a number"):
        client.count_and_sample("main", "x=1", start=START, end=END, sample=1)


def _busy_then_ok(busy: int, status: int) -> tuple[Counter, Any]:
    rec = Counter()
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            rec.requests.append(request)
            n = len(rec.requests)
        if n <= busy:
            if status == 429:
                return httpx.Response(429, json={"error": {"type": "es_rejected_execution_exception"}},
                                      headers={"Retry-After": "1"})
            return httpx.Response(503, json={"messages": [{"type": "FATAL", "text": "Search not executed: The "
                                                           "maximum number of concurrent historical searches "
                                                           "for this user based on their role quota has been "
                                                           "reached."}]})
        if request.url.path.endswith("/_search"):
            return httpx.Response(200, json={"hits": {"total": {"value": 7, "relation": "eq"}, "hits": []}})
        if request.method == "POST":
            return httpx.Response(201, json={"sid": "s"})
        if request.url.path.endswith("/results"):
            return httpx.Response(200, json={"results": []})
        return httpx.Response(200, json={"entry": [{"content": {"dispatchState": "DONE", "resultCount": 7}}]})

    return rec, handler


def test_429_slows_the_hunt_down_instead_of_failing_it(rules: dict[str, RuleInfo]) -> None:
    rec, handler = _busy_then_ok(busy=9, status=429)  # more refusals than the connector's own 3 retries
    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(handler), retries=2, sleep=rec.sleep)
    out = run_siem_hunt(list(rules.values()), client, backend="elastic-lucene", index="logs", start=START, end=END,
                        concurrency=2, sleep=rec.sleep)
    assert {m.count for m in out.matches} == {7} and len(out.rules_run) == 3 and not out.skipped
    assert out.rate_limited >= 2 and rec.delays  # it waited, and says how often it was asked to


def test_full_splunk_quota_waits_for_a_free_slot(rules: dict[str, RuleInfo]) -> None:
    rec, handler = _busy_then_ok(busy=4, status=503)
    client = SplunkClient("https://splunk:8089", "t", transport=httpx.MockTransport(handler), retries=1,
                          sleep=rec.sleep)
    out = run_siem_hunt([rules["procdump"]], client, backend="splunk", index="main", start=START, end=END,
                        sleep=rec.sleep)
    assert out.matches[0].count == 7 and out.rate_limited >= 1


def test_rate_limit_budget_exhausted_fails_with_a_retryable_error(rules: dict[str, RuleInfo]) -> None:
    rec, handler = _busy_then_ok(busy=10_000, status=429)
    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(handler), retries=0, sleep=rec.sleep)
    with pytest.raises(ConnectorError, match="still rate-limited") as err:
        run_siem_hunt([rules["procdump"]], client, backend="elastic-lucene", index="logs", start=START, end=END,
                      rate_limit_budget_s=30, sleep=rec.sleep)
    assert err.value.retryable and sum(rec.delays) <= 30 + 30  # connector back-off + throttle pauses


def test_throttle_halves_concurrency_and_grows_it_back() -> None:
    t = Throttle(8, sleep=lambda s: None)
    calls = iter([ConnectorError("busy", status=429, retryable=True), "ok"])

    def fn() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert t.call(fn) == "ok"
    assert t.rate_limited == 1 and t.limit == 5  # 8 → 4 on the refusal, +1 on the success
    with pytest.raises(ConnectorError, match="boom"):  # other errors are not rate limits
        t.call(lambda: (_ for _ in ()).throw(ConnectorError("boom", status=400)))


def test_rules_run_concurrently_within_the_limit(rules: dict[str, RuleInfo]) -> None:
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json={"hits": {"total": {"value": 1, "relation": "eq"}, "hits": []}})

    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(handler))
    many = [rules["procdump"], rules["safeboot"], rules["ps_persist"]] * 4
    run_siem_hunt(many, client, backend="elastic-lucene", index="logs", start=START, end=END, concurrency=3)
    assert 2 <= state["peak"] <= 3


def test_long_windows_are_sliced_and_counts_summed(rules: dict[str, RuleInfo]) -> None:
    windows: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        rng = json.loads(request.content)["query"]["bool"]["filter"][0]["range"]["@timestamp"]
        windows.append((rng["gte"], rng["lt"]))
        return httpx.Response(200, json={"hits": {"total": {"value": 2, "relation": "eq"}, "hits": []}})

    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(handler))
    out = run_siem_hunt([rules["procdump"]], client, backend="elastic-lucene", index="logs", start=START,
                        end=START + timedelta(hours=30), slice_s=12 * 3600)
    assert len(windows) == 3 and out.matches[0].count == 6
    assert time_slices(START, START + timedelta(hours=30), 12 * 3600)[-1] == (START + timedelta(hours=24),
                                                                               START + timedelta(hours=30))
    assert time_slices(START, END, None) == [(START, END)]


def test_ecs_indices_get_ecs_fields_and_event_categories(rules: dict[str, RuleInfo], shared_dir: Any) -> None:
    from dcoflow.connectors.content.sigma_rules import load_rule_index

    proc = convert_rule(rules["procdump"], "elastic-lucene", FieldMapping.ECS)[0]
    assert "process.executable" in proc and "Image" not in proc
    assert "event.category:process" in proc and "event.type:start" in proc
    assert "Image" in convert_rule(rules["procdump"], "elastic-lucene", FieldMapping.SYSMON)[0]
    net = load_rule_index([shared_dir / "sigma" / NETWORK_RULE]).rules[0]
    for backend in ("elastic-lucene", "elastic-eql"):
        query = convert_rule(net, backend, FieldMapping.ECS)[0]
        assert "destination.ip" in query and "event.category" in query and "network" in query
        assert "DestinationIp" not in query
    with pytest.raises(Exception, match="ECS field mapping is for Elastic"):
        convert_rule(rules["procdump"], "splunk", FieldMapping.ECS)


def test_the_pipeline_is_built_once_per_log_source_and_mapping(rules: dict[str, RuleInfo]) -> None:
    siem_backend.cache_clear()
    for _ in range(3):
        for rule in rules.values():
            convert_rule(rule, "elastic-lucene", FieldMapping.ECS)
    info = siem_backend.cache_info()
    assert info.misses == 1 and info.hits == 8  # all three rules are Windows rules: one back end


def test_settings_say_which_mapping_an_index_uses() -> None:
    s = Settings(elastic_field_mapping="ecs", elastic_index_mappings={"winlogbeat-raw-*": "sysmon"})
    assert s.elastic_mapping_for("logs-endpoint.events.process-default") == "ecs"
    assert s.elastic_mapping_for("winlogbeat-raw-2024.05") == "sysmon"
    with pytest.raises(ValueError):
        Settings(elastic_field_mapping="cim")
