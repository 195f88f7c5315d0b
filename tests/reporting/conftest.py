"""A DCO with real stored evidence for the reporting tests, built with the phases' own functions:
the demo operation planned against the real content, a local Sigma hunt over a real Security-Datasets
recording, emulation outcomes, two assessments (before and after the outcomes), risks, actions and an
incident from a true-positive triage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.followup import GapInput
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.operation import DcoState
from dcoflow.models.repository.emulation import get_step
from dcoflow.models.repository.operation import create_operation, get_operation, transition
from dcoflow.models.repository.stix_store import latest_objects
from dcoflow.tasks.assess.scoring import assess_dco, gaps_for_follow_up
from dcoflow.tasks.conduct.emulation.outcomes import record_outcome
from dcoflow.tasks.conduct.hunt_record import record_hunt
from dcoflow.tasks.conduct.local_hunt import run_local_hunt
from dcoflow.tasks.conduct.triage import triage_hit
from dcoflow.tasks.follow_up.actions import plan_actions
from dcoflow.tasks.follow_up.escalation import findings_from_store, open_incidents
from dcoflow.tasks.follow_up.risks import derive_risks
from dcoflow.tasks.plan.planning import load_content, make_plan, store_plan

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "flows" / "demo" / "apt29-purple-team.yaml"
LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"
BEFORE = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
AFTER = datetime(2026, 12, 12, 12, 0, tzinfo=UTC)
# Actions are planned a while before the brief, so the short-SLA ones are overdue by then.
ACTIONS_PLANNED = date(2026, 11, 1)
NOW = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)


@dataclass(slots=True)
class Built:
    dco_id: str
    hunt_hits: int
    real_hits: int
    exercise_hits: int
    events_read: int
    gaps: list[GapInput]


@pytest.fixture()
def built(settings: Settings, shared_dir: Path, catalog: Catalog) -> Built:
    spec = load_operation_file(DEMO)
    atomics, rules, _ = load_content(settings)
    with session_scope() as s:
        op = create_operation(s, spec, "coordinator")
        dco_id = op.id
        store_plan(s, make_plan(dco_id, spec, catalog, atomics, rules), "coordinator")
        for state in (DcoState.APPROVED, DcoState.CONDUCTING):
            transition(s, get_operation(s, dco_id), state, "coordinator", "test")

    outcome = run_local_hunt(shared_dir / "sigma" / "rules" / "windows", shared_dir / LSASS_ZIP,
                             HuntSelection(techniques=["T1003"]))
    with session_scope() as s:
        run = record_hunt(s, dco_id, outcome, hunt_key="lsass-comsvcs", catalog=catalog)
        hits, exercise, events = run.hits, run.exercise_hits, run.events_read
        sighting = next(o["id"] for o in latest_objects(s, dco_id, ["sighting"]))
        triage_hit(s, sighting, "true-positive", "alice", "comsvcs MiniDump of LSASS on a real host", at=BEFORE)

    with session_scope() as s:
        assess_dco(s, dco_id, catalog, now=BEFORE)
        record_outcome(s, dco_id, get_step(s, dco_id, "T1003.001").id,
                       {"tool": "EDR", "outcome": "alerted", "severity": "high", "operator": "bob"}, catalog=catalog)
        record_outcome(s, dco_id, get_step(s, dco_id, "T1059.001").id,
                       {"tool": "EDR", "outcome": "none", "operator": "bob"}, catalog=catalog)
        record_outcome(s, dco_id, get_step(s, dco_id, "T1059.001").id,
                       {"tool": "Sysmon+SIEM", "outcome": "logged", "operator": "bob"}, catalog=catalog)
        result = assess_dco(s, dco_id, catalog, now=AFTER)
        ranked = [g for g in gaps_for_follow_up(result, catalog, limit=len(result.gaps))
                  if catalog.get_technique(g["technique_id"]) is not None]
        # The three worst gaps and three of the mildest: risks for both CRMG and BCISOA (the worst all reach
        # the critical domain controllers blind, so they all score 25).
        gaps = [GapInput.model_validate(g) for g in ranked[:3] + ranked[-3:]]
        transition(s, get_operation(s, dco_id), DcoState.ASSESSING, "coordinator", "test")
        transition(s, get_operation(s, dco_id), DcoState.FOLLOW_UP, "coordinator", "test")
        findings = findings_from_store(s, dco_id)
        derive_risks(s, dco_id, gaps, findings, catalog=catalog, today=ACTIONS_PLANNED)
        plan_actions(s, dco_id, gaps, findings, catalog, today=ACTIONS_PLANNED)
        open_incidents(s, dco_id, findings, now=AFTER - timedelta(days=1))
    return Built(dco_id, hits, hits - exercise, exercise, events, gaps)
