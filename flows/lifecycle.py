"""``dco_lifecycle``: one DCO through every phase, in order — the flow `dco demo` runs.

Re-running it resumes: each phase looks at the DCO's state and only does what is left,
so a crashed or repeated run never duplicates what is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from connectors.content.operation_file import load_operation_file
from core.db import session_scope
from core.errors import NotFoundError
from core.settings import get_settings
from flows.plan import plan_dco
from models.operation import DcoState
from models.repository import get_operation
from tasks.lifecycle import change_state

PLANNABLE = (DcoState.DRAFT, DcoState.PLANNED)


def _state(dco: str) -> DcoState:
    with session_scope() as s:
        return get_operation(s, dco).state


@flow(name="dco-lifecycle")
def dco_lifecycle(
    operation_file: str,
    attack_source: str | None = None,
    output_dir: str | None = None,
    approver: str | None = None,
    actor: str = "dco-lifecycle",
) -> dict[str, Any]:
    """Plan → approve → conduct → assess → follow up one DCO.

    ``approver`` approves on the approver's behalf (for demos and pre-approved recurring DCOs);
    without it the run pauses for approval in the UI.
    """
    logger = get_run_logger()
    out = Path(output_dir) if output_dir else get_settings().output_dir
    spec = load_operation_file(operation_file)
    result: dict[str, Any] = {"dco": spec.slug, "output_dir": str(out)}
    try:
        state = _state(spec.slug)
    except NotFoundError:  # a new DCO: the plan flow registers it
        state = DcoState.DRAFT
    if state in PLANNABLE:
        result["plan"] = plan_dco(
            operation_file=operation_file, attack_source=attack_source, output_dir=str(out),
            actor=actor, wait_for_approval=approver is None,
        )
        state = _state(spec.slug)
    if state == DcoState.PLANNED and approver:
        change_state(spec.slug, DcoState.APPROVED, approver, "approved for the lifecycle run")
        state = DcoState.APPROVED
    if state == DcoState.PLANNED:
        logger.warning("%s was not approved; stopping after planning", spec.slug)
        return result
    result["state"] = _state(spec.slug).value
    return result
