"""The `dco` command line: one root app, one sub-app per area (each in its own module)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from dcoflow.flows.cli.lazy import LazyArea, LazyGroup
from dcoflow.flows.cli.output import cli_user, console, handle_errors, print_json

# Each area's module is imported only when its command runs (see lazy.py and CONTRIBUTING.md); the help line
# here is what `dco --help` shows, and tests/flows/test_cli_lazy.py checks it against the module's own.
AREAS = {
    "ops": LazyArea("dcoflow.flows.cli.ops", "Create, plan, approve and inspect Defensive Cyberspace Operations."),
    "attack": LazyArea("dcoflow.flows.cli.attack", "Query the ATT&CK catalog"),
    "hunt": LazyArea("dcoflow.flows.cli.hunt", "Hunt with Sigma rules over telemetry; triage hits; list hunt runs."),
    "emulate": LazyArea("dcoflow.flows.cli.emulate",
                        "Adversary emulation: steps, runs, outcomes, VECTR/Caldera exchange."),
    "deconflict": LazyArea("dcoflow.flows.cli.deconflict", "Deconfliction inbox: live windows announced to the "
                           "monitoring side, and their acknowledgement."),
    "assess": LazyArea("dcoflow.flows.cli.assess",
                       "Assess detection and visibility per technique; gaps, layers, trend, DeTT&CT import."),
    "followup": LazyArea("dcoflow.flows.cli.followup",
                         "Follow up a DCO: actions, risks and decisions, incidents, re-tests."),
    "brief": LazyArea("dcoflow.flows.cli.brief",
                      "Write a DCO's technical and/or executive brief (Markdown and self-contained HTML).",
                      merged=True),
    "meeting": LazyArea("dcoflow.flows.cli.brief", "Meetings of the coordination cell and the risk bodies.",
                        merged=True),
    "doc": LazyArea("dcoflow.flows.cli.documents",
                    "Decision documents: the plan as an operation order, the executive deck, PDF briefs."),
    "db": LazyArea("dcoflow.flows.cli.db", "Database schema: show and apply migrations"),
    "export": LazyArea("dcoflow.flows.cli.export", "Export a DCO's results: its STIX 2.1 bundle."),
    "retest": LazyArea("dcoflow.flows.cli.retest",
                       "Re-tests: evaluate due ones now against the evidence recorded since."),
    "ir": LazyArea("dcoflow.flows.cli.ir", "Incident-response support: DCOs from incidents, indicator sweeps."),
    "publish": LazyArea("dcoflow.flows.cli.publish",
                        "Publish a DCO's bundle; re-running sends only what the collection does not hold yet.",
                        merged=True),
}


class RootGroup(LazyGroup):
    areas = AREAS


app = typer.Typer(
    cls=RootGroup,
    help="dcoflow — plan, conduct, assess and follow up Defensive Cyberspace Operations.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.command("plan")
@handle_errors
def plan(
    file: Annotated[Path, typer.Argument(help="Operation file (YAML or JSON).")],
    attack_source: Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, URL or TAXII.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Export folder.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Every step and hypothesis, not a summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The whole result as one JSON document.")] = False,
) -> None:
    """Plan a DCO from an operation file (what the plan-dco flow does, without its approval pause): a short
    summary, --verbose or --json for all."""
    from dcoflow.connectors.content.operation_file import load_operation_file
    from dcoflow.core.settings import get_settings
    from dcoflow.flows.cli import ops
    from dcoflow.tasks.plan.use_cases import plan_dco

    settings = get_settings()
    result = plan_dco(load_operation_file(file), cli_user(), settings=settings, output_dir=out or settings.output_dir,
                      attack_source=attack_source, source=str(file)).as_dict()
    if as_json:
        print_json(result)
        return
    if verbose:
        ops.show(result["dco"], as_json=False)
    else:
        ops.summary(result["dco"])
    console.print("exports: " + ", ".join(result["exports"]))


@app.command("sync-content")
@handle_errors
def sync_content(
    content_dir: Annotated[Path | None, typer.Option("--dir", help="Content folder; DCO_CONTENT_DIR if unset.")] = None,
    parts: Annotated[list[str] | None, typer.Option("--part", help="attack, sigma, atomics (all if unset).")] = None,
    domains: Annotated[list[str] | None, typer.Option("--domain", help="ATT&CK domains (all if unset).")] = None,
    attack_version: Annotated[str | None, typer.Option("--attack-version", help="e.g. 18.1; newest if unset.")] = None,
    sigma_ref: Annotated[str, typer.Option(help="SigmaHQ release tag or branch.")] = "latest",
    atomics_ref: Annotated[str, typer.Option(help="Atomic Red Team tag or branch.")] = "master",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fill the content folder from ATT&CK, SigmaHQ and Atomic Red Team upstreams (needs network access)."""
    from dcoflow.core.errors import ConfigError
    from dcoflow.core.settings import get_settings
    from dcoflow.flows.cli.output import table
    from dcoflow.flows.sync_content import PARTS, sync_parts
    from dcoflow.models.attack.catalog import DOMAINS

    dest = content_dir or get_settings().content_dir
    if dest is None:
        raise ConfigError("no content folder to sync into", object="DCO_CONTENT_DIR",
                          hint="set DCO_CONTENT_DIR or pass --dir")
    rows = sync_parts(dest, parts or PARTS, domains or DOMAINS, attack_version, sigma_ref, atomics_ref)
    if as_json:
        print_json(rows)
    else:
        table(f"Content synced into {dest}", ["part", "path", "detail"], [tuple(r.values()) for r in rows])


@app.command("demo")
@handle_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")] = Path("dco-demo"),
    attack_source: Annotated[str | None, typer.Option("--attack")] = None,
) -> None:
    """Run the demo DCO's whole lifecycle on the content in DCO_CONTENT_DIR; writes exports to --out."""
    import secrets

    from dcoflow.core.settings import get_settings
    from dcoflow.flows.demo import demo_answers, write_demo_operation
    from dcoflow.flows.demo.incident_inbox import notification_inbox

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    configured = get_settings()  # environment and .env, as every other command reads them
    # The demo keeps its own embedded SQLite database beside its exports unless one is configured.
    if not configured.database_url:
        os.environ["DCO_DATABASE_URL"] = f"sqlite:///{out / 'dcoflow.db'}"
    os.environ["DCO_OUTPUT_DIR"] = str(out)
    outcomes, verdicts = demo_answers()
    secret = configured.webhook_secret.get_secret_value() if configured.webhook_secret else secrets.token_hex(16)
    with notification_inbox(out / "inbox", secret) as inbox_url:
        if not configured.webhook_url:  # no endpoint configured: the demo's own inbox
            os.environ["DCO_WEBHOOK_URL"], os.environ["DCO_WEBHOOK_SECRET"] = inbox_url, secret
        get_settings.cache_clear()
        from dcoflow.flows.lifecycle import dco_lifecycle

        result = dco_lifecycle(
            operation_file=str(write_demo_operation(out)), attack_source=attack_source, output_dir=str(out),
            approver="demo coordinator (OCIO)", emulation_outcomes=outcomes, triage_verdicts=verdicts,
            actor="dco-demo",
        )
    _demo_summary(result, out)


def _demo_summary(result: dict[str, Any], out: Path) -> None:
    from dcoflow.flows.cli.output import table
    from dcoflow.tasks.plan.views import plan_view

    plan = plan_view(result["dco"])["plan"] or {}
    summary = plan.get("summary", {})
    table("Plan", ["", ""], [
        ("ATT&CK", f"{plan.get('attack', {}).get('domain')} {plan.get('attack', {}).get('version')}"),
        ("techniques", summary.get("techniques")), ("by tactic", _short(summary.get("by_tactic", {}))),
        ("emulation steps", summary.get("emulation_steps")), ("hunt hypotheses", summary.get("hypotheses")),
        ("Sigma rules", summary.get("sigma_rules")), ("warnings", summary.get("warnings")),
    ])
    rows = [(k, v) for k, v in (
        ("hunt", result.get("hunt")), ("triage", result.get("triage")), ("emulation", result.get("emulation")),
        ("assessment", result.get("assessment")), ("follow-up", result.get("follow_up")),
        ("brief", result.get("brief")), ("STIX bundle", result.get("stix_bundle")),
    ) if v is not None]
    table("Lifecycle", ["phase", "result"], [(k, _short(v)) for k, v in rows])
    folders: dict[str, int] = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and not p.name.startswith("dcoflow.db"):
            rel = p.relative_to(out)
            key = str(rel.parent) + "/" if len(rel.parts) > 1 and rel.parts[0] == "inbox" else str(rel)
            folders[key] = folders.get(key, 0) + 1
    console.print("\n".join(f"  {k}" + (f"  ({n} messages)" if k.endswith("/") else "") for k, n in folders.items()))
    console.print(f"\n[bold green]demo complete[/] — DCO {result['dco']} is {result.get('state')}; "
                  f"outputs in [bold]{out}[/]")


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_short(v)}" for k, v in list(value.items())[:8] if not isinstance(v, (dict, list)))
    return str(value)


def main() -> None:
    # A secure enterprise network: Prefect's local server must not try to phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect gives its temporary server 20 s to come up; on a busy 2-core host the demo then failed
    # before doing anything. Waiting longer costs nothing when the server is quick.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    app()
