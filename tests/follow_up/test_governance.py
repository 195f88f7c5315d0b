"""Governance as configuration: the governance file decides owners, bodies and SLAs; a bad file is refused
naming the file and the field; owners and dates are reassigned with an audit record."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dcoflow.connectors.content.governance_file import default_governance_path, load_governance
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.core.settings import Settings, get_settings
from dcoflow.flows.cli.followup import app
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.followup import ActionKind, DetectionTask, GapInput
from dcoflow.models.governance import Place, WorkArea
from dcoflow.models.repository.operation import audit_trail
from dcoflow.tasks.follow_up.actions import plan_actions, reassign_action
from dcoflow.tasks.follow_up.risks import derive_risks, reassign_risk

TODAY = date(2026, 3, 2)
GAPS = [
    GapInput(technique_id="T1003.001", technique_name="LSASS Memory", visibility=0, detection=-1, relevance=1.0,
             rank=1),
    GapInput(technique_id="T1059.001", technique_name="PowerShell", visibility=3, detection=1, relevance=0.5, rank=2),
]


def custom_governance(tmp_path: Path) -> Path:
    data = yaml.safe_load(default_governance_path().read_text(encoding="utf-8"))
    data["organisations"] += [{"id": "AD Team"}, {"id": "Purple SOC"}, {"id": "Risk Office"}]
    data["decision_bodies"] = [
        {"name": "service owner", "min_score": 1, "review_days": 60, "max_acceptance_days": 90},
        {"name": "risk board", "min_score": 12, "review_days": 10, "max_acceptance_days": 120},
    ]
    data["decision_from"] = 12
    data["sla_days"] = {"critical": 3, "high": 14, "medium": 45, "low": 120}
    data["raci"] += [
        {"area": "risk", "asset_groups": ["domain-controllers"], "responsible": "Risk Office"},
        {"area": "remediation", "asset_groups": ["domain-controllers"], "responsible": "AD Team"},
        {"area": "detection-engineering", "enclaves": ["lab"], "responsible": "Purple SOC"},
        {"area": "data-source-onboarding", "enclaves": ["elsewhere"], "responsible": "Purple SOC"},
    ]
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_default_governance_is_valid_and_documented() -> None:
    g = load_governance(default_governance_path())
    assert [b.name for b in g.decision_bodies] == ["owner", "CRMG", "BCISOA"]
    assert g.owner(WorkArea.REMEDIATION) == "NCIA" and g.owner(WorkArea.REMEDIATION, mitigation="M1017") == "OCIO"
    assert g.owner(WorkArea.DETECTION_ENGINEERING, [Place("CORP-LAN", "workstations")]) == "CyOC"
    text = default_governance_path().read_text(encoding="utf-8")
    assert "DCO_GOVERNANCE_FILE" in text and "# " in text  # the default explains itself


def test_owners_bodies_and_slas_follow_the_governance_file(
    dco: str, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("DCO_GOVERNANCE_FILE", str(custom_governance(tmp_path)))
    get_settings.cache_clear()
    with session_scope() as s:
        risks = derive_risks(s, dco, GAPS, [], catalog=catalog, today=TODAY)
        actions, _ = plan_actions(s, dco, GAPS, [], catalog, today=TODAY)
        by_tech = {r.technique_ids[0]: r for r in risks}
        lsass = by_tech["T1003.001"]
        # The DCO's most critical asset group is domain-controllers (high): the Risk Office owns its risks.
        assert {r.owner for r in risks} == {"Risk Office"}
        assert (lsass.score, lsass.decision_body) == (20, "risk board")
        assert lsass.review_date == TODAY + timedelta(days=10)  # the risk board's review period
        remediation = [a for a in actions if a.kind == ActionKind.REMEDIATION]
        # Equally specific entries: the first in the file wins (user training stays with the CIO office).
        assert remediation and {(a.mitigation_id, a.owner) for a in remediation} == {
            (a.mitigation_id, "OCIO" if a.mitigation_id == "M1017" else "AD Team") for a in remediation}
        assert "AD Team" in {a.owner for a in remediation}
        detection = {a.technique_id: a for a in actions if a.kind == ActionKind.DETECTION_ENGINEERING}
        # Onboarding has no entry for this scope's enclaves: the catch-all (NCIA); rule writing in the lab: Purple SOC.
        assert detection["T1003.001"].detection_task == DetectionTask.ONBOARD_DATA_SOURCE
        assert detection["T1003.001"].owner == "NCIA"
        assert detection["T1059.001"].owner == "Purple SOC"
        assert {a.sla_days for a in actions if a.risk_id == lsass.id} == {3}  # critical: 3 days in this file


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d["decision_bodies"][1].update(min_score="high"), "decision_bodies[1].min_score", "integer"),
    (lambda d: d["raci"][0].update(responsible="Nobody"), None, "raci[0]"),
    (lambda d: d.update(raci=[e for e in d["raci"] if e["area"] != "risk"]), None, "risk"),
    (lambda d: d["decision_bodies"].reverse(), None, "lowest authority"),
])
def test_invalid_governance_file_names_the_file_and_field(
    tmp_path: Path, change: object, field: str | None, words: str
) -> None:
    data = yaml.safe_load(default_governance_path().read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path = tmp_path / "bad-governance.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_governance(path)
    assert err.value.object == str(path) and str(path) in err.value.message
    assert words in err.value.message
    if field is not None:
        assert err.value.field == field


def test_governance_setting_pointing_nowhere_is_an_error(monkeypatch: pytest.MonkeyPatch, settings: Settings,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("DCO_GOVERNANCE_FILE", str(tmp_path / "missing.yaml"))
    get_settings.cache_clear()
    with pytest.raises(Exception, match="governance file not found"):
        load_governance()


def test_reassignment_is_audited(dco: str, catalog: Catalog) -> None:
    with session_scope() as s:
        [risk] = derive_risks(s, dco, GAPS[:1], [], catalog=catalog, today=TODAY)
        actions, _ = plan_actions(s, dco, GAPS[:1], [], catalog, today=TODAY)
        action = actions[0]
        original = action.owner
        with pytest.raises(ValidationError) as unknown:
            reassign_action(s, action.id, "alice", "wrong team", owner="NCAI")
        assert "NCIA" in unknown.value.suggestions
        with pytest.raises(ValidationError, match="why"):
            reassign_action(s, action.id, "alice", " ", owner="CyOC")
        moved = reassign_action(s, action.id, "alice", "CyOC runs the EDR policy", owner="cyoc",
                                due=TODAY + timedelta(days=21))
        assert (moved.owner, moved.due_date, moved.version) == ("CyOC", TODAY + timedelta(days=21), 2)
        reassign_risk(s, risk.id, "bob", "CRMG chair takes it", owner="OCIO", review_date=TODAY + timedelta(days=5))
        # A re-run of follow-up keeps what was reassigned.
        derive_risks(s, dco, GAPS[:1], [], catalog=catalog, today=TODAY)
        plan_actions(s, dco, GAPS[:1], [], catalog, today=TODAY)
        trail = [e for e in audit_trail(s, dco) if e.action in ("action-reassigned", "risk-reassigned")]
        assert [(e.actor, e.details["from"]["owner"], e.details["to"]["owner"]) for e in trail] == [
            ("alice", original, "CyOC"), ("bob", "OCIO", "OCIO")]
        assert trail[0].details["reason"] == "CyOC runs the EDR policy"
        assert trail[0].details["to"]["due"] == (TODAY + timedelta(days=21)).isoformat()
        action_id = action.id
    result = CliRunner().invoke(app, ["reassign", action_id, "--owner", "NCIA", "--due", "2026-04-30",
                                      "--reason", "back to the network owner", "--by", "carol", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"action": action_id, "owner": "NCIA", "due": "2026-04-30", "version": 3}
    bad = CliRunner().invoke(app, ["reassign", action_id, "--owner", "Nobody", "--reason", "x"])
    assert bad.exit_code == 2 and "unknown organisation" in bad.output
