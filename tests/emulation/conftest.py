"""Fixtures for the emulation tests: a stored emulation DCO with real atomics as steps (the Prefect
test server is the root ``prefect_harness``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.plan import EmulationStep, ProcedureSource
from dcoflow.models.repository import create_operation

from .helpers import ENV_DISCOVERY, LIST_OS_INFO, USER_DISCOVERY, atomic_step, spec


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
