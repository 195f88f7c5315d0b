"""Recording outcomes (rows, versions, STIX, audit), deconfliction, VECTR and Caldera exchange,
CTID import — against a real SQLite store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest
import stix2

from dcoflow.connectors.content.atomics import load_atomics
from dcoflow.connectors.content.ctid import load_ctid_plan
from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ExecutionError, NotFoundError, ValidationError
from dcoflow.models.emulation import Deconfliction, EmulationOutcome, Outcome, OutcomeInput
from dcoflow.models.plan import EmulationStep, ProcedureSource, StepStatus
from dcoflow.models.repository.emulation import current_outcomes, outcome_history, steps_without_procedure
from dcoflow.models.repository.operation import audit_trail, get_operation
from dcoflow.models.repository.stix_store import latest_objects, object_history
from dcoflow.tasks.conduct.emulation.exchange import export_vectr, import_caldera_report, import_vectr
from dcoflow.tasks.conduct.emulation.outcomes import record_outcome
from dcoflow.tasks.conduct.emulation.plan_import import import_atomics_into_plan, import_ctid_plan
from dcoflow.tasks.conduct.emulation.steps import deconflict_step

T0 = "2026-11-28T10:00:00Z"
T1 = "2026-11-28T10:05:00Z"


def test_record_outcome_versions_and_stix(emulation_dco: str) -> None:
    step = f"{emulation_dco}-s1"
    with session_scope() as s:
        first = record_outcome(s, emulation_dco, step, {"tool": "EDR", "outcome": "alerted", "severity": "high",
                                                         "attack_start": T0, "attack_stop": T1,
                                                         "detected_at": T1, "operator": "alice",
                                                         "notes": "alert after 5 min",
                                                         "telemetry": [{"type": "process", "pid": 4242,
                                                                        "command_line": "uname -a"}]})
        again = record_outcome(s, emulation_dco, step, {"tool": "EDR", "outcome": "alerted", "severity": "high",
                                                         "attack_start": T0, "attack_stop": T1,
                                                         "detected_at": T1, "operator": "alice",
                                                         "notes": "alert after 5 min",
                                                         "telemetry": [{"type": "process", "pid": 4242,
                                                                        "command_line": "uname -a"}]})
        assert again.id == first.id and again.version == 1  # identical input: nothing new
        record_outcome(s, emulation_dco, step, {"tool": "SIEM", "outcome": "none", "operator": "alice"})
    with session_scope() as s:
        fixed = record_outcome(s, emulation_dco, step, {"tool": "EDR", "outcome": "prevented", "operator": "bob"})
        assert fixed.version == 2
        assert [r.outcome for r in outcome_history(s, emulation_dco, step, "EDR")] == [Outcome.ALERTED,
                                                                                       Outcome.PREVENTED]
        current = {r.tool: r.outcome for r in current_outcomes(s, emulation_dco)}
        assert current == {"EDR": Outcome.PREVENTED, "SIEM": Outcome.NONE}
        assert s.get(EmulationStep, step).status == StepStatus.DONE  # type: ignore[union-attr]
        sightings = latest_objects(s, emulation_dco, ["sighting"])
        assert len(sightings) == 2
        edr = next(o for o in sightings if o["x_dco_outcome"] == "prevented")
        assert len(object_history(s, edr["id"])) == 2  # the corrected outcome kept the first version
        objects = latest_objects(s, emulation_dco)
        actions = [e.action for e in audit_trail(s, emulation_dco)]
    assert actions.count("emulation-outcome") == 3
    for obj in objects:
        stix2.parse(obj, allow_custom=True)
    assert edr["x_dco_step_id"] == step and edr["x_dco_technique_id"] == "T1082"
    assert edr["where_sighted_refs"][0].startswith("identity--")
    types = {o["type"] for o in objects}
    assert {"sighting", "identity", "note", "observed-data", "process", "attack-pattern"} <= types


def test_invalid_outcome_names_step_and_field(emulation_dco: str) -> None:
    step = f"{emulation_dco}-s2"
    with session_scope() as s, pytest.raises(ValidationError) as err:
        record_outcome(s, emulation_dco, step, {"tool": "EDR", "outcome": "maybe"})
    assert err.value.field == "outcome" and step in str(err.value) and "alerted" in str(err.value)
    with pytest.raises(ValidationError) as err2:
        OutcomeInput.parse("s9", {"tool": "EDR", "outcome": "none", "attack_start": T1, "attack_stop": T0})
    assert "s9" in str(err2.value) and "attack_stop is before attack_start" in str(err2.value)
    with pytest.raises(ValidationError, match="severity"):
        OutcomeInput.parse("s9", {"tool": "EDR", "outcome": "alerted", "severity": "apocalyptic"})
    with session_scope() as s:
        assert s.query(EmulationOutcome).count() == 0
        with pytest.raises(NotFoundError, match="no such emulation step"):
            record_outcome(s, emulation_dco, "nope", {"tool": "EDR", "outcome": "none"})
        assert record_outcome(s, emulation_dco, "3", {"tool": "EDR", "outcome": "logged"}).step_id.endswith("-s3")


def test_deconfliction_records_and_signs(emulation_dco: str) -> None:
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "ack-7"})

    hook = WebhookClient("https://soc.example.org/hook", secret="k", transport=httpx.MockTransport(receiver))
    with session_scope() as s:
        op = get_operation(s, emulation_dco)
        step = s.get(EmulationStep, f"{emulation_dco}-s1")
        assert step is not None
        rows = deconflict_step(s, op, step, webhook=hook)
        assert [(r.notified, r.status, r.receipt) for r in rows] == [("soc-duty@example.org", "sent", "ack-7")]
        assert rows[0].marker == f"DCO-{emulation_dco}"
        deconflict_step(s, op, step, webhook=hook)  # already told: not told again
    assert len(seen) == 1 and json.loads(seen[0].content)["payload"]["marker"] == f"DCO-{emulation_dco}"
    assert json.loads(seen[0].content)["payload"]["marking"]["label"].startswith("TLP:")  # the notice is marked

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="maintenance")

    broken = WebhookClient("https://soc.example.org/hook", transport=httpx.MockTransport(down), retries=1,
                           sleep=lambda _s: None, allow_unsigned=True)
    with session_scope() as s:
        op = get_operation(s, emulation_dco)
        step = s.get(EmulationStep, f"{emulation_dco}-s2")
        assert step is not None
        with pytest.raises(ExecutionError) as err:
            deconflict_step(s, op, step, webhook=broken)
        assert f"step {emulation_dco}-s2" in str(err.value)
    with session_scope() as s:
        failed = s.query(Deconfliction).filter_by(step_id=f"{emulation_dco}-s2").one()
        assert failed.status == "failed" and "503" in (failed.error or "")


def test_vectr_round_trip(emulation_dco: str, tmp_path: Path) -> None:
    with session_scope() as s:
        record_outcome(s, emulation_dco, f"{emulation_dco}-s1",
                       {"tool": "EDR", "outcome": "alerted", "severity": "medium", "attack_start": T0,
                        "attack_stop": T1, "operator": "alice", "target_host": "lab-linux-01"})
        record_outcome(s, emulation_dco, f"{emulation_dco}-s1", {"tool": "SIEM", "outcome": "logged"})
        path = tmp_path / "vectr.csv"
        assert export_vectr(s, emulation_dco, path) == 4
    rows = list(csv.DictReader(path.open()))
    first = rows[0]
    assert first["MitreID"] == "T1082" and first["Outcome"] == "Detected" and first["Alert Severity"] == "Med"
    assert first["DetectingTools"] == "EDR,SIEM" and first["Alert Triggered"] == "Yes"
    assert first["Start Time"] == "2026-11-28T10:00:00.000Z" and first["TargetAssets"] == "lab-linux-01"
    assert rows[1]["Outcome"] == "TBD"
    # the purple team corrects SIEM in VECTR and adds a VECTR-native row for step 3
    first["DCO Tool Outcomes"] = "EDR=alerted;SIEM=alerted"
    native = {k: "" for k in first} | {"Variant": "3. System Owner/User Discovery", "MitreID": "T1033",
                                        "Outcome": "Detected", "Alert Triggered": "Yes",
                                        "DetectingTools": "Sysmon", "ExpectedDetectionLayers": "Sysmon,EDR"}
    bad = {k: "" for k in first} | {"Variant": "nope", "MitreID": "T1082", "Outcome": "Sort of"}
    orphan = {k: "" for k in first} | {"Variant": "Kerberoast", "MitreID": "T1558.003", "Outcome": "Blocked"}
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(first))
        writer.writeheader()
        writer.writerows([first, native, bad, orphan])
    with session_scope() as s:
        summary = import_vectr(s, emulation_dco, path)
        current = {(r.step_id[-2:], r.tool): r.outcome for r in current_outcomes(s, emulation_dco)}
    assert summary.updated == 1 and summary.unchanged == 1 and summary.created == 2
    assert any("Sort of" in w for w in summary.warnings) and any("Kerberoast" in w for w in summary.warnings)
    assert current[("s1", "SIEM")] == Outcome.ALERTED
    assert current[("s3", "Sysmon")] == Outcome.ALERTED and current[("s3", "EDR")] == Outcome.NONE


def test_vectr_rows_for_one_step_and_tool_become_versions(emulation_dco: str, tmp_path: Path) -> None:
    """Two rows of one file for the same step and tool: the second supersedes the first (the import reads the
    history once, so it must see what it wrote itself)."""
    with session_scope() as s:
        path = tmp_path / "vectr.csv"
        export_vectr(s, emulation_dco, path)
    first = next(csv.DictReader(path.open()))
    rows = [first | {"DCO Tool Outcomes": "EDR=alerted"}, first | {"DCO Tool Outcomes": "EDR=prevented"}]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(first))
        writer.writeheader()
        writer.writerows(rows)
    with session_scope() as s:
        summary = import_vectr(s, emulation_dco, path)
        versions = [(r.version, r.outcome) for r in outcome_history(s, emulation_dco, f"{emulation_dco}-s1", "EDR")]
    assert (summary.created, summary.updated, summary.unchanged) == (1, 1, 0)
    assert versions == [(1, Outcome.ALERTED), (2, Outcome.PREVENTED)]


def test_atomics_fill_pending_steps_without_procedure(emulation_dco: str, shared_dir: Path) -> None:
    atomics = load_atomics(shared_dir / "atomics")
    with session_scope() as s:
        s.add(EmulationStep(id=f"{emulation_dco}-s5", dco_id=emulation_dco, order=5, tactic="execution",
                            technique_id="T1059.004", technique_name="Unix Shell", source=ProcedureSource.MANUAL,
                            procedure_name="by hand", status=StepStatus.RUNNING))
    with session_scope() as s:
        summary = import_atomics_into_plan(s, emulation_dco, atomics)
    assert (summary.updated, summary.unchanged) == (1, 1)
    assert any("step 5 T1059.004: already running" in w for w in summary.warnings)
    with session_scope() as s:
        step = s.get_one(EmulationStep, f"{emulation_dco}-s4")
        assert step.source == ProcedureSource.ATOMIC and step.command and step.executor in ("sh", "bash")
        assert step.version == 2 and 0 < len(step.candidates) <= 9 and step.connector == "manual"
        assert step.procedure_ref not in {c["guid"] for c in step.candidates}
    with session_scope() as s:
        assert import_atomics_into_plan(s, emulation_dco, atomics).updated == 0  # step 4 has its procedure now


def test_caldera_report_import(emulation_dco: str, tmp_path: Path) -> None:
    import base64

    report = {
        "name": "dco-op", "start": "2026-11-28 02:07:21", "finish": "2026-11-28 02:20:00", "planner": "atomic",
        "adversary": {"name": "Discovery"}, "jitter": "2/8", "objectives": {}, "facts": [],
        "host_group": [{"paw": "abcd", "host": "lab-linux-01"}],
        "steps": {"abcd": {"steps": [
            {"link_id": "l1", "ability_id": "2a9b677d-a230-44f4-ad86-782df1ef108c",
             "command": base64.b64encode(b"users; w; who").decode(), "delegated": "2026-11-28 02:08:00",
             "run": "2026-11-28 02:08:05", "status": 0, "platform": "linux", "executor": "sh", "pid": 1,
             "description": "", "name": "System Owner/User Discovery",
             "attack": {"tactic": "discovery", "technique_name": "System Owner/User Discovery",
                        "technique_id": "T1033"}},
            {"link_id": "l2", "ability_id": "zzz", "command": "", "delegated": "2026-11-28 02:09:00", "run": None,
             "status": -2, "platform": "linux", "executor": "sh", "pid": None, "description": "", "name": "Other",
             "attack": {"tactic": "discovery", "technique_name": "x", "technique_id": "T1049"}},
            {"link_id": "l3", "status": 0},
        ]}},
        "skipped_abilities": [],
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    with session_scope() as s:
        summary = import_caldera_report(s, emulation_dco, path, tool="EDR", outcome=Outcome.NONE)
        again = import_caldera_report(s, emulation_dco, path, tool="EDR", outcome=Outcome.NONE)
        rows = outcome_history(s, emulation_dco, f"{emulation_dco}-s3")
    assert summary.created == 1 and again.unchanged == 1 and again.created == 0
    assert any("T1049" in w for w in summary.warnings) and any("step 3" in w for w in summary.warnings)
    assert len(rows) == 1 and rows[0].target_host == "lab-linux-01" and rows[0].source.value == "caldera"


def test_ctid_import_keeps_unknown_techniques(emulation_dco: str, shared_dir: Path) -> None:
    plan = load_ctid_plan(shared_dir / "emulation-library/turla/Emulation_Plan/yaml/turla_snake.yaml")
    with session_scope() as s:
        summary = import_ctid_plan(s, emulation_dco, plan)
        again = import_ctid_plan(s, emulation_dco, plan)
        steps = s.query(EmulationStep).filter_by(dco_id=emulation_dco).order_by(EmulationStep.order).all()
        manual = steps_without_procedure(s, emulation_dco)
    assert summary.created == 53 and again.created == 0 and again.unchanged == 53
    assert len(steps) == 57 and steps[4].order == 5 and steps[5].depends_on == [steps[4].id]
    assert any("'x'" in w for w in summary.warnings)
    assert {s.technique_id for s in steps} >= {"x"}  # kept, reported
    assert steps[3] in manual  # the operator's manual step has no command


def test_step_exposing_real_compromise_opens_one_incident(emulation_dco: str) -> None:
    """An operator who finds real adversary activity flags the outcome; follow-up escalates it once."""
    from dcoflow.models.repository.followup import list_incidents
    from dcoflow.tasks.follow_up.escalation import findings_from_store, open_incidents

    with session_scope() as s:
        record_outcome(s, emulation_dco, f"{emulation_dco}-s3", {
            "tool": "EDR", "outcome": "alerted", "severity": "high", "target_host": "ws-17",
            "notes": "found an unknown implant beside our test", "compromise": True})
        record_outcome(s, emulation_dco, f"{emulation_dco}-s1", {"tool": "EDR", "outcome": "logged"})
    with session_scope() as s:
        [sighting] = [o for o in latest_objects(s, emulation_dco, ["sighting"]) if o.get("x_dco_compromise")]
        assert sighting["x_dco_target"] == "ws-17"
        findings = findings_from_store(s, emulation_dco)
        assert [(f.kind, f.sighting_id) for f in findings] == [("emulation-exposed-compromise", sighting["id"])]
        open_incidents(s, emulation_dco, findings)
    with session_scope() as s:
        open_incidents(s, emulation_dco, findings_from_store(s, emulation_dco))  # a second run adds nothing
        [incident] = list_incidents(s, dco_id=emulation_dco)
        assert incident.finding_key == sighting["id"]
