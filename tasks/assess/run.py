"""The assessment's user actions, one function each: `dco assess …` and the ``assess-dco`` flow call these.

Each opens its own session, loads the DCO once and hands the work to ``scoring``/``outputs`` (the rules and
the files) and the score log (``dcoflow.models.repository.assessment``). Settings are the caller's: the
default targets (``scoring.configured_targets``) and the output folder come in as values.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from dcoflow.connectors.attack import ensure_catalog
from dcoflow.core.db import session_scope
from dcoflow.core.errors import NotFoundError
from dcoflow.models.assessment import DEFAULT_HALF_LIFE_DAYS, Targets
from dcoflow.models.attack import Catalog
from dcoflow.models.repository import assessment as assessment_log
from dcoflow.models.repository.operation import get_operation, list_operations
from dcoflow.tasks.assess import outputs, scoring
from dcoflow.tasks.retry import retry_when_retryable


def assess(
    dco: str | None,
    *,
    all_dcos: bool = False,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    default_targets: Targets | None = None,
    output_dir: Path | None = None,
    attack_source: str | None = None,
    catalog: Catalog | None = None,
) -> dict[str, dict[str, Any]]:
    """Assess a DCO (or every DCO) now and, with ``output_dir``, publish its table, charts, layers and the
    trend across DCOs there. Returns per DCO id its summary, id report, follow-up gaps and files."""
    catalog = ensure_catalog(catalog, attack_source)
    results: dict[str, dict[str, Any]] = {}
    with session_scope() as session:
        if all_dcos:
            ids = [op.id for op in list_operations(session)]
        else:
            if dco is None:
                raise NotFoundError("no DCO named", object="dco", hint="give a DCO id or name, or all_dcos")
            ids = [get_operation(session, dco).id]
        for dco_id in ids:
            result = scoring.assess_dco(session, dco_id, catalog, half_life_days=half_life_days,
                                        default_targets=default_targets)
            results[dco_id] = {
                "dco_id": result.dco_id, "run_id": result.run_id, "assessed_at": result.assessed_at.isoformat(),
                **result.summary(), "id_report": [dataclasses.asdict(n) for n in result.id_report],
                "id_lines": [*scoring.id_report_lines(result.id_report), *filter(None, [result.out_of_scope_line()])],
                "evidence_report": result.evidence_report,
                "follow_up_gaps": scoring.gaps_for_follow_up(result, catalog), "files": {},
            }
    if output_dir is not None:  # the scores are committed first: files can be written again from them
        with session_scope() as session:
            for dco_id in ids:
                files = outputs.publish(session, dco_id, catalog, output_dir)
                files.update({k: str(v) for k, v in outputs.publish_trend(session, output_dir).items()})
                results[dco_id]["files"] = files
    return results


assess_task = task(name="assess-dco", cache_policy=NO_CACHE, retry_condition_fn=retry_when_retryable,
                   retries=1)(assess)


def coverage(dco: str, *, attack_source: str | None = None, catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """The newest assessment's coverage table (JSON records, gaps first by rank): `dco assess gaps|scores`."""
    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        op = get_operation(session, dco)
        found = assessment_log.latest_scores(session, op.id)
        if not found:
            raise NotFoundError("no assessment yet", object=op.id, hint=f"run `dco assess run {op.id}` first")
        return outputs.coverage_rows(found, catalog)


def technique_history(dco: str, technique_id: str) -> list[dict[str, Any]]:
    """One technique's dated score log with its explanation: `dco assess scores --technique`."""
    with session_scope() as session:
        history = assessment_log.score_history(session, get_operation(session, dco).id, technique_id.upper())
        return [{"assessed_at": h.assessed_at.isoformat(), "visibility": h.visibility, "detection": h.detection,
                 "explanation": h.explanation} for h in history]


def layer(dco: str, kind: str, *, attack_source: str | None = None,
          catalog: Catalog | None = None) -> dict[str, Any]:
    """A Navigator layer of the newest assessment: `dco assess layer`."""
    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        return outputs.build_layer(session, dco, catalog, kind)


def trend(svg: Path | None = None, csv: Path | None = None) -> list[assessment_log.TrendPoint]:
    """Every assessment run across DCOs; with ``svg``/``csv`` also the marked chart and table: `dco assess trend`."""
    with session_scope() as session:
        points = assessment_log.trend(session)
        marking = outputs.trend_marking(session, {p.dco_id for p in points})
    if svg is not None or csv is not None:
        from dcoflow.models.marking import mark_svg
        from dcoflow.tasks.assess.frames import trend_csv_frame, trend_frame

        frame = trend_frame(points)
        if svg is not None:
            svg.parent.mkdir(parents=True, exist_ok=True)
            svg.write_text(mark_svg(outputs.trend_svg(frame), marking), encoding="utf-8")
        if csv is not None:
            outputs.write_csv(trend_csv_frame(frame), csv, marking)
    return points


def import_dettect(file: Path, dco: str, *, attack_source: str | None = None,
                   catalog: Catalog | None = None) -> dict[str, Any]:
    """Seed a DCO's evidence from a DeTT&CT administration file: `dco assess import-dettect`."""
    from dcoflow.connectors.content.dettect import read_dettect
    from dcoflow.tasks.assess.evidence import store_imported

    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        dco_id = get_operation(session, dco).id
        result = read_dettect(file, catalog=catalog, dco_id=dco_id)
        stored = store_imported(session, dco_id, result.evidence)
    return {"file": str(file), "file_type": result.file_type, "dco_id": dco_id, "evidence": stored,
            "report": result.report.summary(), "bad": [dataclasses.asdict(b) for b in result.report.bad]}


def export_dettect(dco: str, out: Path, *, attack_source: str | None = None, catalog: Catalog | None = None) -> Path:
    """The DCO's scores as a DeTT&CT technique administration file: `dco assess export-dettect`."""
    from dcoflow.tasks.assess.dettect_export import export_dettect as write

    catalog = ensure_catalog(catalog, attack_source)
    with session_scope() as session:
        return write(session, dco, catalog, out)

