"""`dco hunt`: hunt with Sigma rules over local telemetry, triage hits, list hunt runs.

Wiring: the ``hunt`` entry of ``AREAS`` in flows/cli/__init__.py (imported when `dco hunt` runs). The callback
is the hunt itself (``dco hunt --rules … --data …``); ``dco hunt triage …`` and ``dco hunt runs``
are its sub-commands. ``hunt_command`` can also be registered on its own with ``app.command("hunt")``.
The hunt runs the engine directly (no Prefect server needed); the ``hunt`` flow does the same for the UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dcoflow.flows.cli.output import cli_user, console, handle_errors, print_json, table, u

app = typer.Typer(help="Hunt with Sigma rules over telemetry; triage hits; list hunt runs.",
                  invoke_without_command=True)


def _outcome_json(outcome: Any) -> dict[str, Any]:
    hits = {m.rule.rule_id: m.count for m in outcome.matches}
    return {
        "source": outcome.source,
        "events_read": outcome.events_read,
        "bad_records": sum(r.skipped for r in outcome.reports),
        "bad_record_samples": [{"location": b.location, "reason": b.reason}
                               for r in outcome.reports for b in r.bad[:20]],
        "rules": [{"id": r.rule_id, "title": r.title, "tags": [t for t in r.tags if t.lower().startswith("attack.")],
                   "technique_ids": r.technique_ids, "matches": hits.get(r.rule_id, 0)} for r in outcome.rules_run],
        "skipped": [{"path": s.path, "id": s.rule_id, "reason": s.reason} for s in outcome.skipped],
        "no_logsource": [{"id": r.rule_id, "title": r.title, "logsource": r.logsource} for r in outcome.no_logsource],
        "duration_s": round(outcome.duration_s, 3),
    }


@app.callback(invoke_without_command=True)
@handle_errors
def hunt_command(
    ctx: typer.Context,
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Sigma rule file or folder (repeatable).")] = None,
    data: Annotated[list[Path] | None, typer.Option("--data", help="Telemetry file or folder (repeatable).")] = None,
    technique: Annotated[list[str] | None, typer.Option("--technique", help="ATT&CK id, e.g. T1003.001.")] = None,
    rule_id: Annotated[list[str] | None, typer.Option("--rule-id", help="Sigma rule id.")] = None,
    dco: Annotated[str | None, typer.Option("--dco", help="Record the hits as evidence of this DCO.")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Matching events kept per rule.", min=0)] = 20,
    workers: Annotated[int | None, typer.Option("--workers", min=1, max=256,
                                                help="Processes sharing the telemetry files; default the cores "
                                                     "available.")] = None,
    hunt_key: Annotated[str | None, typer.Option("--hunt-key", help="Name of this hunt for re-runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Run Sigma rules over local telemetry (Security-Datasets zips, JSON lines, EVTX).

    With --dco and no --rules, the DCO's hunt plan: its planned Sigma rules, scoped to its platforms, from the
    content folder; without --data, over DCO_TELEMETRY_DIR."""
    if ctx.invoked_subcommand is not None:
        return
    if not (rules or data or dco):
        console.print(ctx.get_help())
        raise typer.Exit(0)
    from dcoflow.core.errors import ValidationError
    from dcoflow.core.settings import get_settings
    from dcoflow.models.hunting import HuntSelection

    plan_rules = bool(dco) and not rules
    if not rules and not dco:
        raise ValidationError("name the Sigma rules to run (--rules), or a DCO whose hunt plan to run (--dco)",
                              field="rules")
    if not data:
        data = get_settings().telemetry_paths()  # an error when DCO_TELEMETRY_DIR is unset, never the current folder
    if plan_rules:
        rules = [get_settings().content_path("sigma") / "rules"]
    assert rules is not None and data is not None
    from dcoflow.tasks.conduct.hunt_record import summarize_outcome
    from dcoflow.tasks.conduct.local_hunt import run_local_hunt

    if dco:  # the conduct gate before any event is read
        from datetime import UTC, datetime

        from dcoflow.core.db import session_scope
        from dcoflow.models.gates import require_conduct
        from dcoflow.models.repository.operation import get_operation

        with session_scope() as s:
            op = get_operation(s, dco)
            require_conduct(op.id, op.state, op.dco.window, datetime.now(UTC), "hunt")
    selection = HuntSelection(techniques=technique or [], rule_ids=rule_id or [])
    if plan_rules and not (technique or rule_id):
        from dcoflow.flows.hunt import plan_selection

        assert dco is not None
        selection = plan_selection(dco)
    if as_json:
        outcome = run_local_hunt(list(rules), list(data), selection, sample=sample, workers=workers)
    else:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} events read"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            job = bar.add_task("hunting", total=None)
            outcome = run_local_hunt(list(rules), list(data), selection, sample=sample, workers=workers,
                                     progress=lambda n: bar.update(job, completed=n))
    run_id = None
    if dco:
        from dcoflow.connectors.attack import load_catalog
        from dcoflow.core.db import session_scope
        from dcoflow.models.hunt_run import derive_hunt_key
        from dcoflow.tasks.conduct.hunt_record import record_hunt

        ran = [r.rule_id for r in (*outcome.rules_run, *outcome.no_logsource)]
        key = hunt_key or derive_hunt_key(ran + [s.rule_id or s.path for s in outcome.skipped], outcome.source)
        with session_scope() as s:
            run_id = record_hunt(s, dco, outcome, hunt_key=key, catalog=load_catalog(),
                                 actor=cli_user()).id
    if as_json:
        print_json({**_outcome_json(outcome), "dco": dco, "hunt_run": run_id})
        return
    summary = summarize_outcome(outcome)
    table(f"Hunt over {outcome.source}", ["rule", "title", "techniques", "hits"],
          [(r["rule_id"], r["title"], ", ".join(r["technique_ids"]), r["hits"]) for r in summary.by_rule if r["hits"]])
    console.print(f"{len(outcome.rules_run)} rules ran over {outcome.events_read:,} events in "
                  f"{outcome.duration_s:.1f} s: {summary.hits:,} hits; {len(outcome.skipped)} rules skipped; "
                  f"{len(outcome.no_logsource)} rules without matching telemetry; {summary.bad_records} bad records")
    for skip in outcome.skipped[:10]:
        console.print(f"  skipped {u(skip.rule_id or skip.path)}: {u(skip.reason)}")
    if run_id:
        console.print(f"recorded as hunt run {run_id} of DCO {dco}")


@app.command("triage")
@handle_errors
def triage_command(
    sighting_id: Annotated[str, typer.Argument(help="The sighting's STIX id (sighting--…).")],
    verdict: Annotated[str, typer.Option("--verdict", help="true-positive, false-positive or benign.")],
    note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
    analyst: Annotated[str | None, typer.Option("--analyst", help="Default: $USER.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record a verdict on a hunt hit (a new version of the analyst's opinion on re-triage)."""
    from dcoflow.core.db import session_scope
    from dcoflow.tasks.conduct.triage import triage_hit

    with session_scope() as s:
        row = triage_hit(s, sighting_id, verdict, analyst or cli_user("analyst"), note)
        out = {"sighting": row.sighting_id, "verdict": row.verdict.value, "analyst": row.analyst,
               "version": row.version, "opinion": row.opinion_id, "at": row.at.isoformat()}
    if as_json:
        print_json(out)
    else:
        console.print(f"{out['verdict']} recorded for {sighting_id} (version {out['version']}, {out['opinion']})")


@app.command("hits")
@handle_errors
def hits_command(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    hunt_run: Annotated[str | None, typer.Option("--run", help="This hunt run (default: the DCO's latest).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Hits waiting for triage: the real (non-exercise) hits of the DCO's latest hunt run nobody has judged yet."""
    from dcoflow.core.db import session_scope
    from dcoflow.tasks.conduct.triage import hit_rows, untriaged_hits

    with session_scope() as s:
        run, hits = untriaged_hits(s, dco, hunt_run)
    rows = hit_rows(hits)
    if as_json:
        print_json({"dco": dco, "hunt_run": run.id if run else None, "hits": rows})
        return
    if run is None:
        console.print(f"{dco} has not hunted yet: `dco hunt --dco {dco}`")
        return
    table(f"Hits of hunt run {run.id} waiting for triage", ["sighting", "rule", "techniques", "host", "seen"],
          [(r["sighting"], r["rule"], r["techniques"], r["host"], r["seen"]) for r in rows])
    console.print(f"{len(rows)} hits to triage: `dco hunt triage SIGHTING --verdict VERDICT` "
                  "(true-positive, false-positive or benign)")


@app.command("runs")
@handle_errors
def runs_command(
    dco: Annotated[str | None, typer.Option("--dco", help="Only this DCO's runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List hunt runs: status, rules, hits, events read."""
    from dcoflow.core.db import session_scope
    from dcoflow.models.repository.operation import get_operation
    from dcoflow.tasks.conduct.hunt_record import list_hunt_runs

    with session_scope() as s:
        dco_id = get_operation(s, dco).id if dco else None
        runs = [r.model_dump(mode="json") for r in list_hunt_runs(s, dco_id)]
    if as_json:
        print_json(runs)
        return
    table("Hunt runs", ["run", "dco", "status", "rules", "hits", "exercise", "events", "started", "source"],
          [(r["id"], r["dco_id"], r["status"], r["rule_count"], r["hits"], r["exercise_hits"], r["events_read"],
            r["started_at"][:19], r["source"][:60]) for r in runs])
