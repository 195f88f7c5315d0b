"""Operation files: valid ones load, bad ones say which file, which field and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.errors import ContentError, ValidationError
from dcoflow.flows.demo import DEMO_OPERATION
from dcoflow.models.operation import DcoType, Role

VALID = """
name: Hunt for FIN7
objective: find FIN7 tradecraft on the retail enclave
type: threat-hunt
threat_profile: {groups: [FIN7]}
participants: [{organisation: CyOC, role: conduct}]
"""


def test_demo_operation_is_valid() -> None:
    spec = load_operation_file(DEMO_OPERATION)
    assert spec.type is DcoType.PURPLE_TEAM
    assert {p.role for p in spec.participants} == {Role.LEAD, Role.CONDUCT, Role.SUPPORT, Role.INFORMED}
    assert spec.marking.statement == "NATO UNCLASSIFIED — REL TO DCO CELL"


def test_json_and_yaml(tmp_path: Path) -> None:
    y = tmp_path / "op.yaml"
    y.write_text(VALID)
    j = tmp_path / "op.json"
    j.write_text('{"name": "Hunt for FIN7", "objective": "find FIN7", "type": "threat-hunt",'
                 ' "threat_profile": {"groups": ["FIN7"]}}')
    assert load_operation_file(y).slug == load_operation_file(j).slug == "hunt-for-fin7"


@pytest.mark.parametrize(
    ("patch", "field", "needle"),
    [
        ("type: hunting", "type", "'threat-hunt'"),
        ("participants: [{organisation: CyOC, role: boss}]", "participants[0].role", "'lead'"),
        ("scope: {platforms: [plan9]}", "scope.platforms[0]", "'windows'"),
        ("threat_profile: {}", "threat_profile", "at least one group"),
        ("window: {start: 2026-12-02T00:00:00Z, end: 2026-12-01T00:00:00Z}", "window", "end must be after start"),
        ("colour: blue", "colour", "Extra inputs"),
    ],
)
def test_bad_field_is_named(tmp_path: Path, patch: str, field: str, needle: str) -> None:
    key = patch.split(":", maxsplit=1)[0]
    text = "\n".join(line for line in VALID.splitlines() if not line.startswith(key + ":")) + "\n" + patch + "\n"
    path = tmp_path / "op.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError) as err:
        load_operation_file(path)
    assert err.value.field == field
    assert str(path) in err.value.message
    assert needle in err.value.message


def test_missing_and_unparseable_files(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="not found"):
        load_operation_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ContentError, match="not valid YAML"):
        load_operation_file(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ValidationError, match="mapping"):
        load_operation_file(listy)
