"""Emulation plans as stored: steps, execution records and outcome versions, as functions over a
caller's Session. A step's ``status`` here is the source of truth for resuming a run."""

from __future__ import annotations

import difflib

from sqlalchemy import func
from sqlmodel import Session, col, select

from dcoflow.core.errors import NotFoundError
from dcoflow.models.emulation import EmulationExecution, EmulationOutcome, ExecutionStatus
from dcoflow.models.plan import EmulationStep, StepStatus

# -- steps --------------------------------------------------------------------------------------------


def load_steps(session: Session, dco_id: str) -> list[EmulationStep]:
    stmt = select(EmulationStep).where(EmulationStep.dco_id == dco_id).order_by(col(EmulationStep.order))
    return list(session.exec(stmt))


def get_step(session: Session, dco_id: str, ref: str) -> EmulationStep:
    """A step by id, by order number (``3``) or by technique id (when it is unique in the plan)."""
    step = session.get(EmulationStep, ref)
    if step is not None and step.dco_id == dco_id:
        return step
    steps = load_steps(session, dco_id)
    if ref.isdigit():
        match = [s for s in steps if s.order == int(ref)]
    else:
        match = [s for s in steps if s.technique_id.upper() == ref.upper()]
    if len(match) == 1:
        return match[0]
    known = [s.id for s in steps]
    close = difflib.get_close_matches(ref, known, n=3, cutoff=0.5)
    raise NotFoundError(
        "no such emulation step" + (f" ({len(match)} steps match; use the step id)" if match else ""),
        system="emulation", object=f"step {ref} of DCO {dco_id}",
        hint=("did you mean: " + ", ".join(close)) if close else "see `dco emulate steps DCO`",
    )


def steps_without_procedure(session: Session, dco_id: str) -> list[EmulationStep]:
    """Steps that have nothing an executor could run (an operator performs them by hand)."""
    return [s for s in load_steps(session, dco_id) if not (s.command and s.command.strip())]


def set_status(session: Session, step: EmulationStep, status: StepStatus) -> None:
    """Move a step to ``status``; every change bumps its version (readers compare versions)."""
    if step.status != status:
        step.status = status
        step.version += 1
        session.add(step)


# -- executions ---------------------------------------------------------------------------------------


def last_refusals(session: Session, dco_id: str) -> dict[str, str]:
    """Step id → the reason of its latest refusal by the rules of engagement (for listings)."""
    stmt = (select(EmulationExecution)
            .where(EmulationExecution.dco_id == dco_id, EmulationExecution.status == ExecutionStatus.REFUSED)
            .order_by(col(EmulationExecution.id)))
    return {row.step_id: str(row.details.get("error", {}).get("reason") or "refused") for row in session.exec(stmt)}


def latest_execution(session: Session, dco_id: str, step_id: str) -> EmulationExecution | None:
    stmt = (select(EmulationExecution)
            .where(EmulationExecution.dco_id == dco_id, EmulationExecution.step_id == step_id,
                   col(EmulationExecution.status).in_([ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED,
                                                       ExecutionStatus.TIMED_OUT]))
            .order_by(col(EmulationExecution.id).desc()))
    return session.exec(stmt).first()


def latest_executions(session: Session, dco_id: str) -> dict[str, EmulationExecution]:
    """Step id → its latest execution that ran (as :func:`latest_execution`), for every step in one read."""
    stmt = (select(EmulationExecution)
            .where(EmulationExecution.dco_id == dco_id,
                   col(EmulationExecution.status).in_([ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED,
                                                       ExecutionStatus.TIMED_OUT]))
            .order_by(col(EmulationExecution.id)))
    return {row.step_id: row for row in session.exec(stmt)}  # later rows win


def recorded_links(session: Session, dco_id: str) -> set[str]:
    """The Caldera links already recorded for the DCO (``caldera-link:<id>``), in one read."""
    return {str(d["link"]) for d in session.exec(
        select(EmulationExecution.details).where(EmulationExecution.dco_id == dco_id)) if d.get("link")}


# -- outcomes -----------------------------------------------------------------------------------------


def outcome_history(
    session: Session, dco_id: str, step_id: str | None = None, tool: str | None = None
) -> list[EmulationOutcome]:
    stmt = select(EmulationOutcome).where(EmulationOutcome.dco_id == dco_id)
    if step_id is not None:
        stmt = stmt.where(EmulationOutcome.step_id == step_id)
    if tool is not None:
        stmt = stmt.where(EmulationOutcome.tool == tool)
    return list(session.exec(stmt.order_by(col(EmulationOutcome.step_id), col(EmulationOutcome.tool),
                                           col(EmulationOutcome.version))))


def current_outcomes(session: Session, dco_id: str) -> list[EmulationOutcome]:
    """The latest version per (step, tool): a corrected outcome wins, its history stays."""
    newest = (select(EmulationOutcome.step_id, EmulationOutcome.tool,
                     func.max(EmulationOutcome.version).label("v"))
              .where(EmulationOutcome.dco_id == dco_id)
              .group_by(EmulationOutcome.step_id, EmulationOutcome.tool).subquery())
    stmt = (select(EmulationOutcome)
            .join(newest, (col(EmulationOutcome.step_id) == newest.c.step_id)
                  & (col(EmulationOutcome.tool) == newest.c.tool) & (col(EmulationOutcome.version) == newest.c.v))
            .where(EmulationOutcome.dco_id == dco_id)
            .order_by(col(EmulationOutcome.step_id), col(EmulationOutcome.tool)))
    return list(session.exec(stmt))

