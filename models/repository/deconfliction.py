"""Deconfliction notices as stored rows: one per (DCO, step or the DCO-wide window, contact)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from dcoflow.models.emulation import Deconfliction
from dcoflow.models.operation import Operation


def get_notice(session: Session, notice_id: str) -> Deconfliction | None:
    return session.get(Deconfliction, notice_id)


def notices_for_step(session: Session, dco_id: str, step_id: str) -> list[Deconfliction]:
    """A DCO's notices for one step (or for its window), by contact."""
    stmt = select(Deconfliction).where(Deconfliction.dco_id == dco_id, Deconfliction.step_id == step_id)
    return list(session.exec(stmt.order_by(col(Deconfliction.notified))))


def notices_of_step_kind(session: Session, step_id: str, *, except_status: str | None = None) -> list[Deconfliction]:
    """Every DCO's notices for ``step_id`` (the window notices of the inbox), newest first."""
    stmt = select(Deconfliction).where(Deconfliction.step_id == step_id)
    if except_status is not None:
        stmt = stmt.where(Deconfliction.status != except_status)
    return list(session.exec(stmt.order_by(col(Deconfliction.notified_at).desc())))


def dcos_with_notice_status(session: Session, step_id: str, status: str) -> list[str]:
    """The DCOs holding a ``step_id`` notice in ``status`` (e.g. an acknowledged window)."""
    stmt = select(Deconfliction.dco_id).where(Deconfliction.step_id == step_id,
                                              Deconfliction.status == status).distinct()
    return list(session.exec(stmt))


def operations_by_id(session: Session, dco_ids: Iterable[str]) -> dict[str, Operation]:
    """The DCOs of some notices, by id (a DCO deleted since is absent)."""
    ids = sorted(set(dco_ids))
    return {op.id: op for op in session.exec(select(Operation).where(col(Operation.id).in_(ids)))} if ids else {}
