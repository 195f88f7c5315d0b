"""A DCO that holds a plan or evidence never gets a looser marking (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from dcoflow.connectors.content.operation_file import spec_from_data
from dcoflow.core.db import session_scope
from dcoflow.core.errors import StateError
from dcoflow.models.operation import DcoState
from dcoflow.models.repository.operation import create_operation, get_operation, transition
from dcoflow.models.repository.stix_store import put_objects

RED = {"tlp": "red", "classification": "NATO RESTRICTED", "releasability": "REL TO NATO"}


def _spec(marking: dict[str, Any], objective: str = "find them") -> Any:
    return spec_from_data({"name": "Marked hunt", "objective": objective, "type": "threat-hunt",
                           "threat_profile": {"techniques": ["T1059.001"]}, "marking": marking}, "test")


@pytest.mark.parametrize("looser", [
    {"tlp": "clear"}, {**RED, "tlp": "amber"}, {**RED, "classification": None}, {**RED, "releasability": None},
])
def test_planned_dco_refuses_a_looser_marking(db_url: str, looser: dict[str, Any]) -> None:
    with session_scope(db_url) as s:
        op = create_operation(s, _spec(RED), "alice")
        transition(s, op, DcoState.PLANNED, "alice", "planned")
    with session_scope(db_url) as s, pytest.raises(StateError, match="marking cannot loosen"):
        create_operation(s, _spec(looser, "changed"), "mallory")
    with session_scope(db_url) as s:
        assert get_operation(s, "Marked hunt").spec["marking"]["tlp"] == "red"


def test_draft_with_evidence_refuses_but_tightening_is_fine(db_url: str) -> None:
    with session_scope(db_url) as s:
        op = create_operation(s, _spec({"tlp": "amber"}), "alice")
        put_objects(s, [{"type": "identity", "spec_version": "2.1", "id": "identity--" + "1" * 8 + "-1111-4111-8111-"
                         + "1" * 12, "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
                         "name": "sensor /var/log/x"}], op.id)
    with session_scope(db_url) as s, pytest.raises(StateError, match="marking cannot loosen"):
        create_operation(s, _spec({"tlp": "green"}, "changed"), "mallory")
    with session_scope(db_url) as s:
        assert create_operation(s, _spec({"tlp": "red"}, "tighter"), "alice").spec["marking"]["tlp"] == "red"


def test_draft_without_evidence_may_still_change(db_url: str) -> None:
    with session_scope(db_url) as s:
        create_operation(s, _spec(RED), "alice")
    with session_scope(db_url) as s:
        assert create_operation(s, _spec({"tlp": "clear"}, "typo fixed"), "alice").spec["marking"]["tlp"] == "clear"
