"""`dco export …`: write a DCO's results in exchange formats.

Wiring: the ``export`` entry of ``AREAS`` in flows/cli/__init__.py (imported when `dco export` runs). Runs the
task function the lifecycle flow's export step runs (no Prefect server needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json

app = typer.Typer(help="Export a DCO's results: its STIX 2.1 bundle.", no_args_is_help=True)


@app.command("stix")
@handle_errors
def stix(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder; DCO_OUTPUT_DIR when unset.")] = None,
    attack_source: Annotated[str | None, typer.Option("--attack", help="ATT&CK bundle file, URL or TAXII.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The DCO's STIX 2.1 bundle (a report over every result, with its markings), validated, as one file."""
    import json

    from dcoflow.connectors.attack import load_catalog
    from dcoflow.core.db import session_scope
    from dcoflow.core.settings import get_settings
    from dcoflow.tasks.reporting.stix_export import export_dco_bundle

    catalog = load_catalog(attack_source)
    with session_scope() as s:
        path = export_dco_bundle(s, dco, catalog, out or get_settings().output_dir)
    objects = json.loads(path.read_text(encoding="utf-8"))["objects"]
    counts: dict[str, int] = {}
    for o in objects:
        counts[o["type"]] = counts.get(o["type"], 0) + 1
    if as_json:
        print_json({"dco": dco, "bundle": str(path), "objects": len(objects), "by_type": counts})
        return
    console.print(f"{len(objects)} STIX objects written to [bold]{path}[/]: "
                  + ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1])))
