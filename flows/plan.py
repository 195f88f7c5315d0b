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

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.errors import ValidationError
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.models.operation import DcoSpec
from dcoflow.tasks.lifecycle import decide_approval
from dcoflow.tasks.plan.planning import plan_markdown
from dcoflow.tasks.plan.use_cases import plan_dco_task


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
    settings = get_settings()
    out = Path(output_dir) if output_dir else settings.output_dir
    planned = plan_dco_task(spec, actor, settings=settings, output_dir=out, attack_source=attack_source,
                            source=operation_file)
    plan, dco_id = planned.plan, planned.dco_id
    for warning in plan.warnings[:20]:
        logger.warning(warning)
    create_markdown_artifact(plan_markdown(plan), key=f"plan-{dco_id}"[:100].lower(), description="DCO plan")
    create_table_artifact(
        [{"technique": t.attack_id, "name": t.name, "tactic": t.tactics[0], "why": "; ".join(t.reasons[:2])}
         for t in plan.selection.techniques.values()],
        key=f"plan-techniques-{dco_id}"[:100].lower(),
    )
    result = planned.as_dict()
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
    # a blank approver is refused, never recorded as someone
    return decide_approval(dco_id, answer.approver, approve=answer.approve, comment=answer.comment)


@flow(name="approve-dco")
@described
def approve_dco(
    dco: Annotated[str, Field(description="DCO id or name.")],
    approver: Annotated[str, Field(description="Approver's name and organisation, e.g. 'J. Smith (OCIO)'.")],
    comment: Annotated[str | None, Field(description="Conditions or reasons.")] = None,
    approve: Annotated[bool, Field(description="Approve; untick to send the plan back.")] = True,
) -> dict[str, Any]:
    """Record an approval decision for a planned DCO (automations use this; `dco ops approve` records the same)."""
    return decide_approval(dco, approver, approve=approve, comment=comment)
