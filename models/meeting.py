"""Meetings of the coordination cell and the bodies that decide on risks, and the items on their agenda.

A meeting belongs to one DCO or to several (``dco_id`` None: a cross-DCO board). Its items point at
the follow-up rows they are about (a risk to decide, an action to review, an incident to note); the
item records what the meeting said, while a risk decision itself is written to the risk register
(``dcoflow.tasks.follow_up.risks.record_decision``) and the item keeps the id of that decision. Ids are
deterministic, so building the agenda twice adds nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from dcoflow.models.followup import Action, Priority, Risk, Treatment, followup_id
from dcoflow.models.operation import as_utc, utcnow

CROSS_DCO = "cross-dco"


class MeetingStatus(StrEnum):
    PLANNED = "planned"
    HELD = "held"


class ItemKind(StrEnum):
    DECISION_NEEDED = "decision-needed"
    ACTION_REVIEW = "action-review"
    INFORMATION = "information"


class RefKind(StrEnum):
    RISK = "risk"
    ACTION = "action"
    INCIDENT = "incident"
    NOTE = "note"  # free information item (coverage change, a briefing) with no row behind it


def meeting_id(dco_id: str | None, body: str, scheduled_at: datetime) -> str:
    return followup_id("mtg", dco_id or CROSS_DCO, body.lower(), as_utc(scheduled_at).isoformat())


def item_id(meeting: str, kind: ItemKind, ref_kind: RefKind, ref_id: str) -> str:
    return followup_id("item", meeting, kind.value, ref_kind.value, ref_id)


class Meeting(SQLModel, table=True):
    __tablename__ = "meeting"

    id: str = Field(primary_key=True, max_length=40)
    dco_id: str | None = Field(default=None, index=True, max_length=64, description="None: a cross-DCO meeting")
    body: str = Field(sa_type=Text, description="e.g. DCO coordination board, CRMG, BCISOA")
    scheduled_at: datetime
    attendees: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False),
                                 description="Organisations attending (OCIO, CyOC, JISD, NCIA …)")
    status: MeetingStatus = MeetingStatus.PLANNED
    created_by: str = Field(sa_type=Text, default="dcoflow")
    created_at: datetime = Field(default_factory=utcnow)
    held_at: datetime | None = None
    version: int = 1


class MeetingItem(SQLModel, table=True):
    __tablename__ = "meeting_item"

    id: str = Field(primary_key=True, max_length=40)
    meeting_id: str = Field(index=True, foreign_key="meeting.id", max_length=40)
    order: int
    kind: ItemKind
    ref_kind: RefKind
    ref_id: str = Field(max_length=120)
    dco_id: str | None = Field(default=None, max_length=64)
    title: str
    authority: str | None = Field(sa_type=Text, default=None, description="Who decides (decision items)")
    decide_by: datetime | None = None
    recommendation: str | None = None
    outcome: str | None = None
    decision: Treatment | None = None
    decision_id: int | None = Field(default=None, description="The RiskDecision written to the register")
    decided_by: str | None = Field(default=None, sa_type=Text)
    decided_at: datetime | None = None
    version: int = 1


def recommend(risk: Risk, actions: list[Action]) -> tuple[Treatment, str]:
    """What the cell recommends the body decides, with why (pure; the body may decide otherwise).

    Planned actions that would treat the risk → mitigate (finish them, then re-test). A severe risk
    (score ≥ 16) is never recommended for acceptance. Otherwise, with nothing planned, accept for a
    bounded time while a remedy is found — the acceptance expires and triggers a re-test.
    """
    open_actions = [a for a in actions if a.status.value not in ("verified",)]
    if open_actions:
        last = max(a.due_date for a in open_actions)
        urgent = sum(1 for a in open_actions if a.priority in (Priority.CRITICAL, Priority.HIGH))
        return Treatment.MITIGATE, (
            f"mitigate: {len(open_actions)} action(s) planned ({urgent} high or critical), the last due "
            f"{last.isoformat()}; a re-test verifies them"
        )
    if risk.score >= 16:
        return Treatment.MITIGATE, "mitigate: too severe to accept and no action planned yet — task one now"
    return Treatment.ACCEPT, "accept for at most 90 days while a remedy is found; the expiry triggers a re-test"
