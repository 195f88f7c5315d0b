"""A DCO's plan as stored: emulation steps, hunt hypotheses, the plan record, and the deconfliction notices the
plan order's schedule lists. Functions over a caller's Session; nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, delete, select

from dcoflow.models.emulation import Deconfliction
from dcoflow.models.plan import EmulationStep, HuntHypothesis, PlanRecord, StepStatus


def replace_plan(session: Session, dco_id: str, steps: Iterable[EmulationStep],
                 hypotheses: Iterable[HuntHypothesis], record: PlanRecord) -> PlanRecord:
    """Upsert a (re-)plan. Steps already started (not pending) are kept as they are, whatever the new plan
    says: they hold outcomes. Pending steps and hypotheses the new plan no longer has are removed."""
    steps, hypotheses = list(steps), list(hypotheses)
    session.exec(
        delete(EmulationStep).where(
            col(EmulationStep.dco_id) == dco_id,
            col(EmulationStep.status) == StepStatus.PENDING,
            col(EmulationStep.id).not_in({s.id for s in steps}),
        )
    )
    started = set(session.exec(
        select(EmulationStep.id).where(col(EmulationStep.dco_id) == dco_id,
                                       col(EmulationStep.status) != StepStatus.PENDING)
    ))
    for step in steps:
        if step.id not in started:
            session.merge(step)
    session.exec(
        delete(HuntHypothesis).where(
            col(HuntHypothesis.dco_id) == dco_id, col(HuntHypothesis.id).not_in({h.id for h in hypotheses})
        )
    )
    for hyp in hypotheses:
        session.merge(hyp)
    return session.merge(record)


def plan_record(session: Session, dco_id: str) -> PlanRecord | None:
    return session.get(PlanRecord, dco_id)


def list_steps(session: Session, dco_id: str) -> list[EmulationStep]:
    """The DCO's emulation steps in plan order."""
    stmt = select(EmulationStep).where(EmulationStep.dco_id == dco_id).order_by(col(EmulationStep.order))
    return list(session.exec(stmt))


def list_hypotheses(session: Session, dco_id: str) -> list[HuntHypothesis]:
    """The DCO's hunt hypotheses, in the order they were stored."""
    return list(session.exec(select(HuntHypothesis).where(HuntHypothesis.dco_id == dco_id)))


def deconfliction_notices(session: Session, dco_id: str) -> list[Deconfliction]:
    """Every deconfliction notice of the DCO (steps and windows), oldest first."""
    stmt = select(Deconfliction).where(Deconfliction.dco_id == dco_id).order_by(col(Deconfliction.notified_at))
    return list(session.exec(stmt))
