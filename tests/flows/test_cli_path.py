"""One DCO from create to brief with nothing but the `dco` command line (issue 8, item 6), on an operation
file written here from scratch and a SQLite database: each step's output and what it stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import select
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.flows.cli import app
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import EmulationOutcome
from dcoflow.models.followup import Action, Retest, Risk
from dcoflow.models.hunt_run import HuntRun, TriageVerdict
from dcoflow.models.operation import DcoState, Operation
from dcoflow.models.plan import HuntHypothesis

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"


def _operation(groups: list[str]) -> dict[str, Any]:
    return {
        "name": "Credential theft check",
        "objective": "Can we see and stop LSASS credential dumping on the Windows servers?",
        "type": "purple-team",
        "scope": {"enclaves": ["HQ"], "platforms": ["windows", "macos"], "hosts": ["lab-win-01"]},
        "threat_profile": {"groups": groups, "techniques": ["T1003.001", "T1059.001"], "via": ["direct"]},
        "participants": [{"organisation": "CyOC", "role": "conduct"}, {"organisation": "OCIO", "role": "lead"}],
        "rules_of_engagement": {"allowed_hosts": ["lab-win-01"]},
    }


def dco(*argv: str) -> Any:
    """Run `dco …`; a --json command's document, else its text. A failure fails the test with the output."""
    got = CliRunner().invoke(app, list(argv))
    assert got.exit_code == 0, f"dco {' '.join(argv)} → {got.exit_code}: {got.output} {got.exception!r}"
    return json.loads(got.output) if "--json" in argv else " ".join(got.output.split())


def test_one_dco_from_create_to_brief(settings: Settings, prefect_harness: None, shared_dir: Path,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "credential-theft.yaml"
    # A typo in a group name is reported when the DCO is created, with close matches, and nothing is stored.
    file.write_text(yaml.safe_dump(_operation(["APT-29"])))
    typo = CliRunner().invoke(app, ["ops", "create", str(file)])
    assert typo.exit_code == 2 and "Traceback" not in typo.output
    assert "unknown ATT&CK group 'APT-29'" in " ".join(typo.output.split()) and "APT29" in typo.output
    assert dco("ops", "list", "--json") == []

    file.write_text(yaml.safe_dump(_operation(["APT29"])))
    created = dco("ops", "create", str(file), "--by", "coordinator", "--json")
    dco_id = created["dco"]
    assert created["state"] == "draft"
    # A draft made by mistake can be deleted (audited); then made again.
    assert dco("ops", "delete", dco_id, "--json") == {"dco": dco_id, "deleted": True}
    assert dco("ops", "list", "--json") == []
    assert dco("ops", "create", str(file), "--json")["dco"] == dco_id

    summary = dco("plan", str(file))
    assert f"({dco_id})" in summary and "state planned" in summary and "hunt hypotheses" in summary
    assert "Emulation plan" not in summary  # the step table is for --verbose
    assert "Emulation plan" in dco("plan", str(file), "--verbose")
    shown = dco("ops", "show", dco_id, "--json")
    assert shown["state"] == "planned" and len(shown["hunt_plan"]) >= 2

    assert "planned → approved by Ann (OCIO)" in dco("ops", "approve", dco_id, "--by", "Ann (OCIO)")
    refused = CliRunner().invoke(app, ["ops", "delete", dco_id])
    assert refused.exit_code == 2 and "only a draft DCO can be deleted" in " ".join(refused.output.split())
    dco("ops", "move", dco_id, "conducting", "--by", "ann")

    # The hunt plan: the DCO's planned Sigma rules, Windows and macOS ones only, over the given telemetry.
    hunted = dco("hunt", "--dco", dco_id, "--data", str(shared_dir / LSASS_ZIP), "--json")
    with session_scope() as s:
        planned = {r["rule_id"] for h in s.exec(select(HuntHypothesis).where(HuntHypothesis.dco_id == dco_id))
                   for r in h.sigma_rules}
        run = s.get_one(HuntRun, hunted["hunt_run"])
    ran = {r["id"] for r in hunted["rules"]}
    assert ran and ran <= planned and run.hits == sum(r["matches"] for r in hunted["rules"]) > 0
    # Without --data the telemetry location must be set: an error, not the current folder.
    monkeypatch.delenv("DCO_TELEMETRY_DIR", raising=False)
    unset = CliRunner().invoke(app, ["hunt", "--dco", dco_id])
    assert unset.exit_code == 2 and "DCO_TELEMETRY_DIR is not set" in " ".join(unset.output.split())

    waiting = dco("hunt", "hits", dco_id, "--json")
    assert waiting["hunt_run"] == run.id and waiting["hits"]
    first = waiting["hits"][0]["sighting"]
    assert "true-positive recorded" in dco("hunt", "triage", first, "--verdict", "true-positive",
                                           "--analyst", "alice", "--note", "comsvcs MiniDump")
    left = dco("hunt", "hits", dco_id, "--json")["hits"]
    assert first not in {h["sighting"] for h in left} and len(left) == len(waiting["hits"]) - 1

    recorded = dco("emulate", "record", dco_id, "T1059.001", "--tool", "EDR", "--outcome", "none",
                   "--operator", "bob", "--json")
    assert recorded["version"] == 1 and recorded["outcome"] == "none"

    dco("ops", "move", dco_id, "assessing", "--by", "ann")
    assessed = dco("assess", "run", dco_id, "--json")
    assert assessed["dco_id"] == dco_id and assessed["gaps"] > 0
    dco("ops", "move", dco_id, "follow-up", "--by", "ann")
    followed = dco("followup", "run", dco_id, "--json")  # the latest assessment's gaps and the true positive
    assert followed["gaps"] == min(assessed["gaps"], 50) and followed["findings"] >= 1
    assert followed["risks"] > 0 and followed["actions"] > 0 and followed["retest"]
    with session_scope() as s:
        assert s.exec(select(Risk).where(Risk.dco_id == dco_id)).all()
        assert s.exec(select(Action).where(Action.dco_id == dco_id)).all()
        retest = s.get_one(Retest, followed["retest"])
    evaluated = dco("retest", "run", retest.id, "--json")
    assert [r["retest"] for r in evaluated] == [retest.id] and evaluated[0]["status"] in ("scheduled", "passed",
                                                                                         "failed", "running")

    briefed = dco("brief", dco_id, "--out", str(tmp_path / "brief"))
    assert "brief" in briefed and list((tmp_path / "brief").glob("*.md"))
    exported = dco("export", "stix", dco_id, "--out", str(tmp_path / "stix"), "--json")
    bundle = json.loads(Path(exported["bundle"]).read_text())
    assert exported["by_type"]["report"] == 1 and exported["objects"] == len(bundle["objects"])
    assert {"sighting", "opinion", "indicator"} <= set(exported["by_type"])

    with session_scope() as s:
        op = s.get_one(Operation, dco_id)
        assert op.state == DcoState.FOLLOW_UP and op.approved_by == "Ann (OCIO)"
        assert s.exec(select(TriageVerdict).where(TriageVerdict.sighting_id == first)).one().analyst == "alice"
        assert s.exec(select(EmulationOutcome).where(EmulationOutcome.dco_id == dco_id)).one().operator == "bob"
        actions = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.dco_id == dco_id)
                                           .order_by(AuditEvent.id))]
    assert actions[:3] == ["create", "delete", "create"]
