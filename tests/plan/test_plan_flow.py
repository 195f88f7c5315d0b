"""The planning flow on a real Prefect server: artifact, exports, and approval as a paused run
resumed with typed input (what an approver does in the UI)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run

from dcoflow.core.db import session_scope
from dcoflow.flows.demo import DEMO_OPERATION
from dcoflow.flows.plan import plan_dco
from dcoflow.models.repository.operation import audit_trail, get_operation


def _flow_run_id(name_prefix: str, state: str, timeout: float = 120) -> Any:
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    # Filtered by the server: the session's harness holds many runs by now, and an unfiltered first page of 50
    # need not contain the one this test waits for.
    runs = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(state)])))
    flows = FlowFilter(name=FlowFilterName(any_=[name_prefix]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            for run in client.read_flow_runs(flow_filter=flows, flow_run_filter=runs, limit=50):
                return run.id
            time.sleep(0.5)
    raise AssertionError(f"no {name_prefix} run reached {state}")


def test_plan_flow_exports_and_waits_for_approval(prefect_harness: None, settings: Any, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    result: dict[str, Any] = {}

    def run() -> None:
        result.update(plan_dco(operation_file=str(DEMO_OPERATION), output_dir=str(out), actor="planner",
                               wait_for_approval=True, approval_timeout_s=120))

    worker = threading.Thread(target=run)
    worker.start()
    run_id = _flow_run_id("plan-dco", "PAUSED")
    resume_flow_run(run_id, run_input={"approve": True, "approver": "C. Lead (OCIO)", "comment": "go"})
    worker.join(timeout=120)
    assert not worker.is_alive()

    assert result["approval"]["to"] == "approved"
    with session_scope() as s:
        op = get_operation(s, result["dco"])
        assert op.state.value == "approved" and op.approved_by == "C. Lead (OCIO)"
        assert [e.action for e in audit_trail(s, op.id)][:3] == ["create", "plan", "transition"]
    layer = json.loads((out / f"{result['dco']}-planned-layer.json").read_text())
    assert layer["versions"]["layer"] == "4.5" and len(layer["techniques"]) >= result["summary"]["techniques"] - 1
    plan = json.loads((out / f"{result['dco']}-plan.json").read_text())
    assert plan["summary"] == result["summary"]
    with get_client(sync_client=True) as client:
        art = client.read_artifacts()
        assert any((a.key or "").startswith("plan-apt29") for a in art)


def test_bad_replan_keeps_what_is_stored(prefect_harness: None, settings: Any, tmp_path: Path) -> None:
    """Re-planning with an unknown group fails with a clear error and loses nothing already stored."""
    import pytest
    import yaml

    from dcoflow.core.errors import ValidationError
    from dcoflow.models.plan import PlanRecord

    first = plan_dco(operation_file=str(DEMO_OPERATION), output_dir=str(tmp_path), actor="planner")
    with session_scope() as s:
        before = (get_operation(s, first["dco"]).spec, s.get(PlanRecord, first["dco"]).techniques)  # type: ignore[union-attr]
    data = yaml.safe_load(DEMO_OPERATION.read_text())
    data["threat_profile"]["groups"] = ["APT29", "Cozy Bare"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError) as err:
        plan_dco(operation_file=str(bad), output_dir=str(tmp_path), actor="planner")
    assert err.value.field == "threat_profile.groups[1]" and "APT29" in err.value.suggestions  # Cozy Bear's group
    assert str(bad) in err.value.message
    with session_scope() as s:
        after = (get_operation(s, first["dco"]).spec, s.get(PlanRecord, first["dco"]).techniques)  # type: ignore[union-attr]
    assert after == before


def test_cli_approval_resumes_the_paused_plan_run(prefect_harness: None, settings: Any, tmp_path: Path) -> None:
    """`dco ops approve` answers the paused run, as the UI's Resume form would; the run records it."""
    from typer.testing import CliRunner

    from dcoflow.flows.cli import app

    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(plan_dco(
        operation_file=str(DEMO_OPERATION), output_dir=str(tmp_path), actor="planner",
        wait_for_approval=True, approval_timeout_s=120)))
    worker.start()
    _flow_run_id("plan-dco", "PAUSED")
    out = CliRunner().invoke(app, ["ops", "approve", "apt29-purple-team-demo", "--by", "D. Chief (OCIO)",
                                   "--comment", "proceed", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["resumed_flow_run"]
    worker.join(timeout=120)
    assert result["approval"]["to"] == "approved"
    with session_scope() as s:
        op = get_operation(s, result["dco"])
        assert op.approved_by == "D. Chief (OCIO)"
        assert [e.reason for e in audit_trail(s, op.id) if e.to_state == "approved"] == ["proceed"]
