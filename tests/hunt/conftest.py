"""Fixtures for the hunt-recording tests: a DCO in a private SQLite database, real Sigma rules
from the shared corpus, Sysmon-shaped events, and one Prefect test harness per session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Prefect reads these when first imported; keep its state out of the user's home.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="dco-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")

import pytest

from core.db import get_engine, session_scope
from core.settings import Settings
from models.hunting import RuleInfo
from models.operation import DcoSpec
from models.repository import create_operation

RULES = {
    "procdump": "rules/windows/process_creation/proc_creation_win_sysinternals_procdump.yml",  # T1036, T1003.001
    "safeboot": "rules/windows/process_creation/proc_creation_win_reg_delete_safeboot.yml",  # T1685 (ATT&CK v19)
    "ps_persist": "rules/windows/process_creation/proc_creation_win_schtasks_powershell_persistence.yml",
}


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(autouse=True)
def _fresh_engine() -> Iterator[None]:
    """``get_engine()`` memoises on its argument (None), not on the settings' URL: forget the engine
    around each test so every test gets the private database its ``settings`` fixture points at."""
    get_engine.cache_clear()
    yield
    get_engine.cache_clear()


@pytest.fixture()
def dco(settings: Settings) -> str:
    """A purple-team DCO marked TLP:AMBER with a classification statement."""
    spec = DcoSpec.model_validate({
        "name": "Hunt Test Op",
        "objective": "find credential dumping",
        "type": "purple-team",
        "threat_profile": {"techniques": ["T1003.001"]},
        "marking": {"tlp": "amber", "classification": "NATO UNCLASSIFIED", "releasability": "REL TO NATO"},
    })
    with session_scope() as s:
        op = create_operation(s, spec, "tester")
        return op.id


@pytest.fixture(scope="session")
def rules(shared_dir: Path) -> dict[str, RuleInfo]:
    from connectors.content.sigma_rules import load_rule_index

    index = load_rule_index([shared_dir / "sigma" / p for p in RULES.values()])
    by_path = {Path(r.path).name: r for r in index.rules}
    return {k: by_path[Path(p).name] for k, p in RULES.items()}


def sysmon_event(record: int, *, host: str = "WKS01.corp.local", image: str = r"C:\Tools\procdump64.exe",
                 cmd: str = r"procdump64.exe -ma lsass.exe out.dmp", when: str = "2024-05-01 10:00:00.000",
                 **extra: Any) -> dict[str, Any]:
    """A Sysmon EventID 1 as the telemetry readers normalise it (Sysmon field names)."""
    return {
        "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Computer": host,
        "EventRecordID": record, "UtcTime": when, "Image": image, "CommandLine": cmd,
        "ProcessId": 4242 + record, "ProcessGuid": f"{{guid-{record}}}",
        "ParentImage": r"C:\Windows\System32\cmd.exe", "ParentProcessId": 1000,
        "User": r"CORP\alice", "Hashes": f"SHA1={'a' * 40},MD5={'B' * 32},SHA256={'c' * 64},IMPHASH=DD", **extra,
    }
