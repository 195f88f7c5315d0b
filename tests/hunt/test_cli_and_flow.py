"""The `dco hunt` CLI (typer CliRunner) and the `hunt` Prefect flow over real Security-Datasets telemetry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.models.hunt_run import HuntRun, HuntStatus
from dcoflow.models.plan import HuntHypothesis
from dcoflow.models.repository.stix_store import latest_objects

from .helpers import stored_state

LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"
COMSVCS_RULE = "a49fa4d5-11db-418c-8473-1e014a8dd462"  # Lsass Memory Dump via Comsvcs DLL


def test_cli_hunt_json_record_runs_and_triage(shared_dir: Path, dco: str, catalog: Any) -> None:
    from dcoflow.flows.cli.hunt import app

    runner = CliRunner()
    args = ["--rules", str(shared_dir / "sigma/rules/windows"), "--data", str(shared_dir / LSASS_ZIP),
            "--technique", "T1003.001", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["events_read"] == 184 and doc["bad_records"] == 0
    comsvcs = next(r for r in doc["rules"] if r["id"] == COMSVCS_RULE)
    assert comsvcs["matches"] == 2 and "attack.t1003.001" in comsvcs["tags"] and comsvcs["title"]
    assert all(r["technique_ids"] and any(t.startswith("T1003") for t in r["technique_ids"]) for r in doc["rules"])
    assert doc["no_logsource"] and doc["hunt_run"] is None

    res = runner.invoke(app, [*args, "--dco", dco])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)["hunt_run"]
    res = runner.invoke(app, ["runs", "--dco", dco, "--json"])
    runs = json.loads(res.stdout)
    assert [r["id"] for r in runs] == [run_id] and runs[0]["status"] == "completed" and runs[0]["hits"] >= 2

    with session_scope() as s:
        sid = next(o["id"] for o in latest_objects(s, dco, ["sighting"]) if o["x_dco_rule_id"] == COMSVCS_RULE)
    res = runner.invoke(app, ["triage", sid, "--verdict", "true-positive", "--note", "comsvcs MiniDump",
                              "--analyst", "alice", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["version"] == 1
    res = runner.invoke(app, ["triage", sid, "--verdict", "probably"])
    assert res.exit_code == 2 and "did you mean" in res.output


def _plan(dco: str) -> None:
    with session_scope() as s:
        s.add(HuntHypothesis(id=f"{dco}-T1003.001", dco_id=dco, technique_id="T1003.001",
                             technique_name="LSASS Memory", statement="LSASS is dumped",
                             sigma_rules=[{"rule_id": COMSVCS_RULE, "title": "Lsass Memory Dump via Comsvcs DLL"}]))


@pytest.mark.prefect
def test_hunt_flow_uses_the_dco_hunt_plan(prefect_harness: None, shared_dir: Path, dco: str, catalog: Any) -> None:
    from prefect.artifacts import Artifact

    from dcoflow.flows.hunt import HuntParameters, hunt

    _plan(dco)
    params = HuntParameters(dco=dco, data=[str(shared_dir / LSASS_ZIP)],
                            rules_path=[str(shared_dir / "sigma/rules/windows")],
                            attack_source=str(shared_dir / "attack/enterprise-attack-18.1.json.gz"))
    result = hunt(params)
    assert result["rules"] == 1 and result["hits"] == 2 and result["by_technique"] == {"T1003.001": 2}
    assert result["status"] == "completed"
    with session_scope() as s:
        run = s.exec(select(HuntRun)).one()
        assert run.status == HuntStatus.COMPLETED and run.rule_ids == [COMSVCS_RULE] and run.events_read == 184
        sightings = latest_objects(s, dco, ["sighting"])
        assert len(sightings) == 2 and all(not o["x_dco_exercise"] for o in sightings)
    artifact = Artifact.get(f"hunt-{dco}")
    assert artifact is not None and "| T1003.001 | 2 |" in str(artifact.data)
    # the same hunt again resumes/reuses the same run and records nothing twice
    again = hunt(params)
    assert again["run_id"] == result["run_id"]
    with session_scope() as s:
        assert len(list(s.exec(select(HuntRun)))) == 1 and len(latest_objects(s, dco, ["sighting"])) == 2


@pytest.mark.prefect
def test_sweep_hunts_only_conducting_dcos(prefect_harness: None, shared_dir: Path, dco: str, catalog: Any) -> None:
    """The scheduled sweep runs the hunt plan of every DCO in state conducting, and only those."""
    from dcoflow.flows.hunt import SweepParameters, hunt_sweep
    from dcoflow.models.operation import DcoState
    from dcoflow.models.repository.operation import get_operation, transition

    _plan(dco)
    params = SweepParameters(data=[str(shared_dir / LSASS_ZIP)], rules_path=[str(shared_dir / "sigma/rules/windows")],
                             attack_source=str(shared_dir / "attack/enterprise-attack-18.1.json.gz"))
    assert hunt_sweep(params) == []  # approved, not yet conducting: nothing to sweep
    with session_scope() as s:
        transition(s, get_operation(s, dco), DcoState.CONDUCTING, "tester")
    [result] = hunt_sweep(params)
    assert result["dco"] == dco and result["status"] == "completed" and result["hits"] == 2
    [again] = hunt_sweep(params)  # same hour: the same run, nothing recorded twice
    assert again["run_id"] == result["run_id"]
    with session_scope() as s:
        assert len(latest_objects(s, dco, ["sighting"])) == 2


@pytest.mark.prefect
def test_cli_and_flow_store_the_same_hunt_and_triage(prefect_harness: None, shared_dir: Path, dco: str,
                                                      second_database: Callable[[], str]) -> None:
    """`dco hunt --dco` and the hunt flow are one use case: the same run (batched, resumable), the same evidence
    and audit events; `dco hunt triage` and the triage flow record the same verdict and opinion."""
    from dcoflow.flows.cli.hunt import app
    from dcoflow.flows.cli.output import cli_user
    from dcoflow.flows.hunt import HuntParameters, hunt
    from dcoflow.flows.triage import triage_hunt

    rules, data = shared_dir / "sigma/rules/windows", shared_dir / LSASS_ZIP
    runner = CliRunner()
    res = runner.invoke(app, ["--rules", str(rules), "--data", str(data), "--technique", "T1003.001", "--dco", dco,
                              "--json"])
    assert res.exit_code == 0, res.output
    with session_scope() as s:
        sid = next(o["id"] for o in latest_objects(s, dco, ["sighting"]) if o["x_dco_rule_id"] == COMSVCS_RULE)
    res = runner.invoke(app, ["triage", sid, "--verdict", "true-positive", "--analyst", "alice", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["escalation_events"] == 1
    by_cli = stored_state(dco)

    assert second_database() == dco
    result = hunt(HuntParameters(dco=dco, data=[str(data)], rules_path=[str(rules)], techniques=["T1003.001"],
                                 actor=cli_user()))
    assert result["status"] == "completed"
    triaged = triage_hunt(dco=dco, verdicts={sid: "true-positive"}, pause_for_input=False, analyst="alice")
    assert triaged["recorded"] == {"true-positive": 1}
    by_flow = stored_state(dco)
    # both announce the true positive to the Prefect server (the escalate trigger), audited once
    assert [a[0] for a in by_cli["audit"]].count("finding-announced") == 1
    assert by_cli["hunt_runs"] and by_cli["verdicts"] and any(a[0] == "hunt-run" for a in by_cli["audit"])
    assert by_cli == by_flow


def test_triage_with_no_prefect_server_leaves_the_finding_to_announce(shared_dir: Path, dco: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A workstation without a Prefect API: nobody could hear the event, so the finding is not marked announced
    (the follow-up run announces it later) — never marked announced without an event."""
    from dcoflow.flows.cli.hunt import app
    from dcoflow.models.repository.operation import audit_trail

    monkeypatch.setattr("dcoflow.tasks.events.events_reach_a_server", lambda: False)
    runner = CliRunner()
    res = runner.invoke(app, ["--rules", str(shared_dir / "sigma/rules/windows"), "--data", str(shared_dir / LSASS_ZIP),
                              "--technique", "T1003.001", "--dco", dco, "--json"])
    assert res.exit_code == 0, res.output
    with session_scope() as s:
        sid = next(o["id"] for o in latest_objects(s, dco, ["sighting"]) if o["x_dco_rule_id"] == COMSVCS_RULE)
    res = runner.invoke(app, ["triage", sid, "--verdict", "true-positive", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["escalation_events"] == 0
    with session_scope() as s:
        actions = [e.action for e in audit_trail(s, dco)]
    assert "triage" in actions and "finding-announced" not in actions
