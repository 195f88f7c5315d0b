"""`dco attack …` commands through typer's CliRunner on the real bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcoflow.core.settings import Settings
from dcoflow.flows.cli.attack import app

runner = CliRunner()


@pytest.fixture()
def src(attack_settings: Settings, enterprise_bundle: Path) -> str:
    return str(enterprise_bundle)


def _json(args: list[str]) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_technique_json_and_table(src: str) -> None:
    data = _json(["technique", "T1059.001", "--attack", src])
    assert isinstance(data, dict)
    assert data["mitigation_ids"] == ["M1026", "M1038", "M1042", "M1045", "M1049"]
    assert data["resolution"]["status"] == "current" and data["tactics"] == ["execution"]
    revoked = _json(["technique", "T1086", "--attack", src])
    assert isinstance(revoked, dict) and revoked["attack_id"] == "T1059.001"
    assert revoked["resolution"]["status"] == "revoked"
    text = runner.invoke(app, ["technique", "T1059.001", "--attack", src])
    assert text.exit_code == 0 and "PowerShell" in text.stdout and "DET0455" in text.stdout


def test_group_states_the_count(src: str) -> None:
    data = _json(["group", "Cozy Bear", "--via", "direct", "--via", "campaigns", "--attack", src])
    assert isinstance(data, dict) and len(data["techniques"]) == 119
    assert "66 used directly" in data["statement"] and "119 techniques" in data["statement"]
    text = runner.invoke(app, ["group", "G0016", "--attack", src])
    assert text.exit_code == 0 and "used directly" in text.stdout


def test_not_found_suggests(src: str) -> None:
    result = runner.invoke(app, ["group", "APT 29", "--attack", src])
    assert result.exit_code == 2 and "APT29 (G0016)" in result.output


def test_other_commands(src: str) -> None:
    assert _json(["campaign", "C0024", "--attack", src])["group_ids"] == ["G0016"]  # type: ignore[index]
    assert _json(["software", "mimikatz", "--attack", src])["software_type"] == "tool"  # type: ignore[index]
    assert "T1059.001" in _json(["mitigation", "M1042", "--attack", src])["technique_ids"]  # type: ignore[index]
    tactics = _json(["tactics", "--attack", src])
    assert isinstance(tactics, list) and tactics[0]["shortname"] == "reconnaissance"
    hits = _json(["search", "powershell", "--type", "technique", "--attack", src])
    assert isinstance(hits, list) and hits[0]["attack_id"] == "T1059.001"
    groups = _json(["list", "groups", "--attack", src])
    assert isinstance(groups, list) and any(g["attack_id"] == "G0016" for g in groups)
    listing = runner.invoke(app, ["list", "techniques", "--domain", "ics"])
    assert listing.exit_code == 0 and "ICS ATT&CK" in listing.stdout
    bad = runner.invoke(app, ["tactics", "--domain", "cloud"])
    assert bad.exit_code == 2 and "unknown ATT&CK domain" in bad.output
