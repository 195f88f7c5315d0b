"""Meetings: build a body's agenda from the follow-up register, record what it decided, write its pack.

The agenda of a body that decides on risks (a ``DecisionPolicy`` body: CRMG, BCISOA …) holds every
risk awaiting a decision it has the authority for; other bodies (the DCO coordination board) see
those risks as information with the body that must decide. Every board reviews the actions that are
overdue, reopened, awaiting verification, urgent or due soon, and notes the incidents raised.

A decision on a risk item is written through ``dcoflow.tasks.follow_up.risks.record_decision`` — the risk
register stays the single source of truth; the item keeps the id of the decision it produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from dcoflow.connectors.content.governance_file import load_governance
from dcoflow.core.db import insert_if_absent
from dcoflow.core.errors import ConflictError, ValidationError
from dcoflow.models.attack import Catalog
from dcoflow.models.cells import XLSX_OPTIONS
from dcoflow.models.followup import (
    Action,
    ActionStatus,
    DecisionPolicy,
    Incident,
    Priority,
    Risk,
    Treatment,
    as_utc,
    is_overdue,
)
from dcoflow.models.marking import MarkingFacts, strictest, xlsx_header
from dcoflow.models.meeting import (
    MAX_DECISIONS_PER_PACK,
    DecisionCase,
    DecisionGroup,
    ItemKind,
    Meeting,
    MeetingItem,
    MeetingStatus,
    RefKind,
    group_decisions,
    item_id,
    meeting_id,
    recommend,
)
from dcoflow.models.operation import DcoState, Operation, utcnow
from dcoflow.models.repository.followup import get_risk, list_actions, list_incidents, risks_by_id
from dcoflow.models.repository.meeting import get_item, get_meeting, meeting_items
from dcoflow.models.repository.operation import get_operation, list_operations, lock_row, record_event
from dcoflow.tasks.follow_up.actions import reassign_action, update_action_status
from dcoflow.tasks.follow_up.risks import reassign_risk, record_decision, risks_needing_decision
from dcoflow.tasks.reporting.briefing import (
    ActionFacts,
    BriefingFacts,
    Rag,
    RiskFacts,
    gather_facts,
    render,
    tactic_words,
)

REVIEW_WINDOW_DAYS = 14


def can_decide(policy: DecisionPolicy, body: str, required: str) -> bool:
    """A policy body may decide for its own level and every level below it."""
    rank = policy.rank(body)
    return rank >= 0 and rank >= policy.rank(required)


def _operations(session: Session, dco: str | None) -> list[Operation]:
    if dco is not None:
        return [get_operation(session, dco)]
    return [op for op in list_operations(session) if op.state != DcoState.CLOSED]


def _needs_review(a: Action, when: datetime, window_days: int) -> bool:
    if a.status == ActionStatus.VERIFIED:
        return False
    return (
        is_overdue(a.status, a.due_date, when.date())
        or a.status in (ActionStatus.REOPENED, ActionStatus.DONE)
        or a.priority in (Priority.CRITICAL, Priority.HIGH)
        or a.due_date <= (when + timedelta(days=window_days)).date()
    )


def create_meeting(
    session: Session,
    dco: str | None,
    body: str,
    scheduled_at: datetime,
    *,
    attendees: Sequence[str] | None = None,
    actor: str = "dcoflow",
    now: datetime | None = None,
    policy: DecisionPolicy | None = None,
    review_window_days: int = REVIEW_WINDOW_DAYS,
) -> Meeting:
    """The meeting of ``body`` at ``scheduled_at`` about one DCO (or, with ``dco`` None, all open DCOs),
    with its agenda built from the register. Calling it again adds what is new and keeps what was said."""
    policy = policy or load_governance().policy
    now = as_utc(now or utcnow())
    when = as_utc(scheduled_at)
    ops = _operations(session, dco)
    dco_id = ops[0].id if dco is not None else None
    mid = meeting_id(dco_id, body, when)
    meeting = session.get(Meeting, mid)
    created = raced = False
    if meeting is None:
        orgs = list(attendees) if attendees else list(dict.fromkeys(
            [body] + [p.organisation for op in ops for p in op.dco.participants]))
        # Insert-if-absent: two people scheduling the same meeting at once get one meeting, not a unique violation.
        created = insert_if_absent(session, Meeting(id=mid, dco_id=dco_id, body=body, scheduled_at=when,
                                                    attendees=orgs, created_by=actor, created_at=now)) is not None
        raced = not created
    # Locked while its agenda is extended: a concurrent call waits and then adds only what is still missing.
    meeting = lock_row(session, session.get_one(Meeting, mid))
    if raced and attendees and list(attendees) != meeting.attendees:
        raise ConflictError(
            f"meeting {mid} was created by {meeting.created_by} meanwhile, with attendees "
            f"{', '.join(meeting.attendees)}; yours were not stored", system="meetings", object=mid,
            details={"current": {"attendees": meeting.attendees, "created_by": meeting.created_by}},
            hint="see `dco meeting list`")
    if created:
        for op in ops:
            record_event(session, op.id, actor, "meeting-created", {"meeting": mid, "body": body,
                                                                   "scheduled_at": when.isoformat()})
    existing = {i.id: i for i in meeting_items(session, mid)}
    order = max((i.order for i in existing.values()), default=0)

    def add(kind: ItemKind, ref_kind: RefKind, ref: str, op_id: str, title: str, **extra: Any) -> None:
        nonlocal order
        iid = item_id(mid, kind, ref_kind, ref)
        if iid in existing:
            return
        order += 1
        item = MeetingItem(id=iid, meeting_id=mid, order=order, kind=kind, ref_kind=ref_kind, ref_id=ref,
                           dco_id=op_id, title=title, **extra)
        session.add(item)
        existing[iid] = item

    # The register is read once for all the meeting's DCOs (one DCO: filtered in SQL) and grouped here.
    only = ops[0].id if dco is not None else None
    actions_of: dict[str, list[Action]] = {}
    for a in list_actions(session, dco_id=only, today=when.date()):
        actions_of.setdefault(a.dco_id, []).append(a)
    awaiting_of: dict[str, list[tuple[Risk, str]]] = {}
    for risk, required in risks_needing_decision(session, now, dco_id=only, policy=policy):
        awaiting_of.setdefault(risk.dco_id, []).append((risk, required))
    incidents_of: dict[str, list[Incident]] = {}
    for inc in list_incidents(session, dco_id=only):
        incidents_of.setdefault(inc.dco_id, []).append(inc)
    for op in ops:
        actions = actions_of.get(op.id, [])
        for risk, required in awaiting_of.get(op.id, []):
            decide_by = datetime.combine(risk.review_date, datetime.min.time(), tzinfo=UTC)
            if can_decide(policy, body, required):
                related = [a for a in actions if a.risk_id == risk.id or a.technique_id in risk.technique_ids]
                add(ItemKind.DECISION_NEEDED, RefKind.RISK, risk.id, op.id, risk.statement, authority=required,
                    decide_by=decide_by, recommendation=recommend(risk, related)[1])
            else:
                add(ItemKind.INFORMATION, RefKind.RISK, risk.id, op.id,
                    f"Awaiting a decision by {required} by {risk.review_date.isoformat()}: {risk.statement}",
                    authority=required, decide_by=decide_by)
        for a in actions:
            if _needs_review(a, when, review_window_days):
                add(ItemKind.ACTION_REVIEW, RefKind.ACTION, a.id, op.id, a.title)
        for inc in incidents_of.get(op.id, []):
            add(ItemKind.INFORMATION, RefKind.INCIDENT, inc.id, op.id,
                f"Incident ({inc.severity.value}, {inc.status.value}): {inc.summary}")
    session.flush()
    return meeting


def hold_meeting(session: Session, meeting: Meeting, actor: str, now: datetime | None = None) -> Meeting:
    if meeting.status != MeetingStatus.HELD:
        meeting.status, meeting.held_at = MeetingStatus.HELD, as_utc(now or utcnow())
        meeting.version += 1
        session.add(meeting)
        for op_id in _meeting_dcos(session, meeting):
            record_event(session, op_id, actor, "meeting-held", {"meeting": meeting.id, "body": meeting.body})
    return meeting


def _meeting_dcos(session: Session, meeting: Meeting) -> list[str]:
    if meeting.dco_id is not None:
        return [meeting.dco_id]
    return list(dict.fromkeys(i.dco_id for i in meeting_items(session, meeting.id) if i.dco_id))


def decide_item(
    session: Session,
    item_ref: str,
    outcome: str,
    by: str,
    *,
    decision: Treatment | None = None,
    expires_at: datetime | None = None,
    residual: tuple[int, int] | None = None,
    action_status: ActionStatus | None = None,
    owner: str | None = None,
    due: date | None = None,
    now: datetime | None = None,
    policy: DecisionPolicy | None = None,
) -> MeetingItem:
    """Record what the meeting said about an item. A risk decision goes to the risk register (checked
    against the policy with the meeting's body as the authority); an action's new status goes through
    the action's own transition rules; a new owner or date for the item's action or risk is a reassignment
    audited as decided by this item. The meeting counts as held from its first recorded outcome."""
    now = as_utc(now or utcnow())
    item = get_item(session, item_ref)
    meeting = get_meeting(session, item.meeting_id)
    if not outcome.strip():
        raise ValidationError("say what the meeting decided", field="outcome", object=item.id)
    if item.kind == ItemKind.DECISION_NEEDED and item.ref_kind == RefKind.RISK:
        if decision is None:
            raise ValidationError("a risk item needs a decision", field="decision", object=item.id,
                                  suggestions=[t.value for t in Treatment])
        row = record_decision(session, item.ref_id, decision, meeting.body, outcome, by, expires_at=expires_at,
                              now=now, policy=policy, residual=residual)
        item.decision, item.decision_id = decision, row.id
    elif decision is not None:
        raise ValidationError(f"a decision on a risk is taken on a decision item, not on a {item.kind} item",
                              field="decision", object=item.id)
    if action_status is not None:
        if item.ref_kind != RefKind.ACTION:
            raise ValidationError("only an action item takes an action status", field="status", object=item.id)
        update_action_status(session, item.ref_id, action_status, by, now=now)
    if owner is not None or due is not None:
        why = f"{meeting.body} decided: {outcome.strip()}"
        if item.ref_kind == RefKind.ACTION:
            reassign_action(session, item.ref_id, by, why, owner=owner, due=due, via=item.id, now=now)
        elif item.ref_kind == RefKind.RISK:
            reassign_risk(session, item.ref_id, by, why, owner=owner, review_date=due, via=item.id, now=now)
        else:
            raise ValidationError("only an action or a risk item can be reassigned", field="owner", object=item.id)
    item.outcome, item.decided_by, item.decided_at = outcome.strip(), by, now
    item.version += 1
    session.add(item)
    hold_meeting(session, meeting, by, now)
    if item.dco_id:
        record_event(session, item.dco_id, by, "meeting-item", {
            "meeting": meeting.id, "item": item.id, "kind": item.kind.value, "ref": item.ref_id,
            "decision": decision.value if decision else None, "outcome": item.outcome,
        })
    session.flush()
    return item


def meeting_row(m: Meeting, items: Sequence[MeetingItem] = ()) -> dict[str, Any]:
    return {
        "id": m.id, "dco": m.dco_id, "body": m.body, "scheduled_at": as_utc(m.scheduled_at).isoformat(),
        "attendees": m.attendees, "status": m.status.value,
        "held_at": as_utc(m.held_at).isoformat() if m.held_at else None,
        "items": len(items), "decisions_needed": sum(1 for i in items if i.kind == ItemKind.DECISION_NEEDED),
        "decided": sum(1 for i in items if i.decided_at is not None),
    }


def item_row(i: MeetingItem) -> dict[str, Any]:
    return {
        "id": i.id, "meeting": i.meeting_id, "order": i.order, "kind": i.kind.value, "ref_kind": i.ref_kind.value,
        "ref": i.ref_id, "dco": i.dco_id, "title": i.title, "authority": i.authority,
        "decide_by": as_utc(i.decide_by).date().isoformat() if i.decide_by else None,
        "recommendation": i.recommendation, "outcome": i.outcome,
        "decision": i.decision.value if i.decision else None, "decision_id": i.decision_id,
        "decided_by": i.decided_by, "decided_at": as_utc(i.decided_at).isoformat() if i.decided_at else None,
    }


# -- the pack ------------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class DecisionEntry:
    item: MeetingItem
    risk: RiskFacts | None  # None: decided already and no longer awaiting (the register shows the decision)
    current_treatment: str
    current_status: str


@dataclass(slots=True, frozen=True)
class ActionEntry:
    item: MeetingItem
    action: ActionFacts


@dataclass(slots=True)
class MeetingPack:
    meeting: Meeting
    title: str
    marking: MarkingFacts
    generated_at: datetime
    status: list[tuple[str, Rag]]  # (DCO name, its RAG)
    decisions: list[DecisionGroup]  # what the body decides at this meeting (at most MAX_DECISIONS_PER_PACK)
    annex: list[DecisionGroup]  # further grouped decisions, listed in the annex and the XLSX register
    entries: dict[str, DecisionEntry]  # by item id: the risk behind each case
    actions: list[ActionEntry]
    information: list[MeetingItem]
    tracker: list[ActionFacts]  # every action of the DCOs, for the XLSX tracker
    where: str = "the scope"  # the enclaves the decisions are about
    accept_until: date | None = None  # how long a recommended acceptance runs
    facts: list[BriefingFacts] = field(default_factory=list)

    @property
    def agenda(self) -> list[str]:
        overdue = sum(1 for a in self.actions if a.action.overdue)
        risks = sum(g.size for g in self.decisions)
        more = f"; {len(self.annex)} more in the annex" if self.annex else ""
        ir = ", incident-response support" if any(f.ir for f in self.facts) else ""
        return [
            f"Opening, attendance and status of the operation(s){ir}",
            f"Decisions needed ({len(self.decisions)}, covering {risks} risks{more})",
            f"Action review ({len(self.actions)}, of which {overdue} overdue)",
            f"Information ({len(self.information)})",
            "Any other business; date of the next meeting",
        ]

    def headline(self, group: DecisionGroup) -> str:
        return group.title(self.where, self.accept_until if group.recommendation == Treatment.ACCEPT else None)

    def cases(self, group: DecisionGroup) -> list[DecisionEntry]:
        return [self.entries[c.item_id] for c in group.cases]


def build_pack(session: Session, meeting_ref: str, catalog: Catalog, *, now: datetime | None = None,
               policy: DecisionPolicy | None = None, max_decisions: int = MAX_DECISIONS_PER_PACK) -> MeetingPack:
    """The meeting's pack from its items and the register as it stands now: risks awaiting a decision grouped
    the way the body decides them (authority, recommended treatment, tactic, owner; a finding alone), ranked by
    the worst risk, at most ``max_decisions`` on the agenda and the rest in the annex."""
    policy = policy or load_governance().policy
    now = as_utc(now or utcnow())
    meeting = get_meeting(session, meeting_ref)
    items = meeting_items(session, meeting.id)
    dcos = [meeting.dco_id] if meeting.dco_id else list(dict.fromkeys(i.dco_id for i in items if i.dco_id))
    # every risk the agenda asks a decision on, in one query
    risks = risks_by_id(session, {i.ref_id for i in items if i.kind == ItemKind.DECISION_NEEDED})
    facts = [gather_facts(session, d, catalog, now=now, policy=policy) for d in dcos]
    risks_awaiting = {r.id: r for f in facts for r in f.decisions}
    actions = {a.id: a for f in facts for a in f.actions}
    entries: dict[str, DecisionEntry] = {}
    cases: list[DecisionCase] = []
    reviews, info = [], []
    for item in items:
        if item.kind == ItemKind.DECISION_NEEDED:
            risk = risks.get(item.ref_id) or get_risk(session, item.ref_id)  # a missing one: its NotFoundError
            facts_now = risks_awaiting.get(item.ref_id)
            entries[item.id] = DecisionEntry(item, facts_now, risk.treatment.value, risk.status.value)
            recommendation = item.decision or (facts_now.recommendation if facts_now else risk.treatment)
            name = facts_now.techniques[0][1] if facts_now and facts_now.techniques else risk.statement
            cases.append(DecisionCase(item.id, risk.id, risk.score, item.authority or "", recommendation,
                                      risk.source_key.startswith("finding|"),
                                      tactic_words(catalog, risk.technique_ids), risk.owner, name))
        elif item.kind == ItemKind.ACTION_REVIEW and item.ref_id in actions:
            reviews.append(ActionEntry(item, actions[item.ref_id]))
        else:
            info.append(item)
    groups = group_decisions(meeting.id, cases)
    scope = facts[0].name if meeting.dco_id and facts else "all open DCOs"
    enclaves = list(dict.fromkeys(e for f in facts for e in f.enclaves))
    body = policy.body(meeting.body)
    days = min(90, body.max_acceptance_days) if body else 90
    return MeetingPack(
        meeting=meeting, title=f"{meeting.body} — {as_utc(meeting.scheduled_at):%Y-%m-%d %H:%M} UTC — {scope}",
        marking=strictest(f.marking for f in facts), generated_at=now, status=[(f.name, f.rag) for f in facts],
        decisions=groups[:max_decisions], annex=groups[max_decisions:], entries=entries,
        actions=reviews, information=info,
        tracker=sorted((a for f in facts for a in f.actions), key=lambda a: (not a.overdue, a.due, a.id)),
        where=", ".join(enclaves) or "the scope",
        accept_until=(as_utc(meeting.scheduled_at) + timedelta(days=days)).date(),
        facts=facts,
    )


def decide_group(
    session: Session, meeting_ref: str, group_id: str, catalog: Catalog, outcome: str, by: str, *,
    decision: Treatment, expires_at: datetime | None = None, now: datetime | None = None,
    policy: DecisionPolicy | None = None,
) -> list[MeetingItem]:
    """Record one decision for every risk of a grouped decision (each goes to the risk register)."""
    pack = build_pack(session, meeting_ref, catalog, now=now, policy=policy, max_decisions=10**6)
    group = next((g for g in pack.decisions if g.id == group_id), None)
    if group is None:
        raise ValidationError(f"no grouped decision {group_id} in meeting {pack.meeting.id}", field="group",
                              suggestions=[g.id for g in pack.decisions][:10])
    return [decide_item(session, c.item_id, outcome, by, decision=decision, expires_at=expires_at, now=now,
                        policy=policy) for c in group.cases if pack.entries[c.item_id].item.decided_at is None]


TRACKER_COLUMNS = ["dco", "action", "title", "kind", "technique", "owner", "priority", "due", "status", "overdue",
                   "risk", "meeting outcome"]


def write_tracker(pack: MeetingPack, path: Path) -> Path:
    """The action tracker (XLSX): marking on the first row and in the print header/footer, one row per action."""
    import xlsxwriter  # type: ignore[import-untyped]

    path.parent.mkdir(parents=True, exist_ok=True)
    outcomes = {e.item.ref_id: e.item.outcome or "" for e in pack.actions}
    book = xlsxwriter.Workbook(str(path), XLSX_OPTIONS)  # text stays text: no formula, no link
    book.set_properties({"title": f"Action tracker — {pack.title}", "keywords": pack.marking.label,
                         "comments": pack.marking.banner})
    banner = book.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#000000"})
    bold = book.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
    late = book.add_format({"bold": True, "font_color": "#B00020"})
    dated = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet = _marked_sheet(book, "actions", TRACKER_COLUMNS, pack.marking, banner, bold)
    row = 2
    for a in pack.tracker:
        values: list[Any] = [a.dco_id, a.id, a.title, a.kind, a.technique_id, a.owner, a.priority, None, a.status,
                             "OVERDUE" if a.overdue else "", a.risk_id or "", outcomes.get(a.id, "")]
        for c, value in enumerate(values):
            if c == 7:
                sheet.write_datetime(row, c, datetime.combine(a.due, datetime.min.time()), dated)
            elif c == 9 and value:
                sheet.write(row, c, value, late)
            else:
                sheet.write(row, c, value)
        row += 1
    sheet.merge_range(row + 1, 0, row + 1, len(TRACKER_COLUMNS) - 1, pack.marking.banner, banner)
    sheet.autofilter(1, 0, max(2, row - 1), len(TRACKER_COLUMNS) - 1)
    sheet.freeze_panes(2, 2)
    sheet.set_column(2, 2, 60)
    sheet.set_column(0, 1, 22)
    _register_sheet(book, pack, banner, bold)
    book.close()
    return path


def _marked_sheet(book: Any, name: str, columns: Sequence[str], marking: MarkingFacts, banner: Any,
                  bold: Any) -> Any:
    """A worksheet with the marking in its print header and footer and as a banner row above the column names."""
    sheet = book.add_worksheet(name)
    code = xlsx_header(marking)  # Excel header/footer codes: &C is the centre section
    sheet.set_header(f"&C{code}")
    sheet.set_footer(f"&C{code} — page &P of &N")
    sheet.merge_range(0, 0, 0, len(columns) - 1, marking.banner, banner)
    for c, column in enumerate(columns):
        sheet.write(1, c, column, bold)
    return sheet


REGISTER_COLUMNS = ["decision", "on the agenda", "body", "recommended", "risk", "score", "likelihood", "impact",
                    "owner", "decide by", "statement", "outcome"]


def _register_sheet(book: Any, pack: MeetingPack, banner: Any, bold: Any) -> None:
    """The full register of risks awaiting this body's decision, each with the grouped decision it belongs to
    (those on the agenda and those in the annex)."""
    sheet = _marked_sheet(book, "decisions", REGISTER_COLUMNS, pack.marking, banner, bold)
    row = 2
    for n, g in enumerate([*pack.decisions, *pack.annex], start=1):
        for e in pack.cases(g):
            r = e.risk
            values: list[Any] = [
                pack.headline(g), f"2.{n}" if n <= len(pack.decisions) else "annex B", g.authority,
                g.recommendation.value, e.item.ref_id, r.score if r else "", r.likelihood if r else "",
                r.impact if r else "", r.owner if r else "", as_utc(e.item.decide_by).date().isoformat()
                if e.item.decide_by else "", r.statement if r else e.item.title, e.item.outcome or "",
            ]
            for c, value in enumerate(values):
                sheet.write(row, c, value)
            row += 1
    sheet.merge_range(row + 1, 0, row + 1, len(REGISTER_COLUMNS) - 1, pack.marking.banner, banner)
    sheet.autofilter(1, 0, max(2, row - 1), len(REGISTER_COLUMNS) - 1)
    sheet.freeze_panes(2, 1)
    sheet.set_column(0, 0, 60)
    sheet.set_column(10, 10, 80)


def meeting_pack_text(pack: MeetingPack, fmt: str = "md") -> str:
    return render(f"meeting.{fmt}.j2", p=pack, marking=pack.marking, title=pack.title)


def write_pack(pack: MeetingPack, out_dir: Path) -> dict[str, Path]:
    """Markdown, self-contained HTML and the XLSX action tracker of a meeting."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{pack.meeting.id}-pack"
    written = {}
    for fmt in ("md", "html"):
        path = out_dir / f"{stem}.{fmt}"
        path.write_text(meeting_pack_text(pack, fmt), encoding="utf-8")
        written[fmt] = path
    written["xlsx"] = write_tracker(pack, out_dir / f"{pack.meeting.id}-actions.xlsx")
    return written
