"""A hunt fanned out over a Prefect work pool: the ``hunt-fanout`` flow cuts the telemetry into shards
and starts one ``hunt-shard`` deployment run per shard, so every worker on every host takes shards;
results merge into one hunt run in the database (see ``tasks/conduct/fanout.py``).

Lost workers: a worker (or its host) that dies leaves its flow run "Running" for ever. Flow runs
send heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, default 180 s, at least 30 s); the automation
this flow installs (``ensure_zombie_automation``, Prefect's "detect zombie flows" recipe) marks a run
Crashed when its heartbeats stop, and the fan-out flow then starts that shard again for another
worker, up to ``max_attempts``. Recording a shard twice replaces it, so the hunt ends with exactly
the results of an uninterrupted one.
"""

from __future__ import annotations

import inspect
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from prefect.automations import AutomationCore

from dcoflow.core.errors import ConnectorError, StateError
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.models.hunt_summary import summary_markdown
from dcoflow.models.hunting import HuntSelection
from dcoflow.models.shards import Shard
from dcoflow.tasks.conduct import fanout

ZOMBIE_AUTOMATION = "dcoflow: crash {deployment} runs whose heartbeats stopped"
FLOW_RUN_END_EVENTS = ("Completed", "Failed", "Cancelled", "Crashed")


class FanoutParameters(BaseModel):
    """One hunt, its telemetry shared out over the work pool's workers."""

    dco: str = Field(description="DCO id or name; results become its evidence, its hunt plan selects the rules "
                                 "unless techniques or rule ids are given.")
    data: list[str] = Field(min_length=1, description="Telemetry files or folders, at the same path on every worker.")
    rules_path: list[str] = Field(default_factory=list,
                                  description="Sigma rule files/folders; default the content folder's sigma/rules.")
    techniques: list[str] = Field(default_factory=list, description="ATT&CK technique ids (T1003 selects T1003.*).")
    rule_ids: list[str] = Field(default_factory=list, description="Sigma rule ids.")
    shards: int = Field(8, ge=1, le=10_000, description="How many pieces to cut the telemetry into (whole files).")
    sample: int = Field(20, ge=0, le=10_000, description="Matching events kept per rule and shard as evidence.")
    workers_per_shard: int | None = Field(1, ge=1, le=256, description="Processes a worker host uses for its "
                                                                       "shard (empty: its cores).")
    hunt_key: str | None = Field(None, description="Names this hunt for re-runs; default from rules and data.")
    shard_deployment: str = Field("hunt-shard/hunt-shard", description="The deployment that hunts one shard.")
    max_attempts: int = Field(3, ge=1, le=20, description="Times a shard is started before the hunt fails.")
    poll_s: float = Field(2.0, gt=0, le=300, description="Seconds between looks at the shards' runs.")
    actor: str = Field("prefect", description="Who runs the hunt (audit log).")


class ShardParameters(BaseModel):
    """One shard of a fanned-out hunt (filled in by ``hunt-fanout``, not by people)."""

    dco_id: str = Field(description="The DCO the hunt records into.")
    hunt_key: str = Field(description="The fanned-out hunt's key.")
    shard: str = Field(description="The shard's key (a hash of its files).")
    files: list[str] = Field(description="Telemetry files of this shard.")
    rule_paths: list[str] = Field(description="Sigma rule files of the hunt.")
    rule_ids: list[str] = Field(description="Sigma rule ids of the hunt.")
    source: str = Field(description="The hunt's data source name.")
    sample: int = Field(20, ge=0, description="Matching events kept per rule as evidence.")
    workers: int | None = Field(1, ge=1, description="Processes used on the worker host.")
    actor: str = Field("prefect", description="Who runs the hunt (audit log).")


def zombie_automation(deployment: str, deployment_id: UUID, within_s: float) -> AutomationCore:
    """Prefect's zombie-flow recipe for the runs of one deployment: a running flow run not followed by a
    heartbeat (or its end) within ``within_s`` is Crashed.

    Scoped to the shard deployment's runs on purpose: flows called in-process (a parent flow, a subflow,
    ``dco demo``) send no heartbeats, and a server-wide rule would crash them."""
    from prefect.automations import AutomationCore, ChangeFlowRunState, EventTrigger, Posture
    from prefect.client.schemas.objects import StateType

    return AutomationCore(
        name=ZOMBIE_AUTOMATION.format(deployment=deployment),
        description="Marks a flow run Crashed when its heartbeats stop (its worker or host was lost), so that "
                    "dcoflow's fanned-out hunts start the shard again elsewhere.",
        trigger=EventTrigger(
            # Running too: a run lost before its first heartbeat reached the server would otherwise never be caught
            after={"prefect.flow-run.heartbeat", "prefect.flow-run.Running"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{e}" for e in FLOW_RUN_END_EVENTS)},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            match_related={"prefect.resource.role": "deployment",
                           "prefect.resource.id": f"prefect.deployment.{deployment_id}"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_s),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message="No heartbeat: the worker running this flow run was lost.")],
    )


def ensure_zombie_automation(deployment: str, within_s: float | None = None) -> None:
    """Create the zombie automation for ``deployment``'s runs unless the server has it already."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        target = client.read_deployment_by_name(deployment)
        name = ZOMBIE_AUTOMATION.format(deployment=deployment)
        if not client.read_automations_by_name(name):
            window = within_s or get_settings().zombie_after_s
            client.create_automation(zombie_automation(deployment, target.id, window))


def _start_shard(params: FanoutParameters, plan: fanout.FanoutPlan, shard: Shard, attempt: int) -> UUID:
    from prefect.deployments import run_deployment

    body = ShardParameters(dco_id=plan.dco_id, hunt_key=plan.hunt_key, shard=shard.key, files=shard.files,
                           rule_paths=plan.rule_paths, rule_ids=plan.rule_ids, source=plan.source,
                           sample=params.sample, workers=params.workers_per_shard, actor=params.actor)
    run = run_deployment(params.shard_deployment, parameters={"params": body.model_dump(mode="json")}, timeout=0,
                         flow_run_name=f"{shard.key}-try{attempt}",
                         idempotency_key=f"{plan.run_id}:{shard.key}:{attempt}")
    if inspect.isawaitable(run):  # only from async code, which this flow is not
        raise StateError("start shards from synchronous code", object=params.shard_deployment)
    return run.id


@flow(name="hunt-shard")
@described
def hunt_shard(params: Annotated[ShardParameters, Field(description="The shard to hunt.")]) -> dict[str, Any]:
    """Hunt one shard of a fanned-out hunt and record it into the hunt run."""
    return fanout.hunt_shard(params.dco_id, params.hunt_key, params.shard, params.files, params.rule_paths,
                             params.rule_ids, params.source, sample=params.sample, workers=params.workers,
                             max_member_bytes=get_settings().max_archive_member_bytes, actor=params.actor)


@flow(name="hunt-fanout")
@described
def hunt_fanout(params: Annotated[FanoutParameters, Field(description="What to hunt with, where, for which DCO.")]
                ) -> dict[str, Any]:
    """Hunt a DCO's telemetry in shards on every worker of the pool; one hunt run, merged in the database."""
    from prefect.client.orchestration import get_client

    logger = get_run_logger()
    ensure_zombie_automation(params.shard_deployment)
    rules_path = params.rules_path or [str(get_settings().content_path("sigma") / "rules")]
    selection = (HuntSelection(techniques=params.techniques, rule_ids=params.rule_ids)
                 if params.techniques or params.rule_ids else None)  # None: the DCO's hunt plan
    plan = fanout.plan_fanout(params.dco, params.data, rules_path, selection, shards=params.shards,
                              hunt_key=params.hunt_key)
    todo = {sh.key: sh for sh in plan.shards if sh.key not in plan.done}
    logger.info("%d rules over %d shards (%d already recorded)", len(plan.rule_ids), len(plan.shards),
                len(plan.done))
    attempts = dict.fromkeys(todo, 1)
    running = {key: _start_shard(params, plan, sh, 1) for key, sh in todo.items()}
    retried: list[str] = []
    with get_client(sync_client=True) as client:
        while running:
            time.sleep(params.poll_s)
            for key, run_id in list(running.items()):
                state = client.read_flow_run(run_id).state
                if state is None or not state.is_final():
                    continue
                if state.is_completed():
                    del running[key]
                    continue
                if attempts[key] >= params.max_attempts:
                    reason = f"shard {key} ended {state.name} {attempts[key]} times: {state.message or ''}".strip()
                    fanout.fail_fanout(plan.dco_id, plan.hunt_key, reason, actor=params.actor)
                    raise ConnectorError(reason, system="prefect", object=str(run_id), retryable=True)
                attempts[key] += 1
                retried.append(key)
                logger.warning("shard %s ended %s; starting it again (attempt %d)", key, state.name, attempts[key])
                running[key] = _start_shard(params, plan, todo[key], attempts[key])
    summary = fanout.finish_fanout(plan.dco_id, plan.hunt_key, actor=params.actor)
    create_markdown_artifact(summary_markdown(summary), description="Fanned-out hunt summary")
    return {"dco": plan.dco_id, "run_id": summary.run_id, "shards": len(plan.shards), "retried": retried,
            "hits": summary.hits, "events_read": summary.events_read, "rules": summary.rules_run}
