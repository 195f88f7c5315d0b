"""Meetings of the coordination cell and the bodies that decide on risks, and the items on their agenda.

A meeting belongs to one DCO or to several (``dco_id`` None: a cross-DCO board). Its items point at
the follow-up rows they are about (a risk to decide, an action to review, an incident to note); the
item records what the meeting said, while a risk decision itself is written to the risk register
(``dcoflow.tasks.follow_up.risks.record_decision``) and the item keeps the id of that decision. Ids are
deterministic, so building the agenda twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
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


# -- decisions the way a board takes them ---------------------------------------------------------------------

MAX_DECISIONS_PER_PACK = 10


@dataclass(frozen=True, slots=True)
class DecisionCase:
    """One risk awaiting a decision, with what grouping needs to know about it."""

    item_id: str
    risk_id: str
    score: int
    authority: str
    recommendation: Treatment
    finding: bool  # a confirmed finding (decided alone), else an assessment gap
    tactic: str  # the technique's first ATT&CK tactic, in words (e.g. "Discovery")
    owner: str
    title: str  # the risk in plain words (technique name)


@dataclass(frozen=True, slots=True)
class DecisionGroup:
    """Risks a body decides together: same authority, same recommended treatment, same tactic and owner —
    e.g. "accept 12 residual detection gaps in Discovery on CORP-LAN until 2027-03-06, owner OCIO"."""

    id: str
    authority: str
    recommendation: Treatment
    tactic: str
    owner: str
    finding: bool
    cases: tuple[DecisionCase, ...]

    @property
    def worst(self) -> int:
        return max(c.score for c in self.cases)

    @property
    def size(self) -> int:
        return len(self.cases)

    def title(self, where: str, until: date | None) -> str:
        n = self.size
        gaps = "detection gap" if n == 1 else "detection gaps"
        if self.finding:
            many = f" ({n} confirmed findings)" if n > 1 else ""
            return f"Respond to confirmed hostile activity: {self.cases[0].title}{many} (owner {self.owner})"
        if self.recommendation == Treatment.ACCEPT:
            return (f"Accept {n} residual {gaps} in {self.tactic} on {where}"
                    + (f" until {until.isoformat()}" if until else "") + f", owner {self.owner}")
        verb = {Treatment.MITIGATE: "Mitigate", Treatment.TRANSFER: "Transfer", Treatment.AVOID: "Avoid"}[
            self.recommendation]
        return f"{verb} {n} {gaps} in {self.tactic} on {where}, owner {self.owner}"


def group_decisions(meeting: str, cases: Iterable[DecisionCase]) -> list[DecisionGroup]:
    """Group the cases and rank the groups by their worst risk, then size. Confirmed findings are decided per
    technique, apart from the gaps: two incidents of the same activity are one response, not two decisions."""
    groups: dict[tuple[str, ...], list[DecisionCase]] = {}
    for c in cases:
        key = (c.authority, c.recommendation.value, c.tactic, c.owner, f"finding|{c.title}" if c.finding else "")
        groups.setdefault(key, []).append(c)
    out = [
        DecisionGroup(followup_id("grp", meeting, *key), key[0], Treatment(key[1]), key[2], key[3], bool(key[4]),
                      tuple(sorted(members, key=lambda c: (-c.score, c.risk_id))))
        for key, members in groups.items()
    ]
    return sorted(out, key=lambda g: (not g.finding, -g.worst, -g.size, g.id))
