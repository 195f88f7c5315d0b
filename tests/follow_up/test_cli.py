"""`dco followup …` through typer's CliRunner over a real temp database."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.flows.cli.followup import app
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.followup import GapInput
from dcoflow.models.operation import utcnow
from dcoflow.tasks.follow_up.actions import plan_actions
from dcoflow.tasks.follow_up.retests import schedule_retest
from dcoflow.tasks.follow_up.risks import derive_risks

runner = CliRunner()
GAP = GapInput(technique_id="T1003.001", technique_name="LSASS Memory", visibility=0, detection=-1, relevance=1.0,
               rank=1)


def run(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_followup_cli(dco: str, catalog: Catalog) -> None:
    today = utcnow().date() - timedelta(days=10)  # planned ten days ago: critical actions (7-day SLA) are late
    with session_scope() as s:
        derive_risks(s, dco, [GAP], [], today=today)
        actions, _ = plan_actions(s, dco, [GAP], [], catalog, today=today)
        schedule_retest(s, dco, ["T1003.001"], "cli", utcnow())

    [risk] = run("risks", "--needs-decision", "--json")  # type: ignore[misc]
    assert risk["decision_body"] == "BCISOA" and risk["score"] == 20

    refused = runner.invoke(app, ["decide", risk["id"], "--decision", "accept", "--authority", "CRMG",
                                  "--expires", "2027-06-30", "--rationale", "compensating control"])
    assert refused.exit_code == 2 and "BCISOA or above" in " ".join(refused.output.split())
    expires = (utcnow() + timedelta(days=200)).date().isoformat()
    decided = run("decide", risk["id"], "--decision", "accept", "--authority", "BCISOA", "--expires", expires,
                  "--rationale", "compensating control", "--json")
    assert decided["authority"] == "BCISOA"  # type: ignore[index]
    assert run("risks", "--needs-decision", "--json") == []

    overdue = run("actions", "--dco", dco, "--overdue", "--json")
    assert {a["id"] for a in overdue} == {a.id for a in actions}  # type: ignore[union-attr]
    moved = run("action-update", actions[0].id, "--status", "done", "--json")
    assert moved["status"] == "done" and moved["overdue"] is False  # type: ignore[index]
    bad = runner.invoke(app, ["action-update", actions[0].id, "--status", "verified"])
    assert bad.exit_code == 2 and "re-test" in " ".join(bad.output.split())

    [retest] = run("retests", "--json")  # type: ignore[misc]
    assert retest["techniques"] == ["T1003.001"] and retest["status"] == "scheduled"
    assert run("incidents", "--json") == []
    assert "Actions" in str(run("actions", "--overdue"))  # the table renders for people too
