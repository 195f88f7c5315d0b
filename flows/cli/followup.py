"""`dco followup …` — actions, risks and decisions, incidents, re-tests.

Each command runs one function of tasks/follow_up/register.py (or the follow-up flow, for `run`) and prints it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

import typer

from dcoflow.core.errors import ValidationError
from dcoflow.flows.cli.output import console, handle_errors, print_json, table
from dcoflow.models.followup import ActionStatus, Treatment

app = typer.Typer(help="Follow up a DCO: actions, risks and decisions, incidents, re-tests.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DcoOpt = Annotated[str | None, typer.Option("--dco", help="Only this DCO (id).")]


@app.command("actions")
@handle_errors
def actions(dco: DcoOpt = None, overdue: Annotated[bool, typer.Option("--overdue")] = False,
            as_json: JsonOpt = False) -> None:
    """List actions with owner, due date, status and the overdue flag."""
    from dcoflow.tasks.follow_up import register

    rows = register.actions(dco, overdue_only=overdue)
    if as_json:
        print_json(rows)
        return
    table("Actions", ["id", "kind", "technique", "title", "owner", "priority", "due", "status", "overdue"],
          [[r["id"], r["kind"], r["technique"], r["title"], r["owner"], r["priority"], r["due"], r["status"],
            "OVERDUE" if r["overdue"] else ""] for r in rows])


@app.command("action-update")
@handle_errors
def action_update(
    action_id: str,
    status: Annotated[ActionStatus, typer.Option("--status", help="open, in-progress, done or reopened.")],
    actor: Annotated[str, typer.Option("--by")] = "cli",
    version: Annotated[int | None, typer.Option("--version", help="Refuse if the action changed since.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move an action (verification happens through a re-test)."""
    from dcoflow.tasks.follow_up import register

    row = register.set_action_status(action_id, status, actor, expected_version=version)
    print_json(row) if as_json else console.print(f"action [bold]{row['id']}[/] is {row['status']}")


@app.command("risks")
@handle_errors
def risks(dco: DcoOpt = None, needs_decision: Annotated[bool, typer.Option("--needs-decision")] = False,
          as_json: JsonOpt = False) -> None:
    """List risks (worst first), or only those awaiting a decision with the body that must decide."""
    from dcoflow.tasks.follow_up import register

    rows = register.risks(dco, needs_decision=needs_decision)
    if as_json:
        print_json(rows)
        return
    table("Risks", ["id", "score", "L×I", "treatment", "status", "decide", "review", "statement"],
          [[r["id"], r["score"], f"{r['likelihood']}×{r['impact']}", r["treatment"], r["status"],
            r["decision_body"], r["review_date"], r["statement"]] for r in rows])


@app.command("decide")
@handle_errors
def decide(
    risk_id: str,
    decision: Annotated[Treatment, typer.Option("--decision")],
    authority: Annotated[str, typer.Option("--authority", help="The deciding body, e.g. CRMG, BCISOA.")],
    rationale: Annotated[str, typer.Option("--rationale")],
    expires: Annotated[str | None, typer.Option("--expires", help="YYYY-MM-DD; required to accept.")] = None,
    actor: Annotated[str, typer.Option("--by")] = "cli",
    version: Annotated[int | None, typer.Option(
        "--version", help="The risk version you decided on (`dco followup risks --json`); refused if it changed.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a decision on a risk (an acceptance needs an authority and an expiry)."""
    from dcoflow.tasks.follow_up import register

    expires_at = None
    if expires:
        try:
            expires_at = datetime.combine(datetime.strptime(expires, "%Y-%m-%d").date(), time(23, 59), tzinfo=UTC)
        except ValueError:
            raise ValidationError(f"{expires!r} is not a date", field="expires", hint="YYYY-MM-DD") from None
    out = register.decide_risk(risk_id, decision, authority, rationale, actor, expires_at=expires_at,
                               expected_version=version)
    print_json(out) if as_json else console.print(
        f"risk [bold]{out['risk']}[/]: {out['decision']} by {out['authority']}"
        + (f" until {expires}" if expires else "")
    )


@app.command("incidents")
@handle_errors
def incidents(dco: DcoOpt = None, as_json: JsonOpt = False) -> None:
    """List incidents with their delivery status."""
    from dcoflow.tasks.follow_up import register

    rows = register.incidents(dco)
    if as_json:
        print_json(rows)
        return
    table("Incidents", ["id", "dco", "technique", "severity", "status", "attempts", "thehive", "last error"],
          [[r["id"], r["dco"], r["technique_id"], r["severity"], r["status"], r["attempts"], r["external_ref"],
            r["last_error"]] for r in rows])


@app.command("escalate")
@handle_errors
def escalate(dco: str, force: Annotated[bool, typer.Option("--force", help="Ignore backoff.")] = False,
             as_json: JsonOpt = False) -> None:
    """Open incidents for a DCO's confirmed findings and deliver the pending ones now."""
    from dcoflow.tasks.follow_up.escalation import escalate as escalate_findings

    rows = escalate_findings(dco, force=force)
    if as_json:
        print_json(rows)
        return
    table("Incidents", ["id", "status", "attempts", "last error"],
          [[r["id"], r["status"], r["attempts"], r["last_error"]] for r in rows])


@app.command("retests")
@handle_errors
def retests(dco: DcoOpt = None, as_json: JsonOpt = False) -> None:
    """List re-tests: techniques, when, how (flow run or sweep), status and results."""
    from dcoflow.tasks.follow_up import register

    rows = register.retests(dco)
    if as_json:
        print_json(rows)
        return
    table("Re-tests", ["id", "dco", "techniques", "scheduled for", "flow run", "status", "results"],
          [[r["id"], r["dco"], ", ".join(r["techniques"]), r["scheduled_for"][:16], r["flow_run_id"] or "sweep",
            r["status"], ", ".join(f"{k}:{v}" for k, v in r["results"].items())] for r in rows])


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ValidationError(f"{value!r} is not a date", field=option, hint="YYYY-MM-DD") from None


@app.command("reassign")
@handle_errors
def reassign(
    ref: Annotated[str, typer.Argument(help="An action id (act-…) or a risk id (risk-…).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
    owner: Annotated[str | None, typer.Option("--owner", help="An organisation of the governance file.")] = None,
    due: Annotated[str | None, typer.Option("--due", help="New due date (an action) or decide-by date (a risk), "
                                                          "YYYY-MM-DD.")] = None,
    actor: Annotated[str, typer.Option("--by")] = "cli",
    version: Annotated[int | None, typer.Option("--version", help="Refuse if the action changed since.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Give an action or a risk another owner and/or date; the audit log records who, why, from and to."""
    from dcoflow.tasks.follow_up import register

    out = register.reassign(ref, actor, reason, owner=owner, due=_day(due, "due"), expected_version=version)
    if as_json:
        print_json(out)
    else:
        console.print(f"[bold]{ref}[/] now owned by {out['owner']}, due {out.get('due') or out.get('review_date')}")


@app.command("governance")
@handle_errors
def governance(as_json: JsonOpt = False) -> None:
    """Show the governance in force (DCO_GOVERNANCE_FILE or the default): bodies, SLAs and the RACI."""
    from dcoflow.connectors.content.governance_file import governance_path, load_governance

    g = load_governance()
    if as_json:
        print_json({"file": str(governance_path()), **g.model_dump(mode="json")})
        return
    console.print(f"governance file: {governance_path()}")
    table("Decision bodies", ["body", "from score", "decide within (days)", "longest acceptance (days)", "chair"],
          [[b.name, b.min_score, b.review_days, b.max_acceptance_days, b.chair or ""] for b in g.decision_bodies])
    table("RACI", ["area", "responsible", "accountable", "enclaves", "asset groups", "mitigations"],
          [[e.area.value, e.responsible, e.accountable or "", ", ".join(e.enclaves), ", ".join(e.asset_groups),
            ", ".join(e.mitigations)] for e in g.raci])


@app.command("run")
@handle_errors
def run(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    attack_source: Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, URL or TAXII.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow up a DCO now, as the follow-up deployment does (runs its flow): the latest assessment's ranked gaps
    and the confirmed findings become risks, owned actions and a scheduled re-test; findings escalate."""
    from dcoflow.flows.follow_up import follow_up

    result = follow_up(dco=dco, attack_source=attack_source)
    dco_id = result["dco"]
    if as_json:
        print_json(result)
        return
    console.print(f"{dco_id}: {result['gaps']} gaps → {result['risks']} risks, {result['actions']} actions "
                  f"({result['overdue']} overdue), re-test {result['retest'] or 'none'}, "
                  f"{len(result['incidents'])} incidents")
    if not result["gaps"]:
        console.print(f"no assessment to follow up yet? `dco assess run {dco_id}` first")
    console.print(f"next: `dco followup risks --dco {dco_id}`, `dco followup actions --dco {dco_id}`")
