"""`dco emulate …`: list steps, run the conduct-emulation flow, run or skip one step, record outcomes by
hand, move outcomes through VECTR CSV and Caldera reports, browse procedures for a technique, and import
Caldera adversary profiles and abilities into a DCO's plan. Each command parses, calls the one use-case
function the flow calls too (tasks/conduct/emulation/actions.py), and prints."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dcoflow.flows.cli.output import cli_user, console, handle_errors, print_json, table, u

if TYPE_CHECKING:
    from dcoflow.connectors.registry import ConnectorRegistry

app = typer.Typer(help="Adversary emulation: steps, runs, outcomes, VECTR/Caldera exchange.", no_args_is_help=True)


@app.command("steps")
@handle_errors
def steps(dco: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The DCO's emulation steps in order, with status and current outcomes per tool."""
    from dcoflow.tasks.conduct.emulation.actions import list_steps

    dco_id, rows = list_steps(dco)
    if as_json:
        print_json(rows)
        return
    table(f"emulation steps of {dco_id}", ["#", "technique", "procedure", "executor", "status", "outcomes", "id"],
          [(r["order"], r["technique"], r["procedure"], r["executor"],
            r["status"] + (f" (refused: {r['refused']})" if r["refused"] else ""), ", ".join(r["outcomes"]),
            r["id"]) for r in rows])


@app.command("run")
@handle_errors
def run(
    dco: str,
    dry_run: Annotated[bool, typer.Option("--dry-run/--execute", help="Show commands only (default).")] = True,
    connector: Annotated[str, typer.Option(help="For manual steps: manual, local or caldera.")] = "manual",
    no_pause: Annotated[bool, typer.Option("--no-pause", help="Do not wait for outcomes; record later.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dry run (default, any state, records nothing): per step the exact command lines, executor, host and the
    rules of engagement's verdict. --execute runs the conduct-emulation flow (the DCO must be approved)."""
    from dcoflow.tasks.conduct.emulation.actions import start_live_run

    if dry_run:
        _dry_run(dco, connector, as_json)
        return
    start_live_run(dco)  # the conduct gate refuses here, before a flow run starts
    from dcoflow.flows.conduct_emulation import conduct_emulation

    result = conduct_emulation(dco=dco, connector_default=connector, dry_run=False,
                               pause_for_input=not no_pause, operator=cli_user())
    if as_json:
        print_json(result)
        return
    table(f"emulation of {result['dco']}", ["#", "technique", "connector", "status", "detail"],
          [(r["order"], r["technique"], r.get("connector", ""), r["status"],
            r.get("error") or r.get("message") or (r.get("command") or "")[:200]) for r in result["steps"]])
    console.print(result["status_counts"])


def _content() -> tuple[Any, Any]:
    """The ATT&CK catalog and the atomics index, each None when it cannot be read (the rules then assume the
    worst: atomic steps count as needing elevation)."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.connectors.content.atomics import load_atomics
    from dcoflow.core.errors import DcoError
    from dcoflow.core.settings import get_settings

    try:
        catalog = load_catalog()
    except DcoError:
        catalog = None
    try:
        atomics = load_atomics(get_settings().content_path("atomics"))
    except DcoError:
        atomics = None
    return catalog, atomics


def _dry_run(dco: str, connector: str, as_json: bool) -> None:
    """The plan's steps as they would run, read-only (no Prefect run, nothing written)."""
    from rich.markup import escape

    from dcoflow.tasks.conduct.emulation.actions import preview_plan

    catalog, atomics = _content()
    plan = preview_plan(dco, connector_default=connector, atomics=atomics, catalog=catalog)
    dco_id, state, previews = plan["dco"], plan["state"], plan["steps"]
    if as_json:
        print_json({"dco": dco_id, "state": state, "dry_run": True, "steps": previews})
        return
    console.print(f"[bold]dry run of {escape(dco_id)}[/] (state {state}; nothing runs, nothing is recorded)")
    for p in previews:
        _print_preview(p)


def _print_preview(p: dict[str, Any]) -> None:
    from rich.markup import escape

    where = f"{p['connector']}/{p['executor'] or '-'} on {p['host'] or '-'}" + \
        (f" as {p['run_as']}" if p["run_as"] else "")
    verdict = "[green]allowed[/]" if p["verdict"] == "allowed" else "[red]refused[/]"
    console.print(f"\n[bold]{p['order']}. {escape(p['technique'])}[/] {escape(where)} [{p['status']}]: {verdict}")
    for reason in p["reasons"]:
        console.print(f"   - {escape(reason)}")
    for label, text in (("command", p["command"]), ("cleanup", p["cleanup_command"])):
        if text:
            console.print(f"   {label}:")
            console.print("\n".join("     " + line for line in text.splitlines()), markup=False,
                          highlight=False)


@app.command("run-step")
@handle_errors
def run_step_cmd(
    dco: str,
    step: Annotated[str, typer.Argument(help="Step id, order number or technique id.")],
    dry_run: Annotated[bool, typer.Option("--dry-run/--execute", help="Show the commands only (default).")] = True,
    connector: Annotated[str | None, typer.Option(help="manual, local or caldera (default: the step's).")] = None,
    operator: Annotated[str | None, typer.Option(help="Who runs it (default: you).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run one step as the conduct-emulation flow runs it: the conduct gate, the deconfliction notice, the rules
    of engagement, then the step (a manual step waits for `dco emulate record`). A step that ran is not re-run."""
    from dcoflow.tasks.conduct.emulation.actions import run_step
    from dcoflow.tasks.conduct.emulation.steps import normalise_connector

    catalog, atomics = _content()
    out = run_step(dco, step, connector=normalise_connector(connector) if connector else None, dry_run=dry_run,
                   actor=operator or cli_user(), atomics=atomics, catalog=catalog)
    if as_json:
        print_json(out)
    elif dry_run:
        _print_preview(out)
    else:
        console.print(f"step {out['order']} ({out['technique']}): {out['status']} — {out['message']}")


@app.command("skip")
@handle_errors
def skip_cmd(
    dco: str,
    step: Annotated[str, typer.Argument(help="Step id, order number or technique id.")],
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded in the audit log).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded in the audit log).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Skip a step that will not run (steps after it may go on), audited with who and why."""
    from dcoflow.tasks.conduct.emulation.actions import skip_step

    out = skip_step(dco, step, by=by, reason=reason)
    if as_json:
        print_json(out)
    else:
        console.print(f"step {out['order']} ({out['technique']}): {out['message']}")


@app.command("record")
@handle_errors
def record(
    dco: str,
    step: Annotated[str, typer.Argument(help="Step id, order number or technique id.")],
    tool: Annotated[str, typer.Option(help="Defensive tool.")],
    outcome: Annotated[str, typer.Option(help="prevented, alerted, logged or none.")],
    severity: Annotated[str | None, typer.Option()] = None,
    note: Annotated[str | None, typer.Option()] = None,
    start: Annotated[datetime | None, typer.Option(help="Attack start (ISO time).")] = None,
    stop: Annotated[datetime | None, typer.Option(help="Attack stop (ISO time).")] = None,
    detected: Annotated[datetime | None, typer.Option(help="Detection time (ISO time).")] = None,
    target: Annotated[str | None, typer.Option(help="Target host.")] = None,
    operator: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record one tool's outcome for one step (a correction is a new version; history is kept)."""
    from dcoflow.tasks.conduct.emulation.actions import record_outcomes

    data: dict[str, Any] = {"tool": tool, "outcome": outcome, "severity": severity, "notes": note,
                            "attack_start": start, "attack_stop": stop, "detected_at": detected,
                            "target_host": target, "operator": operator or cli_user()}
    catalog, _atomics = _content()
    [out] = record_outcomes(dco, step, [{k: v for k, v in data.items() if v is not None}], catalog=catalog)
    if as_json:
        print_json(out)
    else:
        console.print(f"recorded {out['tool']}={out['outcome']} for step {out['step']} (version {out['version']})")


@app.command("mark-destructive")
@handle_errors
def mark_destructive_cmd(
    dco: str,
    step: Annotated[str, typer.Argument(help="Step id, order number or technique id.")],
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded in the audit log).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")],
    destructive: Annotated[bool, typer.Option("--destructive/--not-destructive",
                                              help="Mark the step destructive, or overrule its command text.")] = True,
) -> None:
    """Decide whether one step is destructive, audited with who and why. --not-destructive overrules only what
    the command text suggests (e.g. an rm of a file the exercise made), never a destructive technique."""
    from dcoflow.tasks.conduct.emulation.actions import mark_step_destructive

    step_id = mark_step_destructive(dco, step, destructive, by=by, reason=reason)["step"]
    console.print(f"step {step_id}: marked {'destructive' if destructive else 'not destructive'} by {by}")


@app.command("export-vectr")
@handle_errors
def export_vectr_cmd(dco: str, path: Path) -> None:
    """Write the DCO's outcomes as a VECTR campaign CSV."""
    from dcoflow.tasks.conduct.emulation.actions import export_vectr

    _dco_id, n = export_vectr(dco, path)
    console.print(f"wrote {n} test cases to {path}")


def _summary(result: Any, as_json: bool) -> None:
    data = result.as_dict()
    if as_json:
        print_json(data)
        return
    console.print(f"created {data['created']}, updated {data['updated']}, unchanged {data['unchanged']}")
    for w in data["warnings"][:50]:
        console.print(f"[yellow]warning:[/] {u(w)}")


@app.command("import-vectr")
@handle_errors
def import_vectr_cmd(dco: str, path: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Record outcomes from a VECTR CSV (rows are matched to steps; unmatched rows are reported)."""
    from dcoflow.tasks.conduct.emulation.actions import import_vectr

    result = import_vectr(dco, path, actor=cli_user())
    _summary(result, as_json)


@app.command("import-caldera")
@handle_errors
def import_caldera_cmd(
    dco: str,
    report: Path,
    tool: Annotated[str | None, typer.Option(help="Record this tool's verdict for the links that ran.")] = None,
    outcome: Annotated[str | None, typer.Option(help="The tool's verdict: prevented, alerted, logged, none.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import a Caldera operation report JSON (executions; outcomes when --tool/--outcome are given)."""
    from dcoflow.core.errors import ValidationError
    from dcoflow.models.emulation import OUTCOME_ALIASES, Outcome
    from dcoflow.tasks.conduct.emulation.actions import import_caldera_report

    verdict = None
    if outcome is not None:
        verdict = OUTCOME_ALIASES.get(outcome.strip().lower())
        if verdict is None:
            raise ValidationError(f"unknown outcome {outcome!r}", field="outcome",
                                  suggestions=[o.value for o in Outcome])
    if (tool is None) != (verdict is None):
        raise ValidationError("give --tool and --outcome together", field="tool")
    result = import_caldera_report(dco, report, tool=tool, outcome=verdict, actor=cli_user())
    _summary(result, as_json)


@app.command("procedures")
@handle_errors
def procedures(
    technique: str,
    platform: Annotated[list[str] | None, typer.Option(help="windows, linux, macos … (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Atomic Red Team tests for a technique (from DCO_CONTENT_DIR or DCO_ATOMICS_DIR)."""
    from dcoflow.connectors.content.atomics import load_atomics
    from dcoflow.core.settings import get_settings

    index = load_atomics(get_settings().content_path("atomics"))
    tests = index.for_technique(technique, platform or None)
    if as_json:
        print_json([{**asdict(t), "input_arguments": {k: asdict(a) for k, a in t.input_arguments.items()},
                     "dependencies": [asdict(d) for d in t.dependencies]} for t in tests])
        return
    table(f"atomics for {technique.upper()}", ["guid", "name", "platforms", "executor", "elevation", "arguments"],
          [(t.guid, t.name, ",".join(t.platforms), t.executor, "yes" if t.elevation_required else "",
            ", ".join(t.input_arguments)) for t in tests])


def _registry() -> ConnectorRegistry:
    """The connector registry from settings, with Caldera configured (ConfigError naming what is unset)."""
    from dcoflow.connectors.registry import ConnectorRegistry
    from dcoflow.core.errors import ConfigError
    from dcoflow.core.settings import get_settings

    settings = get_settings()
    key = settings.caldera_api_key.get_secret_value() if settings.caldera_api_key else ""
    missing = [name for name, value in (("DCO_CALDERA_URL", settings.caldera_url), ("DCO_CALDERA_API_KEY", key))
               if not value]
    if missing:
        raise ConfigError(f"Caldera is not configured: {' and '.join(missing)} not set", object="caldera",
                          hint="set DCO_CALDERA_URL (e.g. http://caldera:8888) and DCO_CALDERA_API_KEY "
                               "(the server's api_key_red)")
    return ConnectorRegistry.from_settings(settings)


@app.command("import-caldera-adversary")
@handle_errors
def import_caldera_adversary_cmd(
    dco: str,
    adversary_id: Annotated[str, typer.Argument(help="The Caldera adversary profile's id (adversary_id).")],
    platform: Annotated[str | None, typer.Option(help="windows, linux or macos (default: the DCO's scope).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Append a Caldera adversary profile's abilities to the DCO's plan, in its order (re-import is a no-op)."""
    from dcoflow.tasks.conduct.emulation.actions import import_caldera_adversary

    catalog, _atomics = _content()
    result = import_caldera_adversary(dco, adversary_id, platform=platform, catalog=catalog, actor=cli_user(),
                                      registry=_registry())
    _summary(result, as_json)


@app.command("caldera-abilities")
@handle_errors
def caldera_abilities_cmd(
    dco: str,
    technique: Annotated[list[str] | None, typer.Option(help="Only steps of this technique (repeatable).")] = None,
    platform: Annotated[str | None, typer.Option(help="windows, linux or macos (default: the DCO's scope).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Give pending steps without a procedure a matching Caldera ability (others become candidates)."""
    from dcoflow.tasks.conduct.emulation.actions import import_caldera_abilities

    result = import_caldera_abilities(dco, technique or None, platform=platform, actor=cli_user(),
                                      registry=_registry())
    _summary(result, as_json)
