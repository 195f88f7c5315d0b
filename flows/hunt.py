"""Hunt flows: ``hunt`` (ad hoc, or a DCO's hunt plan) and ``hunt_sweep`` (scheduled: every DCO in
state conducting). Thin: parameters, then the order of tasks; the work is in ``dcoflow.tasks.conduct``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlmodel import select

from dcoflow.connectors.attack import load_catalog
from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.flows.secrets import load_secret
from dcoflow.models.gates import require_conduct
from dcoflow.models.hunt_run import derive_hunt_key
from dcoflow.models.hunting import HuntOutcome, HuntSelection, RuleInfo, products_for
from dcoflow.models.operation import DcoState
from dcoflow.models.plan import HuntHypothesis
from dcoflow.models.repository.operation import get_operation, list_operations
from dcoflow.tasks.conduct.hunt_record import (
    HuntSummary,
    hunt_summary,
    run_hunt_batches,
    summarize_outcome,
    summary_markdown,
)


class DataSource(StrEnum):
    LOCAL = "local"
    ELASTIC = "elastic"
    SPLUNK = "splunk"


class HuntSource(BaseModel):
    """Where the events are (shared by the ad-hoc hunt and the sweep)."""

    source: DataSource = Field(DataSource.LOCAL, description="local telemetry files, or the configured Elastic/Splunk.")
    data: list[str] = Field(default_factory=list, description="Local telemetry files or folders (source=local).")
    index: str | None = Field(None, description="SIEM index; default DCO_ELASTIC_INDEX / DCO_SPLUNK_INDEX.")
    elastic_language: Literal["lucene", "eql"] = Field("lucene", description="Elastic query language.")
    secret_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the SIEM API key/token (else the settings).")
    rules_path: list[str] = Field(
        default_factory=list, description="Sigma rule files/folders; default the content folder's sigma/rules.")
    sample: int = Field(20, ge=0, le=10_000, description="Matching events kept per rule as evidence.")
    workers: int | None = Field(None, ge=1, le=256, description="Processes sharing local telemetry files "
                                                                "(source=local); default the cores available.")
    attack_source: str | None = Field(None, description="ATT&CK bundle/URL/TAXII; default from settings.")

    @model_validator(mode="after")
    def _local_needs_data(self) -> HuntSource:
        if self.source == DataSource.LOCAL and not self.data:
            raise ValueError("source=local needs at least one telemetry path in 'data'")
        return self

    @field_validator("data")
    @classmethod
    def _no_blank_path(cls, data: list[str]) -> list[str]:
        # An unset "{{ $DCO_TELEMETRY_DIR }}" renders as "": as a path that is the worker's current folder.
        if any(not p.strip() for p in data):
            raise ValueError("an empty telemetry path would read the current folder; name the files or set "
                             "DCO_TELEMETRY_DIR")
        return data


class HuntParameters(HuntSource):
    """One hunt, as filled in on the Prefect UI form."""

    dco: str | None = Field(None, description="DCO id or name: results become its evidence; without techniques "
                                              "or rule ids its hunt plan selects the rules.")
    techniques: list[str] = Field(default_factory=list, description="ATT&CK technique ids (T1003 selects T1003.*).")
    rule_ids: list[str] = Field(default_factory=list, description="Sigma rule ids.")
    start: datetime | None = Field(None, description="Window start (SIEM); default the DCO window or 24 h ago.")
    end: datetime | None = Field(None, description="Window end (SIEM); default now.")
    hunt_key: str | None = Field(None, description="Names this hunt for re-runs; default from rules+data+window.")
    batch_size: int = Field(0, ge=0, description="Rules per recorded batch (0: SIEM 50, local files all at once).")
    actor: str = Field("prefect", description="Who runs the hunt (audit log).")


class SweepParameters(HuntSource):
    """The scheduled sweep: every conducting DCO's hunt plan over the last ``lookback_hours``."""

    data: list[str] = Field(default_factory=list, description="Local telemetry files or folders (source=local); "
                                                              "default DCO_TELEMETRY_DIR, which must then be set.")
    lookback_hours: int = Field(24, gt=0, description="Hunt window length, ending at the current hour.")
    actor: str = Field("hunt-sweep", description="Who runs the sweep (audit log).")

    @model_validator(mode="after")
    def _local_needs_data(self) -> SweepParameters:
        return self  # empty data: DCO_TELEMETRY_DIR, checked when the sweep runs


# -- tasks (thin wrappers over plain functions) ------------------------------------------------------------


def plan_selection(dco_id: str) -> HuntSelection:
    """A DCO's hunt plan as a selection: its planned Sigma rule ids, else its hypotheses' techniques, scoped to
    the Sigma products of its platforms (a Windows-only DCO does not run Linux rules)."""
    with session_scope() as s:
        products = products_for(get_operation(s, dco_id).dco.scope.platforms)
        rows = list(s.exec(select(HuntHypothesis).where(HuntHypothesis.dco_id == dco_id)))
    rule_ids = list(dict.fromkeys(str(r["rule_id"]) for h in rows for r in h.sigma_rules if r.get("rule_id")))
    if rule_ids:
        return HuntSelection(rule_ids=rule_ids, products=products)
    techniques = list(dict.fromkeys(h.technique_id for h in rows))
    if not techniques:
        raise ValidationError("the DCO has no hunt plan and no techniques or rule ids were given", object=dco_id,
                              hint="plan the DCO first (`dco plan`) or pass techniques / rule ids")
    return HuntSelection(techniques=techniques, products=products)


@task(name="select-rules", cache_policy=NO_CACHE)
def select_rules(rules_path: Sequence[str], selection: HuntSelection) -> list[RuleInfo]:
    paths = [Path(p) for p in rules_path] or [get_settings().content_path("sigma") / "rules"]
    rules = load_rule_index(paths).select(selection)
    if not rules:
        raise ValidationError("no Sigma rule matches the selection", object="hunt",
                              details={"techniques": selection.techniques, "rule_ids": selection.rule_ids[:20]})
    return rules


def _secret(name: str | None) -> str | None:
    return load_secret(name) if name else None


def make_engine(params: HuntSource, start: datetime, end: datetime) -> tuple[Callable[[list[RuleInfo]], HuntOutcome],
                                                                              str]:
    """The hunt engine for the data source, as ``rules → outcome``, and a name of the source."""
    settings = get_settings()
    if params.source == DataSource.LOCAL:
        from dcoflow.tasks.conduct.local_hunt import run_local_hunt

        data = [Path(p) for p in params.data]
        def local(batch: list[RuleInfo]) -> HuntOutcome:
            return run_local_hunt([Path(r.path) for r in batch], data, sample=params.sample, workers=params.workers)

        return local, ", ".join(params.data)
    from dcoflow.tasks.conduct.siem_hunt import run_siem_hunt

    client: Any
    if params.source == DataSource.ELASTIC:
        from dcoflow.connectors.siem.elastic import ElasticClient

        client = ElasticClient.from_settings(settings, api_key=_secret(params.secret_block),
                                             eql_max_requests=settings.elastic_eql_max_requests)
        index = params.index or settings.elastic_index
        mapping = settings.elastic_mapping_for(index)
        backend: Literal["elastic-lucene", "elastic-eql", "splunk"] = (
            "elastic-eql" if params.elastic_language == "eql" else "elastic-lucene")
    else:
        from dcoflow.connectors.siem.splunk import SplunkClient

        client = SplunkClient.from_settings(settings, token=_secret(params.secret_block))
        index = params.index or settings.splunk_index
        backend = "splunk"
        mapping = "sysmon"  # Splunk's Windows add-ons keep the raw event field names
    name = f"{client.system}:{client.base_url}/{index}"
    slice_s = settings.siem_slice_hours * 3600 or None
    return (lambda batch: run_siem_hunt(batch, client, backend=backend, index=index, start=start, end=end,
                                        sample=params.sample, mapping=mapping, concurrency=settings.siem_concurrency,
                                        slice_s=slice_s, rate_limit_budget_s=settings.siem_rate_limit_budget_s)), name


@task(name="hunt-and-record", cache_policy=NO_CACHE)
def hunt_and_record(params: HuntParameters, dco_id: str | None, rules: list[RuleInfo], start: datetime,
                    end: datetime) -> HuntSummary:
    """Run the engine (in batches when recording) and record the evidence; returns the summary."""
    engine, source = make_engine(params, start, end)
    if dco_id is None:
        return summarize_outcome(engine(rules))
    catalog = load_catalog(params.attack_source)
    key = params.hunt_key or derive_hunt_key([r.rule_id for r in rules], source,
                                             start if params.source != DataSource.LOCAL else None,
                                             end if params.source != DataSource.LOCAL else None)
    batch = params.batch_size or (len(rules) if params.source == DataSource.LOCAL else 50)
    run = run_hunt_batches(dco_id, rules, engine, hunt_key=key, source=source, catalog=catalog, batch_size=batch,
                           start=start, end=end, actor=params.actor)
    return hunt_summary(run)


def publish_summary(summary: HuntSummary, key: str) -> None:
    create_markdown_artifact(summary_markdown(summary), key=key, description="Hunt summary")
    create_table_artifact(
        [{"rule": r["rule_id"], "title": r["title"], "techniques": ", ".join(r["technique_ids"]), "hits": r["hits"]}
         for r in summary.by_rule if r["hits"]] or [{"rule": "-", "title": "no hits", "techniques": "", "hits": 0}],
        key=f"{key}-rules", description="Hits by rule",
    )


def _artifact_key(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:90] or "hunt"


# -- flows ------------------------------------------------------------------------------------------


@flow(name="hunt")
@described
def hunt(params: Annotated[HuntParameters, Field(description="What to hunt with, where, and for which DCO.")]
         ) -> dict[str, Any]:
    """Hunt with Sigma rules over local telemetry or a SIEM; with a DCO, record the evidence and use its plan."""
    logger = get_run_logger()
    dco_id: str | None = None
    start, end = params.start, params.end
    if params.dco:
        with session_scope() as s:
            op = get_operation(s, params.dco)
            require_conduct(op.id, op.state, op.dco.window, datetime.now(UTC), "hunt")  # before any query runs
            dco_id, window = op.id, op.dco.window
        if window is not None and start is None and end is None:
            start, end = window.start, window.end
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=24)
    if params.techniques or params.rule_ids:
        selection = HuntSelection(techniques=params.techniques, rule_ids=params.rule_ids)
    elif dco_id is not None:
        selection = plan_selection(dco_id)
    else:
        raise ValidationError("give techniques, rule ids or a DCO with a hunt plan", object="hunt")
    rules = select_rules(params.rules_path, selection)
    logger.info("hunting with %d rules over %s", len(rules), params.source)
    summary = hunt_and_record(params, dco_id, rules, start, end)
    publish_summary(summary, _artifact_key(f"hunt-{dco_id or 'adhoc'}"))
    return {"dco": dco_id, "run_id": summary.run_id, "status": summary.status, "rules": summary.rules_run,
            "hits": summary.hits, "by_technique": summary.by_technique, "gaps": len(summary.gaps),
            "skipped": len(summary.skipped), "events_read": summary.events_read}


@flow(name="hunt-sweep")
@described
def hunt_sweep(params: Annotated[SweepParameters, Field(description="Where the telemetry is and how far back.")]
               ) -> list[dict[str, Any]]:
    """Run the hunt plan of every hunting DCO in state conducting over the last ``lookback_hours``.

    The window ends at the current full hour, so a re-run in the same hour resumes the same runs.
    """
    logger = get_run_logger()
    if params.source == DataSource.LOCAL and not params.data:
        params = params.model_copy(update={"data": [str(p) for p in get_settings().telemetry_paths()]})
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=params.lookback_hours)
    with session_scope() as s:
        dcos = [op.id for op in list_operations(s, [DcoState.CONDUCTING]) if op.type.hunts]
    results = []
    for dco_id in dcos:
        try:
            hunt_params = HuntParameters(**params.model_dump(exclude={"lookback_hours"}), dco=dco_id, start=start,
                                         end=end)
            results.append(hunt(hunt_params))
        except Exception as exc:  # one DCO's failure must not stop the others; its run is marked failed
            logger.error("hunt of %s failed: %s", dco_id, exc)
            results.append({"dco": dco_id, "status": "failed", "error": str(exc)})
    return results


def sweep_deployment(cron: str = "0 * * * *", **parameters: Any) -> Any:
    """A deployment running ``hunt_sweep`` on ``cron`` (hourly by default), for ``serve(...)`` or prefect.yaml."""
    return hunt_sweep.to_deployment(name="hunt-sweep", cron=cron, parameters={"params": parameters})
