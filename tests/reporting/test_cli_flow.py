"""`dco brief` / `dco meeting …` through typer, and the brief flow with its executive artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.models.repository.followup import decisions_for
from dcoflow.tasks.follow_up.risks import risks_needing_decision

from .conftest import Built

BUNDLE = "attack/enterprise-attack-18.1.json.gz"  # the session catalog's source: loaded once per process


def test_cli_brief_and_meeting_cycle(built: Built, catalog: object, shared_dir: Path, tmp_path: Path) -> None:
    from dcoflow.flows.cli.brief import app

    attack = ["--attack", str(shared_dir / BUNDLE)]
    runner = CliRunner()
    res = runner.invoke(app, ["brief", built.dco_id, "--audience", "executive", "--out", str(tmp_path), *attack,
                              "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert sorted(doc["files"]) == ["executive-html", "executive-md"] and doc["rag"] in ("red", "amber", "green")
    assert Path(doc["files"]["executive-md"]).read_text(encoding="utf-8").startswith("**TLP:AMBER")

    res = runner.invoke(app, ["meeting", "create", built.dco_id, "--body", "CRMG", "--at", "2026-12-15T10:00",
                              "--json"])
    assert res.exit_code == 0, res.output
    meeting = json.loads(res.stdout)
    assert meeting["decisions_needed"] >= 1 and meeting["status"] == "planned"
    item = next(i for i in meeting["agenda"] if i["kind"] == "decision-needed")

    res = runner.invoke(app, ["meeting", "decide", item["id"], "--outcome", "Mitigate with the planned actions",
                              "--by", "CRMG chair", "--decision", "mitigate", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["decision"] == "mitigate"
    with session_scope() as s:
        [decision] = decisions_for(s, [item["ref"]])
        assert (decision.authority, decision.decided_by) == ("CRMG", "CRMG chair")
        assert item["ref"] not in {r.id for r, _ in risks_needing_decision(s, dco_id=built.dco_id)}

    res = runner.invoke(app, ["meeting", "decide", item["id"], "--outcome", "x", "--by", "y", "--decision", "accept"])
    assert res.exit_code == 2 and "expiry" in res.output  # the policy's rule, reported as one line
    res = runner.invoke(app, ["meeting", "create", "--body", "CRMG", "--at", "tomorrow", "--all-dcos"])
    assert res.exit_code == 2 and "not a date" in res.output

    res = runner.invoke(app, ["meeting", "list", "--json"])
    [listed] = json.loads(res.stdout)
    assert listed["id"] == meeting["id"] and listed["status"] == "held" and listed["decided"] == 1

    res = runner.invoke(app, ["meeting", "pack", meeting["id"], "--out", str(tmp_path / "pack"), *attack, "--json"])
    assert res.exit_code == 0, res.output
    files = json.loads(res.stdout)["files"]
    assert sorted(files) == ["html", "md", "xlsx"] and all(Path(p).stat().st_size > 0 for p in files.values())
    assert "Mitigate with the planned actions" in Path(files["md"]).read_text(encoding="utf-8")


@pytest.mark.prefect
def test_brief_flow_publishes_the_executive_brief(prefect_harness: None, built: Built, catalog: object,
                                                  shared_dir: Path, tmp_path: Path) -> None:
    from prefect.artifacts import Artifact

    from dcoflow.flows.brief import brief

    result = brief(built.dco_id, audience="both", meeting_body="BCISOA", output_dir=str(tmp_path),
                   attack_source=str(shared_dir / BUNDLE))
    assert len(result["files"]) == 4 and result["decisions"] >= 1
    assert sorted(result["meeting"]["files"]) == ["html", "md", "xlsx"]
    artifact = Artifact.get(f"brief-{built.dco_id}")
    assert artifact is not None
    text = str(artifact.data)
    assert text.startswith("**TLP:AMBER — NATO UNCLASSIFIED") and "## Bottom line up front" in text
    assert Path(result["files"]["executive-md"]).read_text(encoding="utf-8") == text


@pytest.mark.prefect
def test_cli_and_flow_write_the_same_brief_and_agenda(prefect_harness: None, built: Built, catalog: object,
                                                      shared_dir: Path, tmp_path: Path) -> None:
    """Both run tasks/reporting/run.py: the same briefs (but for the minute they were generated) and, for the
    same body, a meeting with the same agenda."""
    from datetime import UTC, datetime

    from dcoflow.flows.brief import brief
    from dcoflow.flows.cli.brief import app

    attack = str(shared_dir / BUNDLE)
    runner = CliRunner()
    res = runner.invoke(app, ["brief", built.dco_id, "--out", str(tmp_path / "cli"), "--attack", attack, "--json"])
    assert res.exit_code == 0, res.output
    by_cli = json.loads(res.stdout)
    at = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)
    res = runner.invoke(app, ["meeting", "create", built.dco_id, "--body", "BCISOA", "--at", f"{at:%Y-%m-%dT%H:%M}",
                              "--json"])
    assert res.exit_code == 0, res.output
    cli_agenda = json.loads(res.stdout)["agenda"]

    by_flow = brief(built.dco_id, meeting_body="BCISOA", output_dir=str(tmp_path / "flow"), attack_source=attack)
    assert {k: by_cli[k] for k in ("dco", "rag", "decisions", "overdue_actions", "incidents")} == {
        k: by_flow[k] for k in ("dco", "rag", "decisions", "overdue_actions", "incidents")}
    assert sorted(by_cli["files"]) == sorted(by_flow["files"])

    def text(path: str) -> list[str]:  # the generation time aside
        return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if "UTC" not in line]

    for kind in by_cli["files"]:
        assert text(by_cli["files"][kind]) == text(by_flow["files"][kind]), kind
    from dcoflow.tasks.reporting.run import agenda

    flow_agenda = agenda(by_flow["meeting"]["meeting"])
    assert by_flow["meeting"]["meeting"] != json.loads(res.stdout)["id"]

    def shape(items: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return sorted((i["kind"], i["ref"], i["authority"], i["title"]) for i in items)

    assert shape(cli_agenda) == shape(flow_agenda) and cli_agenda


def test_cli_and_lifecycle_export_the_same_bundle(built: Built, catalog: object, shared_dir: Path,
                                                  tmp_path: Path) -> None:
    """`dco export stix` and the lifecycle flow's export step run one function: the same objects (the report's
    publication time aside)."""
    from dcoflow.flows.cli.export import app
    from dcoflow.tasks.reporting.stix_export import export_dco_bundle_task

    res = CliRunner().invoke(app, [built.dco_id, "--out", str(tmp_path / "cli"), "--attack",  # `stix`, its one command
                                   str(shared_dir / BUNDLE), "--json"])
    assert res.exit_code == 0, res.output
    by_cli = json.loads(Path(json.loads(res.stdout)["bundle"]).read_text(encoding="utf-8"))["objects"]
    by_flow_step = json.loads(export_dco_bundle_task.fn(built.dco_id, catalog, tmp_path / "flow")
                              .read_text(encoding="utf-8"))["objects"]

    def same(objects: list[dict[str, object]]) -> list[dict[str, object]]:
        return sorted(({k: v for k, v in o.items() if not (o["type"] == "report" and k in ("published", "modified",
                                                                                             "created"))}
                       for o in objects), key=lambda o: json.dumps(o, sort_keys=True))

    assert same(by_cli) == same(by_flow_step) and len(by_cli) > 10
