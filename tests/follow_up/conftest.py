"""Fixtures for follow-up tests: a stored DCO in the temp SQLite database of ``settings``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import create_operation

SPEC = {
    "name": "Follow-up exercise",
    "objective": "Close the gaps found in the purple team",
    "type": "purple-team",
    "scope": {"enclaves": ["blue", "lab"], "platforms": ["windows"],
              "asset_groups": [{"name": "domain-controllers", "criticality": "high"}, "workstations"]},
    "threat_profile": {"techniques": ["T1059.001", "T1003.001"]},
    "participants": [
        {"organisation": "OCIO", "role": "lead"},
        {"organisation": "NCIA", "role": "support"},
        {"organisation": "CyOC", "role": "conduct"},
    ],
    "marking": {"tlp": "amber", "classification": "NATO UNCLASSIFIED"},
}


@pytest.fixture()
def dco(settings: Settings) -> Iterator[str]:
    with session_scope() as s:
        op = create_operation(s, DcoSpec.model_validate(SPEC), "test")
        dco_id = op.id
    yield dco_id
