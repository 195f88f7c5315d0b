"""Fixtures for the emulation tests: a stored emulation DCO with real atomics as steps (the Prefect
test server is the root ``prefect_harness``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcoflow.connectors.content.atomics import AtomicsIndex, load_atomics
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.plan import EmulationStep, ProcedureSource
from dcoflow.models.repository.operation import create_operation

from .helpers import ENV_DISCOVERY, LIST_OS_INFO, USER_DISCOVERY, approve, atomic_step, spec


@pytest.fixture(autouse=True)
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A sandbox root the unprivileged executor user can pass through (pytest's own temp folders are
    closed to other users), used by executors the tests make and through DCO_SANDBOX_DIR by the rest."""
    root = Path(tempfile.mkdtemp(prefix="dco-test-sandbox-"))
    root.chmod(0o711)
    monkeypatch.setenv("DCO_SANDBOX_DIR", str(root))
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def atomics(shared_dir: Path) -> AtomicsIndex:
    """The shared atomics checkout: the index the use cases load once per run, for calls made directly."""
    return load_atomics(shared_dir / "atomics")


@pytest.fixture()
def emulation_dco(draft_emulation_dco: str) -> str:
    """``draft_emulation_dco``, approved for conduct."""
    approve(draft_emulation_dco)
    return draft_emulation_dco


@pytest.fixture()
def draft_emulation_dco(settings: Settings, shared_dir: Path) -> str:
    """A DCO (draft) with three local atomic steps (the second depends on the first) and one manual step."""
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
