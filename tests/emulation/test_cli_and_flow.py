"""`dco emulate` and the conduct-emulation flow run the same use cases: running a step, recording an outcome
and skipping a step store the same rows, versions and audit events whichever way they come in.

Two approved DCOs with the same plan; one is driven through the CLI (typer CliRunner), the other through the
flow on the Prefect test server; what each stored for the step is compared with the DCO id taken out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import EmulationExecution, EmulationOutcome
from dcoflow.models.plan import EmulationStep, StepStatus
from dcoflow.models.repository.operation import create_operation

from .helpers import approve, spec

pytestmark = pytest.mark.prefect
runner = CliRunner()
OPERATOR = "carol"


@pytest.fixture()
def twin_dco(draft_emulation_dco: str) -> str:
    """A second DCO with the same steps as ``emulation_dco`` (ids carry its own DCO id); both approved."""
    with session_scope() as s:
        twin = create_operation(s, spec().model_copy(update={"name": "Emulation Lab Twin"}), "tester").id
        for step in s.query(EmulationStep).filter_by(dco_id=draft_emulation_dco).all():
            data = step.model_dump()
            data.update(id=step.id.replace(draft_emulation_dco, twin), dco_id=twin,
                        depends_on=[d.replace(draft_emulation_dco, twin) for d in step.depends_on])
            s.add(EmulationStep(**data))
    approve(draft_emulation_dco)
    approve(twin)
    return twin


def _cli(*args: str) -> Any:
    from dcoflow.flows.cli.emulate import app

    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _flow(dco: str, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    from dcoflow.flows.conduct_emulation import conduct_emulation

    params: dict[str, Any] = {"dco": dco, "attack_source": str(tmp_path / "no-attack.json"), "dry_run": False,
                              "pause_for_input": False, "operator": OPERATOR}
    return conduct_emulation(**{**params, **kw})


def _stored(dco: str, order: int) -> dict[str, Any]:
    """What is stored for step ``order`` of ``dco`` (status, version, executions, outcomes, audit events)."""
    with session_scope() as s:
        step = s.query(EmulationStep).filter_by(dco_id=dco, order=order).one()
        execs = s.query(EmulationExecution).filter_by(dco_id=dco, step_id=step.id).all()
        outcomes = s.query(EmulationOutcome).filter_by(dco_id=dco, step_id=step.id).all()
        events = s.query(AuditEvent).filter_by(dco_id=dco).order_by(AuditEvent.id).all()  # type: ignore[arg-type]
        got = {
            "status": step.status.value, "version": step.version,
            "executions": [(e.connector, e.status.value, e.exit_code, e.command, e.cleanup_command,
                            e.cleanup_exit_code) for e in execs],
            "outcomes": [(o.tool, o.outcome.value, o.version, o.operator, o.source.value, o.severity)
                         for o in outcomes],
            "events": [(e.action, e.actor, e.details) for e in events
                       if e.details.get("step") == step.id or e.action == "deconfliction-notified"],
        }
    return json.loads(json.dumps(got, default=str).replace(dco, "DCO"))


def test_run_step_and_record_store_the_same(prefect_harness: None, emulation_dco: str, twin_dco: str,
                                            tmp_path: Path) -> None:
    ran = _cli("run-step", emulation_dco, "1", "--execute", "--operator", OPERATOR)
    assert ran["status"] == "running" and ran["execution"] == "succeeded"
    assert _cli("run-step", emulation_dco, "1", "--execute", "--operator", OPERATOR)["message"] == \
        "ran before; awaiting outcomes"  # not run twice
    _cli("record", emulation_dco, "1", "--tool", "EDR", "--outcome", "alerted", "--severity", "high",
         "--operator", OPERATOR)

    result = _flow(twin_dco, tmp_path, manual_outcomes={"1": {"tool": "EDR", "outcome": "alerted",
                                                              "severity": "high"}})
    assert next(r for r in result["steps"] if r["order"] == 1)["status"] == "done"

    cli, flow = _stored(emulation_dco, 1), _stored(twin_dco, 1)
    assert cli["status"] == "done" and cli["version"] == 3  # pending → running → done
    assert [e[0] for e in cli["events"]] == ["deconfliction-notified", "emulation-deconflicted",
                                             "emulation-executed", "emulation-outcome"]
    assert cli == flow


def test_skip_stores_the_same(resume_when_paused: Callable[..., Any], emulation_dco: str, twin_dco: str,
                              tmp_path: Path) -> None:
    for dco in (emulation_dco, twin_dco):  # only the manual step 4 is left open
        with session_scope() as s:
            for row in s.query(EmulationStep).filter_by(dco_id=dco):
                if row.order != 4:
                    row.status = StepStatus.DONE
                    s.add(row)
    _cli("run-step", emulation_dco, "4", "--execute", "--operator", OPERATOR)  # a manual step: handed over
    skipped = _cli("skip", emulation_dco, "4", "--by", OPERATOR, "--reason", "lab host down")
    assert skipped["status"] == "skipped"

    result = resume_when_paused(lambda: _flow(twin_dco, tmp_path, pause_for_input=True, pause_timeout_s=60),
                                twin_dco, {"operator": OPERATOR, "outcomes": [], "skip": True,
                                           "reason": "lab host down"})
    assert result["status_counts"] == {"done": 3, "skipped": 1}

    cli, flow = _stored(emulation_dco, 4), _stored(twin_dco, 4)
    assert cli["status"] == "skipped" and cli["version"] == 3  # pending → running → skipped, each a version
    skip_event = cli["events"][-1]
    assert skip_event[:2] == ["emulation-skipped", OPERATOR] and skip_event[2]["reason"] == "lab host down"
    assert cli == flow
