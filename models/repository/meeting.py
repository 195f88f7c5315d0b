"""Meetings and their agenda items as stored, as functions over a caller's Session. Building an agenda and
recording what a meeting decided are in ``dcoflow.tasks.reporting.meetings``."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import Session, col, select

from dcoflow.models.meeting import Meeting, MeetingItem
from dcoflow.models.repository.operation import get_or_raise


def get_meeting(session: Session, ref: str) -> Meeting:
    return get_or_raise(session, Meeting, ref, "meeting", "see `dco meeting list`")


def get_item(session: Session, ref: str) -> MeetingItem:
    return get_or_raise(session, MeetingItem, ref, "meeting item", "see `dco meeting pack MEETING`")


def meeting_items(session: Session, meeting: str) -> list[MeetingItem]:
    """A meeting's agenda, in order."""
    stmt = select(MeetingItem).where(MeetingItem.meeting_id == meeting).order_by(col(MeetingItem.order))
    return list(session.exec(stmt))


def items_by_meeting(session: Session, meeting_ids: Collection[str]) -> dict[str, list[MeetingItem]]:
    """The agendas of several meetings in one query, each in order."""
    if not meeting_ids:
        return {}
    stmt = (select(MeetingItem).where(col(MeetingItem.meeting_id).in_(list(meeting_ids)))
            .order_by(col(MeetingItem.meeting_id), col(MeetingItem.order)))
    out: dict[str, list[MeetingItem]] = {m: [] for m in meeting_ids}
    for item in session.exec(stmt):
        out[item.meeting_id].append(item)
    return out


def list_meetings(session: Session, *, dco_id: str | None = None) -> list[Meeting]:
    stmt = select(Meeting).order_by(col(Meeting.scheduled_at), col(Meeting.id))
    if dco_id is not None:
        stmt = stmt.where(Meeting.dco_id == dco_id)
    return list(session.exec(stmt))
