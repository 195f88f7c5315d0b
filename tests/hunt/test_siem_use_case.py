"""The hunt use case (``run_hunt``) against a SIEM: its client comes from the connector registry, the rules are
recorded in committed batches with the SIEM window, a failing batch marks the run failed with the earlier
batches kept, and a re-run resumes. Elasticsearch Search API shapes as documented (``track_total_hits``:
``hits.total = {"value": n, "relation": "eq"}`` beside ``size`` hits), through httpx.MockTransport."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ConnectorError
from dcoflow.core.settings import Settings
from dcoflow.models.hunt_run import HuntStatus, hunt_run_id
from dcoflow.models.hunting import HuntSelection, RuleInfo
from dcoflow.models.repository.hunt import get_hunt_run
from dcoflow.tasks.conduct.hunt import run_hunt

from .conftest import RULES

START, END = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)


class Elastic:
    """Three matching events per query; ``fail_after`` answers from then on are 500s."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.queries = 0
        self.fail_after = fail_after

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/logs/_search"
        self.queries += 1
        if self.fail_after is not None and self.queries > self.fail_after:
            return httpx.Response(500, json={"error": {"type": "internal_server_error"}})
        size = json.loads(request.content)["size"]
        hits = [{"_index": "logs", "_id": f"d{self.queries}-{i}",
                 "_source": {"@timestamp": f"2024-05-01T10:00:0{i}Z", "Computer": "WKS01.corp.local",
                             "Image": r"C:\Tools\procdump64.exe", "CommandLine": f"procdump64.exe -ma lsass.exe {i}"}}
                for i in range(min(size, 3))]
        return httpx.Response(200, json={"hits": {"total": {"value": 3, "relation": "eq"}, "hits": hits}})


def _hunt(settings: Settings, shared_dir: Path, dco: str, rules: dict[str, RuleInfo], server: Elastic) -> Any:
    configured = settings.model_copy(update={"elastic_url": "http://es:9200", "elastic_index": "logs",
                                             "http_retries": 0})
    registry = ConnectorRegistry.from_settings(configured, transport=httpx.MockTransport(server))
    return run_hunt(selection=HuntSelection(rule_ids=[rules["procdump"].rule_id, rules["ps_persist"].rule_id]),
                    dco=dco, source="elastic", rules_path=[shared_dir / "sigma" / RULES[k] for k in RULES],
                    start=START, end=END, batch_size=1, hunt_key="siem-use-case", actor="tester", registry=registry)


def test_siem_hunt_records_in_batches_fails_and_resumes(settings: Settings, shared_dir: Path, dco: str,
                                                        rules: dict[str, RuleInfo]) -> None:
    with pytest.raises(ConnectorError):
        _hunt(settings, shared_dir, dco, rules, Elastic(fail_after=1))  # the second batch's query fails
    with session_scope() as s:
        run = get_hunt_run(s, hunt_run_id(dco, "siem-use-case"))
        assert run is not None and run.status == HuntStatus.FAILED and "ConnectorError" in (run.error or "")
        assert len(run.recorded_rules) == 1 and run.hits == 3  # the first batch stays recorded
        assert run.source == "elasticsearch:http://es:9200/logs"
        assert run.window_start is not None and run.window_start.replace(tzinfo=UTC) == START

    server = Elastic()
    result = _hunt(settings, shared_dir, dco, rules, server)
    assert server.queries == 1  # only the rule not recorded yet is asked again
    assert result.summary.status == "completed" and result.summary.hits == 6 and result.run_id == run.id
    with session_scope() as s:
        done = get_hunt_run(s, run.id)
        assert done is not None and done.status == HuntStatus.COMPLETED and done.error is None
        assert sorted(done.recorded_rules) == sorted([rules["procdump"].rule_id, rules["ps_persist"].rule_id])
