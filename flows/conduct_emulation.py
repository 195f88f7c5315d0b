"""Flow ``conduct-emulation``: run a DCO's emulation plan step by step.

Steps run in ``order`` once the steps they depend on are done. Before each step the
deconfliction contacts are told; then the step runs (local lab host, Caldera, or by hand), and
each defensive tool's outcome is recorded — from ``manual_outcomes`` when given (demo,
automation), else by pausing the flow run for typed input (the Prefect UI shows a form; the CLI
equivalent is ``dco emulate record``). The step status in the database is the source of truth:
a re-run (after a crash or a refused step) skips done steps and never re-executes a step that
already ran — it only waits for that step's outcomes.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field

from dcoflow.connectors.attack import load_catalog
from dcoflow.connectors.content.atomics import AtomicsIndex, load_atomics
from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.errors import ConfigError, DcoError
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.flows.secrets import load_secret
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.emulation import Outcome, OutcomeInput, Severity
from dcoflow.models.plan import EmulationStep, StepStatus
from dcoflow.tasks.conduct.deconfliction import wait_for_acknowledgement
from dcoflow.tasks.conduct.emulation.actions import (
    announce_window_task,
    deconfliction_acknowledged,
    preview_plan,
    record_outcomes_task,
    require_deconfliction_ack,
    run_step_task,
    skip_step_task,
    start_live_run,
    step_status,
)
from dcoflow.tasks.conduct.emulation.steps import CONNECTORS, normalise_connector, ready


class ToolOutcome(BaseModel):
    tool: str = Field(description="Defensive tool, e.g. EDR, SIEM, Sysmon.")
    outcome: Outcome = Field(description="prevented, alerted, logged or none (not detected).")
    severity: Severity | None = None
    notes: str | None = None


class ManualOutcomeForm(RunInput):
    """What the operator fills in when the flow pauses on a step."""

    operator: str = Field(description="Who performed/observed the step.")
    outcomes: list[ToolOutcome] = Field(description="One verdict per defensive tool.")
    skip: bool = Field(False, description="Tick to skip the step (it did not run).")
    reason: str | None = Field(None, description="Why the step is skipped (kept in the audit log).")


def _outcome_dicts(raw: Any, operator: str) -> list[dict[str, Any]]:
    items = raw if isinstance(raw, list) else [raw]
    out: list[dict[str, Any]] = []
    for item in items:
        data = item.model_dump(mode="json") if isinstance(item, BaseModel) else dict(item)
        data.setdefault("operator", operator)
        out.append(data)
    return out


def _answer_for(step: EmulationStep, manual_outcomes: dict[str, Any]) -> Any:
    """The first answer keyed by the step's id, order, technique, parent technique, ``tactic:<tactic>``,
    else ``default`` (so answers can be rules: the demo's outcomes.yaml)."""
    parent = step.technique_id.split(".")[0]
    for key in (step.id, str(step.order), step.technique_id, parent, f"tactic:{step.tactic}", "default"):
        if key in manual_outcomes:
            return manual_outcomes[key]
    return None


@flow(name="conduct-emulation", log_prints=True)
@described
def conduct_emulation(
    dco: Annotated[str, Field(description="DCO id or name.")],
    connector_default: Annotated[str, Field(
        description="Connector for steps the plan left manual: manual, local or caldera.")] = "manual",
    dry_run: Annotated[bool, Field(description="Show the exact commands without running anything.")] = True,
    manual_outcomes: Annotated[dict[str, Any] | None, Field(
        description="Outcome answers by step id, order, technique, parent technique or 'tactic:<tactic>', "
        "else 'default': "
        "{tool, outcome, severity?, notes?} or a list of them.")] = None,
    pause_for_input: Annotated[bool, Field(description="Pause for the operator's outcomes on open steps.")] = True,
    pause_timeout_s: Annotated[int, Field(description="How long to wait for an operator, in seconds.")] = 3600,
    operator: Annotated[str, Field(description="Who runs the steps (recorded with each outcome).")] = "operator",
    webhook_url: Annotated[str | None, Field(
        description="Deconfliction webhook; DCO_WEBHOOK_URL when empty.")] = None,
    attack_source: Annotated[str | None, Field(
        description="ATT&CK bundle, URL or TAXII; the configured one when empty.")] = None,
    ack_timeout_s: Annotated[int, Field(
        description="When the rules of engagement require it, how long to wait for the monitoring side to "
                    "acknowledge the deconfliction notice, in seconds (0: check once).")] = 0,
    caldera_secret_block: Annotated[str | None, Field(
        description="Prefect Secret block holding the Caldera API key; DCO_CALDERA_API_KEY when empty.")] = None,
) -> dict[str, Any]:
    """Run the plan's steps of DCO ``dco``.

    connector_default: used for steps whose connector is ``manual`` — manual, local or caldera.
    dry_run: show, per step, the exact commands (arguments filled in and quoted), executor, host and the rules of
    engagement's verdict, in any state, recording nothing. A live run needs the DCO approved and inside its window.
    manual_outcomes: answers keyed by step id, order number, technique id, parent technique id or
    ``tactic:<tactic>`` (else ``default``); each a tool outcome
    ({"tool", "outcome", "severity"?, "notes"?}) or a list of them. Steps without an answer pause
    for typed input when ``pause_for_input``; otherwise they stay running, awaiting ``dco emulate record``.
    """
    log = get_run_logger()
    default = normalise_connector(connector_default)
    if default not in CONNECTORS:
        raise ConfigError(f"unknown connector {connector_default!r}", object="connector_default",
                          hint="one of " + ", ".join(CONNECTORS))
    settings = get_settings()
    if webhook_url:  # the form's webhook wins over DCO_WEBHOOK_URL
        settings = settings.model_copy(update={"webhook_url": webhook_url})
    registry = ConnectorRegistry.from_settings(settings).with_secrets(
        caldera_api_key=load_secret(caldera_secret_block) if caldera_secret_block else None)
    answers = manual_outcomes or {}
    catalog: Catalog | None = None
    try:
        catalog = load_catalog(attack_source, settings=settings)
    except DcoError as exc:
        log.warning("no ATT&CK catalog (%s): outcomes reference fallback attack-patterns", exc.message)
    atomics: AtomicsIndex | None = None
    try:
        atomics = load_atomics(settings.content_path("atomics"))
    except DcoError as exc:
        log.info("no atomics index (%s): atomic steps count as needing elevation", exc.message)
    if dry_run:  # any state, nothing recorded: the exact commands and the rules of engagement's verdict
        preview = preview_plan(dco, connector_default=default, atomics=atomics, catalog=catalog, registry=registry)
        return {k: preview[k] for k in ("dco", "dry_run", "steps", "status_counts")}
    dco_id, steps = start_live_run(dco)  # the conduct gate, before any notice goes out or anything runs
    # the window notice (hosts, window, marker) goes out before any live step, and is waited on
    # for a bounded time when the rules of engagement ask for an acknowledgement
    announce_window_task(dco_id, actor=operator, registry=registry)
    if not wait_for_acknowledgement(lambda: deconfliction_acknowledged(dco_id), ack_timeout_s):
        require_deconfliction_ack(dco_id)
    results: list[dict[str, Any]] = []
    statuses = {s.id: s.status for s in steps}
    for step in steps:
        entry: dict[str, Any] = {"step": step.id, "order": step.order, "technique": step.technique_id}
        if statuses[step.id] in (StepStatus.DONE, StepStatus.SKIPPED):
            results.append({**entry, "status": statuses[step.id].value, "message": "already settled"})
            continue
        if not ready(step, statuses):
            results.append({**entry, "status": statuses[step.id].value, "message": "waiting for " +
                            ", ".join(d for d in step.depends_on if statuses.get(d) != StepStatus.DONE)})
            continue
        connector = normalise_connector(step.connector) if step.connector not in ("", "manual") else default
        try:
            entry.update(run_step_task(dco_id, step.id, connector=connector, actor=operator, atomics=atomics,
                                       catalog=catalog, registry=registry))
        except DcoError as exc:
            statuses[step.id] = step_status(dco_id, step.id)
            results.append({**entry, "status": statuses[step.id].value, "error": exc.message})
            log.warning("step %s: %s", step.order, exc.message)
            continue
        if entry.get("execution") in ("failed", "timed-out"):
            statuses[step.id] = StepStatus.FAILED
            results.append({**entry, "status": StepStatus.FAILED.value})
            continue
        answer = _answer_for(step, answers)
        if answer is None and pause_for_input:
            form = pause_flow_run(wait_for_input=ManualOutcomeForm.with_initial_data(
                description=f"Step {step.order}: {step.technique_id} {step.procedure_name}", operator=operator,
                outcomes=[]), timeout=pause_timeout_s, key=f"step-{step.id}")
            if form.skip:
                entry.update(skip_step_task(dco_id, step.id, by=form.operator, reason=form.reason))
                statuses[step.id] = StepStatus.SKIPPED
                results.append(entry)
                continue
            answer = [o.model_dump(mode="json") for o in form.outcomes]
            op_name = form.operator
        else:
            op_name = operator
        if answer is None:
            statuses[step.id] = StepStatus.RUNNING
            results.append({**entry, "status": "running", "message": "awaiting outcomes (dco emulate record)"})
            continue
        outcomes = _outcome_dicts(answer, op_name)
        try:
            for item in outcomes:
                OutcomeInput.parse(step.id, item)  # a bad answer leaves the step open, not the task failed
        except DcoError as exc:
            statuses[step.id] = StepStatus.RUNNING
            results.append({**entry, "status": "running", "error": exc.message})
            log.warning("step %s: %s", step.order, exc.message)
            continue
        recorded = record_outcomes_task(dco_id, step.id, outcomes, catalog=catalog)
        statuses[step.id] = StepStatus.DONE
        results.append({**entry, "status": "done",
                        "outcomes": [f"{r['tool']}={r['outcome']} v{r['version']}" for r in recorded]})
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s.value] = counts.get(s.value, 0) + 1
    return {"dco": dco_id, "dry_run": dry_run, "steps": results, "status_counts": counts}
