"""Fixtures for the hunt-recording tests: a DCO in a private SQLite database and real Sigma rules
from the shared corpus (the Prefect test server is the root ``prefect_harness``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dcoflow.core.db import dispose_engines, session_scope
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.hunting import RuleInfo
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.models.repository.operation import create_operation, transition

RULES = {
    "procdump": "rules/windows/process_creation/proc_creation_win_sysinternals_procdump.yml",  # T1036, T1003.001
    "safeboot": "rules/windows/process_creation/proc_creation_win_reg_delete_safeboot.yml",  # T1685 (ATT&CK v19)
    "ps_persist": "rules/windows/process_creation/proc_creation_win_schtasks_powershell_persistence.yml",
}


def make_dco() -> str:
    """A purple-team DCO marked TLP:AMBER with a classification statement, approved, in the current database."""
    spec = DcoSpec.model_validate({
        "name": "Hunt Test Op",
        "objective": "find credential dumping",
        "type": "purple-team",
        "threat_profile": {"techniques": ["T1003.001"]},
        "marking": {"tlp": "amber", "classification": "NATO UNCLASSIFIED", "releasability": "REL TO NATO"},
    })
    with session_scope() as s:
        op = create_operation(s, spec, "tester")
        for state in (DcoState.PLANNED, DcoState.APPROVED):  # hunts recorded against a DCO need its approval
            transition(s, op, state, "tester", "approved for the hunt tests")
        return op.id


@pytest.fixture()
def dco(settings: Settings) -> str:
    return make_dco()


@pytest.fixture()
def second_database(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """``switch()``: from now on a second, empty SQLite database, holding the same DCO (same id); returns its id.
    For comparing what two ways of doing one action store."""

    def switch() -> str:
        monkeypatch.setenv("DCO_DATA_DIR", str(tmp_path / "second-data"))
        get_settings.cache_clear()
        dispose_engines()
        return make_dco()

    return switch


@pytest.fixture(scope="session")
def rules(shared_dir: Path) -> dict[str, RuleInfo]:
    from dcoflow.connectors.content.sigma_rules import load_rule_index

    index = load_rule_index([shared_dir / "sigma" / p for p in RULES.values()])
    by_path = {Path(r.path).name: r for r in index.rules}
    return {k: by_path[Path(p).name] for k, p in RULES.items()}
