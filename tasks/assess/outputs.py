"""What an assessment publishes: the coverage table (CSV, XLSX), charts (SVG: heatmap by tactic,
trend across DCOs), Navigator layers, and Prefect artifacts (markdown summary + gap table).

Everything is built from the stored score log (TechniqueScore rows), so publishing can run after
the fact and the CLI shows exactly what the flow wrote. Charts are plain SVG written here: no
plotting dependency, and they open in any browser or slide tool.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from prefect import task
from sqlmodel import Session

from core.errors import NotFoundError
from models.assessment import DETECTION_MAX, DETECTION_MIN, threat_relevance
from models.assessment_rows import TechniqueScore
from models.attack import Catalog
from models.navigator import (
    DETECTION_COLORS,
    ScoredTechnique,
    compare_layer,
    coverage_layer,
    gap_layer,
    interpolate,
    threat_layer,
)
from models.repository import get_operation
from tasks.assess.scoring import TrendPoint, latest_scores, trend

COLUMNS = ["technique_id", "name", "tactics", "visibility", "detection", "priority", "relevance", "evidence",
           "assessed_at", "deciding_evidence"]


def coverage_rows(scores: Sequence[TechniqueScore], catalog: Catalog) -> list[dict[str, Any]]:
    rows = []
    for s in sorted(scores, key=lambda r: (-r.priority, r.technique_id)):
        tech = catalog.get_technique(s.technique_id)
        deciding = [line[3:] for line in s.explanation.get("detection", []) if line.startswith("=> ")]
        rows.append({
            "technique_id": s.technique_id,
            "name": tech.name if tech else "(not in this ATT&CK release)",
            "tactics": ", ".join(tech.tactics) if tech else "",
            "visibility": s.visibility, "detection": s.detection, "priority": s.priority, "relevance": s.relevance,
            "evidence": s.evidence_count, "assessed_at": s.assessed_at.isoformat(),
            "deciding_evidence": deciding[0] if deciding else "",
        })
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_xlsx(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    import xlsxwriter  # type: ignore[import-untyped]

    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("coverage")
    bold = book.add_format({"bold": True})
    for c, name in enumerate(COLUMNS):
        sheet.write(0, c, name, bold)
    for r, row in enumerate(rows, start=1):
        for c, name in enumerate(COLUMNS):
            sheet.write(r, c, row[name])
    if rows:
        det = COLUMNS.index("detection")
        sheet.conditional_format(1, det, len(rows), det, {
            "type": "3_color_scale", "min_type": "num", "min_value": DETECTION_MIN, "min_color": DETECTION_COLORS[0],
            "mid_type": "num", "mid_value": 2, "mid_color": DETECTION_COLORS[2],
            "max_type": "num", "max_value": DETECTION_MAX, "max_color": DETECTION_COLORS[-1]})
    sheet.autofilter(0, 0, max(1, len(rows)), len(COLUMNS) - 1)
    sheet.freeze_panes(1, 1)
    book.close()
    return path


def heatmap_svg(scores: Sequence[TechniqueScore], catalog: Catalog, title: str) -> str:
    """Tactics (kill-chain order) × detection level: how many techniques sit in each cell."""
    levels = list(range(DETECTION_MIN, DETECTION_MAX + 1))
    tactics = [t.shortname for t in catalog.tactics]
    counts: dict[tuple[str, int], int] = {}
    for s in scores:
        tech = catalog.get_technique(s.technique_id)
        for tac in (tech.tactics if tech else ["(unknown)"]):
            if tac not in tactics:
                tactics.append(tac)
            key = (tac, round(s.detection))
            counts[key] = counts.get(key, 0) + 1
    used = [t for t in tactics if any(counts.get((t, lv)) for lv in levels)]
    top = max(counts.values(), default=1)
    cw, ch, left, head = 56, 22, 190, 60
    width, height = left + cw * len(levels) + 20, head + ch * len(used) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><title>{escape(title)}</title>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(title)}</text>',
           f'<text x="{left}" y="40">detection score (−1 none … 5 excellent)</text>']
    for j, lv in enumerate(levels):
        out.append(f'<text x="{left + j * cw + cw / 2}" y="{head - 4}" text-anchor="middle">{lv}</text>')
    for i, tac in enumerate(used):
        y = head + i * ch
        out.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(tac)}</text>')
        for j, lv in enumerate(levels):
            n = counts.get((tac, lv), 0)
            fill = interpolate(["#f7fbff", "#08306b"], 0, top, n) if n else "#ffffff"
            ink = "#ffffff" if n > top / 2 else "#000000"
            out.append(f'<rect x="{left + j * cw}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}" '
                       f'stroke="#cccccc"/>')
            if n:
                out.append(f'<text x="{left + j * cw + cw / 2}" y="{y + 15}" text-anchor="middle" '
                           f'fill="{ink}">{n}</text>')
    out.append("</svg>")
    return "\n".join(out)


def trend_svg(points: Sequence[TrendPoint], title: str = "Detection trend across DCOs") -> str:
    """Mean detection and visibility per assessment run, oldest to newest, labelled by DCO."""
    width, height, pad = 760, 320, 50
    n = max(len(points), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="11"><title>{escape(title)}</title>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(title)}</text>']

    def xy(i: int, value: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (i / max(n - 1, 1))
        y = height - pad - (height - 2 * pad) * ((value - DETECTION_MIN) / (DETECTION_MAX - DETECTION_MIN))
        return round(x, 1), round(y, 1)

    for lv in range(DETECTION_MIN, DETECTION_MAX + 1):
        _, y = xy(0, lv)
        out.append(f'<line x1="{pad}" y1="{y}" x2="{width - pad}" y2="{y}" stroke="#eeeeee"/>'
                   f'<text x="{pad - 8}" y="{y + 4}" text-anchor="end">{lv}</text>')
    for attr, color, label in (("mean_detection", "#1a9850", "mean detection"),
                               ("mean_visibility", "#2c7bb6", "mean visibility")):
        coords = [xy(i, getattr(p, attr)) for i, p in enumerate(points)]
        if coords:
            path = " ".join(f"{x},{y}" for x, y in coords)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            out.extend(f'<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>' for x, y in coords)
        ly = 40 if attr == "mean_detection" else 56
        out.append(f'<rect x="{width - 170}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{width - 155}" y="{ly}">{label}</text>')
    for i, p in enumerate(points):
        x, _ = xy(i, DETECTION_MIN)
        out.append(f'<text x="{x}" y="{height - pad + 16}" text-anchor="middle">{escape(p.dco_id[:18])}</text>'
                   f'<text x="{x}" y="{height - pad + 30}" text-anchor="middle">{p.assessed_at:%Y-%m-%d}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _scored(scores: Sequence[TechniqueScore]) -> list[ScoredTechnique]:
    return [ScoredTechnique(s.technique_id, s.visibility, s.detection,
                            tuple(s.explanation.get("detection", [])), s.priority, round(s.relevance))
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
        rel = threat_relevance(catalog, profile.groups, profile.campaigns, [str(v) for v in profile.via])
        users = {tid: list(r.users) for tid, r in rel.items() if r.users}
        return threat_layer(name, catalog.version, users, tactics=tactics_of(catalog, list(users)))
    if kind == "compare":
        before = latest_scores(session, op.id, back=1)
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
    detected = sum(1 for r in rows if r["detection"] >= 1)
    lines = [f"# Assessment of {dco_id}", "",
             f"{len(rows)} techniques; {detected} detected (score ≥ 1); mean visibility "
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
    rows = coverage_rows(scores, catalog)
    files = {"csv": write_csv(rows, folder / "coverage.csv"), "xlsx": write_xlsx(rows, folder / "coverage.xlsx")}
    files["heatmap"] = folder / "heatmap.svg"
    files["heatmap"].write_text(heatmap_svg(scores, catalog, f"{op.name}: detection by tactic"), encoding="utf-8")
    kinds = ["coverage", "gaps", "threat"] + (["compare"] if latest_scores(session, op.id, back=1) else [])
    for kind in kinds:
        path = folder / f"layer-{kind}.json"
        path.write_text(json.dumps(build_layer(session, op.id, catalog, kind), indent=1), encoding="utf-8")
        files[f"layer-{kind}"] = path
    _artifacts(op.id, rows)
    return {k: str(v) for k, v in files.items()}


def publish_trend(session: Session, output_dir: Path) -> Path:
    path = output_dir / "trend.svg"
    output_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(trend_svg(trend(session)), encoding="utf-8")
    return path


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


def _publish_task(dco_id: str, output_dir: str, attack_source: str | None = None) -> dict[str, str]:
    from connectors.attack import load_catalog
    from core.db import session_scope

    catalog = load_catalog(attack_source)
    with session_scope() as session:
        files = publish(session, dco_id, catalog, Path(output_dir))
        files["trend"] = str(publish_trend(session, Path(output_dir)))
        return files


publish_task = task(name="publish-assessment", retries=1)(_publish_task)
