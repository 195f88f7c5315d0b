"""`dco deconflict …`: the monitoring side's inbox of announced live windows, and its acknowledgement."""

from __future__ import annotations

from typing import Annotated

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json, table

app = typer.Typer(help="Deconfliction inbox: live windows announced to the monitoring side, and their "
                       "acknowledgement.", no_args_is_help=True)


@app.command("inbox")
@handle_errors
def inbox_cmd(
    all_: Annotated[bool, typer.Option("--all", help="Include notices already acknowledged.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Deconfliction notices: which DCO, on which hosts, in which window, with which exercise marker."""
    from dcoflow.tasks.conduct.deconfliction import deconfliction_inbox

    rows = deconfliction_inbox(include_acknowledged=all_)
    if as_json:
        print_json(rows)
        return
    table("Deconfliction inbox", ["dco", "hosts", "window", "marker", "contact", "status", "ack needed"],
          [(r["dco"], ", ".join(r["hosts"]) or "-",
            f"{(r['window'] or {}).get('start') or 'open'} → {(r['window'] or {}).get('end') or 'open'}",
            r["marker"], r["contact"], r["receipt"] if r["status"] == "acknowledged" else r["status"],
            "yes" if r["ack_required"] else "no") for r in rows])


@app.command("ack")
@handle_errors
def ack_cmd(
    dco: str,
    by: Annotated[str, typer.Option("--by", help="Who acknowledges, e.g. 'SOC duty officer (CyOC)'.")],
    contact: Annotated[str | None, typer.Option(help="Only this contact's notice.")] = None,
    note: Annotated[str | None, typer.Option(help="Conditions or remarks.")] = None,
) -> None:
    """Acknowledge a DCO's deconfliction notice (its live steps may start when the RoE wait for this)."""
    from dcoflow.tasks.conduct.deconfliction import acknowledge_window

    contacts = acknowledge_window(dco, by, contact=contact, note=note)
    console.print(f"{dco}: deconfliction acknowledged by {by.strip()} for {', '.join(contacts)}")
