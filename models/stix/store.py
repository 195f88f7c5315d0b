"""The STIX object store: one table keyed by (id, modified), written by bulk upserts
that ignore an identical (id, modified), so re-running a task never duplicates an object
and a newer version of an object sits beside the older ones (history is kept)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, and_, func
from sqlmodel import Field, Session, SQLModel, col, select

from core.db import upsert

STIX_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def stix_now() -> str:
    """A STIX timestamp (millisecond precision, UTC)."""
    return stix_time(datetime.now(UTC))


def stix_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class StixObjectRow(SQLModel, table=True):
    __tablename__ = "stix_object"

    id: str = Field(primary_key=True, max_length=120)
    modified: str = Field(primary_key=True, max_length=32)
    type: str = Field(index=True, max_length=64)
    dco_id: str | None = Field(default=None, index=True, max_length=64)
    marking: str | None = Field(default=None, max_length=120)
    object: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


def _modified(obj: dict[str, Any]) -> str:
    # SCOs and marking-definitions have no 'modified'; they never change once written.
    return str(obj.get("modified") or obj.get("created") or "")


def put_objects(session: Session, objects: Iterable[dict[str, Any]], dco_id: str | None) -> int:
    """Bulk-store STIX objects (plain dicts); identical (id, modified) pairs are ignored."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        markings = obj.get("object_marking_refs") or [None]
        key = (obj["id"], _modified(obj))
        rows[key] = {
            "id": key[0],
            "modified": key[1],
            "type": obj["type"],
            "dco_id": dco_id,
            "marking": markings[0],
            "object": obj,
        }
    return upsert(session, StixObjectRow, list(rows.values()), keys=("id", "modified"))


def latest_objects(
    session: Session, dco_id: str | None = None, types: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The newest version of every object (of a DCO, of some types)."""
    newest = select(StixObjectRow.id, func.max(StixObjectRow.modified).label("m")).group_by(StixObjectRow.id)
    if dco_id is not None:
        newest = newest.where(StixObjectRow.dco_id == dco_id)
    if types:
        newest = newest.where(col(StixObjectRow.type).in_(list(types)))
    sub = newest.subquery()
    stmt = (
        select(StixObjectRow)
        .join(sub, and_(col(StixObjectRow.id) == sub.c.id, col(StixObjectRow.modified) == sub.c.m))
        .order_by(col(StixObjectRow.type), col(StixObjectRow.id))
    )
    return [row.object for row in session.exec(stmt)]


def object_history(session: Session, object_id: str) -> list[dict[str, Any]]:
    stmt = select(StixObjectRow).where(StixObjectRow.id == object_id).order_by(col(StixObjectRow.modified))
    return [row.object for row in session.exec(stmt)]


def count_objects(session: Session, dco_id: str | None = None) -> dict[str, int]:
    stmt = select(StixObjectRow.type, func.count(func.distinct(StixObjectRow.id))).group_by(StixObjectRow.type)
    if dco_id is not None:
        stmt = stmt.where(StixObjectRow.dco_id == dco_id)
    return {t: n for t, n in session.exec(stmt)}
