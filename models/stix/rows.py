"""The STIX object store's tables: one row per (id, modified, dco), so a newer version of an object
sits beside the older ones (history is kept); and the UUIDv4 drawn once per SCO natural key.
The SQL over them is ``dcoflow.models.repository.stix_store``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from dcoflow.models.timestamps import utc_iso

STIX_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def stix_now() -> str:
    """A STIX timestamp (millisecond precision, UTC)."""
    return stix_time(datetime.now(UTC))


def stix_time(moment: datetime) -> str:
    return utc_iso(moment, ms=True)


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


class RandomScoIdRow(SQLModel, table=True):
    """The UUIDv4 given once to an SCO without id-contributing properties (a process), per (DCO, natural key):
    STIX 2.1 wants a random id for it, and storing the one drawn keeps a retried task's objects identical."""

    __tablename__ = "stix_random_sco_id"

    dco_id: str = Field(primary_key=True, max_length=64)
    key_hash: str = Field(primary_key=True, max_length=64)  # sha256 of the natural key (command lines are long)
    stix_id: str = Field(max_length=120)


