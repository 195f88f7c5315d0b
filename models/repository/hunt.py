"""Hunts as stored rows: hunt runs and triage verdicts (the hunt plan's hypotheses are in ``plan``).

Functions over a caller's Session; the evidence itself (indicators, sightings, opinions) is in the STIX
store (``stix_store``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from dcoflow.core.db import insert_if_absent
from dcoflow.models.hunt_run import HuntRun, TriageVerdict
from dcoflow.models.repository.operation import lock_row

# -- hunt runs -------------------------------------------------------------------------------------


def get_hunt_run(session: Session, run_id: str) -> HuntRun | None:
    return session.get(HuntRun, run_id)


def open_hunt_run(session: Session, run: HuntRun) -> tuple[HuntRun, bool]:
    """``run`` inserted unless its id exists, then the stored row locked for this transaction; and whether
    it was new. Two recordings of one run at once: the first insert wins, the other waits on the lock and
    merges into what it finds."""
    is_new = insert_if_absent(session, run) is not None
    return lock_row(session, session.get_one(HuntRun, run.id)), is_new


def latest_hunt_run(session: Session, dco_id: str) -> HuntRun | None:
    return session.exec(select(HuntRun).where(HuntRun.dco_id == dco_id)
                        .order_by(col(HuntRun.started_at).desc())).first()


def list_hunt_runs(session: Session, dco_id: str | None = None) -> list[HuntRun]:
    stmt = select(HuntRun).order_by(col(HuntRun.started_at))
    if dco_id is not None:
        stmt = stmt.where(HuntRun.dco_id == dco_id)
    return list(session.exec(stmt))


# -- triage verdicts -------------------------------------------------------------------------------


def triaged_sightings(session: Session, sighting_ids: Sequence[str]) -> set[str]:
    """Which of the sightings have a verdict (any analyst's)."""
    found: set[str] = set()
    ids = list(sighting_ids)
    for start in range(0, len(ids), 500):
        found.update(session.exec(select(TriageVerdict.sighting_id)
                                  .where(col(TriageVerdict.sighting_id).in_(ids[start:start + 500]))))
    return found


def latest_verdict(session: Session, sighting_id: str, analyst: str) -> TriageVerdict | None:
    return session.exec(
        select(TriageVerdict)
        .where(TriageVerdict.sighting_id == sighting_id, TriageVerdict.analyst == analyst)
        .order_by(col(TriageVerdict.version).desc())
    ).first()


def triage_history(session: Session, sighting_id: str) -> list[TriageVerdict]:
    """Every verdict on a sighting, by analyst, oldest version first."""
    stmt = select(TriageVerdict).where(TriageVerdict.sighting_id == sighting_id).order_by(
        col(TriageVerdict.analyst), col(TriageVerdict.version))
    return list(session.exec(stmt))


def add_verdict(session: Session, verdict: TriageVerdict) -> TriageVerdict | None:
    """Store a verdict version unless that (sighting, analyst, version) exists (another terminal won)."""
    key = insert_if_absent(session, verdict)
    return None if key is None else session.get_one(TriageVerdict, key)
