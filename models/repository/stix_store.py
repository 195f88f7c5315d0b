"""The STIX object store: bulk upserts that ignore an identical (id, modified, dco) key, so re-running
a task never duplicates an object; reads of the latest version per id; the random SCO id per natural key."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func
from sqlalchemy import true as sa_true
from sqlmodel import Session, col, select

from dcoflow.core.db import upsert
from dcoflow.models.stix.ids import NATURAL_KEY
from dcoflow.models.stix.rows import RandomScoIdRow, StixObjectRow


def _key_hash(natural_key: str) -> str:
    return hashlib.sha256(natural_key.encode()).hexdigest()


def _random_ids(session: Session, dco_id: str, hashes: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), 500):
        stmt = select(RandomScoIdRow).where(RandomScoIdRow.dco_id == dco_id,
                                            col(RandomScoIdRow.key_hash).in_(unique[start:start + 500]))
        out.update({row.key_hash: row.stix_id for row in session.exec(stmt)})
    return out


def resolve_random_ids(session: Session, dco_id: str | None, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every SCO a builder left with a provisional id (``NATURAL_KEY`` set) its stored UUIDv4 — drawn and
    kept now when its (DCO, natural key) is new — and point every ``*_ref``/``*_refs`` at it. In place."""
    pending = {o["id"]: str(o[NATURAL_KEY]) for o in objects if NATURAL_KEY in o}
    if not pending:
        return objects
    dco = dco_id or ""
    by_hash = {_key_hash(key): key for key in pending.values()}
    known = _random_ids(session, dco, list(by_hash))
    new = [{"dco_id": dco, "key_hash": h, "stix_id": f"{by_hash[h].split('|', 1)[0]}--{uuid.uuid4()}"}
           for h in by_hash if h not in known]
    if new:
        # Conflicts are ignored and the table re-read: a concurrent writer's id wins for everyone.
        upsert(session, RandomScoIdRow, new, keys=("dco_id", "key_hash"))
        known = _random_ids(session, dco, list(by_hash))
    swap = {old: known[_key_hash(key)] for old, key in pending.items()}
    for obj in objects:
        obj.pop(NATURAL_KEY, None)
        if obj["id"] in swap:
            obj["id"] = swap[obj["id"]]
        for name, value in obj.items():
            if name.endswith("_ref") and isinstance(value, str) and value in swap:
                obj[name] = swap[value]
            elif name.endswith("_refs") and isinstance(value, list):
                obj[name] = [swap.get(v, v) if isinstance(v, str) else v for v in value]
    return objects


def _modified(obj: dict[str, Any]) -> str:
    # SCOs and marking-definitions have no 'modified'; they never change once written.
    return str(obj.get("modified") or obj.get("created") or "")


def put_objects(session: Session, objects: Iterable[dict[str, Any]], dco_id: str | None) -> int:
    """Bulk-store STIX objects (plain dicts); identical (id, modified) pairs are ignored. SCOs still holding a
    provisional id get their stored UUIDv4 first (``resolve_random_ids``)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in resolve_random_ids(session, dco_id, list(objects)):
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


def newest_versions(session: Session, dco_id: str, object_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest stored version of each of ``object_ids`` in the DCO (ids never stored are absent)."""
    stored: dict[str, dict[str, Any]] = {}
    ids = list(object_ids)
    for start in range(0, len(ids), 500):
        newest = (
            select(StixObjectRow.id, func.max(StixObjectRow.modified).label("m"))
            .where(col(StixObjectRow.id).in_(ids[start:start + 500]), StixObjectRow.dco_id == dco_id)
            .group_by(StixObjectRow.id)
            .subquery()
        )
        stmt = select(StixObjectRow).join(
            newest, (col(StixObjectRow.id) == newest.c.id) & (col(StixObjectRow.modified) == newest.c.m))
        for row in session.exec(stmt):
            stored[row.id] = row.object
    return stored


def newest_row(session: Session, object_id: str) -> StixObjectRow | None:
    """The newest stored version of an object, whichever DCO holds it (with its ``dco_id``)."""
    newest = select(func.max(StixObjectRow.modified)).where(StixObjectRow.id == object_id).scalar_subquery()
    return session.exec(
        select(StixObjectRow).where(StixObjectRow.id == object_id, StixObjectRow.modified == newest)
    ).first()
