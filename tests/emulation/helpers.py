"""Builders shared by the emulation tests: the lab DCO spec and steps from real atomics."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from dcoflow.connectors.content.atomics import load_atomics
from dcoflow.models.operation import DcoSpec
from dcoflow.models.plan import EmulationStep, ProcedureSource

# Harmless Linux discovery atomics with the sh executor (../shared/atomics).
LIST_OS_INFO = "cccb070c-df86-4216-a5bc-9fb60c74e27c"  # T1082, output_file argument, cleanup
ENV_DISCOVERY = "fcbdd43f-f4ad-42d5-98f3-0218097e2720"  # T1082 "env"
USER_DISCOVERY = "2a9b677d-a230-44f4-ad86-782df1ef108c"  # T1033 users/w/who


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


def approve(dco_id: str, by: str = "J. Smith (OCIO)") -> None:
    """Plan (the state only) and approve a stored DCO, as `dco ops approve` records it."""
    from dcoflow.core.db import session_scope
    from dcoflow.models.operation import DcoState
    from dcoflow.models.repository.operation import get_operation, transition

    with session_scope() as s:
        op = get_operation(s, dco_id)
        for state in (DcoState.PLANNED, DcoState.APPROVED):
            if op.state != state:
                transition(s, op, state, by, "test approval")


def row_counts() -> dict[str, int]:
    """Rows per table of the configured database (to show that something wrote nothing)."""
    from sqlalchemy import func, select
    from sqlmodel import SQLModel

    import dcoflow.models.tables  # noqa: F401  (registers every table)
    from dcoflow.core.db import session_scope

    with session_scope() as s:
        return {t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one())
                for t in SQLModel.metadata.sorted_tables}
