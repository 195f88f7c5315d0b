"""The append-only audit log: who did what to which DCO, when, from which state to which."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, event
from sqlmodel import Field, SQLModel

from dcoflow.core.errors import StateError
from dcoflow.models.operation import utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    dco_id: str = Field(index=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(sa_type=Text)
    action: str = Field(max_length=64)
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def _refuse(_mapper: Any, _conn: Any, target: AuditEvent) -> None:
    raise StateError("the audit log is append-only", object=f"audit_event {target.id}")


# The ORM refuses edits; nothing in dcoflow issues raw UPDATE/DELETE on this table.
event.listen(AuditEvent, "before_update", _refuse)
event.listen(AuditEvent, "before_delete", _refuse)
