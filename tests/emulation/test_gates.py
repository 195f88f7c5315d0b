"""The conduct gate on every path (CLI, task functions, flows) and dry runs that record nothing.

A DCO that is not approved, or outside its time window, is refused with an error naming the DCO,
its state and what would allow it; nothing runs and nothing is written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcoflow.connectors.content.atomics import AtomicsIndex
from dcoflow.core.db import session_scope
from dcoflow.core.errors import GateError, ValidationError
from dcoflow.models.gates import conduct_verdict, require_approver
from dcoflow.models.hunting import HuntOutcome
from dcoflow.models.operation import DcoState, Window
from dcoflow.models.plan import EmulationStep
from dcoflow.models.repository.operation import get_operation
from dcoflow.tasks.conduct.emulation.steps import execute_step, preview_emulation
from dcoflow.tasks.conduct.hunt_record import record_hunt, run_hunt_batches
from dcoflow.tasks.lifecycle import change_state

from .helpers import approve, row_counts

LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"


def _step(dco: str, order: int) -> EmulationStep:
    with session_scope() as s:
        step = s.get(EmulationStep, f"{dco}-s{order}")
        assert step is not None
        s.expunge(step)
        return step


def _assert_refusal(err: GateError, dco: str, state: str) -> None:
    text = str(err)
    assert f"DCO {dco} (state {state})" in text and "not approved for conduct" in text
    assert "dco ops approve" in text or "dco plan" in text


# -- the rule ------------------------------------------------------------------------------------


def test_rule_states_and_window() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    window = Window(start=now - timedelta(days=1), end=now + timedelta(days=1))
    for state in DcoState:
        assert conduct_verdict(state, None, now).allowed == (state in (DcoState.APPROVED, DcoState.CONDUCTING))
    assert conduct_verdict(DcoState.CONDUCTING, window, now).allowed
    early = conduct_verdict(DcoState.APPROVED, window, now - timedelta(days=2))
    late = conduct_verdict(DcoState.APPROVED, window, now + timedelta(days=2))
    assert not early.allowed and "opens at" in early.reason
    assert not late.allowed and "closed at" in late.reason
    assert "re-test" in conduct_verdict(DcoState.ASSESSING, None, now).hint


# -- emulation ------------------------------------------------------------------------------------


def test_task_refuses_unapproved_dco_and_runs_nothing(draft_emulation_dco: str, sandbox: Path) -> None:
    dco = draft_emulation_dco
    before = row_counts()
    with session_scope() as s:
        op = get_operation(s, dco)
        step = s.get(EmulationStep, f"{dco}-s1")
        assert step is not None
        with pytest.raises(GateError) as err:
            execute_step(s, step, op, dry_run=False)
        _assert_refusal(err.value, dco, "draft")
        with pytest.raises(GateError):  # a manual step is conduct too
            execute_step(s, s.get(EmulationStep, f"{dco}-s4"), op, dry_run=False)  # type: ignore[arg-type]
    assert row_counts() == before and not any(sandbox.iterdir())


def test_task_refuses_outside_the_window(draft_emulation_dco: str) -> None:
    dco = draft_emulation_dco
    with session_scope() as s:
        op = get_operation(s, dco)
        spec = dict(op.spec)
        spec["window"] = {"start": "2020-01-01T00:00:00Z", "end": "2020-01-31T00:00:00Z"}
        op.spec = spec
        s.add(op)
    approve(dco)
    with session_scope() as s:
        op = get_operation(s, dco)
        step = s.get(EmulationStep, f"{dco}-s1")
        assert step is not None
        with pytest.raises(GateError, match="window closed at 2020-01-31"):
            execute_step(s, step, op, dry_run=False)


def test_cli_execute_refuses_and_dry_run_lists_commands_recording_nothing(draft_emulation_dco: str) -> None:
    from dcoflow.flows.cli.emulate import app

    dco = draft_emulation_dco
    runner = CliRunner()
    before = row_counts()
    res = runner.invoke(app, ["run", dco, "--execute", "--no-pause"])
    assert res.exit_code == 2 and "not approved for conduct" in res.output and dco in res.output

    res = runner.invoke(app, ["run", dco, "--json"])  # dry run, the default, in state draft
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["state"] == "draft" and doc["dry_run"] is True
    first = next(s for s in doc["steps"] if s["order"] == 1)
    assert first["verdict"] == "allowed" and first["executor"] == "sh" and first["host"]
    assert "uname -a >> " in first["command"] and first["cleanup_command"].rstrip().endswith("2>/dev/null")
    assert first["arguments"]["output_file"].endswith(f"/{dco}/{dco}-s1/T1082.txt")  # filled in
    res = runner.invoke(app, ["run", dco])  # the table form prints the command lines
    assert res.exit_code == 0 and "uname -a >>" in res.output and "allowed" in res.output
    assert row_counts() == before


def test_dry_run_shows_refusals_without_recording_them(draft_emulation_dco: str, atomics: AtomicsIndex) -> None:
    dco = draft_emulation_dco
    with session_scope() as s:
        step = s.get(EmulationStep, f"{dco}-s3")
        assert step is not None
        step.command = "sudo w"
        s.add(step)
    before = row_counts()
    with session_scope() as s:
        previews = {p.order: p for p in preview_emulation(s, dco, atomics=atomics)}
    assert previews[3].verdict == "refused" and "elevated privileges (its command names sudo)" in previews[3].reasons[0]
    assert previews[1].verdict == "allowed"
    assert previews[4].verdict == "allowed" and previews[4].connector == "manual"
    assert row_counts() == before


@pytest.mark.prefect
def test_flow_refuses_unapproved_dco(prefect_harness: None, draft_emulation_dco: str, tmp_path: Path) -> None:
    from dcoflow.flows.conduct_emulation import conduct_emulation

    before = row_counts()
    with pytest.raises(GateError) as err:
        conduct_emulation(dco=draft_emulation_dco, dry_run=False, pause_for_input=False,
                          attack_source=str(tmp_path / "none.json"))
    _assert_refusal(err.value, draft_emulation_dco, "draft")
    assert row_counts() == before


# -- hunts recorded against a DCO -----------------------------------------------------------------------


def test_hunt_task_functions_refuse_unapproved_dco(draft_emulation_dco: str) -> None:
    dco = draft_emulation_dco
    before = row_counts()
    with session_scope() as s, pytest.raises(GateError) as err:
        record_hunt(s, dco, HuntOutcome(source="x"), hunt_key="k", catalog=None)
    _assert_refusal(err.value, dco, "draft")
    ran: list[Any] = []
    with pytest.raises(GateError):
        run_hunt_batches(dco, [], lambda batch: ran.append(batch) or HuntOutcome(source="x"), hunt_key="k",
                         source="x", catalog=None)
    assert not ran and row_counts() == before


def test_cli_hunt_with_dco_refuses_before_reading(draft_emulation_dco: str, shared_dir: Path) -> None:
    from dcoflow.flows.cli.hunt import app

    res = CliRunner().invoke(app, ["--rules", str(shared_dir / "sigma/rules/windows"), "--data",
                                   str(shared_dir / LSASS_ZIP), "--dco", draft_emulation_dco, "--json"])
    assert res.exit_code == 2 and "hunt refused" in res.output and draft_emulation_dco in res.output


@pytest.mark.prefect
def test_hunt_flow_refuses_unapproved_dco(prefect_harness: None, draft_emulation_dco: str, shared_dir: Path) -> None:
    from dcoflow.flows.hunt import HuntParameters, hunt

    with pytest.raises(GateError):
        hunt(HuntParameters(dco=draft_emulation_dco, data=[str(shared_dir / LSASS_ZIP)],
                            rules_path=[str(shared_dir / "sigma/rules/windows")], techniques=["T1003.001"]))


# -- approval ---------------------------------------------------------------------------------------------


def test_empty_approver_is_refused(draft_emulation_dco: str) -> None:
    dco = draft_emulation_dco
    change_state(dco, DcoState.PLANNED, "planner")
    for blank in ("", "   "):
        with pytest.raises(ValidationError, match="approver"):
            change_state(dco, DcoState.APPROVED, blank, "ok")
    with pytest.raises(ValidationError):
        require_approver(None)
    with session_scope() as s:
        op = get_operation(s, dco)
        assert op.state == DcoState.PLANNED and op.approved_by is None
    assert change_state(dco, DcoState.APPROVED, " J. Smith (OCIO) ")["to"] == "approved"
    with session_scope() as s:
        assert get_operation(s, dco).approved_by == "J. Smith (OCIO)"


def test_cli_approve_with_empty_by_is_refused(draft_emulation_dco: str) -> None:
    from dcoflow.flows.cli.ops import app

    change_state(draft_emulation_dco, DcoState.PLANNED, "planner")
    res = CliRunner().invoke(app, ["approve", draft_emulation_dco, "--by", " "])
    assert res.exit_code == 2 and "approver" in res.output
    with session_scope() as s:
        assert get_operation(s, draft_emulation_dco).state == DcoState.PLANNED
