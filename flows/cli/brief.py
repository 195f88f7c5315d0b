"""`dco brief …` and `dco meeting …` — briefs for technical and executive audiences, meetings of the
coordination cell and the risk bodies: agenda, decisions (recorded in the risk register), packs.

Wiring: the ``brief`` and ``meeting`` entries of ``AREAS`` in flows/cli/__init__.py (both merged into the root).
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Literal

import typer

from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.core.settings import get_settings
from dcoflow.flows.cli.output import cli_user, console, handle_errors, print_json, table, u
from dcoflow.models.followup import ActionStatus, Treatment
from dcoflow.models.operation import as_utc

app = typer.Typer(help="Briefs and meeting packs.", no_args_is_help=True)
meeting_app = typer.Typer(help="Meetings of the coordination cell and the risk bodies.", no_args_is_help=True)
app.add_typer(meeting_app, name="meeting")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
AttackOpt = Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, URL or TAXII.")]


def _when(value: str, field: str, *, end_of_day: bool = False) -> datetime:
    """ISO date or date-time (UTC unless it carries an offset)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a date or date-time", field=field,
                              hint="YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if len(value) == 10 and end_of_day:
        moment = datetime.combine(moment.date(), time(23, 59))
    return as_utc(moment)


@app.command("brief")
@handle_errors
def brief(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    audience: Annotated[Literal["technical", "executive", "both"], typer.Option("--audience")] = "both",
    out: Annotated[Path | None, typer.Option("--out", help="Folder (default: DCO_OUTPUT_DIR/<dco>).")] = None,
    attack_source: AttackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a DCO's technical and/or executive brief (Markdown and self-contained HTML)."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.tasks.reporting.briefing import write_briefs
    from dcoflow.tasks.reporting.documents.products import gather_brief_documents

    catalog = load_catalog(attack_source)
    with session_scope() as s:
        docs = gather_brief_documents(s, dco, catalog)
    facts = docs.facts
    files = write_briefs(facts, out or get_settings().output_dir / facts.dco_id, audience, docs.charts)
    doc = {"dco": facts.dco_id, "rag": facts.rag.level, "reasons": list(facts.rag.reasons),
           "decisions": len(facts.decisions), "overdue_actions": len(facts.overdue_actions),
           "incidents": len(facts.incidents), "files": {k: str(v) for k, v in files.items()}}
    if as_json:
        print_json(doc)
        return
    console.print(f"[bold]{facts.dco_id}[/] {facts.marking.label}: status {facts.rag.label} — "
                  + u("; ".join(facts.rag.reasons)))
    for path in files.values():
        console.print(f"  {path}")


@meeting_app.command("create")
@handle_errors
def create(
    dco: Annotated[str | None, typer.Argument(help="DCO id or name; omit with --all-dcos.")] = None,
    body: Annotated[str, typer.Option("--body", help="e.g. 'DCO coordination board', CRMG, BCISOA.")] = "",
    at: Annotated[str, typer.Option("--at", help="When: YYYY-MM-DDTHH:MM (UTC unless an offset is given).")] = "",
    attendee: Annotated[list[str] | None, typer.Option("--attendee", help="Organisation (repeat).")] = None,
    all_dcos: Annotated[bool, typer.Option("--all-dcos", help="A cross-DCO meeting of all open DCOs.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Schedule a body's meeting and build its agenda from the risk and action register."""
    from dcoflow.tasks.reporting.meetings import create_meeting, item_row, meeting_items, meeting_row

    if not body.strip():
        raise ValidationError("name the meeting's body", field="body", hint="--body CRMG")
    if (dco is None) != all_dcos:
        raise ValidationError("give a DCO or --all-dcos (not both)", field="dco")
    if not at:
        raise ValidationError("say when the meeting is", field="at", hint="--at 2026-12-15T10:00")
    with session_scope() as s:
        meeting = create_meeting(s, dco, body.strip(), _when(at, "at"), attendees=attendee or None,
                                 actor=cli_user())
        items = meeting_items(s, meeting.id)
        doc = {**meeting_row(meeting, items), "agenda": [item_row(i) for i in items]}
    if as_json:
        print_json(doc)
        return
    console.print(f"meeting [bold]{doc['id']}[/] of {u(doc['body'])} on {doc['scheduled_at'][:16]}: "
                  f"{doc['items']} items, {doc['decisions_needed']} decisions needed")
    _items_table(doc["agenda"])


def _items_table(rows: list[dict[str, object]]) -> None:
    table("Agenda items", ["id", "kind", "ref", "authority", "decide by", "title", "outcome"],
          [[r["id"], r["kind"], r["ref"], r["authority"], r["decide_by"], r["title"], r["outcome"]] for r in rows])


@meeting_app.command("list")
@handle_errors
def list_(
    dco: Annotated[str | None, typer.Option("--dco", help="Only this DCO's meetings (id).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List meetings with their body, time, status and how many items were decided."""
    from dcoflow.tasks.reporting.meetings import list_meetings, meeting_items, meeting_row

    with session_scope() as s:
        rows = [meeting_row(m, meeting_items(s, m.id)) for m in list_meetings(s, dco_id=dco)]
    if as_json:
        print_json(rows)
        return
    table("Meetings", ["id", "dco", "body", "scheduled", "status", "items", "decisions", "decided"],
          [[r["id"], r["dco"] or "(cross-DCO)", r["body"], str(r["scheduled_at"])[:16], r["status"], r["items"],
            r["decisions_needed"], r["decided"]] for r in rows])


@meeting_app.command("items")
@handle_errors
def items(meeting_id: str, as_json: JsonOpt = False) -> None:
    """A meeting's agenda items (ids to decide on)."""
    from dcoflow.tasks.reporting.meetings import get_meeting, item_row, meeting_items

    with session_scope() as s:
        rows = [item_row(i) for i in meeting_items(s, get_meeting(s, meeting_id).id)]
    print_json(rows) if as_json else _items_table(rows)


@meeting_app.command("pack")
@handle_errors
def pack(
    meeting_id: str,
    out: Annotated[Path | None, typer.Option("--out", help="Folder (default: DCO_OUTPUT_DIR/meetings).")] = None,
    attack_source: AttackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the meeting pack (Markdown, HTML) and its XLSX action tracker."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.tasks.reporting.meetings import build_pack, write_pack

    catalog = load_catalog(attack_source)
    with session_scope() as s:
        files = write_pack(build_pack(s, meeting_id, catalog), out or get_settings().output_dir / "meetings")
    doc = {"meeting": meeting_id, "files": {k: str(v) for k, v in files.items()}}
    if as_json:
        print_json(doc)
        return
    for path in files.values():
        console.print(f"  {path}")


@meeting_app.command("decide")
@handle_errors
def decide(
    item_id: str,
    outcome: Annotated[str, typer.Option("--outcome", help="What the meeting decided, and why.")],
    by: Annotated[str, typer.Option("--by", help="Who records it (chair or secretary).")],
    decision: Annotated[Treatment | None, typer.Option("--decision", help="For a risk: mitigate, accept, "
                                                       "transfer or avoid.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="YYYY-MM-DD; required to accept.")] = None,
    action_status: Annotated[ActionStatus | None, typer.Option("--action-status", help="For an action: its "
                                                               "new status.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Reassign the item's action or risk to this "
                                              "organisation (audited).")] = None,
    due: Annotated[str | None, typer.Option("--due", help="YYYY-MM-DD: a new due (action) or decide-by (risk) "
                                            "date.")] = None,
    meeting: Annotated[str | None, typer.Option("--meeting", help="With a grouped decision id (grp-…): its "
                                                "meeting.")] = None,
    attack_source: AttackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record an item's outcome (or a grouped decision's, for each of its risks); a risk decision is written
    to the risk register by the meeting's body."""
    from dcoflow.tasks.reporting.meetings import decide_group, decide_item, item_row

    expires_at = _when(expires, "expires", end_of_day=True) if expires else None
    due_day = _when(due, "due").date() if due else None
    if item_id.startswith("grp-"):
        from dcoflow.connectors.attack import load_catalog

        if meeting is None or decision is None:
            raise ValidationError("a grouped decision needs --meeting and --decision", field="meeting")
        catalog = load_catalog(attack_source)
        with session_scope() as s:
            rows = [item_row(i) for i in decide_group(s, meeting, item_id, catalog, outcome, by, decision=decision,
                                                       expires_at=expires_at)]
        if as_json:
            print_json(rows)
        else:
            console.print(f"decision [bold]{item_id}[/]: {decision.value} for {len(rows)} risk(s)")
        return
    with session_scope() as s:
        row = item_row(decide_item(s, item_id, outcome, by, decision=decision, expires_at=expires_at,
                                   action_status=action_status, owner=owner, due=due_day))
    if as_json:
        print_json(row)
        return
    console.print(f"item [bold]{row['id']}[/] ({row['kind']} {u(row['ref'])}): "
                  + (f"{u(row['decision'])} — " if row["decision"] else "") + u(row["outcome"]))
