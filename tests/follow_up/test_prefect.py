"""Follow-up under a real Prefect test server: deployment triggers applied twice stay one automation
each (what `prefect deploy` does), and the follow_up / escalate / run_due_retests flows end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.cli.deploy._triggers import _create_deployment_triggers, _initialize_deployment_triggers
from prefect.client.orchestration import get_client

from dcoflow.core.db import session_scope
from dcoflow.flows.follow_up import escalate, follow_up, run_due_retests
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.followup import GapInput, IncidentStatus
from dcoflow.tasks.follow_up.escalation import list_incidents
from dcoflow.tasks.follow_up.retests import list_retests

from .helpers import hunt_hit, store, triage

pytestmark = pytest.mark.prefect
PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def deployments_with_triggers() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d.get("triggers")]


async def _deploy_twice() -> tuple[int, int, list[str]]:
    async with get_client() as client:
        ids = {}
        for spec in deployments_with_triggers():
            flow_name = spec["entrypoint"].rsplit(":", 1)[1].replace("_", "-")
            flow_id = await client.create_flow_from_name(flow_name)
            ids[spec["name"]] = (await client.create_deployment(flow_id, spec["name"]), spec)
        counts = []
        for _ in range(2):
            for deployment_id, spec in ids.values():
                triggers = _initialize_deployment_triggers(spec["name"], [dict(t) for t in spec["triggers"]])
                await _create_deployment_triggers(client, deployment_id, triggers)  # type: ignore[arg-type]
            counts.append(len(await client.read_automations()))
        automations = await client.read_automations()
        expects = sorted(e for a in automations for e in a.trigger.expect)  # type: ignore[union-attr]
        return counts[0], counts[1], expects


def test_triggers_applied_twice_do_not_duplicate_automations(prefect_harness: None) -> None:
    first, second, expects = asyncio.run(_deploy_twice())
    assert first == second == 2
    assert expects == ["dco.finding.compromise", "dco.finding.true-positive", "dco.phase.follow-up"]


def test_follow_up_flows_end_to_end(prefect_harness: None, dco: str, catalog: Catalog, shared_dir: Path) -> None:
    when = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    hit = hunt_hit(dco, "rule-lsass-access", "dc-01|99", "T1003.001", "dc-01", when)
    store(dco, [hit, triage(dco, hit["id"], "true-positive", when)])
    gaps = [GapInput(technique_id="T1003.001", technique_name="LSASS Memory", visibility=0, detection=-1,
                     relevance=1.0, rank=1)]
    bundle = str(shared_dir / "attack" / "enterprise-attack-18.1.json.gz")  # the session catalog's source
    result = follow_up(dco, gaps=gaps, attack_source=bundle)
    again = follow_up(dco, gaps=gaps, attack_source=bundle)
    assert result["risks"] == again["risks"] == 2  # the gap and the true-positive finding
    assert result["actions"] == again["actions"] > 0
    assert result["findings"] == 1 and result["retest"] == again["retest"]
    [incident] = result["incidents"]
    assert incident["status"] == "pending"  # no channel configured: kept, not lost
    escalate(dco)
    with session_scope() as s:
        [row] = list_incidents(s, dco_id=dco)
        assert row.status == IncidentStatus.PENDING and row.finding_key == hit["id"]
        [retest] = list_retests(s, dco_id=dco)
    report = run_due_retests(retest.id)
    assert report[0]["waiting_for"] == ["T1003.001"]  # no new evidence yet
