"""`dco brief …` and `dco meeting …` — briefs for technical and executive audiences, meetings of the
coordination cell and the risk bodies: agenda, decisions (recorded in the risk register), packs.

Wiring: the ``brief`` and ``meeting`` entries of ``AREAS`` in flows/cli/__init__.py (both merged into the root).
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Literal

import typer

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
    from dcoflow.tasks.reporting.run import brief as write_brief

    result = write_brief(dco, output_root=get_settings().output_dir, output_dir=out, audience=audience,
                         attack_source=attack_source)
    label, marking = result.pop("label"), result.pop("marking")
    result.pop("executive_md")
    if as_json:
        print_json(result)
        return
    console.print(f"[bold]{result['dco']}[/] {marking}: status {label} — " + u("; ".join(result["reasons"])))
    for path in result["files"].values():
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
    from dcoflow.tasks.reporting.run import create_meeting

    if not body.strip():
        raise ValidationError("name the meeting's body", field="body", hint="--body CRMG")
    if (dco is None) != all_dcos:
        raise ValidationError("give a DCO or --all-dcos (not both)", field="dco")
    if not at:
        raise ValidationError("say when the meeting is", field="at", hint="--at 2026-12-15T10:00")
    doc = create_meeting(dco, body.strip(), _when(at, "at"), attendees=attendee or None, actor=cli_user())
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
    from dcoflow.tasks.reporting.run import list_meetings

    rows = list_meetings(dco)
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
    from dcoflow.tasks.reporting.run import agenda

    rows = agenda(meeting_id)
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
    from dcoflow.tasks.reporting.run import meeting_pack

    files = meeting_pack(meeting_id, out or get_settings().output_dir / "meetings", attack_source=attack_source)
    doc = {"meeting": meeting_id, "files": files}
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
    from dcoflow.tasks.reporting.run import decide_group, decide_item

    expires_at = _when(expires, "expires", end_of_day=True) if expires else None
    due_day = _when(due, "due").date() if due else None
    if item_id.startswith("grp-"):
        if meeting is None or decision is None:
            raise ValidationError("a grouped decision needs --meeting and --decision", field="meeting")
        rows = decide_group(meeting, item_id, outcome, by, decision=decision, expires_at=expires_at,
                            attack_source=attack_source)
        if as_json:
            print_json(rows)
        else:
            console.print(f"decision [bold]{item_id}[/]: {decision.value} for {len(rows)} risk(s)")
        return
    row = decide_item(item_id, outcome, by, decision=decision, expires_at=expires_at, action_status=action_status,
                      owner=owner, due=due_day)
    if as_json:
        print_json(row)
        return
    console.print(f"item [bold]{row['id']}[/] ({row['kind']} {u(row['ref'])}): "
                  + (f"{u(row['decision'])} — " if row["decision"] else "") + u(row["outcome"]))
