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
    from dcoflow.core.settings import get_settings
    from dcoflow.tasks.reporting.run import export_stix

    doc = export_stix(dco, out or get_settings().output_dir, attack_source=attack_source)
    counts: dict[str, int] = doc["by_type"]
    if as_json:
        print_json(doc)
        return
    console.print(f"{doc['objects']} STIX objects written to [bold]{doc['bundle']}[/]: "
                  + ", ".join(f"{n} {t}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1])))
