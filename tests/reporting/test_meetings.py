"""Meetings: agendas by the body's authority, decisions written to the risk register, packs and the
XLSX action tracker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.models.attack import Catalog
from dcoflow.models.followup import ActionStatus, RiskStatus, Treatment
from dcoflow.models.meeting import ItemKind, MeetingStatus, RefKind
from dcoflow.models.repository.followup import decisions_for, get_risk, list_actions
from dcoflow.tasks.follow_up.risks import risks_needing_decision
from dcoflow.tasks.reporting.meetings import build_pack, create_meeting, decide_item, meeting_items, write_pack

from .conftest import NOW, Built

AT = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)


def test_agenda_follows_the_bodys_authority(built: Built) -> None:
    with session_scope() as s:
        awaiting = {r.id: body for r, body in risks_needing_decision(s, NOW, dco_id=built.dco_id)}
        assert set(awaiting.values()) == {"CRMG", "BCISOA"}
        agendas = {}
        for body in ("CRMG", "BCISOA", "DCO coordination board"):
            m = create_meeting(s, built.dco_id, body, AT, now=NOW)
            agendas[body] = meeting_items(s, m.id)
        again = create_meeting(s, built.dco_id, "CRMG", AT, now=NOW)
        assert len(meeting_items(s, again.id)) == len(agendas["CRMG"])  # built once
        assert "OCIO" in again.attendees and "CRMG" in again.attendees

    def decisions(body: str) -> set[str]:
        return {i.ref_id for i in agendas[body] if i.kind == ItemKind.DECISION_NEEDED}

    assert decisions("CRMG") == {r for r, b in awaiting.items() if b == "CRMG"}
    assert decisions("BCISOA") == set(awaiting)  # a higher body may decide for a lower one
    assert decisions("DCO coordination board") == set()
    board_info = {i.ref_id for i in agendas["DCO coordination board"] if i.ref_kind == RefKind.RISK}
    assert board_info == set(awaiting)
    crmg_info = [i for i in agendas["CRMG"] if i.ref_kind == RefKind.RISK and i.kind == ItemKind.INFORMATION]
    assert {i.authority for i in crmg_info} == {"BCISOA"}
    assert len(crmg_info) == sum(1 for b in awaiting.values() if b == "BCISOA")
    assert any(i.ref_kind == RefKind.INCIDENT for i in agendas["CRMG"])
    assert any(i.kind == ItemKind.ACTION_REVIEW for i in agendas["CRMG"])


def test_meeting_decision_updates_the_risk_register(built: Built, catalog: Catalog, tmp_path: Path) -> None:
    with session_scope() as s:
        meeting = create_meeting(s, built.dco_id, "BCISOA", AT, now=NOW)
        items = meeting_items(s, meeting.id)
        worst = max((i for i in items if i.kind == ItemKind.DECISION_NEEDED),
                    key=lambda i: get_risk(s, i.ref_id).score)
        other = next(i for i in items if i.kind == ItemKind.DECISION_NEEDED and i.id != worst.id)
        with pytest.raises(ValidationError, match="needs a decision"):
            decide_item(s, worst.id, "mitigate now", "chair", now=AT)
        with pytest.raises(ValidationError, match="expiry"):
            decide_item(s, other.id, "live with it", "chair", decision=Treatment.ACCEPT, now=AT)
        decide_item(s, worst.id, "Mitigate: credential guard on all DCs", "BCISOA chair",
                    decision=Treatment.MITIGATE, now=AT)
        decide_item(s, other.id, "Accept until the EDR roll-out", "BCISOA chair", decision=Treatment.ACCEPT,
                    expires_at=AT + timedelta(days=60), now=AT)
        action_item = next(i for i in items if i.kind == ItemKind.ACTION_REVIEW)
        decide_item(s, action_item.id, "NCIA confirms work started", "secretary",
                    action_status=ActionStatus.IN_PROGRESS, now=AT)

    with session_scope() as s:
        [d1] = decisions_for(s, [worst.ref_id])
        assert (d1.decision, d1.authority, d1.decided_by) == (Treatment.MITIGATE, "BCISOA", "BCISOA chair")
        [d2] = decisions_for(s, [other.ref_id])
        assert d2.decision == Treatment.ACCEPT and d2.expires_at is not None
        assert get_risk(s, other.ref_id).status == RiskStatus.ACCEPTED
        still = {r.id for r, _ in risks_needing_decision(s, AT, dco_id=built.dco_id)}
        assert worst.ref_id not in still and other.ref_id not in still
        refreshed = {i.id: i for i in meeting_items(s, meeting.id)}
        assert refreshed[worst.id].decision_id == d1.id and refreshed[worst.id].decided_by == "BCISOA chair"
        pack = build_pack(s, meeting.id, catalog, now=AT)
        assert pack.meeting.status == MeetingStatus.HELD
        files = write_pack(pack, tmp_path)
        actions = list_actions(s, dco_id=built.dco_id)
        acted = next(a for a in actions if a.id == action_item.ref_id)
        assert acted.status.value == "in-progress"

    md = files["md"].read_text(encoding="utf-8")
    lines = md.strip().splitlines()
    assert "TLP:AMBER — NATO UNCLASSIFIED — REL TO DCO CELL" in lines[0] and "TLP:AMBER" in lines[-1]
    # Decisions are grouped the way the board takes them, with the risks in Annex A (issue 9; was one
    # decision per risk with its register state inline).
    assert "## Agenda" in md and f"Decisions needed ({len(pack.decisions)}, covering" in md
    assert "mitigate — Mitigate: credential guard on all DCs (BCISOA chair)" in md
    assert "## Annex A — the risks in each decision" in md and worst.ref_id in md and other.ref_id in md
    assert "Options: mitigate (fix it), accept" in md and "for **BCISOA**" in md
    overdue_rows = [ln for ln in md.splitlines() if "| **OVERDUE** |" in ln]
    assert len(overdue_rows) == sum(1 for e in pack.actions if e.action.overdue) > 0
    assert "NCIA confirms work started" in md

    book = openpyxl.load_workbook(files["xlsx"])
    sheet = book["actions"]
    assert sheet["A1"].value == "TLP:AMBER — NATO UNCLASSIFIED — REL TO DCO CELL"
    assert "TLP:AMBER" in sheet.oddHeader.center.text and "TLP:AMBER" in sheet.oddFooter.center.text
    header = [c.value for c in sheet[2]]
    rows = [dict(zip(header, [c.value for c in r], strict=True)) for r in sheet.iter_rows(min_row=3)
            if r[1].value and str(r[1].value).startswith("act-")]
    assert len(rows) == len(actions)
    by_id = {a.id: a for a in actions}
    for r in rows:
        a = by_id[r["action"]]
        assert r["owner"] == a.owner and r["due"].date() == a.due_date
        assert (r["overdue"] == "OVERDUE") == a.overdue(AT.date())
    assert next(r for r in rows if r["action"] == action_item.ref_id)["meeting outcome"] == "NCIA confirms work started"
    assert sheet.cell(row=sheet.max_row, column=1).value == sheet["A1"].value  # marking closes the sheet


def test_cross_dco_meeting_takes_the_strictest_marking(built: Built, catalog: Catalog) -> None:
    from dcoflow.models.operation import DcoSpec
    from dcoflow.models.repository.operation import create_operation

    with session_scope() as s:
        create_operation(s, DcoSpec.model_validate({
            "name": "Red cell hunt", "objective": "hunt", "type": "threat-hunt",
            "threat_profile": {"techniques": ["T1059.001"]},
            "marking": {"tlp": "red", "classification": "NATO RESTRICTED"}}), "coordinator")
        meeting = create_meeting(s, None, "DCO coordination board", AT, now=NOW)
        assert meeting.dco_id is None
        pack = build_pack(s, meeting.id, catalog, now=AT)
    # only DCOs with items are in the pack; the red DCO has none, so the marking stays amber
    assert [name for name, _ in pack.status] == ["APT29 purple team (demo)"]
    assert pack.marking.label == "TLP:AMBER"


def test_crmg_pack_groups_decisions_and_keeps_the_rest_in_the_annex(
    built: Built, catalog: Catalog, tmp_path: Path
) -> None:
    """Issue 9: a CRMG pack holds at most 12 decision items (grouped as the board decides them, ranked by
    risk); every risk awaiting CRMG is in exactly one of them or in the annex, and in the XLSX register."""
    from dcoflow.tasks.follow_up.run import run_follow_up

    with session_scope() as s:
        run_follow_up(s, built.dco_id, catalog, gap_limit=200)
        meeting = create_meeting(s, built.dco_id, "CRMG", AT, now=NOW)
        items = [i for i in meeting_items(s, meeting.id) if i.kind == ItemKind.DECISION_NEEDED]
        pack = build_pack(s, meeting.id, catalog, now=AT)
        files = write_pack(pack, tmp_path)
    assert len(items) > 12  # enough risks that one decision per risk would swamp the board
    assert 1 <= len(pack.decisions) <= 12 and pack.annex
    grouped = [c.item_id for g in [*pack.decisions, *pack.annex] for c in g.cases]
    assert sorted(grouped) == sorted(i.id for i in items)  # each risk once
    worst = [g.worst for g in pack.decisions if not g.finding]
    assert worst == sorted(worst, reverse=True)  # ranked by risk
    assert max(g.worst for g in pack.annex) <= min(g.worst for g in pack.decisions)
    headlines = [pack.headline(g) for g in pack.decisions]
    assert len(set(headlines)) == len(headlines)
    md = files["md"].read_text(encoding="utf-8")
    assert sum(1 for line in md.splitlines() if line.startswith("### 2.")) == len(pack.decisions)
    assert "## Annex B — further decisions" in md
    register = openpyxl.load_workbook(files["xlsx"])["decisions"]
    ids = [r[4].value for r in register.iter_rows(min_row=3) if r[4].value and str(r[4].value).startswith("risk-")]
    assert sorted(ids) == sorted(i.ref_id for i in items)


def test_a_grouped_decision_and_a_reassignment_by_the_meeting(built: Built, catalog: Catalog, shared_dir: Path) -> None:
    from typer.testing import CliRunner

    from dcoflow.flows.cli.brief import meeting_app
    from dcoflow.models.repository.operation import audit_trail

    with session_scope() as s:
        meeting = create_meeting(s, built.dco_id, "BCISOA", AT, now=NOW)
        pack = build_pack(s, meeting.id, catalog, now=AT)
        group = next(g for g in pack.decisions if not g.finding)
        review = next(i for i in meeting_items(s, meeting.id) if i.kind == ItemKind.ACTION_REVIEW)
        decide_item(s, review.id, "moved to the CIO office", "BCISOA chair", owner="OCIO",
                    due=(AT + timedelta(days=45)).date(), now=AT)
        moved = [e for e in audit_trail(s, built.dco_id) if e.action == "action-reassigned"]
        assert moved[-1].details["via"] == review.id and moved[-1].details["to"]["owner"] == "OCIO"
    result = CliRunner().invoke(meeting_app, [
        "decide", group.id, "--meeting", meeting.id, "--decision", "mitigate", "--outcome", "fund the fixes",
        "--by", "BCISOA chair", "--attack", str(shared_dir / "attack" / "enterprise-attack-18.1.json.gz"), "--json"])
    assert result.exit_code == 0, result.output
    with session_scope() as s:
        decided = decisions_for(s, [c.risk_id for c in group.cases])
    assert sorted(d.risk_id for d in decided) == sorted(c.risk_id for c in group.cases)
    assert {d.decision for d in decided} == {Treatment.MITIGATE}


def test_a_cross_dco_agenda_reads_the_register_once(built: Built) -> None:
    """Building the agenda of all open DCOs costs the same reads for one DCO with items or for four."""
    from sqlalchemy import event

    from dcoflow.core.db import get_engine
    from dcoflow.models.operation import DcoSpec
    from dcoflow.models.repository.operation import create_operation

    selects: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    def agenda(at: datetime) -> tuple[int, list[tuple[str, str]]]:
        selects.clear()
        event.listen(get_engine(), "before_cursor_execute", count)
        try:
            with session_scope() as s:
                meeting = create_meeting(s, None, "DCO coordination board", at, now=NOW)
                items = [(i.kind.value, i.ref_id) for i in meeting_items(s, meeting.id)]
        finally:
            event.remove(get_engine(), "before_cursor_execute", count)
        return len(selects), items

    alone, items = agenda(AT)
    with session_scope() as s:
        for n in range(3):
            create_operation(s, DcoSpec.model_validate({
                "name": f"quiet hunt {n}", "objective": "hunt", "type": "threat-hunt",
                "threat_profile": {"techniques": ["T1059.001"]}}), "coordinator")
    with_more, items_again = agenda(AT + timedelta(days=1))
    assert with_more == alone and items_again == items and items
    with session_scope() as s:
        one = create_meeting(s, built.dco_id, "DCO coordination board", AT, now=NOW)
        assert sorted((i.kind.value, i.ref_id) for i in meeting_items(s, one.id)) == sorted(items)
