"""What an assessment publishes: the coverage table (CSV, XLSX), charts (SVG: heatmap by tactic,
trend across DCOs), Navigator layers, and Prefect artifacts (markdown summary + gap table).

Everything is built from the stored score log (TechniqueScore rows), so publishing can run after
the fact and the CLI shows exactly what the flow wrote. The tables are pandas DataFrames
(tasks/assess/frames.py); the XLSX goes through pandas' xlsxwriter engine and carries the DCO's
marking (TLP + classification) on its first and last rows and in the print header and footer, as the
reporting outputs do. Charts are plain SVG written here: no plotting dependency, and they open in any
browser or slide tool.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session

from dcoflow.core.errors import NotFoundError
from dcoflow.models.assessment import (
    DETECTION_MAX,
    DETECTION_MIN,
    VISIBILITY_MAX,
    VISIBILITY_MIN,
    reaches,
    threat_relevance,
)
from dcoflow.models.assessment_rows import TechniqueScore
from dcoflow.models.attack import Catalog
from dcoflow.models.cells import XLSX_OPTIONS, safe_cell
from dcoflow.models.marking import MARKING_KEY, MarkingFacts, mark_layer, mark_svg, strictest, xlsx_header
from dcoflow.models.navigator import (
    DETECTION_COLORS,
    ScoredTechnique,
    compare_layer,
    coverage_layer,
    gap_layer,
    interpolate,
    threat_layer,
)
from dcoflow.models.operation import Operation
from dcoflow.models.repository.assessment import latest_scores, trend
from dcoflow.models.repository.operation import get_operation
from dcoflow.tasks.assess.frames import (
    LEVELS,
    coverage_frame,
    coverage_records,
    tactic_table,
    trend_csv_frame,
    trend_frame,
    trend_pivot,
)

VISIBILITY_COLORS = ["#f7fbff", "#2c7bb6"]
#: Line colours of the trend chart, one per DCO (cycled); colour-blind safe (Okabe–Ito).
SERIES_COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]


def coverage_rows(scores: Sequence[TechniqueScore], catalog: Catalog) -> list[dict[str, Any]]:
    """The coverage table as JSON records (``frames.COLUMNS``), gaps first by rank."""
    return coverage_records(coverage_frame(scores, catalog))


def write_csv(frame: pd.DataFrame, path: Path, marking: MarkingFacts) -> Path:
    """The table with the marking as its last column, on every row (models/marking.py says why)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.assign(**{MARKING_KEY: marking.banner})
    frame = frame.apply(lambda column: column.map(safe_cell) if not pd.api.types.is_numeric_dtype(column) else column)
    # text quoted: with "\n" line ends a bare CR inside a cell is not quoted, and starts a new row in Excel
    frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8", quoting=csv.QUOTE_NONNUMERIC)
    return path


def tactic_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The tactic pivot as a flat table (CSV, XLSX): the tactic a column, levels named."""
    return table.rename(columns={lv: f"detection {lv}" for lv in LEVELS}).reset_index()


def write_xlsx(frame: pd.DataFrame, path: Path, marking: MarkingFacts, *, title: str = "coverage",
               tactics: pd.DataFrame | None = None, created: datetime | None = None) -> Path:
    """The coverage table (and the tactic pivot) as a marked workbook.

    ``created`` fixes the document date (the assessment's), so the same assessment gives the same bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="xlsxwriter", engine_kwargs={"options": XLSX_OPTIONS}) as writer:
        book = writer.book
        props: dict[str, Any] = {"title": f"Coverage — {title}", "keywords": marking.label,
                                 "comments": marking.banner}
        if created is not None:
            # xlsxwriter writes the date as UTC and takes a naive datetime
            props["created"] = (created.astimezone(UTC) if created.tzinfo else created).replace(tzinfo=None)
        book.set_properties(props)
        sheet = _marked_sheet(writer, "coverage", frame, marking)
        if len(frame):
            last = len(frame) + 1
            det, vis = frame.columns.get_loc("detection"), frame.columns.get_loc("visibility")
            sheet.conditional_format(2, det, last, det, {
                "type": "3_color_scale", "min_type": "num", "min_value": DETECTION_MIN,
                "min_color": DETECTION_COLORS[0], "mid_type": "num", "mid_value": 2, "mid_color": DETECTION_COLORS[2],
                "max_type": "num", "max_value": DETECTION_MAX, "max_color": DETECTION_COLORS[-1]})
            sheet.conditional_format(2, vis, last, vis, {
                "type": "2_color_scale", "min_type": "num", "min_value": VISIBILITY_MIN,
                "min_color": VISIBILITY_COLORS[0], "max_type": "num", "max_value": VISIBILITY_MAX,
                "max_color": VISIBILITY_COLORS[-1]})
        for name, width in (("name", 40), ("tactics", 28), ("assessed_at", 26), ("deciding_evidence", 90)):
            if name in frame.columns:
                c = frame.columns.get_loc(name)
                sheet.set_column(c, c, width)
        sheet.set_column(0, 0, 12)
        if tactics is not None:
            _marked_sheet(writer, "tactics", tactic_rows(tactics), marking).set_column(0, 0, 22)
    return path


def _marked_sheet(writer: pd.ExcelWriter, name: str, frame: pd.DataFrame, marking: MarkingFacts) -> Any:
    """Write ``frame`` from row 3 under a marking banner and a formatted header, the banner again
    after the last row, and the marking in the print header and footer (as tasks/reporting/meetings.py)."""
    frame.to_excel(writer, sheet_name=name, startrow=2, header=False, index=False, na_rep="")
    book, sheet = writer.book, writer.sheets[name]
    banner = book.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#000000"})
    head = book.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
    ncol = len(frame.columns)
    # Excel header/footer codes: &C centre section; ampersands in the text must be doubled.
    code = xlsx_header(marking)
    sheet.set_header(f"&C{code}")
    sheet.set_footer(f"&C{code} — page &P of &N")
    sheet.merge_range(0, 0, 0, ncol - 1, marking.banner, banner)
    for c, column in enumerate(frame.columns):
        sheet.write(1, c, str(column), head)
    last = len(frame) + 1
    sheet.merge_range(last + 2, 0, last + 2, ncol - 1, marking.banner, banner)
    sheet.autofilter(1, 0, max(2, last), ncol - 1)
    sheet.freeze_panes(2, 1)
    return sheet


def heatmap_svg(table: pd.DataFrame, title: str) -> str:
    """Tactics (rows, as ``frames.tactic_table`` orders them) × detection level: how many techniques
    sit in each cell, and each tactic's technique count and mean/min scores on the right."""
    counts = table[LEVELS]
    top = max(int(counts.to_numpy().max()) if len(table) else 1, 1)
    stats = [("techniques", "techniques", "{:.0f}"), ("mean_visibility", "mean vis.", "{:.2f}"),
             ("mean_detection", "mean det.", "{:.2f}"), ("min_detection", "min det.", "{:.1f}")]
    cw, ch, left, head, sw = 56, 22, 190, 60, 72
    grid_right = left + cw * len(LEVELS)
    width, height = grid_right + 16 + sw * len(stats) + 10, head + ch * len(table) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><title>{escape(title)}</title>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(title)}</text>',
           f'<text x="{left}" y="40">detection score (−1 none … 5 excellent)</text>']
    for j, lv in enumerate(LEVELS):
        out.append(f'<text x="{left + j * cw + cw / 2}" y="{head - 4}" text-anchor="middle">{lv}</text>')
    for k, (_, label, _) in enumerate(stats):
        out.append(f'<text x="{grid_right + 16 + k * sw + sw / 2}" y="{head - 4}" text-anchor="middle">{label}</text>')
    for i, (tac, row) in enumerate(table.iterrows()):
        y = head + i * ch
        out.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(str(tac))}</text>')
        for j, lv in enumerate(LEVELS):
            n = int(row[lv])
            fill = interpolate(["#f7fbff", "#08306b"], 0, top, n) if n else "#ffffff"
            ink = "#ffffff" if n > top / 2 else "#000000"
            out.append(f'<rect x="{left + j * cw}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}" '
                       f'stroke="#cccccc"/>')
            if n:
                out.append(f'<text x="{left + j * cw + cw / 2}" y="{y + 15}" text-anchor="middle" '
                           f'fill="{ink}">{n}</text>')
        for k, (column, _, fmt) in enumerate(stats):
            out.append(f'<text x="{grid_right + 16 + k * sw + sw / 2}" y="{y + 15}" text-anchor="middle">'
                       f'{fmt.format(float(row[column]))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def trend_svg(frame: pd.DataFrame, title: str = "Detection trend across DCOs") -> str:
    """Mean detection (solid) and visibility (dashed) per DCO over its assessment runs.

    ``frame`` is ``frames.trend_frame``; pivoted to one series per DCO on a shared time axis (every
    distinct assessment moment, oldest to newest), so DCOs assessed together line up and no line
    jumps from one DCO to another.
    """
    detection, visibility = trend_pivot(frame, "mean_detection"), trend_pivot(frame, "mean_visibility")
    moments: list[pd.Timestamp] = list(detection.index)
    dcos: list[str] = [str(d) for d in detection.columns]
    legend_w = 220
    width, pad = 760 + legend_w, 50
    height = max(320, 80 + 18 * (len(dcos) + 2))
    plot_right = width - legend_w - pad
    n = max(len(moments), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="11"><title>{escape(title)}</title>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(title)}</text>']

    def xy(i: int, value: float) -> tuple[float, float]:
        x = pad + (plot_right - pad) * (i / max(n - 1, 1))
        y = height - pad - (height - 2 * pad) * ((value - DETECTION_MIN) / (DETECTION_MAX - DETECTION_MIN))
        return round(x, 1), round(y, 1)

    for lv in range(DETECTION_MIN, DETECTION_MAX + 1):
        _, y = xy(0, lv)
        out.append(f'<line x1="{pad}" y1="{y}" x2="{plot_right}" y2="{y}" stroke="#eeeeee"/>'
                   f'<text x="{pad - 8}" y="{y + 4}" text-anchor="end">{lv}</text>')
    lx = width - legend_w + 10
    out.append(f'<text x="{lx}" y="40">solid: mean detection</text>'
               f'<text x="{lx}" y="56">dashed: mean visibility</text>')
    for k, dco in enumerate(dcos):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        for pivot, dash in ((detection, ""), (visibility, ' stroke-dasharray="5,3"')):
            coords = [xy(i, float(v)) for i, v in enumerate(pivot[dco]) if not math.isnan(v)]
            if not coords:
                continue
            path = " ".join(f"{x},{y}" for x, y in coords)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}>'
                       f'<title>{escape(dco)}</title></polyline>')
            out.extend(f'<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>' for x, y in coords)
        ly = 78 + 18 * k
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 15}" y="{ly}">{escape(dco[:32])}</text>')
    same_day = len({m.date() for m in moments}) < len(moments)
    for i, moment in enumerate(moments):
        x, _ = xy(i, DETECTION_MIN)
        out.append(f'<text x="{x}" y="{height - pad + 16}" text-anchor="middle">{moment:%Y-%m-%d}</text>')
        if same_day:
            out.append(f'<text x="{x}" y="{height - pad + 30}" text-anchor="middle">{moment:%H:%M}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _scored(scores: Sequence[TechniqueScore]) -> list[ScoredTechnique]:
    return [ScoredTechnique(s.technique_id, s.visibility, s.detection,
                            tuple(s.explanation.get("detection", [])), s.priority, round(s.relevance),
                            str(s.explanation.get("gap_reason") or ""),
                            str((s.explanation.get("hunt_coverage") or {}).get("text") or ""))
            for s in scores]


def tactics_of(catalog: Catalog, technique_ids: Sequence[str]) -> dict[str, list[str]]:
    out = {}
    for tid in technique_ids:
        tech = catalog.get_technique(tid)
        if tech is not None:
            out[tid] = list(tech.tactics)
    return out


def build_layer(session: Session, dco_id: str, catalog: Catalog, kind: str) -> dict[str, Any]:
    """One Navigator layer of the DCO's newest assessment: coverage, gaps, threat or compare."""
    op = get_operation(session, dco_id)
    scores = latest_scores(session, op.id)
    before = latest_scores(session, op.id, back=1) if kind == "compare" else []
    return _layer(op, catalog, kind, scores, before)


def _layer(op: Operation, catalog: Catalog, kind: str, scores: Sequence[TechniqueScore],
           before: Sequence[TechniqueScore]) -> dict[str, Any]:
    """The ``kind`` layer from the newest scores (``before``: the run before them, for compare), marked."""
    return mark_layer(_unmarked_layer(op, catalog, kind, scores, before), MarkingFacts.of(op.dco.marking))


def _unmarked_layer(op: Operation, catalog: Catalog, kind: str, scores: Sequence[TechniqueScore],
                    before: Sequence[TechniqueScore]) -> dict[str, Any]:
    if not scores and kind != "threat":
        raise NotFoundError("no assessment yet", object=op.id, hint=f"run `dco assess run {op.id}` first")
    tactics = tactics_of(catalog, [s.technique_id for s in scores])
    name = f"{op.name} — {kind}"
    if kind == "coverage":
        return coverage_layer(name, catalog.version, _scored(scores), tactics=tactics)
    if kind == "gaps":
        gaps = [s for s in _scored(scores) if s.priority > 0]
        return gap_layer(name, catalog.version, gaps, tactics=tactics)
    if kind == "threat":
        profile = op.dco.threat_profile
        rel = threat_relevance(catalog, profile.groups, profile.campaigns, profile.via)
        users = {tid: list(r.users) for tid, r in rel.items() if r.users}
        return threat_layer(name, catalog.version, users, tactics=tactics_of(catalog, list(users)))
    if kind == "compare":
        if not before:
            raise NotFoundError("only one assessment: nothing to compare", object=op.id,
                                hint="re-assess after new evidence (a re-test) and compare then")
        return compare_layer(name, catalog.version, {s.technique_id: s.detection for s in before},
                             {s.technique_id: s.detection for s in scores}, tactics=tactics,
                             description=f"{before[0].assessed_at:%Y-%m-%d %H:%M} → "
                                         f"{scores[0].assessed_at:%Y-%m-%d %H:%M}")
    raise NotFoundError(f"unknown layer kind {kind!r}", object=kind, hint="coverage, gaps, threat or compare")


def markdown_summary(dco_id: str, rows: Sequence[dict[str, Any]], limit: int = 15) -> str:
    n = len(rows) or 1
    detected = sum(1 for r in rows if reaches(r["detection"], 1))
    lines = [f"# Assessment of {dco_id}", "",
             f"{len(rows)} techniques; {detected} detected (score rounds to ≥ 1); mean visibility "
             f"{sum(r['visibility'] for r in rows) / n:.2f}/4, "
             f"mean detection {sum(r['detection'] for r in rows) / n:.2f}/5.",
             "", "| priority | technique | visibility | detection | deciding evidence |", "|---|---|---|---|---|"]
    for r in [r for r in rows if r["priority"] > 0][:limit]:
        lines.append(f"| {r['priority']:.2f} | {r['technique_id']} {r['name']} | {r['visibility']:g} | "
                     f"{r['detection']:g} | {r['deciding_evidence'] or '—'} |")
    return "\n".join(lines)


def publish(session: Session, dco_id: str, catalog: Catalog, output_dir: Path) -> dict[str, str]:
    """Write the newest assessment's table, charts and layers under ``output_dir/<dco>/assessment``."""
    op = get_operation(session, dco_id)
    scores = latest_scores(session, op.id)
    if not scores:
        raise NotFoundError("no assessment yet", object=op.id, hint=f"run `dco assess run {op.id}` first")
    folder = output_dir / op.id / "assessment"
    folder.mkdir(parents=True, exist_ok=True)
    marking = MarkingFacts.of(op.dco.marking)
    frame, tactics = coverage_frame(scores, catalog), tactic_table(scores, catalog)
    files = {"csv": write_csv(frame, folder / "coverage.csv", marking),
             "xlsx": write_xlsx(frame, folder / "coverage.xlsx", marking, title=op.name,
                                tactics=tactics, created=scores[0].assessed_at),
             "tactics": write_csv(tactic_rows(tactics), folder / "tactics.csv", marking),
             "heatmap": folder / "heatmap.svg"}
    files["heatmap"].write_text(mark_svg(heatmap_svg(tactics, f"{op.name}: detection by tactic"), marking),
                                encoding="utf-8")
    before = latest_scores(session, op.id, back=1)
    for kind in ["coverage", "gaps", "threat"] + (["compare"] if before else []):
        path = folder / f"layer-{kind}.json"
        path.write_text(json.dumps(_layer(op, catalog, kind, scores, before), indent=1), encoding="utf-8")
        files[f"layer-{kind}"] = path
    _artifacts(op.id, coverage_records(frame))
    return {k: str(v) for k, v in files.items()}


def publish_trend(session: Session, output_dir: Path) -> dict[str, Path]:
    """The trend across every DCO's assessment runs: ``trend.csv`` (one row per DCO per run) and ``trend.svg``."""
    points = trend(session)
    frame = trend_frame(points)
    marking = trend_marking(session, {p.dco_id for p in points})
    output_dir.mkdir(parents=True, exist_ok=True)
    svg = output_dir / "trend.svg"
    svg.write_text(mark_svg(trend_svg(frame), marking), encoding="utf-8")
    return {"trend": svg, "trend-csv": write_csv(trend_csv_frame(frame), output_dir / "trend.csv", marking)}


def trend_marking(session: Session, dco_ids: set[str]) -> MarkingFacts:
    """The trend spans DCOs: it carries the strictest of their markings."""
    return strictest(MarkingFacts.of(get_operation(session, d).dco.marking) for d in sorted(dco_ids))


def _artifacts(dco_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """Prefect artifacts when running inside a flow or task; nothing outside one (CLI, tests)."""
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    key = "assessment-" + "".join(c if c.isalnum() else "-" for c in dco_id.lower())
    create_markdown_artifact(markdown_summary(dco_id, rows), key=key, description=f"Assessment of {dco_id}")
    gaps = [{k: r[k] for k in ("technique_id", "name", "visibility", "detection", "priority")}
            for r in rows if r["priority"] > 0][:50]
    create_table_artifact(gaps, key=key + "-gaps", description=f"Top gaps of {dco_id}")

