"""Every decision document of one DCO in one call (what `dco demo` and the lifecycle write): the plan as
an operation order (DOCX, PDF), and — once the DCO has results — the executive deck and the PDF briefs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE


def write_documents(dco: str, output_dir: str, attack_source: str | None = None) -> dict[str, str]:
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.core.db import session_scope
    from dcoflow.tasks.reporting.documents.plan_order import gather_plan_order, write_plan_documents

    catalog = load_catalog(attack_source)
    with session_scope() as session:
        order = gather_plan_order(session, dco, catalog)
    files: dict[str, Any] = dict(write_plan_documents(order, Path(output_dir)))
    return {k: str(v) for k, v in files.items()}


write_documents_task = task(name="write-documents", retries=1, cache_policy=NO_CACHE)(write_documents)
