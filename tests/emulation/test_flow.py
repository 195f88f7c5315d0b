"""The conduct-emulation flow on a Prefect test server: local execution, manual outcomes given
as a parameter, resuming without re-running, and pausing for typed input resumed through the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dcoflow.core.db import session_scope
from dcoflow.flows.conduct_emulation import conduct_emulation
from dcoflow.models.emulation import EmulationExecution, Outcome
from dcoflow.models.plan import EmulationStep, StepStatus
from dcoflow.models.repository.emulation import current_outcomes

from .helpers import row_counts

pytestmark = pytest.mark.prefect


def _executions(dco: str) -> dict[str, int]:
    with session_scope() as s:
        rows = s.query(EmulationExecution).filter_by(dco_id=dco).all()
        out: dict[str, int] = {}
        for r in rows:
            out[r.step_id[-2:]] = out.get(r.step_id[-2:], 0) + 1
        return out


def _statuses(dco: str) -> dict[str, StepStatus]:
    with session_scope() as s:
        return {r.id[-2:]: r.status for r in s.query(EmulationStep).filter_by(dco_id=dco)}


def run(dco: str, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"dco": dco, "attack_source": str(tmp_path / "no-attack.json"),
                              "pause_for_input": False, "dry_run": False}
    params.update(kw)
    return conduct_emulation(**params)


def test_dry_run_shows_commands_and_changes_nothing(prefect_harness: None, draft_emulation_dco: str,
                                                    tmp_path: Path) -> None:
    before = row_counts()
    result = run(draft_emulation_dco, tmp_path, dry_run=True)  # a draft: dry runs need no approval
    by_order = {r["order"]: r for r in result["steps"]}
    assert by_order[1]["verdict"] == "allowed" and "uname -a >> " in by_order[1]["command"]
    assert by_order[1]["command"].startswith(f": DCO-{draft_emulation_dco};")
    assert by_order[1]["executor"] == "sh" and by_order[1]["host"]
    assert set(_statuses(draft_emulation_dco).values()) == {StepStatus.PENDING}
    assert row_counts() == before


def test_runs_resumes_without_rerunning(prefect_harness: None, emulation_dco: str, tmp_path: Path) -> None:
    first = run(emulation_dco, tmp_path, manual_outcomes={"1": {"tool": "EDR", "outcome": "alerted"}})
    assert _statuses(emulation_dco) == {"s1": StepStatus.DONE, "s2": StepStatus.RUNNING,
                                        "s3": StepStatus.RUNNING, "s4": StepStatus.RUNNING}
    assert _executions(emulation_dco) == {"s1": 1, "s2": 1, "s3": 1}
    assert first["status_counts"] == {"done": 1, "running": 3}
    # a second run (e.g. after a crash) records the rest without executing anything again
    second = run(emulation_dco, tmp_path, manual_outcomes={
        "2": [{"tool": "EDR", "outcome": "none"}, {"tool": "SIEM", "outcome": "logged"}],
        "T1033": {"tool": "EDR", "outcome": "prevented", "severity": "high"},
        f"{emulation_dco}-s4": {"tool": "EDR", "outcome": "bogus"},
    })
    assert _executions(emulation_dco) == {"s1": 1, "s2": 1, "s3": 1}
    bad = next(r for r in second["steps"] if r["order"] == 4)
    assert bad["status"] == "running" and "outcome" in bad["error"] and f"{emulation_dco}-s4" in bad["error"]
    with session_scope() as s:
        current = {(r.step_id[-2:], r.tool): r.outcome for r in current_outcomes(s, emulation_dco)}
        s1 = next(r for r in current_outcomes(s, emulation_dco) if r.step_id.endswith("s1"))
    assert current == {("s1", "EDR"): Outcome.ALERTED, ("s2", "EDR"): Outcome.NONE,
                       ("s2", "SIEM"): Outcome.LOGGED, ("s3", "EDR"): Outcome.PREVENTED}
    assert s1.attack_start is not None and s1.target_host  # taken from the execution record
    third = run(emulation_dco, tmp_path, manual_outcomes={"4": {"tool": "EDR", "outcome": "none"}})
    assert third["status_counts"] == {"done": 4}


def test_manual_step_pauses_for_input_and_resumes(resume_when_paused: Callable[..., Any], emulation_dco: str,
                                                  tmp_path: Path) -> None:
    with session_scope() as s:
        for row in s.query(EmulationStep).filter_by(dco_id=emulation_dco):
            if row.order != 4:
                row.status = StepStatus.DONE
                s.add(row)
    result = resume_when_paused(
        lambda: run(emulation_dco, tmp_path, pause_for_input=True, pause_timeout_s=60), emulation_dco,
        {"operator": "carol", "outcomes": [{"tool": "EDR", "outcome": "logged", "notes": "seen"}]})
    assert result["status_counts"] == {"done": 4}
    with session_scope() as s:
        row = next(r for r in current_outcomes(s, emulation_dco) if r.step_id.endswith("s4"))
    assert (row.tool, row.outcome, row.operator, row.notes) == ("EDR", Outcome.LOGGED, "carol", "seen")
