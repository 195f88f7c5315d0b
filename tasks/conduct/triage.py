"""Triage of hunt hits: an analyst's verdict on a sighting, kept as a versioned row and a STIX opinion.

The opinion's id is fixed per (sighting, analyst); a re-triage writes the next ``TriageVerdict``
version and a new ``modified`` of the same opinion, so the history of both is kept. Repeating the
same verdict and note changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.db import session_scope
from core.errors import NotFoundError, ValidationError
from models.hunt_run import TriageVerdict, Verdict
from models.repository import record_event
from models.stix import hunt_objects as ho
from models.stix.store import StixObjectRow, put_objects, stix_time


def _sighting(session: Session, sighting_id: str) -> tuple[dict[str, object], str | None]:
    newest = select(func.max(StixObjectRow.modified)).where(StixObjectRow.id == sighting_id).scalar_subquery()
    row = session.exec(
        select(StixObjectRow).where(StixObjectRow.id == sighting_id, StixObjectRow.modified == newest)
    ).first()
    if row is None or row.type != "sighting":
        raise NotFoundError("no such sighting in the evidence store", object=sighting_id,
                            hint="see the sighting ids with `dco hunt runs --json` or the hunt's grouping")
    return row.object, row.dco_id


def triage_history(session: Session, sighting_id: str) -> list[TriageVerdict]:
    stmt = select(TriageVerdict).where(TriageVerdict.sighting_id == sighting_id).order_by(
        col(TriageVerdict.analyst), col(TriageVerdict.version))
    return list(session.exec(stmt))


def triage_hit(
    session: Session,
    sighting_id: str,
    verdict: Verdict | str,
    analyst: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> TriageVerdict:
    """Record ``analyst``'s verdict on a sighting: the next TriageVerdict version + the STIX opinion."""
    try:
        verdict = Verdict(verdict)
    except ValueError:
        raise ValidationError(f"unknown verdict {verdict!r}", field="verdict",
                              suggestions=[v.value for v in Verdict]) from None
    if not analyst.strip():
        raise ValidationError("the analyst must be named", field="analyst")
    sighting, dco_id = _sighting(session, sighting_id)
    previous = session.exec(
        select(TriageVerdict)
        .where(TriageVerdict.sighting_id == sighting_id, TriageVerdict.analyst == analyst)
        .order_by(col(TriageVerdict.version).desc())
    ).first()
    if previous is not None and previous.verdict == verdict and previous.note == note:
        return previous  # the same verdict again: nothing new to record
    moment = at or datetime.now(UTC)
    modified = stix_time(moment)
    opinion_created = modified
    if previous is not None:
        history = session.exec(
            select(StixObjectRow).where(StixObjectRow.id == previous.opinion_id).order_by(col(StixObjectRow.modified))
        ).all()
        if history:
            opinion_created = str(history[0].object["created"])
            last = str(history[-1].modified)
            if modified <= last:
                modified = _after(last)
    obj = ho.opinion(sighting, verdict.value, analyst, note, created=opinion_created, modified=modified)
    row = TriageVerdict(
        sighting_id=sighting_id, analyst=analyst, version=(previous.version + 1) if previous else 1,
        dco_id=dco_id or str(sighting.get("x_dco_id") or ""), verdict=verdict, note=note, at=moment,
        opinion_id=obj["id"],
    )
    session.add(row)
    put_objects(session, [obj], row.dco_id or None)
    if row.dco_id:
        record_event(session, row.dco_id, analyst, "triage", {
            "sighting": sighting_id, "verdict": verdict.value, "version": row.version, "opinion": obj["id"],
        })
    session.flush()
    return row


def _after(stamp: str) -> str:
    from datetime import timedelta

    moment = ho.parse_time(stamp) or datetime.now(UTC)
    return stix_time(moment + timedelta(milliseconds=1))


def _triage_in_new_session(sighting_id: str, verdict: str, analyst: str, note: str | None = None) -> int:
    with session_scope() as s:
        return triage_hit(s, sighting_id, verdict, analyst, note).version


triage_task = task(name="triage-hit")(_triage_in_new_session)
