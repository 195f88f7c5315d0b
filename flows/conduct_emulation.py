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
from dcoflow.connectors.caldera import CalderaClient
from dcoflow.connectors.content.atomics import AtomicsIndex, load_atomics
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ConfigError, DcoError
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.emulation import Outcome, OutcomeInput, Severity
from dcoflow.models.plan import EmulationStep, StepStatus
from dcoflow.models.repository.emulation import latest_execution, load_steps
from dcoflow.models.repository.operation import get_operation
from dcoflow.tasks.conduct.deconfliction import require_acknowledged, wait_for_acknowledgement
from dcoflow.tasks.conduct.emulation.outcomes import record_outcome_task
from dcoflow.tasks.conduct.emulation.steps import (
    CONNECTORS,
    acknowledged_in_session,
    check_conduct,
    deconflict_step_task,
    execute_step_task,
    normalise_connector,
    notify_window_task,
    preview_emulation,
    ready,
)


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
    answers = manual_outcomes or {}
    catalog: Catalog | None = None
    try:
        catalog = load_catalog(attack_source)
    except DcoError as exc:
        log.warning("no ATT&CK catalog (%s): outcomes reference fallback attack-patterns", exc.message)
    atomics: AtomicsIndex | None = None
    try:
        atomics = load_atomics(settings.content_path("atomics"))
    except DcoError as exc:
        log.info("no atomics index (%s): atomic steps count as needing elevation", exc.message)
    caldera = (CalderaClient(settings.caldera_url, settings.caldera_api_key.get_secret_value())
               if settings.caldera_url and settings.caldera_api_key else None)
    hook_url = webhook_url or settings.webhook_url
    hook_secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if dry_run:  # any state, nothing recorded: the exact commands and the rules of engagement's verdict
        with session_scope() as session:
            dco_id = get_operation(session, dco).id
            previews = [p.as_dict() for p in preview_emulation(session, dco_id, connector_default=default,
                                                                atomics=atomics, catalog=catalog)]
        if caldera is not None:
            caldera.close()
        verdicts: dict[str, int] = {}
        for p in previews:
            verdicts[p["verdict"]] = verdicts.get(p["verdict"], 0) + 1
        return {"dco": dco_id, "dry_run": True, "steps": previews, "status_counts": verdicts}
    try:
        with session_scope() as session:
            op = get_operation(session, dco)
            check_conduct(op, "emulation")  # before any notice goes out or anything runs
            dco_id = op.id
            steps = load_steps(session, dco_id)
        # the window notice (hosts, window, marker) goes out before any live step, and is waited on
        # for a bounded time when the rules of engagement ask for an acknowledgement
        notify_window_task(dco_id, hook_url, hook_secret, operator)
        if not wait_for_acknowledgement(lambda: acknowledged_in_session(dco_id), ack_timeout_s):
            with session_scope() as session:
                require_acknowledged(session, get_operation(session, dco_id))
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
                with session_scope() as session:
                    already_ran = latest_execution(session, dco_id, step.id) is not None
                if statuses[step.id] == StepStatus.PENDING or not already_ran:
                    deconflict_step_task(dco_id, step, hook_url, hook_secret)
                    run = execute_step_task(dco_id, step, connector, False, atomics,
                                            caldera=caldera if connector == "caldera" else None, catalog=catalog,
                                            actor=operator)
                    entry.update(run)
                else:
                    entry.update({"connector": connector, "message": "ran before; awaiting outcomes"})
            except DcoError as exc:
                with session_scope() as session:
                    statuses[step.id] = _status(session, step.id)
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
                    with session_scope() as session:
                        row = session.get(EmulationStep, step.id)
                        if row is not None:
                            row.status = StepStatus.SKIPPED
                            session.add(row)
                    statuses[step.id] = StepStatus.SKIPPED
                    results.append({**entry, "status": "skipped", "message": f"skipped by {form.operator}"})
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
                    OutcomeInput.parse(step.id, item)  # check every answer before anything is written
            except DcoError as exc:
                statuses[step.id] = StepStatus.RUNNING
                results.append({**entry, "status": "running", "error": exc.message})
                log.warning("step %s: %s", step.order, exc.message)
                continue
            recorded = record_outcome_task(dco_id, step, outcomes, catalog=catalog)
            statuses[step.id] = StepStatus.DONE
            results.append({**entry, "status": "done", "outcomes": recorded})
    finally:  # any error, not only a DcoError, must not leak the Caldera connection
        if caldera is not None:
            caldera.close()
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s.value] = counts.get(s.value, 0) + 1
    return {"dco": dco_id, "dry_run": dry_run, "steps": results, "status_counts": counts}


def _status(session: Any, step_id: str) -> StepStatus:
    row = session.get(EmulationStep, step_id)
    return row.status if row is not None else StepStatus.FAILED
