"""The IR activity for the incident manager: hosts swept and when, indicators found where, first/last seen,
a dwell-time estimate (detection minus first activity), containment actions by hand with owner and status
(a status change is a new version, a repeat is nothing), and the brief with its executive status line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.core.settings import Settings
from dcoflow.models.repository.stix_store import object_history
from dcoflow.models.stix.ids import stix_id
from dcoflow.tasks.conduct.ir_sweep import run_sweep
from dcoflow.tasks.plan.ir_incident import create_ir_dco, load_incident
from dcoflow.tasks.reporting.ir_brief import add_containment, load_ir_activity

from .incident_bundle import approve, incident_bundle, ir_telemetry


def test_ir_activity_and_brief(settings: Settings, tmp_path: Path) -> None:
    bundle = tmp_path / "incident.json"
    bundle.write_text(json.dumps(incident_bundle()), encoding="utf-8")
    with session_scope() as s:
        dco = create_ir_dco(s, load_incident(str(bundle))).dco_id
        approve(s, dco)
    with session_scope() as s:
        run_sweep(s, str(bundle), ir_telemetry(tmp_path), dco=dco)
    with session_scope() as s:
        add_containment(s, dco, "isolate WKST-01", owner="NOC", status="in-progress")
    with session_scope() as s:
        add_containment(s, dco, "isolate WKST-01", owner="NOC", status="done")
        add_containment(s, dco, "isolate WKST-01", owner="NOC", status="done")  # nothing new
        add_containment(s, dco, "block update-check.example.net", owner="SOC")
    with session_scope() as s:
        versions = object_history(s, stix_id("course-of-action", dco, "containment", "isolate WKST-01"), dco)
        activity = load_ir_activity(s, dco)
        with pytest.raises(ValidationError):
            add_containment(s, dco, "x", owner="y", status="finished")
    assert [v["x_dco_status"] for v in versions] == ["in-progress", "done"]
    assert activity.hosts_swept == ["srv-02", "wkst-01"] and activity.hosts_with_findings == ["wkst-01"]
    assert len(activity.sweeps) == 1 and activity.sweeps[0]["counts"] == {"found": 1, "not-found": 1}
    (finding,) = activity.findings
    assert finding["name"] == "C2 domain" and finding["count"] == 2
    assert finding["first_seen"].startswith("2026-11-18T21:14:03") and finding["last_seen"].startswith("2026-11-19T09")
    # detected when the incident was recorded (2026-11-20 08:00), first activity 2026-11-18 21:14:03
    assert activity.dwell_days == pytest.approx(1.4486, abs=1e-3)
    line = activity.status_line()
    assert "indicators on 1 of 2 hosts swept" in line and "containment 1 done, 1 open" in line

    from dcoflow.flows.cli import app

    out = CliRunner().invoke(app, ["ir", "status", dco, "--out", str(tmp_path / "out"), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    brief = Path(doc["brief"]).read_text(encoding="utf-8")
    assert doc["status_line"] == line and "## Containment" in brief and "isolate WKST-01" in brief
    assert "C2 domain" in brief and "1.4 days" in brief
