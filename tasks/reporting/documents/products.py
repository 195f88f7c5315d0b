"""Every decision document of one DCO in one call (what `dco doc all`, `dco demo` and the lifecycle write):
the plan as an operation order (DOCX, PDF), the executive deck (PPTX) and the executive and technical
briefs as PDF with their charts. The brief's facts and the charts are gathered once and shared by all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.models.attack import Catalog
from dcoflow.tasks.reporting.briefing import BriefingFacts, gather_facts, key_risks
from dcoflow.tasks.reporting.documents.charts import Chart, TrendSample, brief_charts
from dcoflow.tasks.retry import retry_when_retryable


@dataclass(slots=True)
class BriefDocuments:
    facts: BriefingFacts
    charts: list[Chart]


def gather_brief_documents(session: Session, dco: str, catalog: Catalog) -> BriefDocuments:
    """The brief's facts and the charts drawn from them and from the DCO's assessment trend."""
    from dcoflow.models.repository.assessment import trend

    facts = gather_facts(session, dco, catalog)
    samples = [TrendSample(p.assessed_at, p.techniques, p.mean_detection, p.mean_visibility, p.detected)
               for p in trend(session, [facts.dco_id])]
    charts = brief_charts(facts.techniques, key_risks(facts, len(facts.decisions)), samples, catalog.tactic_rank)
    return BriefDocuments(facts, charts)


def write_brief_documents(docs: BriefDocuments, out_dir: Path) -> dict[str, Path]:
    from dcoflow.tasks.reporting.documents.brief_pdf import write_brief_pdf
    from dcoflow.tasks.reporting.documents.deck import write_deck

    base = out_dir / docs.facts.dco_id
    return {
        "deck": write_deck(docs.facts, docs.charts, base.with_name(f"{base.name}-brief-executive.pptx")),
        "executive-pdf": write_brief_pdf(docs.facts, "executive", docs.charts,
                                         base.with_name(f"{base.name}-brief-executive.pdf")),
        "technical-pdf": write_brief_pdf(docs.facts, "technical", docs.charts,
                                         base.with_name(f"{base.name}-brief-technical.pdf")),
    }


def write_documents(dco: str, output_dir: str | Path | None = None, attack_source: str | None = None,
                    kinds: tuple[str, ...] = ("plan", "briefs"), *, output_root: Path | None = None) -> dict[str, str]:
    """The user action (`dco doc all|brief`): the plan order and/or the brief documents of one DCO, into
    ``output_dir``, or ``output_root/<dco id>`` when none is given."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.core.db import session_scope
    from dcoflow.models.repository.operation import get_operation
    from dcoflow.tasks.reporting.documents.plan_order import gather_plan_order, output_folder, write_plan_documents

    catalog = load_catalog(attack_source)
    files: dict[str, Any] = {}
    with session_scope() as session:
        op = get_operation(session, dco)
        order = gather_plan_order(session, op, catalog) if "plan" in kinds else None
        briefs = gather_brief_documents(session, op.id, catalog) if "briefs" in kinds else None
    out = output_folder(op.id, output_dir, output_root)
    if order is not None:
        files.update(write_plan_documents(order, out))
    if briefs is not None:
        files.update(write_brief_documents(briefs, out))
    return {k: str(v) for k, v in files.items()}


write_documents_task = task(name="write-documents", retries=1, cache_policy=NO_CACHE,
                            retry_condition_fn=retry_when_retryable)(write_documents)
