"""The STIX object store: one table keyed by (id, modified, dco), written by bulk upserts
that ignore an identical key, so re-running a task never duplicates an object and a newer
version of an object sits beside the older ones (history is kept)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, and_, func
from sqlalchemy import true as sa_true
from sqlmodel import Field, Session, SQLModel, col, select

from dcoflow.core.db import upsert

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
    # Part of the key: the same SCO or indicator can be evidence in several DCOs, and each
    # DCO's export must find its own copy. "" marks objects that belong to no DCO.
    dco_id: str = Field(default="", primary_key=True, max_length=64)
    type: str = Field(index=True, max_length=64)
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
            "dco_id": dco_id or "",
            "marking": markings[0],
            "object": obj,
        }
    return upsert(session, StixObjectRow, list(rows.values()), keys=("id", "modified", "dco_id"))


def latest_objects(
    session: Session, dco_id: str | None = None, types: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The newest version of every object (of a DCO, of some types)."""
    newest = select(StixObjectRow.id, func.max(StixObjectRow.modified).label("m")).group_by(StixObjectRow.id)
    if dco_id is not None:
        newest = newest.where(StixObjectRow.dco_id == dco_id)
    row_filter = (col(StixObjectRow.dco_id) == dco_id) if dco_id is not None else sa_true()
    if types:
        newest = newest.where(col(StixObjectRow.type).in_(list(types)))
    sub = newest.subquery()
    stmt = (
        select(StixObjectRow)
        .join(sub, and_(col(StixObjectRow.id) == sub.c.id, col(StixObjectRow.modified) == sub.c.m))
        .where(row_filter)
        .order_by(col(StixObjectRow.type), col(StixObjectRow.id))
    )
    seen: set[str] = set()  # without a DCO filter, one copy per object
    out = []
    for row in session.exec(stmt):
        if row.id not in seen:
            seen.add(row.id)
            out.append(row.object)
    return out


def object_history(session: Session, object_id: str, dco_id: str | None = None) -> list[dict[str, Any]]:
    """Every stored version of an object, oldest first (one copy per version)."""
    stmt = select(StixObjectRow).where(StixObjectRow.id == object_id).order_by(col(StixObjectRow.modified))
    if dco_id is not None:
        stmt = stmt.where(StixObjectRow.dco_id == dco_id)
    versions: dict[str, dict[str, Any]] = {}
    for row in session.exec(stmt):
        versions.setdefault(row.modified, row.object)
    return list(versions.values())


def count_objects(session: Session, dco_id: str | None = None) -> dict[str, int]:
    stmt = select(StixObjectRow.type, func.count(func.distinct(StixObjectRow.id))).group_by(StixObjectRow.type)
    if dco_id is not None:
        stmt = stmt.where(StixObjectRow.dco_id == dco_id)
    return {t: n for t, n in session.exec(stmt)}
