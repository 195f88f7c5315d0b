"""`dco ir contain` and `dco ir sweep --dco` are the use-case functions of tasks/conduct/ir.py behind a parser:
the command line and a direct call store the same thing, and repeating either stores nothing new."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.repository.stix_store import count_objects, object_history
from dcoflow.models.stix.ids import stix_id
from dcoflow.tasks.conduct.ir import record_containment, sweep_indicators
from dcoflow.tasks.plan.ir_incident import create_ir_support_dco

from .incident_bundle import approve, incident_bundle, ir_telemetry


def test_cli_contain_and_sweep_are_the_use_cases(settings: Settings, tmp_path: Path) -> None:
    from dcoflow.flows.cli import app

    bundle = tmp_path / "incident.json"
    bundle.write_text(json.dumps(incident_bundle()), encoding="utf-8")
    dco = create_ir_support_dco(str(bundle)).dco_id
    with session_scope() as s:
        approve(s, dco)
    runner = CliRunner()
    out = runner.invoke(app, ["ir", "contain", dco, "isolate WKST-01", "--owner", "NOC", "--status", "in-progress"])
    assert out.exit_code == 0, out.output
    record_containment(dco, "isolate WKST-01", owner="NOC", status="in-progress")  # the same: nothing new
    out = runner.invoke(app, ["ir", "contain", dco, "isolate WKST-01", "--owner", "NOC", "--status", "done"])
    assert out.exit_code == 0, out.output
    with session_scope() as s:
        versions = object_history(s, stix_id("course-of-action", dco, "containment", "isolate WKST-01"), dco)
    assert [v["x_dco_status"] for v in versions] == ["in-progress", "done"]

    telemetry = ir_telemetry(tmp_path)
    out = runner.invoke(app, ["ir", "sweep", "--indicators", str(bundle), "--data", str(telemetry), "--dco", dco,
                              "--json"])
    assert out.exit_code == 0, out.output
    by_cli = json.loads(out.stdout)
    with session_scope() as s:
        stored = count_objects(s, dco)
    again = sweep_indicators(str(bundle), [Path(telemetry)], dco=dco)
    assert again.sightings == by_cli["sightings"] == 1 and again.counts() == by_cli["counts"]
    with session_scope() as s:
        assert count_objects(s, dco) == stored  # the function after the command: the same evidence, once
