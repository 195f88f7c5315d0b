"""Hunt flows: ``hunt`` (ad hoc, or a DCO's hunt plan) and ``hunt_sweep`` (scheduled: every DCO in
state conducting). Thin: the parameter forms, Secret blocks, artifacts and the sweep's child runs; the hunt
itself is ``dcoflow.tasks.conduct.hunt.run_hunt``, which ``dco hunt`` calls too."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, Field, field_validator, model_validator

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.flows.secrets import load_secret
from dcoflow.models.hunt_summary import HuntSummary, summary_markdown
from dcoflow.models.hunting import HuntSelection
from dcoflow.tasks.conduct.hunt import conducting_hunt_dcos, run_hunt_task, sweep_window


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


# -- Prefect concerns: secrets, artifacts -------------------------------------------------------------


def connector_registry(params: HuntSource) -> ConnectorRegistry:
    """The connector registry from settings, with the SIEM credential of the named Secret block."""
    registry = ConnectorRegistry.from_settings(get_settings())
    if not params.secret_block:
        return registry
    secret = load_secret(params.secret_block)
    if params.source == DataSource.ELASTIC:
        return registry.with_secrets(elastic_api_key=secret)
    return registry.with_secrets(splunk_token=secret)


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
    selection = (HuntSelection(techniques=params.techniques, rule_ids=params.rule_ids)
                 if params.techniques or params.rule_ids else None)  # None: the DCO's hunt plan
    get_run_logger().info("hunting over %s", params.source)
    result = run_hunt_task(
        selection=selection, dco=params.dco, source=params.source.value, data=[Path(p) for p in params.data],
        rules_path=[Path(p) for p in params.rules_path], start=params.start, end=params.end, index=params.index,
        elastic_language=params.elastic_language, sample=params.sample, workers=params.workers,
        hunt_key=params.hunt_key, batch_size=params.batch_size, attack_source=params.attack_source,
        actor=params.actor, registry=connector_registry(params))
    publish_summary(result.summary, _artifact_key(f"hunt-{result.dco_id or 'adhoc'}"))
    return result.as_dict()


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
    start, end = sweep_window(params.lookback_hours)
    results = []
    for dco_id in conducting_hunt_dcos():
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
