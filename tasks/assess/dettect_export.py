"""Export a DCO's computed visibility and detection scores as a DeTT&CT technique administration file."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from dcoflow.connectors.content.dettect import ScoreRow, technique_administration
from dcoflow.core.errors import StateError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.operation import as_utc
from dcoflow.models.repository.assessment import latest_scores
from dcoflow.models.repository.operation import get_operation


def export_dettect(session: Session, dco: str, catalog: Catalog, out: Path) -> Path:
    op = get_operation(session, dco)
    scores = latest_scores(session, op.id)
    if not scores:
        raise StateError(f"DCO {op.id} has no assessment yet", object=op.id, hint=f"run `dco assess run {op.id}`")
    rows = []
    for s in scores:
        tech = catalog.get_technique(s.technique_id)
        rows.append(ScoreRow(s.technique_id, tech.name if tech else s.technique_id, s.visibility, s.detection,
                             as_utc(s.assessed_at).date(),
                             f"dcoflow {op.id}: visibility {s.visibility:g}, detection {s.detection:g} "
                             f"from {s.evidence_count} evidence records"))
    text = technique_administration(rows, name=f"{op.dco.name} (dcoflow)",
                                    platforms=[p.value for p in op.dco.scope.platforms])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
