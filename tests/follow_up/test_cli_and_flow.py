"""The follow-up actions run one function whether the CLI or a flow asks: the same evidence, handled by
each in its own database, stores the same incidents, deliveries, risks, actions and re-tests."""

from __future__ import annotations

import json
from collections.abc import Callable
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
