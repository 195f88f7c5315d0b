"""Indicator sweeps pushed down to a SIEM, against httpx.MockTransport fed with the vendors' documented shapes.

Elasticsearch EQL search API: ``POST /<index>/_eql/search`` with ``query``, ``filter`` (the time range), ``size``
→ ``hits.total = {"value": n, "relation": "eq"}`` and at most ``size`` events in ``hits.events[*]._source``.
Search API: ``POST /<index>/_search`` with ``track_total_hits`` → ``hits.total`` (used for the presence count).
Splunk REST search/v2/jobs: ``POST`` (form ``search``, ``earliest_time``, ``latest_time``) → ``{"sid"}``; the
job's ``entry[0].content`` carries ``dispatchState`` and ``resultCount``; ``/results`` → ``{"results": [...]}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from typer.testing import CliRunner

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.connectors.siem.elastic import ElasticClient
from dcoflow.connectors.siem.splunk import SplunkClient
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.patterns.compile import compile_pattern
from dcoflow.models.patterns.siem_query import translate
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.tasks.conduct.ir_siem_sweep import sweep_siem
from dcoflow.tasks.plan.ir_incident import create_ir_dco, load_incident
from dcoflow.tasks.reporting.ir_brief import load_ir_activity

from .incident_bundle import approve, incident_bundle

START, END = datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)
T = "2026-11-01T00:00:00.000Z"


def _ind(key: str, pattern: str, pattern_type: str = "stix", **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--00000000-0000-4000-8000-0000000000{key}",
            "created": T, "modified": T, "name": f"ioc {key}", "pattern": pattern, "pattern_type": pattern_type,
            "valid_from": T, **extra}


INDICATORS = [
    _ind("01", "[domain-name:value = 'update-check.example.net']"),
    _ind("02", "[process:command_line LIKE '%comsvcs.dll%MiniDump%']"),
    _ind("03", "[process:command_line MATCHES '-e(nc|ncodedcommand)\\\\s+\\\\d']"),
    _ind("04", "([domain-name:value = 'a.example'] AND [domain-name:value = 'b.example']) WITHIN 60 SECONDS"),
    _ind("05", "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Software\\\\Evil']"),
    _ind("06", "[domain-name:value = 'old.example']", valid_until="2026-01-01T00:00:00Z"),
    _ind("07", "title: rundll32 minidump\nid: 5e2a1c8b-0d4f-4a57-9a49-d7b1d1d0f007\nlogsource: {product: windows, "
               "category: process_creation}\ndetection:\n  sel:\n    CommandLine|contains: MiniDump\n"
               "  condition: sel\n", "sigma"),
]


class Elastic:
    """An index of ECS Windows events: two DNS queries for the C2 domain (of 1234 the server counts)."""

    def __init__(self) -> None:
        self.eql: list[dict[str, Any]] = []
        self.search: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/logs-win/_eql/search":
            self.eql.append(body)
            events = []
            if "dns.question.name" in body["query"]:
                events = [{"_index": "logs-win", "_id": f"e{i}", "_source": {
                    "@timestamp": f"2026-11-18T21:1{i}:03.000Z", "host": {"name": "WKST-01"},
                    "dns": {"question": {"name": "update-check.example.net"}},
                    "process": {"executable": "C:\\Users\\Public\\b.exe"}}} for i in range(2)]
            total = 1234 if events else 0
            return httpx.Response(200, json={"is_partial": False, "is_running": False, "took": 3, "timed_out": False,
                                             "hits": {"total": {"value": total, "relation": "eq"}, "events": events}})
        if request.url.path == "/logs-win/_search":
            self.search.append(body)
            query = body["query"]["bool"]["must"][0]["query_string"]["query"]
            total = 0 if "registry.path" in query else 57  # no registry events in this index
            return httpx.Response(200, json={"hits": {"total": {"value": total, "relation": "eq"}, "hits": []}})
        return httpx.Response(404)


def test_elastic_sweep_counts_on_the_server_and_names_what_it_cannot_push_down() -> None:
    es = Elastic()
    client = ElasticClient("http://es:9200", transport=httpx.MockTransport(es))
    now = datetime(2026, 11, 21, tzinfo=UTC)
    result = sweep_siem(INDICATORS, client, kind="elastic", index="logs-win", start=START, end=END, mapping="ecs",
                        sample=5, now=now)
    by = {r.name: r for r in result.indicators}
    c2 = by["ioc 01"]
    assert (c2.status, c2.matches, c2.hosts) == ("found", 1234, {"wkst-01": 2})
    assert c2.first_seen == "2026-11-18T21:10:03.000Z" and c2.last_seen == "2026-11-18T21:11:03.000Z"
    assert "the 2 sampled of 1234 events" in (c2.reason or "")
    assert by["ioc 02"].status == "not-found"  # the index carries command lines: a real non-match
    assert by["ioc 03"].status == "not-evaluable" and "not evaluable on elasticsearch" in (by["ioc 03"].reason or "")
    assert "syntax Elasticsearch lacks" in (by["ioc 03"].reason or "") and INDICATORS[2]["id"] in by["ioc 03"].reason
    assert by["ioc 04"].status == "not-evaluable" and "qualifier WITHIN is not pushed down" in (by["ioc 04"].reason
                                                                                                or "")
    assert by["ioc 05"].status == "not-evaluable"
    assert by["ioc 05"].reason == "not evaluable on this data: no event in logs-win carries registry.path"
    assert by["ioc 06"].status == "skipped" and "expired" in (by["ioc 06"].reason or "")
    assert by["ioc 07"].status == "not-found"
    # the queries as sent: the translation, the time window as the filter; the Sigma rule through pySigma's EQL
    expected = translate(compile_pattern(INDICATORS[0]["pattern"], "x"), "x", "eql", "ecs").queries()[0].query
    assert expected.startswith("any where (dns.question.name : (") and expected in [b["query"] for b in es.eql]
    assert any('process.command_line : "*comsvcs.dll*MiniDump*"' in b["query"] for b in es.eql)
    assert any(b["query"].startswith("any where") and "*MiniDump*" in b["query"] and "event.category" in b["query"]
               for b in es.eql)
    assert all(b["filter"]["range"]["@timestamp"]["gte"].startswith("2026-11-18T00:00:00") for b in es.eql)
    presence = [b["query"]["bool"]["must"][0]["query_string"]["query"] for b in es.search]
    assert "_exists_:registry.path" in presence and all(b["size"] == 0 and b["track_total_hits"] for b in es.search)
    assert len(es.eql) == 4  # C2 domain, command line, registry key, Sigma rule: nothing refused or skipped was sent


class Splunk:
    """Search jobs over raw Sysmon events: the C2 domain queried 7 times on WKST-01; command lines present."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, str]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/services/search/v2/jobs":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            sid = f"1763500000.{len(self.jobs)}"
            self.jobs[sid] = form
            return httpx.Response(201, json={"sid": sid})
        sid = path.split("/")[5]
        search = self.jobs[sid]["search"]
        count = 7 if "update-check.example.net" in search else 3 if "CommandLine=*" in search else 0
        if path.endswith("/results"):
            rows = [{"_time": f"2026-11-18T21:14:0{i}.000+00:00", "host": "WKST-01", "EventCode": "22",
                     "QueryName": "update-check.example.net", "Image": "C:\\Users\\Public\\b.exe"}
                    for i in range(count if "update-check" in search else 0)]
            n = int(request.url.params["count"])
            return httpx.Response(200, json={"preview": False, "init_offset": 0, "messages": [], "results": rows[:n]})
        return httpx.Response(200, json={"entry": [{"name": sid, "content": {
            "sid": sid, "dispatchState": "DONE", "isDone": True, "isFailed": False, "resultCount": count,
            "eventCount": count, "messages": []}}]})


def test_splunk_sweep_of_an_ir_dco_stores_sightings_from_the_sample(settings: Settings, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "incident.json"
    bundle.write_text(json.dumps(incident_bundle()), encoding="utf-8")
    with session_scope() as s:
        dco = create_ir_dco(s, load_incident(str(bundle))).dco_id
        approve(s, dco)
    splunk = Splunk()
    configured = ConnectorRegistry.from_settings

    def with_transport(settings: Settings | None = None, *, transport: Any = None) -> ConnectorRegistry:
        return configured(settings, transport=httpx.MockTransport(splunk))

    monkeypatch.setattr(ConnectorRegistry, "from_settings", staticmethod(with_transport))
    monkeypatch.setenv("DCO_SPLUNK_URL", "https://splunk:8089")
    monkeypatch.setenv("DCO_SPLUNK_TOKEN", "tok")
    get_settings.cache_clear()
    from dcoflow.flows.cli import app

    out = CliRunner().invoke(app, ["ir", "sweep", "--indicators", str(bundle), "--source", "splunk", "--dco", dco,
                                   "--sample", "3", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    by = {r["name"]: r for r in doc["indicators"]}
    assert doc["source"] == "splunk:https://splunk:8089/main" and doc["sightings"] == 1
    c2, lsass = by["C2 domain"], by["comsvcs MiniDump"]
    assert (c2["status"], c2["matches"], c2["hosts"]) == ("found", 7, {"wkst-01": 3})
    assert lsass["status"] == "not-found"  # command lines are in the index (presence count 3)
    searches = [j["search"] for j in splunk.jobs.values()]
    assert 'search index=main ((QueryName="update-check.example.net" OR QueryName="update-check.example.net.") OR ' \
           '(DestinationHostname="update-check.example.net" OR DestinationHostname="update-check.example.net."))' \
           in searches
    assert 'search index=main (CommandLine="*comsvcs.dll*MiniDump*" OR ParentCommandLine="*comsvcs.dll*MiniDump*")' \
           in searches
    assert "search index=main (CommandLine=* OR ParentCommandLine=*) | head 1" in searches  # present: not-found
    with session_scope() as s:
        incident = get_operation(s, dco).dco.incident
        op_window = incident.activity_window if incident else None
        objects = latest_objects(s, dco, ["sighting", "observed-data"])
        activity = load_ir_activity(s, dco)
    assert op_window is not None
    assert {j["earliest_time"][:19] for j in splunk.jobs.values()} == {op_window.start.isoformat()[:19]}
    (sighting,) = [o for o in objects if o["type"] == "sighting"]
    assert sighting["count"] == 7 and sighting["x_dco_hosts"] == ["wkst-01"]
    assert len(sighting["observed_data_refs"]) == 3  # one observed-data per sampled event
    assert sighting["first_seen"].startswith("2026-11-18T21:14:00") and sighting["last_seen"].startswith(
        "2026-11-18T21:14:02")
    (finding,) = activity.findings
    assert finding["count"] == 7 and activity.sweeps[0]["source"] == "splunk:https://splunk:8089/main"
    assert activity.hosts_swept == ["wkst-01"] and "indicators on 1 of 1 hosts swept" in activity.status_line()


def test_qualifiers_are_evaluated_here_on_the_few_events_the_siem_fetches() -> None:
    """WITHIN, REPEATS and FOLLOWEDBY cannot be counted by the SIEM; with a Sysmon-named index their observations'
    events are fetched (when no more than the fetch limit) and the engine evaluates the pattern on them."""
    splunk = Splunk()
    client = SplunkClient("https://splunk:8089", "tok", transport=httpx.MockTransport(splunk), sleep=lambda s: None)
    c2 = "[domain-name:value = 'update-check.example.net']"
    indicators = [_ind("11", f"{c2} REPEATS 5 TIMES WITHIN 60 SECONDS"),
                  _ind("12", f"{c2} REPEATS 10 TIMES"),
                  _ind("13", f"[process:command_line LIKE '%whoami%'] FOLLOWEDBY {c2}"),
                  _ind("14", f"{c2} REPEATS 2 TIMES")]
    now = datetime(2026, 11, 21, tzinfo=UTC)
    by = {r.name: r for r in sweep_siem(indicators, client, kind="splunk", index="main", start=START, end=END,
                                        now=now).indicators}
    assert (by["ioc 11"].status, by["ioc 11"].matches, by["ioc 11"].hosts) == ("found", 7, {"wkst-01": 7})
    assert (by["ioc 11"].first_seen, by["ioc 11"].last_seen) == ("2026-11-18T21:14:00.000Z", "2026-11-18T21:14:06.000Z")
    assert "evaluated here on the 7 events its observations matched" in (by["ioc 11"].reason or "")
    assert "qualifier WITHIN is not pushed down" in (by["ioc 11"].reason or "")
    assert by["ioc 12"].status == "not-found"  # 7 < 10
    assert by["ioc 13"].status == "not-found"  # no whoami command line before the DNS queries
    limited = sweep_siem(indicators[3:], client, kind="splunk", index="main", start=START, end=END, now=now,
                         fetch_limit=5).indicators[0]
    assert limited.status == "not-evaluable"
    assert "its observations match 7 events, more than the 5 fetched to evaluate it here" in (limited.reason or "")
    fetched = [j["search"] for j in splunk.jobs.values() if "update-check" in j["search"]]
    assert len(fetched) >= 2  # a count, then the search whose results were evaluated


def _sigma(key: str, category: str, selection: str) -> dict[str, Any]:
    return _ind(key, f"title: sigma {key}\nid: 5e2a1c8b-0d4f-4a57-9a49-d7b1d1d0f0{key}\nlogsource: {{product: windows, "
                     f"category: {category}}}\ndetection:\n  sel:\n    {selection}\n  condition: sel\n", "sigma")


SIGMA = [_sigma("21", "registry_set", "TargetObject|contains: '\\Software\\Evil'"),
         _sigma("22", "process_creation", "CommandLine|contains: MiniDump"),
         _sigma("23", "dns_query", "QueryName: update-check.example.net")]


def test_a_sigma_indicator_whose_fields_no_event_carries_is_not_evaluable_not_absent() -> None:
    """Issue 12: zero hits from a rule on fields the index lacks say nothing about the indicator; one presence
    count for its detection's fields (as its pipeline maps them) tells that apart from a real non-match."""
    splunk = Splunk()  # no TargetObject in the index; command lines present; the C2 domain queried 7 times
    client = SplunkClient("https://splunk:8089", "tok", transport=httpx.MockTransport(splunk), sleep=lambda s: None)
    now = datetime(2026, 11, 21, tzinfo=UTC)
    by = {r.name: r for r in sweep_siem(SIGMA, client, kind="splunk", index="main", start=START, end=END, sample=3,
                                        now=now).indicators}
    assert by["ioc 21"].status == "not-evaluable"
    assert by["ioc 21"].reason == "not evaluable on this data: no event in main carries TargetObject"
    assert by["ioc 22"].status == "not-found" and by["ioc 22"].reason is None  # the index keeps command lines
    found = by["ioc 23"]
    assert (found.status, found.matches, found.hosts, len(found.samples)) == ("found", 7, {"wkst-01": 3}, 3)
    searches = [j["search"] for j in splunk.jobs.values()]
    assert "search index=main (TargetObject=*) | head 1" in searches
    assert "search index=main (CommandLine=*) | head 1" in searches
    assert not any("QueryName=*" in s for s in searches)  # hits: no presence count asked
    assert not any("EventID=*" in s or "Channel=*" in s for s in searches)  # the pipeline's conditions: not read

    es = Elastic()  # ECS names: the rule reads registry.path, which this index has no event with
    ecs = sweep_siem(SIGMA[:1], ElasticClient("http://es:9200", transport=httpx.MockTransport(es)), kind="elastic",
                     index="logs-win", start=START, end=END, mapping="ecs", now=now).indicators[0]
    assert ecs.status == "not-evaluable"
    assert ecs.reason == "not evaluable on this data: no event in logs-win carries registry.path"
    assert [b["query"]["bool"]["must"][0]["query_string"]["query"] for b in es.search] == ["_exists_:registry.path"]
