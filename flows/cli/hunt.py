"""`dco hunt`: hunt with Sigma rules over local telemetry, triage hits, list hunt runs.

Wiring: the ``hunt`` entry of ``AREAS`` in flows/cli/__init__.py (imported when `dco hunt` runs). The callback
is the hunt itself (``dco hunt --rules … --data …``); ``dco hunt triage …`` and ``dco hunt runs``
are its sub-commands. ``hunt_command`` can also be registered on its own with ``app.command("hunt")``.
The hunt is ``dcoflow.tasks.conduct.hunt.run_hunt`` (no Prefect server needed), which the ``hunt`` flow calls too.
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
    from functools import partial

    from dcoflow.core.errors import ValidationError
    from dcoflow.models.hunting import HuntSelection
    from dcoflow.tasks.conduct.hunt import run_hunt

    if not rules and not dco:
        raise ValidationError("name the Sigma rules to run (--rules), or a DCO whose hunt plan to run (--dco)",
                              field="rules")
    # --technique/--rule-id select; else every rule of --rules; else (--dco alone) the DCO's hunt plan
    selection = (HuntSelection(techniques=technique or [], rule_ids=rule_id or []) if technique or rule_id
                 else HuntSelection() if rules else None)
    hunt = partial(run_hunt, selection=selection, dco=dco, data=data or [], rules_path=rules or [], sample=sample,
                   workers=workers, hunt_key=hunt_key, actor=cli_user())
    if as_json:
        result = hunt()
    else:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} events read"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            job = bar.add_task("hunting", total=None)
            result = hunt(progress=lambda n: bar.update(job, completed=n))
    outcome, run_id = result.outcome, result.run_id
    if as_json:
        print_json({**_outcome_json(outcome), "dco": dco, "hunt_run": run_id})
        return
    summary = result.summary
    table(f"Hunt over {summary.source}", ["rule", "title", "techniques", "hits"],
          [(r["rule_id"], r["title"], ", ".join(r["technique_ids"]), r["hits"]) for r in summary.by_rule if r["hits"]])
    console.print(f"{summary.rules_run} rules ran over {summary.events_read:,} events in "
                  f"{outcome.duration_s:.1f} s: {summary.hits:,} hits; {len(summary.skipped)} rules skipped; "
                  f"{len(summary.gaps)} rules without matching telemetry; {summary.bad_records} bad records")
    for skip in summary.skipped[:10]:
        console.print(f"  skipped {u(skip.get('rule_id') or skip['path'])}: {u(skip['reason'])}")
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
    from dcoflow.tasks.conduct.triage import TriageAnswer, triage

    done = triage([TriageAnswer(sighting_id, verdict, analyst or cli_user("analyst"), note)])
    [row] = done.rows
    out = {"sighting": row.sighting_id, "verdict": row.verdict.value, "analyst": row.analyst,
           "version": row.version, "opinion": row.opinion_id, "at": row.at.isoformat(),
           "escalation_events": done.announced}
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
    from dcoflow.tasks.conduct.triage import hit_rows, hits_to_triage

    _dco_id, run, hits = hits_to_triage(dco, hunt_run)
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
    from dcoflow.tasks.conduct.hunt import hunt_runs

    runs = [r.model_dump(mode="json") for r in hunt_runs(dco)]
    if as_json:
        print_json(runs)
        return
    table("Hunt runs", ["run", "dco", "status", "rules", "hits", "exercise", "events", "started", "source"],
          [(r["id"], r["dco_id"], r["status"], r["rule_count"], r["hits"], r["exercise_hits"], r["events_read"],
            r["started_at"][:19], r["source"][:60]) for r in runs])
