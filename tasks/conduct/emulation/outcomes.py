"""Recording what each defensive tool did about a step: a new outcome version (latest wins, history kept),
its STIX sighting/observed-data/note, and an audit event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from dcoflow.core.db import insert_if_absent
from dcoflow.core.errors import (
    ConflictError,
)
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.emulation import (
    EmulationExecution,
    EmulationOutcome,
    OutcomeInput,
    OutcomeSource,
    attack_pattern_ref,
    aware,
)
from dcoflow.models.plan import StepStatus
from dcoflow.models.repository.emulation import (
    get_step,
    latest_execution,
    outcome_history,
    set_status,
)
from dcoflow.models.repository.operation import get_operation, lock_row, record_event
from dcoflow.models.repository.stix_store import put_objects
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.emulation_objects import outcome_objects, sighting_id


@dataclass(frozen=True, slots=True)
class Prior:
    """What a batch caller already read for one (step, tool): its outcome versions, oldest first, and the
    step's latest execution, so recording many outcomes does not query per row."""

    history: Sequence[EmulationOutcome]
    run: EmulationExecution | None


def record_outcome(
    session: Session,
    dco_id: str,
    step_id: str,
    data: OutcomeInput | Mapping[str, Any],
    *,
    source: OutcomeSource = OutcomeSource.MANUAL,
    catalog: Catalog | None = None,
    actor: str | None = None,
    prior: Prior | None = None,
) -> EmulationOutcome:
    """Record one tool's outcome for one step: a new version row (unless nothing changed), the
    STIX sighting/observed-data/note, and an audit event. The step becomes done. ``prior``: what the
    caller already read for this step and tool (else it is read here)."""
    op = get_operation(session, dco_id)
    step = get_step(session, op.id, step_id)
    given = data if isinstance(data, OutcomeInput) else OutcomeInput.parse(step.id, dict(data))
    # Attack times and target default to what the executor recorded, so sightings line up with telemetry.
    run = prior.run if prior is not None else latest_execution(session, op.id, step.id)
    if run is not None:
        given = given.model_copy(update={
            "attack_start": given.attack_start or aware(run.started_at),
            "attack_stop": given.attack_stop or aware(run.finished_at),
            "target_host": given.target_host or run.host,
        })
    history = list(prior.history) if prior is not None else outcome_history(session, op.id, step.id, given.tool)
    latest = history[-1] if history else None
    if latest is not None and latest.same_as(given):
        return latest
    key = insert_if_absent(session, EmulationOutcome(
        dco_id=op.id, step_id=step.id, technique_id=step.technique_id, tool=given.tool,
        version=(latest.version + 1) if latest else 1, outcome=given.outcome, severity=given.severity,
        attack_start=given.attack_start, attack_stop=given.attack_stop, detected_at=given.detected_at,
        operator=given.operator, target_host=given.target_host, notes=given.notes, source=source,
        telemetry=given.telemetry, compromise=given.compromise, sighting_id=sighting_id(op.id, step.id, given.tool),
    ))
    if key is None:  # someone recorded this step and tool meanwhile: theirs stands, ours is not applied
        now = outcome_history(session, op.id, step.id, given.tool)[-1]
        if now.same_as(given):
            return now
        raise ConflictError(
            f"step {step.id} ({given.tool}) was recorded by someone else meanwhile: {now.outcome.value} by "
            f"{now.operator} (version {now.version}); yours ({given.outcome.value}) was not stored",
            system="emulation", object=f"step {step.id} of DCO {op.id}",
            details={"current": {"outcome": now.outcome.value, "operator": now.operator, "version": now.version}},
            hint="look with `dco emulate steps DCO`, then record again to supersede it")
    row = session.get_one(EmulationOutcome, key[0])
    ctx = DcoContext.for_operation(op)
    first = history[0].recorded_at if history else row.recorded_at
    objects = outcome_objects(ctx, row, attack_pattern_ref=attack_pattern_ref(catalog, step.technique_id),
                              technique_name=step.technique_name, first_recorded=first)
    put_objects(session, objects, op.id)
    set_status(session, lock_row(session, step), StepStatus.DONE)  # other tools' outcomes may mark it too
    record_event(session, op.id, actor or given.operator, "emulation-outcome", {
        "step": step.id, "technique": step.technique_id, "tool": row.tool, "outcome": row.outcome.value,
        "version": row.version, "source": source.value,
    })
    return row
