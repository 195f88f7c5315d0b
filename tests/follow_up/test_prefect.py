"""Follow-up under a real Prefect test server: deployment triggers applied twice stay one automation
each (what `prefect deploy` does), and the follow_up / escalate / run_due_retests flows end to end."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.cli.deploy._triggers import _create_deployment_triggers, _initialize_deployment_triggers
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

from dcoflow.core.db import dispose_engines, session_scope
from dcoflow.core.settings import get_settings
from dcoflow.flows.follow_up import escalate, expire_acceptances, follow_up, run_due_retests
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.followup import GapInput, IncidentStatus, RiskStatus, Treatment
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.followup import get_risk, list_actions, list_incidents, list_retests, list_risks
from dcoflow.models.repository.operation import create_operation
from dcoflow.tasks.assess.scoring import assess_dco, gaps_for_follow_up
from dcoflow.tasks.follow_up.risks import derive_risks, record_decision

from .conftest import SPEC
from .helpers import hunt_hit, outcome, store, triage

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
    assert result["findings"] == again["findings"] == 1 and result["retest"] == again["retest"]
    assert (result["announced"], again["announced"]) == (1, 0)  # its escalation event goes out once
    [incident] = result["incidents"]
    assert incident["status"] == "pending"  # no channel configured: kept, not lost
    escalate(dco)
    with session_scope() as s:
        [row] = list_incidents(s, dco_id=dco)
        assert row.status == IncidentStatus.PENDING and row.finding_key == hit["id"]
        [retest] = list_retests(s, dco_id=dco)
    report = run_due_retests(retest.id)
    assert report[0]["waiting_for"] == ["T1003.001"]  # no new evidence yet


def _finding_events(dco: str, since: datetime, at_least: int) -> list[Any]:
    """dco.finding.* events of the DCO since ``since`` (they reach the server asynchronously: poll a while)."""
    wanted = EventFilter(occurred=EventOccurredFilter(since=since),
                         event=EventNameFilter(prefix=["dco.finding."]),
                         resource=EventResourceFilter(id=[f"dco.{dco}"]))
    deadline = time.monotonic() + 10
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_events(filter=wanted, limit=50).events
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.3)


def _assessed_dco(catalog: Catalog) -> tuple[str, list[GapInput]]:
    """The follow-up DCO with emulation outcomes and a true-positive hunt hit, assessed (scores stored);
    returns its id and the gaps as the lifecycle used to hand them over from the in-memory assessment."""
    with session_scope() as s:
        dco = create_operation(s, DcoSpec.model_validate(SPEC), "test").id
    when = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    hit = hunt_hit(dco, "rule-lsass-access", "dc-01|99", "T1003.001", "dc-01", when)
    store(dco, [hit, triage(dco, hit["id"], "true-positive", when),
                outcome(dco, "s1", "T1059.001", "logged", when), outcome(dco, "s2", "T1003.001", "none", when)])
    with session_scope() as s:
        result = assess_dco(s, dco, catalog, now=when)
        gaps = [GapInput.model_validate(g) for g in gaps_for_follow_up(result, catalog)]
    return dco, gaps


def _register(dco: str) -> dict[str, Any]:
    with session_scope() as s:
        return {
            "risks": sorted((r.id, r.likelihood, r.impact, r.owner, r.review_date, r.decision_body, r.statement)
                            for r in list_risks(s, dco_id=dco)),
            "actions": sorted((a.id, a.owner, a.priority, a.due_date, a.title) for a in list_actions(s, dco_id=dco)),
            "retests": sorted((r.id, tuple(r.technique_ids)) for r in list_retests(s, dco_id=dco)),
        }


def test_triggered_follow_up_equals_lifecycle_follow_up(
    prefect_harness: None, settings: Any, catalog: Catalog, shared_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8 item 5: the deployment the dco.phase.follow-up trigger starts gets only the DCO's name; it reads
    the latest stored assessment and produces exactly the risks, actions and re-test of the lifecycle's
    follow-up (which handed over the in-memory assessment's gaps). Escalation events go out once."""
    monkeypatch.setenv("DCO_ATTACK_SOURCE", str(shared_dir / "attack" / "enterprise-attack-18.1.json.gz"))
    [spec] = [d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d["name"] == "follow-up"]
    [trigger] = spec["triggers"]
    assert trigger["expect"] == ["dco.phase.follow-up"]
    registers = []
    for name in ("triggered", "lifecycle"):
        monkeypatch.setenv("DCO_DATABASE_URL", f"sqlite:///{tmp_path / name}.db")
        get_settings.cache_clear()
        dispose_engines()
        dco, gaps = _assessed_dco(catalog)
        since = datetime.now(UTC)
        if name == "triggered":
            # The trigger's parameters, rendered as Prefect renders them for an event on resource dco.<id>.
            params = {k: v.replace("{{ event.resource.name }}", dco) for k, v in trigger["parameters"].items()}
            first = follow_up(**{**spec.get("parameters", {}), **params})
            second = follow_up(**{**spec.get("parameters", {}), **params})
            assert first["gaps"] == len(gaps) and first["risks"] == second["risks"]
            events_seen = _finding_events(dco, since, at_least=2)
            assert len(events_seen) == 1 and events_seen[0].event == "dco.finding.true-positive"
        else:
            follow_up(dco=dco, gaps=gaps)
        registers.append(_register(dco))
    triggered, lifecycle = registers
    assert triggered["risks"] and triggered["actions"] and triggered["retests"]
    assert triggered == lifecycle


def test_expired_acceptance_schedules_a_retest_by_itself(prefect_harness: None, dco: str, catalog: Catalog) -> None:
    """The expire-acceptances deployment runs on an active schedule; its flow puts an expired acceptance's
    risk back for review and schedules the re-test, once."""
    [spec] = [d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d["name"] == "expire-acceptances"]
    assert spec["entrypoint"] == "flows/follow_up.py:expire_acceptances"
    assert [s.get("active", True) for s in spec["schedules"]] == [True] and spec["schedules"][0]["cron"]
    gap = GapInput(technique_id="T1003.001", technique_name="LSASS Memory", visibility=0, detection=-1, relevance=1.0,
                   rank=1)
    decided = datetime.now(UTC) - timedelta(days=40)
    with session_scope() as s:
        [risk] = derive_risks(s, dco, [gap], [], catalog=catalog)
        record_decision(s, risk.id, Treatment.ACCEPT, "BCISOA", "until the EDR rollout", "alice",
                        expires_at=decided + timedelta(days=30), now=decided)
        risk_id = risk.id
    [retest_id] = expire_acceptances(**spec.get("parameters", {}))
    assert expire_acceptances() == []  # handled once
    with session_scope() as s:
        [retest] = list_retests(s, dco_id=dco)
        assert retest.id == retest_id and retest.technique_ids == ["T1003.001"]
        assert get_risk(s, risk_id).status == RiskStatus.REVIEW
