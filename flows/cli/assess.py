"""`dco assess`: score a DCO, list its gaps and scores, export Navigator layers, show the trend,
import DeTT&CT administration files.

Wiring: the ``assess`` entry of ``AREAS`` in flows/cli/__init__.py (imported when `dco assess` runs). Commands
run the tasks directly (no Prefect server needed); the ``assess-dco`` flow does the same for the UI.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dcoflow.flows.cli.output import console, handle_errors, print_json, table
from dcoflow.models.assessment import DEFAULT_HALF_LIFE_DAYS

app = typer.Typer(help="Assess detection and visibility per technique; gaps, layers, trend, DeTT&CT import.")

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document instead of a table.")]


@app.command("run")
@handle_errors
def run(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    half_life: Annotated[float, typer.Option(help="Evidence half-life in days.")] = DEFAULT_HALF_LIFE_DAYS,
    output_dir: Annotated[Path | None, typer.Option(help="Also publish table, charts and layers here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Assess a DCO now: scores are logged (a new dated row per technique), gaps ranked."""
    from dcoflow.core.settings import get_settings
    from dcoflow.tasks.assess.run import assess
    from dcoflow.tasks.assess.scoring import configured_targets

    [doc] = assess(dco, half_life_days=half_life, default_targets=configured_targets(get_settings()),
                   output_dir=output_dir).values()
    if as_json:
        print_json(doc)
        return
    # the summary's measures: the scalar entries after the DCO, run and time
    measures = [(k, v) for k, v in list(doc.items())[3:] if isinstance(v, int | float) and not isinstance(v, bool)]
    table(f"Assessment of {doc['dco_id']}", ["measure", "value"], measures)
    for line in doc["id_lines"]:
        console.print(f"[yellow]ids[/] {line}")
    for kind, path in doc["files"].items():
        console.print(f"{kind}: {path}")


@app.command("gaps")
@handle_errors
def gaps(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    limit: Annotated[int, typer.Option(help="How many gaps to show.", min=1)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The newest assessment's gaps, worst first (priority = threat relevance × shortfall below the DCO's targets)."""
    rows = [r for r in _rows(dco) if r["priority"] > 0][:limit]
    if as_json:
        print_json(rows)
        return
    table(f"Gaps of {dco}", ["priority", "technique", "name", "visibility", "detection", "why"],
          [(f"{r['priority']:.2f}", r["technique_id"], r["name"], r["visibility"], r["detection"], r["gap_reason"])
           for r in rows])


@app.command("scores")
@handle_errors
def scores(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    technique: Annotated[str | None, typer.Option(help="One technique: its score history and evidence.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest assessment's scores (or one technique's dated score log with its evidence)."""
    if technique:
        from dcoflow.tasks.assess.run import technique_history

        doc = technique_history(dco, technique)
        if as_json:
            print_json(doc)
            return
        for h in doc:
            console.print(f"[bold]{h['assessed_at']}[/] visibility {h['visibility']:g}, detection {h['detection']:g}")
            for line in h["explanation"].get("detection", []):
                console.print("  " + line)
        return
    rows = _rows(dco)
    if as_json:
        print_json(rows)
        return
    table(f"Scores of {dco}", ["technique", "name", "tactics", "visibility", "detection", "evidence"],
          [(r["technique_id"], r["name"], r["tactics"], r["visibility"], r["detection"], r["evidence"])
           for r in sorted(rows, key=lambda r: r["technique_id"])])


def _rows(dco: str) -> list[dict[str, Any]]:
    from dcoflow.tasks.assess.run import coverage

    return coverage(dco)


@app.command("layer")
@handle_errors
def layer(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the layer JSON.")],
    kind: Annotated[str, typer.Option(help="coverage, gaps, threat or compare.")] = "coverage",
) -> None:
    """Write a Navigator layer (4.5) of the newest assessment."""
    from dcoflow.tasks.assess.run import layer as build_layer

    data = build_layer(dco, kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1), encoding="utf-8")
    console.print(f"{kind} layer ({len(data['techniques'])} entries): {out}")


@app.command("trend")
@handle_errors
def trend_cmd(
    svg: Annotated[Path | None, typer.Option(help="Also draw the trend chart here (SVG, one line per DCO).")] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the trend table here (CSV, a row per DCO per run).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Mean visibility and detection of every assessment run, across DCOs, oldest first."""
    from dcoflow.tasks.assess.run import trend

    points = trend(svg, csv)
    if as_json:
        print_json([{**dataclasses.asdict(p), "assessed_at": p.assessed_at.isoformat()} for p in points])
        return
    table("Assessment trend", ["assessed at", "DCO", "techniques", "mean visibility", "mean detection", "detected"],
          [(f"{p.assessed_at:%Y-%m-%d %H:%M}", p.dco_id, p.techniques, p.mean_visibility, p.mean_detection,
            p.detected) for p in points])


@app.command("import-dettect")
@handle_errors
def import_dettect(
    file: Annotated[Path, typer.Argument(help="DeTT&CT technique or data-source administration YAML.")],
    dco: Annotated[str, typer.Option("--dco", help="The DCO whose evidence it seeds.")],
    as_json: JsonOpt = False,
) -> None:
    """Seed a DCO's evidence from a DeTT&CT file (score logbooks stay dated history)."""
    from dcoflow.tasks.assess.run import import_dettect as seed

    doc = seed(file, dco)
    if as_json:
        print_json(doc)
        return
    console.print(f"{doc['evidence']} evidence records from {file} ({doc['file_type']}) for {doc['dco_id']}")
    console.print(doc["report"])


@app.command("export-dettect")
@handle_errors
def export_dettect_cmd(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: Annotated[Path, typer.Option("--out", help="Technique administration YAML to write.")],
) -> None:
    """Write the DCO's computed scores as a DeTT&CT technique administration file (auto-generated scores)."""
    from dcoflow.tasks.assess.run import export_dettect

    path = export_dettect(dco, out)
    console.print(f"DeTT&CT technique administration written to {path}")
