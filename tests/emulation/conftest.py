"""Fixtures for the emulation tests: a stored emulation DCO with real atomics as steps, and a
Prefect test harness (its own PREFECT_HOME, no analytics) for the flow tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.content.atomics import load_atomics
from core.db import session_scope
from core.settings import Settings
from models.operation import DcoSpec
from models.plan import EmulationStep, ProcedureSource
from models.repository import create_operation

# Harmless Linux discovery atomics with the sh executor (../shared/atomics).
LIST_OS_INFO = "cccb070c-df86-4216-a5bc-9fb60c74e27c"  # T1082, output_file argument, cleanup
ENV_DISCOVERY = "fcbdd43f-f4ad-42d5-98f3-0218097e2720"  # T1082 "env"
USER_DISCOVERY = "2a9b677d-a230-44f4-ad86-782df1ef108c"  # T1033 users/w/who


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("prefect-home")
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED",
                                             "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")}
    os.environ.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60"})
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def spec(**roe: Any) -> DcoSpec:
    rules = {"allowed_hosts": [socket.gethostname()], "deconfliction_contacts": ["soc-duty@example.org"],
             "max_step_seconds": 30, **roe}
    return DcoSpec.model_validate({
        "name": "Emulation Lab Exercise",
        "objective": "Check Linux discovery detections",
        "type": "adversary-emulation",
        "scope": {"platforms": ["linux"], "hosts": [socket.gethostname()]},
        "threat_profile": {"techniques": ["T1082", "T1033"]},
        "rules_of_engagement": rules,
    })


def atomic_step(shared: Path, dco_id: str, order: int, guid: str, **extra: Any) -> EmulationStep:
    test = load_atomics(shared / "atomics").get(guid)
    fields: dict[str, Any] = {
        "id": f"{dco_id}-s{order}", "dco_id": dco_id, "order": order, "tactic": "discovery",
        "technique_id": test.technique_id, "technique_name": test.name, "source": ProcedureSource.ATOMIC,
        "procedure_ref": test.guid, "procedure_name": test.name, "platform": "linux",
        "executor": test.executor, "command": test.command, "cleanup_command": test.cleanup_command,
        "input_arguments": {k: a.default for k, a in test.input_arguments.items()}, "connector": "local",
    }
    fields.update(extra)
    return EmulationStep(**fields)


@pytest.fixture()
def emulation_dco(settings: Settings, shared_dir: Path) -> str:
    """A DCO with three local atomic steps (the second depends on the first) and one manual step."""
    with session_scope() as session:
        op = create_operation(session, spec(), "tester")
        dco_id = op.id
        steps = [
            atomic_step(shared_dir, dco_id, 1, LIST_OS_INFO,
                        input_arguments={"output_file": "#{sandbox}/T1082.txt"}),
            atomic_step(shared_dir, dco_id, 2, ENV_DISCOVERY, depends_on=[f"{dco_id}-s1"]),
            atomic_step(shared_dir, dco_id, 3, USER_DISCOVERY),
            EmulationStep(id=f"{dco_id}-s4", dco_id=dco_id, order=4, tactic="execution", technique_id="T1059.004",
                          technique_name="Unix Shell", source=ProcedureSource.MANUAL, procedure_name="Operator shell",
                          platform="linux", executor="manual", connector="manual"),
        ]
        for s in steps:
            session.add(s)
    return dco_id
