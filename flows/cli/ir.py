"""`dco ir …` — incident-response support: create a DCO from an incident, sweep telemetry for indicators."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json, table, u

app = typer.Typer(help="Incident-response support: DCOs from incidents, indicator sweeps.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@app.command("create")
@handle_errors
def create(
    incident: Annotated[str, typer.Argument(
        help="A STIX bundle file, taxii+https://server/api-root/collections/<id>/, or thehive:<case id>.")],
    incident_id: Annotated[str | None, typer.Option("--incident-id", help="Which incident, when several.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="DCO name (default: IR support: <incident>).")] = None,
    actor: Annotated[str, typer.Option("--by")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Create an incident-response-support DCO from an incident: scope = affected hosts and the window around
    first activity, threat profile = its techniques; its indicators and observables are kept for sweeps."""
    from dcoflow.tasks.plan.ir_incident import create_ir_support_dco

    done = create_ir_support_dco(incident, incident_id=incident_id, name=name, actor=actor)
    if as_json:
        print_json(done.as_dict())
        return
    link = done.incident
    console.print(f"DCO [bold]{done.dco_id}[/] supports incident {u(link['ref'])} ({u(link.get('name') or '')}): "
                  f"{len(link['hosts'])} hosts, {len(done.techniques)} techniques, {done.indicators} indicators, "
                  f"window from {link.get('first_activity') or 'now'}")
    for w in done.warnings:
        console.print(f"[yellow]warning[/] {u(w)}")


@app.command("sweep")
@handle_errors
def sweep(
    indicators: Annotated[str, typer.Option(
        "--indicators", help="STIX bundle file or taxii+https://server/api-root/collections/<id>/ of indicators.")],
    data: Annotated[list[Path] | None, typer.Option("--data", help="Telemetry file or folder (repeatable).")] = None,
    dco: Annotated[str | None, typer.Option("--dco", help="Record hits as sightings in this DCO.")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Sample events kept per indicator.")] = 5,
    source: Annotated[str, typer.Option(
        "--source", help="local (the --data files), or elastic / splunk: push the patterns down to that SIEM.")
    ] = "local",
    index: Annotated[str | None, typer.Option("--index", help="SIEM index (default: the configured one).")] = None,
    since: Annotated[datetime | None, typer.Option(
        "--since", help="SIEM window start (default: the DCO incident's activity window).")] = None,
    until: Annotated[datetime | None, typer.Option("--until", help="SIEM window end.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sweep telemetry for indicators (STIX patterns and Sigma rules); per indicator: status, matches, samples."""
    from dcoflow.core.errors import ValidationError
    from dcoflow.models.operation import as_utc
    from dcoflow.tasks.conduct.ir import SweepSource, sweep_indicators

    kinds: dict[str, SweepSource] = {"local": "local", "elastic": "elastic", "splunk": "splunk"}
    if source not in kinds:
        raise ValidationError(f"unknown --source {source!r}", field="source", suggestions=list(kinds))
    result = sweep_indicators(indicators, data or [], source=kinds[source], index=index,
                              start=as_utc(since) if since else None, end=as_utc(until) if until else None,
                              dco=dco, sample=sample)
    if as_json:
        print_json(result.as_dict())
        return
    rows = [(r.id, r.status, r.matches, ", ".join(sorted(r.hosts)) or "", r.reason or r.pattern[:60])
            for r in result.indicators]
    table(f"Sweep of {result.source}: {result.files} files, {result.events_read} events ({result.duration_s:.1f}s)",
          ["indicator", "status", "matches", "hosts", "reason / pattern"], rows[:200])
    console.print(" ".join(f"{k}: {v}" for k, v in sorted(result.counts().items()))
                  + (f" — {result.sightings} sightings in {result.dco_id}" if result.dco_id else ""))


@app.command("contain")
@handle_errors
def contain(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    title: Annotated[str, typer.Argument(help="The containment action, e.g. 'isolate WKST-01'.")],
    owner: Annotated[str, typer.Option("--owner", help="Who carries it out.")],
    status: Annotated[str, typer.Option("--status", help="open, in-progress, done or cancelled.")] = "open",
) -> None:
    """Record a containment action (or change its status) for the DCO's incident."""
    from dcoflow.tasks.conduct.ir import record_containment

    coa = record_containment(dco, title, owner=owner, status=status)
    console.print(f"{coa['name']}: {coa['x_dco_status']} ({coa['x_dco_owner']})")


@app.command("status")
@handle_errors
def status(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the IR-support brief (Markdown).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The IR activity: hosts swept and when, indicators found where, first/last seen, dwell time, containment."""
    from dcoflow.core.settings import get_settings
    from dcoflow.tasks.conduct.ir import ir_status

    activity, path = ir_status(dco, out or get_settings().output_dir)
    if as_json:
        print_json({**activity.as_dict(), "brief": str(path)})
        return
    console.print(activity.status_line())
    console.print(f"brief: {path}")
