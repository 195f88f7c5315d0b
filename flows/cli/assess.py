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


def _catalog() -> Any:
    from dcoflow.connectors.attack import load_catalog

    return load_catalog()


@app.command("run")
@handle_errors
def run(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    half_life: Annotated[float, typer.Option(help="Evidence half-life in days.")] = DEFAULT_HALF_LIFE_DAYS,
    output_dir: Annotated[Path | None, typer.Option(help="Also publish table, charts and layers here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Assess a DCO now: scores are logged (a new dated row per technique), gaps ranked."""
    from dcoflow.core.db import session_scope
    from dcoflow.tasks.assess.outputs import publish
    from dcoflow.tasks.assess.scoring import assess_dco, id_report_lines

    catalog = _catalog()
    with session_scope() as session:
        result = assess_dco(session, dco, catalog, half_life_days=half_life)
        files = publish(session, result.dco_id, catalog, output_dir) if output_dir else {}
    doc = {"dco_id": result.dco_id, "run_id": result.run_id, "assessed_at": result.assessed_at.isoformat(),
           **result.summary(), "id_report": [dataclasses.asdict(n) for n in result.id_report],
           "evidence_report": result.evidence_report, "files": files}
    if as_json:
        print_json(doc)
        return
    table(f"Assessment of {result.dco_id}", ["measure", "value"],
          [(k, v) for k, v in result.summary().items()])
    for line in id_report_lines(result.id_report):
        console.print(f"[yellow]ids[/] {line}")
    for kind, path in files.items():
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
        from dcoflow.core.db import session_scope
        from dcoflow.models.repository.operation import get_operation
        from dcoflow.tasks.assess.scoring import score_history

        with session_scope() as session:
            history = score_history(session, get_operation(session, dco).id, technique.upper())
        doc: list[dict[str, Any]] = [
            {"assessed_at": h.assessed_at.isoformat(), "visibility": h.visibility, "detection": h.detection,
             "explanation": h.explanation} for h in history]
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
    from dcoflow.core.db import session_scope
    from dcoflow.core.errors import NotFoundError
    from dcoflow.models.repository.operation import get_operation
    from dcoflow.tasks.assess.outputs import coverage_rows
    from dcoflow.tasks.assess.scoring import latest_scores

    catalog = _catalog()
    with session_scope() as session:
        op = get_operation(session, dco)
        found = latest_scores(session, op.id)
        if not found:
            raise NotFoundError("no assessment yet", object=op.id, hint=f"run `dco assess run {op.id}` first")
        return coverage_rows(found, catalog)


@app.command("layer")
@handle_errors
def layer(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the layer JSON.")],
    kind: Annotated[str, typer.Option(help="coverage, gaps, threat or compare.")] = "coverage",
) -> None:
    """Write a Navigator layer (4.5) of the newest assessment."""
    from dcoflow.core.db import session_scope
    from dcoflow.tasks.assess.outputs import build_layer

    with session_scope() as session:
        data = build_layer(session, dco, _catalog(), kind)
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
    from dcoflow.core.db import session_scope
    from dcoflow.tasks.assess.outputs import trend_marking
    from dcoflow.tasks.assess.scoring import trend

    with session_scope() as session:
        points = trend(session)
        marking = trend_marking(session, {p.dco_id for p in points})
    if svg is not None or csv is not None:
        from dcoflow.models.marking import mark_svg
        from dcoflow.tasks.assess.frames import trend_csv_frame, trend_frame
        from dcoflow.tasks.assess.outputs import trend_svg, write_csv

        frame = trend_frame(points)
        if svg is not None:
            svg.parent.mkdir(parents=True, exist_ok=True)
            svg.write_text(mark_svg(trend_svg(frame), marking), encoding="utf-8")
        if csv is not None:
            write_csv(trend_csv_frame(frame), csv, marking)
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
    from dcoflow.connectors.content.dettect import read_dettect
    from dcoflow.core.db import session_scope
    from dcoflow.models.repository.operation import get_operation
    from dcoflow.tasks.assess.evidence import store_imported

    catalog = _catalog()
    with session_scope() as session:
        dco_id = get_operation(session, dco).id
        result = read_dettect(file, catalog=catalog, dco_id=dco_id)
        stored = store_imported(session, dco_id, result.evidence)
    doc = {"file": str(file), "file_type": result.file_type, "dco_id": dco_id, "evidence": stored,
           "report": result.report.summary(), "bad": [dataclasses.asdict(b) for b in result.report.bad]}
    if as_json:
        print_json(doc)
        return
    console.print(f"{stored} evidence records from {file} ({result.file_type}) for {dco_id}")
    console.print(result.report.summary())


@app.command("export-dettect")
@handle_errors
def export_dettect_cmd(
    dco: Annotated[str, typer.Argument(help="DCO id or name.")],
    out: Annotated[Path, typer.Option("--out", help="Technique administration YAML to write.")],
) -> None:
    """Write the DCO's computed scores as a DeTT&CT technique administration file (auto-generated scores)."""
    from dcoflow.core.db import session_scope
    from dcoflow.tasks.assess.dettect_export import export_dettect

    catalog = _catalog()
    with session_scope() as session:
        path = export_dettect(session, dco, catalog, out)
    console.print(f"DeTT&CT technique administration written to {path}")
