"""Plan phase flows: ``plan_dco`` (threat profile + scope → plan, exports, artifact,
optional approval wait) and ``approve_dco`` (the human approval step)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from dcoflow.connectors.attack import load_catalog
from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.models.gates import require_approver
from dcoflow.models.operation import DcoSpec, DcoState
from dcoflow.tasks.lifecycle import change_state, emit_dco_event, operation_id, register_operation_task
from dcoflow.tasks.plan.planning import (
    export_plan_task,
    load_content_task,
    load_ctid_task,
    make_plan_task,
    plan_markdown,
    store_plan,
)
from dcoflow.tasks.reporting.documents.products import write_documents_task


class Approval(RunInput):
    """What the approver fills in on the paused run in the Prefect UI."""

    approve: bool = Field(description="Approve the plan (untick to send it back for re-planning).")
    approver: str = Field(description="Your name and organisation, e.g. 'J. Smith (OCIO)'.")
    comment: str | None = Field(None, description="Conditions or reasons.")


def _spec(operation: DcoSpec | None, operation_file: str | None) -> DcoSpec:
    if operation is not None:
        return operation
    if operation_file:
        return load_operation_file(operation_file)
    raise ValidationError("give either an operation (form) or an operation_file path", object="plan_dco")


@flow(name="plan-dco", log_prints=False)
@described
def plan_dco(
    operation: Annotated[DcoSpec | None, Field(description="The DCO, filled in here (or an operation file).")] = None,
    operation_file: Annotated[str | None, Field(description="Path to a YAML/JSON operation file.")] = None,
    attack_source: Annotated[
        str | None, Field(description="ATT&CK bundle, URL or TAXII collection; the configured one when empty.")] = None,
    output_dir: Annotated[str | None, Field(description="Where exports go; DCO_OUTPUT_DIR when empty.")] = None,
    actor: Annotated[str, Field(description="Who plans (audit log).")] = "prefect",
    wait_for_approval: Annotated[bool, Field(description="Pause after planning until an approver answers.")] = False,
    approval_timeout_s: Annotated[int, Field(description="How long to wait for approval, in seconds.")] = 24 * 3600,
) -> dict[str, Any]:
    """Plan a DCO: ATT&CK techniques from its threat profile, an emulation plan, a hunt plan, a summary.

    Give the DCO through the form (``operation``) or as a path to a YAML/JSON operation file.
    With ``wait_for_approval`` the run pauses until an approver answers in the UI (or `dco ops approve`).
    """
    logger = get_run_logger()
    spec = _spec(operation, operation_file)
    catalog = load_catalog(attack_source)
    ctid = load_ctid_task(spec)
    atomics, rules, content_warnings = load_content_task()
    # Plan before storing anything: a bad threat profile (unknown group…) fails here and leaves the
    # stored DCO and its previous plan as they were.
    try:
        plan = make_plan_task(operation_id(spec), spec, catalog, atomics, rules, ctid)
    except ValidationError as exc:  # name the operation file, as for any other bad field in it
        raise ValidationError(exc.reason, object=operation_file or exc.object, field=exc.field,
                              suggestions=exc.suggestions) from exc
    plan.selection.warnings.extend(content_warnings)
    dco_id = register_operation_task(spec, actor)
    with session_scope() as session:
        store_plan(session, plan, actor)
    emit_dco_event(dco_id, "phase.planned", {"summary": plan.summary})
    for warning in plan.warnings[:20]:
        logger.warning(warning)
    out = Path(output_dir) if output_dir else get_settings().output_dir
    paths = export_plan_task(plan, out)
    # The plan document the approvers read and sign (it says "not yet approved" until they do).
    paths += [Path(p) for p in write_documents_task(dco_id, str(out), attack_source, kinds=("plan",)).values()]
    create_markdown_artifact(plan_markdown(plan), key=f"plan-{dco_id}"[:100].lower(), description="DCO plan")
    create_table_artifact(
        [{"technique": t.attack_id, "name": t.name, "tactic": t.tactics[0], "why": "; ".join(t.reasons[:2])}
         for t in plan.selection.techniques.values()],
        key=f"plan-techniques-{dco_id}"[:100].lower(),
    )
    result: dict[str, Any] = {"dco": dco_id, "summary": plan.summary, "exports": [str(p) for p in paths]}
    if wait_for_approval:
        result["approval"] = _await_approval(dco_id, approval_timeout_s)
    return result


def approval_key(dco_id: str) -> str:
    return f"approval-{dco_id}"


def resume_waiting_approval(dco_id: str, approve: bool, approver: str, comment: str | None) -> str | None:
    """Answer a plan-dco run paused for this DCO's approval (the CLI's way of clicking Resume in the UI).

    Returns the resumed run's id, or None when no run is waiting (then the caller records the
    decision itself). The resumed run records the approval, so it is audited once.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
    for run in paused:
        details = run.state.state_details if run.state else None
        if details is not None and details.pause_key == approval_key(dco_id):
            resume_flow_run(run.id, run_input={"approve": approve, "approver": approver, "comment": comment})
            return str(run.id)
    return None


def _await_approval(dco_id: str, timeout_s: int) -> dict[str, Any]:
    logger = get_run_logger()
    logger.info("Waiting for approval of %s: resume this run in the UI or run `dco ops approve %s`", dco_id, dco_id)
    answer = pause_flow_run(wait_for_input=Approval.with_initial_data(approve=True, approver=""), timeout=timeout_s,
                            key=approval_key(dco_id))
    approver = require_approver(answer.approver)  # a blank approver is refused, never recorded as someone
    if answer.approve:
        return change_state(dco_id, DcoState.APPROVED, approver, answer.comment)
    return change_state(dco_id, DcoState.PLANNED, approver, answer.comment or "sent back")


@flow(name="approve-dco")
@described
def approve_dco(
    dco: Annotated[str, Field(description="DCO id or name.")],
    approver: Annotated[str, Field(description="Approver's name and organisation, e.g. 'J. Smith (OCIO)'.")],
    comment: Annotated[str | None, Field(description="Conditions or reasons.")] = None,
    approve: Annotated[bool, Field(description="Approve; untick to send the plan back.")] = True,
) -> dict[str, Any]:
    """Record an approval decision for a planned DCO (the CLI and automations use this)."""
    target = DcoState.APPROVED if approve else DcoState.PLANNED
    return change_state(dco, target, approver, comment or ("approved" if approve else "sent back"))
