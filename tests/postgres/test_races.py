"""Concurrent analysts on PostgreSQL (issue 8, item 4): the commands that raced into unique violations or
silently kept the last writer, each run by three processes released together. Each race ends with one
winner; the others either get the winner's identical result back (the same input twice is one result) or a
one-line "changed by someone else" error showing what is stored now. Nothing is stored twice, nothing a
winner wrote is lost, no process prints a traceback."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlmodel import col, func, select

from dcoflow.connectors.content.governance_file import load_governance
from dcoflow.connectors.content.operation_file import spec_from_data
from dcoflow.core.db import session_scope
from dcoflow.core.settings import get_settings
from dcoflow.models.attack import Catalog
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import EmulationOutcome
from dcoflow.models.followup import Action, GapInput, Risk, RiskDecision
from dcoflow.models.hunt_run import HuntRun, TriageVerdict
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.meeting import Meeting, MeetingItem
from dcoflow.models.operation import DcoSpec, DcoState, Operation
from dcoflow.models.repository.operation import audit_trail, create_operation, get_operation, transition
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.models.stix.rows import StixObjectRow
from dcoflow.tasks.assess.scoring import assess_dco, gaps_for_follow_up
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.conduct.local_hunt import run_local_hunt
from dcoflow.tasks.follow_up.actions import plan_actions
from dcoflow.tasks.follow_up.risks import derive_risks
from dcoflow.tasks.plan.planning import load_content, make_plan, store_plan

from .conftest import Ran, race

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"
RULES = "sigma/rules/windows/process_access"


def _spec(name: str, objective: str = "find credential theft") -> DcoSpec:
    return spec_from_data({
        "name": name, "objective": objective, "type": "purple-team",
        "scope": {"platforms": ["windows"], "hosts": ["lab-win-01"]},
        "threat_profile": {"techniques": ["T1003.001", "T1059.001"]},
        "participants": [{"organisation": "CyOC", "role": "conduct"}, {"organisation": "OCIO", "role": "lead"}],
    }, "test")


@dataclass(frozen=True, slots=True)
class Stage:
    dco: str
    sighting: str


@pytest.fixture(scope="module")
def stage(pg_url: str, shared_dir: Path, catalog: Catalog) -> Stage:
    """A planned, approved DCO with a real hunt recorded (the LSASS recording), assessed, followed up with risks
    and actions, and back in conduct for a re-test: what the races below act on."""
    atomics, rules, _ = load_content(get_settings())
    spec = _spec("Race on credentials")
    with session_scope() as s:
        dco = create_operation(s, spec, "coordinator").id
        store_plan(s, make_plan(dco, spec, catalog, atomics, rules), "coordinator")
        for state in (DcoState.APPROVED, DcoState.CONDUCTING):
            transition(s, get_operation(s, dco), state, "coordinator", "test")
    outcome = run_local_hunt(shared_dir / RULES, shared_dir / LSASS_ZIP, HuntSelection(techniques=["T1003"]))
    with session_scope() as s:
        record_hunt(s, dco, outcome, hunt_key="fixture", catalog=catalog)
        sighting = str(next(o["id"] for o in latest_objects(s, dco, ["sighting"])))
        result = assess_dco(s, dco, catalog)
        gaps = [GapInput.model_validate(g) for g in gaps_for_follow_up(result, catalog, limit=5)]
        for state in (DcoState.ASSESSING, DcoState.FOLLOW_UP):
            transition(s, get_operation(s, dco), state, "coordinator", "test")
        derive_risks(s, dco, gaps, [])
        plan_actions(s, dco, gaps, [], catalog)
        transition(s, get_operation(s, dco), DcoState.CONDUCTING, "coordinator", "re-test")  # hunts need conduct
    return Stage(dco, sighting)


def _one_winner(results: list[Ran]) -> Ran:
    winners = [r for r in results if r.exit_code == 0]
    assert len(winners) == 1, results
    losers = [r for r in results if r.exit_code != 0]
    assert all(r.conflict for r in losers), losers
    return winners[0]


def _write(path: Path, spec: DcoSpec) -> Path:
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    return path


def test_ops_create_race(pg_url: str, tmp_path: Path) -> None:
    # Three different files for one new DCO name: one is stored, two are told and keep their file.
    files = [_write(tmp_path / f"op{i}.yaml", _spec("Race to create", f"objective number {i}")) for i in range(3)]
    got = race(pg_url, [["ops", "create", str(f), "--by", f"analyst{i}", "--json"] for i, f in enumerate(files)],
               ["operation"])
    winner = _one_winner(got)
    stored = json.loads(winner.output)
    with session_scope() as s:
        op = s.get_one(Operation, stored["dco"])
        assert op.version == 1 and op.state == DcoState.DRAFT
        assert op.spec == yaml.safe_load(Path(winner.argv[2]).read_text())  # the winner's file, whole
        assert [e.action for e in audit_trail(s, op.id)] == ["create"]
    for loser in (r for r in got if r is not winner):
        assert f"DCO {op.id} was created by someone else meanwhile" in loser.output

    # Three copies of one file: one DCO, everyone gets it back, one audit event.
    same = _write(tmp_path / "same.yaml", _spec("Race to create the same"))
    got = race(pg_url, [["ops", "create", str(same), "--json"]] * 3, ["operation"])
    assert [r.exit_code for r in got] == [0, 0, 0], got
    assert len({json.loads(r.output)["dco"] for r in got}) == 1
    with session_scope() as s:
        op = get_operation(s, "Race to create the same")
        assert [e.action for e in audit_trail(s, op.id)] == ["create"]


def test_ops_approve_race(pg_url: str, catalog: Catalog) -> None:
    atomics, rules, _ = load_content(get_settings())
    spec = _spec("Race to approve")
    with session_scope() as s:
        dco = create_operation(s, spec, "coordinator").id
        store_plan(s, make_plan(dco, spec, catalog, atomics, rules), "coordinator")
        version = get_operation(s, dco).version
    got = race(pg_url, [["ops", "approve", dco, "--by", "Ann (OCIO)"],
                        ["ops", "approve", dco, "--by", "Bob (CyOC)"],
                        ["ops", "approve", dco, "--by", "Cyd (JISD)", "--reject", "--comment", "not yet"]],
               ["operation"])
    winner = _one_winner(got)
    with session_scope() as s:
        op = get_operation(s, dco)
        decided = [e for e in audit_trail(s, dco) if e.action == "transition" and e.from_state == "planned"]
    assert len(decided) == 1 and op.version == version + 1  # one decision, not two approvals and a rejection
    assert decided[0].actor == winner.argv[4]
    assert op.state == (DcoState.PLANNED if "--reject" in winner.argv else DcoState.APPROVED)
    for loser in (r for r in got if r is not winner):
        assert f"now: state {op.state.value}, version {op.version}" in loser.output


def test_emulate_record_race(pg_url: str, stage: Stage) -> None:
    answers = ["alerted", "logged", "none"]
    got = race(pg_url, [["emulate", "record", stage.dco, "T1059.001", "--tool", "EDR", "--outcome", a,
                         "--operator", f"op-{a}"] for a in answers], ["emulation_outcome"])
    winner = _one_winner(got)
    with session_scope() as s:
        rows = s.exec(select(EmulationOutcome).where(EmulationOutcome.dco_id == stage.dco,
                                                     EmulationOutcome.tool == "EDR")).all()
    assert len(rows) == 1 and rows[0].version == 1
    assert rows[0].outcome.value == winner.argv[winner.argv.index("--outcome") + 1]
    for loser in (r for r in got if r is not winner):
        assert f"recorded by someone else meanwhile: {rows[0].outcome.value} by {rows[0].operator}" in loser.output


def test_hunt_with_dco_race(pg_url: str, stage: Stage, shared_dir: Path) -> None:
    # The same hunt recorded three times at once: one run, each result once, no error.
    argv = ["hunt", "--rules", str(shared_dir / RULES), "--data", str(shared_dir / LSASS_ZIP),
            "--technique", "T1003", "--dco", stage.dco, "--hunt-key", "raced", "--json"]
    got = race(pg_url, [argv] * 3, ["hunt_run"])
    assert [r.exit_code for r in got] == [0, 0, 0], got
    runs = {json.loads(r.output)["hunt_run"] for r in got}
    assert len(runs) == 1
    with session_scope() as s:
        run = s.get_one(HuntRun, runs.pop())
        hits = json.loads(got[0].output)["rules"]
        assert run.hits == sum(r["matches"] for r in hits) > 0
        dup = s.exec(select(StixObjectRow.id, StixObjectRow.modified, func.count())
                     .group_by(col(StixObjectRow.id), col(StixObjectRow.modified), col(StixObjectRow.dco_id))
                     .having(func.count() > 1)).all()
        assert dup == []


def test_hunt_triage_race(pg_url: str, stage: Stage) -> None:
    verdicts = ["true-positive", "false-positive", "benign"]
    got = race(pg_url, [["hunt", "triage", stage.sighting, "--verdict", v, "--analyst", "alice"] for v in verdicts],
               ["triage_verdict"])
    winner = _one_winner(got)
    with session_scope() as s:
        rows = s.exec(select(TriageVerdict).where(TriageVerdict.sighting_id == stage.sighting)).all()
        opinions = [o for o in latest_objects(s, stage.dco, ["opinion"]) if stage.sighting in o["object_refs"]]
    assert [(r.analyst, r.version) for r in rows] == [("alice", 1)]
    assert rows[0].verdict.value == winner.argv[winner.argv.index("--verdict") + 1]
    assert len(opinions) == 1 and opinions[0]["x_dco_verdict"] == rows[0].verdict.value


def test_action_update_race(pg_url: str, stage: Stage) -> None:
    with session_scope() as s:
        action = s.exec(select(Action).where(Action.dco_id == stage.dco).order_by(col(Action.id))).first()
        assert action is not None and action.version == 1
    got = race(pg_url, [["followup", "action-update", action.id, "--status", "in-progress", "--version", "1",
                         "--by", who] for who in ("ann", "bob", "cyd")], ["followup_action"])
    winner = _one_winner(got)
    with session_scope() as s:
        after = s.get_one(Action, action.id)
        moves = [e for e in audit_trail(s, stage.dco) if e.action == "action-status"
                 and e.details.get("action") == action.id]
    assert after.version == 2 and after.status.value == "in-progress"
    assert [e.actor for e in moves] == [winner.argv[-1]]
    for loser in (r for r in got if r is not winner):
        assert "(version 1 → 2); now: status in-progress, version 2" in loser.output


def test_followup_decide_race(pg_url: str, stage: Stage) -> None:
    with session_scope() as s:
        risk = s.exec(select(Risk).where(Risk.dco_id == stage.dco).order_by(col(Risk.id))).first()
        assert risk is not None
    top = load_governance().decision_bodies[-1].name  # the highest authority may decide any risk
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    got = race(pg_url, [
        ["followup", "decide", risk.id, "--decision", "accept", "--authority", top, "--rationale", "low value",
         "--expires", expires, "--by", "ann"],
        ["followup", "decide", risk.id, "--decision", "mitigate", "--authority", top, "--rationale", "fix it",
         "--by", "bob"],
        ["followup", "decide", risk.id, "--decision", "transfer", "--authority", top, "--rationale", "insure",
         "--by", "cyd"],
    ], ["followup_risk"])
    winner = _one_winner(got)
    with session_scope() as s:
        decisions = s.exec(select(RiskDecision).where(RiskDecision.risk_id == risk.id)).all()
        after = s.get_one(Risk, risk.id)
    assert len(decisions) == 1 and decisions[0].decided_by == winner.argv[-1]
    assert after.treatment == decisions[0].decision and after.version == risk.version + 1
    for loser in (r for r in got if r is not winner):
        assert f"decision {decisions[0].decision.value} by {top}" in loser.output


def test_meeting_create_race(pg_url: str, stage: Stage) -> None:
    at = "2026-12-20T10:00"
    same = ["meeting", "create", stage.dco, "--body", "CRMG", "--at", at, "--json"]
    got = race(pg_url, [same] * 3, ["meeting"])
    assert [r.exit_code for r in got] == [0, 0, 0], got
    with session_scope() as s:
        meetings = s.exec(select(Meeting).where(Meeting.dco_id == stage.dco)).all()
        assert len(meetings) == 1
        items = s.exec(select(MeetingItem).where(MeetingItem.meeting_id == meetings[0].id)).all()
        assert len(items) == len({(i.kind, i.ref_kind, i.ref_id) for i in items}) > 0
        created = [e for e in s.exec(select(AuditEvent).where(AuditEvent.action == "meeting-created"))]
        assert len(created) == 1
    # Different attendee lists for one meeting: one list is stored, the others are told.
    got = race(pg_url, [["meeting", "create", stage.dco, "--body", "BCISOA", "--at", at, "--attendee", who]
                        for who in ("NCIA", "JISD", "CyOC")], ["meeting"])
    winner = _one_winner(got)
    with session_scope() as s:
        bcisoa = s.exec(select(Meeting).where(Meeting.body == "BCISOA")).one()
    assert bcisoa.attendees == [winner.argv[-1]]
