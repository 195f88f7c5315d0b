"""`dco ops …` — create, plan, approve, move and inspect DCOs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json, table, u
from dcoflow.models.operation import DcoState

app = typer.Typer(help="Create, plan, approve and inspect Defensive Cyberspace Operations.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@app.command("create")
@handle_errors
def create(
    file: Path,
    actor: Annotated[str, typer.Option("--by")] = "cli",
    attack_source: Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, URL or TAXII.")] = None,
    as_json: JsonOpt = False,
    from_stix: Annotated[str | None, typer.Option(
        "--from-stix", help="Seed the threat profile from a CTI report: STIX bundle file or "
                            "taxii+https://server/api-root/collections/<id>/.")] = None,
) -> None:
    """Store a DCO from an operation file (YAML/JSON), in draft, after checking its threat profile against ATT&CK
    (an unknown group, campaign or software is refused here, with close matches, not later at planning)."""
    from dcoflow.tasks.plan.use_cases import create_dco

    out = create_dco(file, actor, attack_source=attack_source, from_stix=from_stix)
    warnings, cti = out["warnings"], out.get("cti")
    if as_json:
        print_json(out)
        return
    console.print(f"DCO [bold]{out['dco']}[/] is {out['state']} (version {out['version']})")
    for w in warnings[:10]:
        console.print(f"  warning: {u(w)}")
    if len(warnings) > 10:
        console.print(f"  … and {len(warnings) - 10} more warnings (--json lists them all)")
    for item in cti["unknown"] if cti is not None else []:
        console.print(f"[yellow]not in ATT&CK[/] {u(item['type'])} {u(item['name'] or item['id'])}: "
                      f"{u(item['reason'])}")


@app.command("delete")
@handle_errors
def delete(
    dco: str,
    actor: Annotated[str, typer.Option("--by")] = "cli",
    version: Annotated[int | None, typer.Option("--version", help="Refuse if the DCO changed since.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a draft DCO (a mistake, never planned); anything later is closed with a reason instead."""
    from dcoflow.tasks.lifecycle import delete_dco

    dco_id = delete_dco(dco, actor, expected_version=version)
    print_json({"dco": dco_id, "deleted": True}) if as_json else console.print(f"DCO [bold]{dco_id}[/] deleted")


@app.command("list")
@handle_errors
def list_(as_json: JsonOpt = False) -> None:
    """List DCOs with their state."""
    from dcoflow.tasks.plan.views import dco_list

    rows = dco_list()
    if as_json:
        print_json(rows)
    else:
        table("DCOs", ["id", "type", "state", "approved by", "updated"],
              [(r["dco"], r["type"], r["state"], r["approved_by"], r["updated"]) for r in rows])


@app.command("show")
@handle_errors
def show(dco: str, as_json: JsonOpt = False) -> None:
    """Show a DCO, its plan summary, emulation steps and hunt hypotheses."""
    from dcoflow.tasks.plan.views import plan_view

    view = plan_view(dco)
    if as_json:
        print_json(view)
        return
    console.print(f"[bold]{u(view['name'])}[/] ({view['dco']}) — {view['type']}, state [bold]{view['state']}[/]")
    if view["plan"]:
        s = view["plan"]["summary"]
        console.print(f"ATT&CK {view['plan']['attack']['version']}: {s['techniques']} techniques, "
                      f"{s['emulation_steps']} steps, {s['hypotheses']} hypotheses, {s['sigma_rules']} Sigma rules")
        table("Techniques by tactic", ["tactic", "count"], s["by_tactic"].items())
    if view["emulation_plan"]:
        table("Emulation plan", ["#", "tactic", "technique", "procedure", "executor", "status"],
              [(st["order"], st["tactic"], f"{st['technique_id']} {st['technique_name']}", st["procedure_name"],
                st["executor"], st["status"]) for st in view["emulation_plan"]])
    if view["hunt_plan"]:
        table("Hunt plan", ["technique", "data components", "sigma rules", "telemetry"],
              [(f"{h['technique_id']} {h['technique_name']}", ", ".join(h["data_components"][:3]),
                len(h["sigma_rules"]), ", ".join(h["telemetry"][:3])) for h in view["hunt_plan"]])


def summary(dco: str) -> None:
    """A planned DCO in a few lines: state, counts, the busiest tactics, warnings, what to do next."""
    from dcoflow.tasks.plan.views import plan_view

    view = plan_view(dco)
    console.print(f"[bold]{u(view['name'])}[/] ({view['dco']}) — {view['type']}, state [bold]{view['state']}[/]")
    if not view["plan"]:
        console.print("not planned yet: `dco plan FILE`")
        return
    s = view["plan"]["summary"]
    console.print(f"ATT&CK {view['plan']['attack']['version']}: {s['techniques']} techniques, "
                  f"{s['emulation_steps']} emulation steps, {s['hypotheses']} hunt hypotheses, "
                  f"{s['sigma_rules']} Sigma rules")
    busiest = sorted(s["by_tactic"].items(), key=lambda kv: -int(kv[1]))[:5]
    console.print("most techniques: " + ", ".join(f"{t} {n}" for t, n in busiest))
    warnings = view["plan"]["warnings"] or []
    if warnings:
        console.print(f"{len(warnings)} warnings, e.g. {u(warnings[0])}")
    console.print(f"details: `dco ops show {view['dco']}`; next: `dco ops approve {view['dco']} --by NAME`")


@app.command("approve")
@handle_errors
def approve(
    dco: str,
    by: Annotated[str, typer.Option("--by", help="Approver name and organisation.")],
    comment: Annotated[str | None, typer.Option()] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Send the plan back instead.")] = False,
    version: Annotated[int | None, typer.Option(
        "--version", help="The version you reviewed (`dco ops show`); refused if the DCO changed since.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a planned DCO (or send it back), recorded with who and when.

    When a plan-dco run is paused waiting for this approval (and a Prefect API is configured), the
    answer resumes that run, exactly as the Resume form in the UI would; otherwise it is recorded here.
    Of several answers given at once, the first counts; the others are refused with the DCO's new state.
    """
    from dcoflow.flows.plan import resume_waiting_approval
    from dcoflow.tasks.events import events_reach_a_server
    from dcoflow.tasks.lifecycle import decide_approval

    out = decide_approval(dco, by, approve=not reject, comment=comment, expected_version=version,
                          answer_paused_run=resume_waiting_approval if events_reach_a_server() else None)
    if "resumed_flow_run" in out:
        print_json(out) if as_json else console.print(f"{out['dco']}: answered the paused plan run "
                                                      f"{out['resumed_flow_run']}")
        return
    if as_json:
        print_json(out)
    elif not out["changed"]:
        console.print(f"{out['dco']} is already {out['to']} (version {out['version']}); nothing recorded")
    else:
        console.print(f"{out['dco']}: {out['from']} → {out['to']} by {u(by)}")
    for warning in [] if as_json else out.get("warnings", []):
        console.print(f"[yellow]warning:[/] {u(warning)}")


@app.command("move")
@handle_errors
def move(
    dco: str,
    state: Annotated[DcoState, typer.Argument(help="Target state.")],
    by: Annotated[str, typer.Option("--by")],
    reason: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a DCO to another state (the state machine decides whether it may)."""
    from dcoflow.tasks.lifecycle import change_state

    out = change_state(dco, state, by, reason)
    print_json(out) if as_json else console.print(f"{out['dco']}: {out['from']} → {out['to']}")


@app.command("audit")
@handle_errors
def audit(dco: str, as_json: JsonOpt = False) -> None:
    """The append-only audit trail of a DCO."""
    from dcoflow.tasks.plan.views import audit_view

    rows = audit_view(dco)
    if as_json:
        print_json(rows)
    else:
        table(f"Audit — {dco}", ["at", "actor", "action", "from", "to", "reason"],
              [(r["at"][:19], r["actor"], r["action"], r["from_state"], r["to_state"], r["reason"]) for r in rows])
