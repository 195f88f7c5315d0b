"""The follow-up actions run one function whether the CLI or a flow asks: the same evidence, handled by
each in its own database, stores the same incidents, deliveries, risks, actions and re-tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from typer.testing import CliRunner

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.followup import Incident
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import create_operation

from .conftest import SPEC
from .test_escalation import Endpoint, tp_evidence

runner = CliRunner()


def use_database(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Point this process's settings (the CLI's and the in-process flow's) at a fresh SQLite database."""
    monkeypatch.setenv("DCO_DATA_DIR", str(folder))
    get_settings.cache_clear()


def new_dco() -> str:
    with session_scope() as s:
        return create_operation(s, DcoSpec.model_validate(SPEC), "test").id


def twice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prepare: Callable[[str], Any],
          by_cli: Callable[[str], Any], by_flow: Callable[[str], Any],
          snapshot: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``prepare`` then the CLI in one fresh database, ``prepare`` then the flow in another; the snapshots."""
    out = []
    for name, act in (("cli", by_cli), ("flow", by_flow)):
        use_database(monkeypatch, tmp_path / name)
        dco = new_dco()
        prepare(dco)
        act(dco)
        out.append(snapshot())
    return out[0], out[1]


def cli(*args: str) -> Any:
    from dcoflow.flows.cli.followup import app

    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def incidents() -> list[tuple[Any, ...]]:
    with session_scope() as s:
        return sorted((i.id, i.finding_key, i.status.value, i.attempts, sorted(i.deliveries), i.external_ref)
                      for i in s.exec(select(Incident)))


@pytest.mark.prefect
def test_escalate_by_cli_and_flow(prefect_harness: None, settings: Settings, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Both deliver through the webhook the settings configure, with the client the registry builds."""
    from dcoflow.flows.follow_up import escalate

    endpoint = Endpoint()
    configured = ConnectorRegistry.from_settings

    def with_transport(settings: Settings | None = None, *, transport: Any = None) -> ConnectorRegistry:
        return configured(settings, transport=httpx.MockTransport(endpoint))

    monkeypatch.setattr(ConnectorRegistry, "from_settings", staticmethod(with_transport))
    monkeypatch.setenv("DCO_WEBHOOK_URL", "https://soc.example.org/hooks/dco")
    monkeypatch.setenv("DCO_WEBHOOK_SECRET", "k")
    by_cli, by_flow = twice(monkeypatch, tmp_path, tp_evidence, lambda d: cli("escalate", d, "--json"),
                            escalate, incidents)
    assert by_cli == by_flow and by_cli[0][2] == "acknowledged" and by_cli[0][4] == ["webhook"]
    assert len(endpoint.calls) == 2  # one delivery each


def fixed_and_retested(dco: str) -> None:
    """An LSASS gap, its actions done, a re-test due since yesterday and an alerted re-run after it was asked for."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.models.followup import ActionStatus, GapInput
    from dcoflow.models.operation import utcnow
    from dcoflow.tasks.follow_up.actions import plan_actions, update_action_status
    from dcoflow.tasks.follow_up.retests import schedule_retest
    from dcoflow.tasks.follow_up.risks import derive_risks

    from .helpers import outcome, store

    gap = GapInput(technique_id="T1003.001", technique_name="LSASS Memory", visibility=0, detection=-1,
                   relevance=1.0, rank=1)
    asked = utcnow() - timedelta(days=2)
    with session_scope() as s:
        derive_risks(s, dco, [gap], [], today=asked.date())
        actions, _ = plan_actions(s, dco, [gap], [], load_catalog(), today=asked.date())
        for a in actions:
            update_action_status(s, a.id, ActionStatus.DONE, "ncia", now=asked)
        schedule_retest(s, dco, ["T1003.001"], "after-fix", asked + timedelta(days=1), now=asked)
    store(dco, [outcome(dco, "retest-1", "T1003.001", "alerted", asked + timedelta(days=1))])


def register_state() -> dict[str, Any]:
    from dcoflow.models.followup import Action, Retest, Risk

    with session_scope() as s:
        return {
            "actions": sorted((a.id, a.status.value, a.verified_by, a.version) for a in s.exec(select(Action))),
            "risks": sorted((r.id, r.status.value, r.residual_score, r.version) for r in s.exec(select(Risk))),
            "retests": sorted((r.id, r.status.value, tuple(sorted(r.results.items())))
                              for r in s.exec(select(Retest))),
        }


@pytest.mark.prefect
def test_retest_run_by_cli_and_flow(prefect_harness: None, settings: Settings, shared_dir: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`dco retest run` and the ``run-due-retests`` flow verify the same actions and close the same risk."""
    from dcoflow.flows.cli.retest import app as retest_app
    from dcoflow.flows.follow_up import run_due_retests

    monkeypatch.setenv("DCO_ATTACK_SOURCE", str(shared_dir / "attack/enterprise-attack-18.1.json.gz"))

    def by_cli(_dco: str) -> None:
        result = runner.invoke(retest_app, ["--json"])  # its only command: typer runs it directly
        assert result.exit_code == 0, result.output

    by_cli_state, by_flow_state = twice(monkeypatch, tmp_path, fixed_and_retested, by_cli,
                                        lambda _dco: run_due_retests(), register_state)
    assert by_cli_state == by_flow_state
    assert {r[1] for r in by_cli_state["retests"]} == {"passed"} and {r[1] for r in by_cli_state["risks"]} == {"closed"}
    assert {a[1] for a in by_cli_state["actions"]} == {"verified"}
