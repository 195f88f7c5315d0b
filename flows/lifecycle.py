"""``dco_lifecycle``: one DCO through every phase, in order — the flow `dco demo` runs.

plan → approval → conduct (hunt plan over telemetry, triage, emulation plan) → assess
(scores, gaps, Navigator layers) → follow up (risks, actions, re-test, escalation) → the
DCO's STIX bundle. Re-running it resumes: planning happens only while the DCO is draft or
planned, and every later phase is idempotent (deterministic ids, upserts), so a crashed or
repeated run never duplicates what is stored — a repeat after follow-up is a re-test cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from dcoflow.connectors.attack import load_catalog
from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.errors import ConfigError, NotFoundError
from dcoflow.core.settings import get_settings
from dcoflow.flows.assess import assess_dco
from dcoflow.flows.brief import brief
from dcoflow.flows.conduct_emulation import conduct_emulation
from dcoflow.flows.follow_up import follow_up
from dcoflow.flows.forms import described
from dcoflow.flows.hunt import HuntParameters, hunt
from dcoflow.flows.plan import plan_dco
from dcoflow.flows.triage import triage_hunt
from dcoflow.models.operation import DcoState
from dcoflow.tasks.conduct.emulation.actions import export_vectr_task
from dcoflow.tasks.lifecycle import change_state, dco_state, decide_approval, operation_id
from dcoflow.tasks.reporting.documents.products import write_documents_task
from dcoflow.tasks.reporting.stix_export import export_dco_bundle_task

PLANNABLE = (DcoState.DRAFT, DcoState.PLANNED)
CONDUCTABLE = (DcoState.APPROVED, DcoState.CONDUCTING, DcoState.ASSESSING, DcoState.FOLLOW_UP)


def _telemetry() -> list[str]:
    try:
        return [str(get_settings().content_path("security-datasets"))]
    except ConfigError:
        return []


@flow(name="dco-lifecycle")
@described
def dco_lifecycle(
    operation_file: Annotated[str, Field(description="Operation file (YAML/JSON) describing the DCO.")],
    attack_source: Annotated[
        str | None, Field(description="ATT&CK bundle, URL or TAXII; the configured one when empty.")] = None,
    output_dir: Annotated[str | None, Field(description="Where exports go; DCO_OUTPUT_DIR when empty.")] = None,
    approver: Annotated[str | None, Field(
        description="Approve on this approver's behalf (pre-approved DCOs); empty: pause for approval.")] = None,
    telemetry: Annotated[list[str] | None, Field(
        description="Telemetry files/folders for the hunt plan; default the content folder's datasets.")] = None,
    emulation_outcomes: Annotated[dict[str, Any] | None, Field(
        description="Outcome answers by step id/order/technique or 'default'; empty: pause per step.")] = None,
    triage_verdicts: Annotated[dict[str, str] | None, Field(
        description="Verdicts agreed in advance, by sighting or Sigma rule id; empty: pause for triage.")] = None,
    actor: Annotated[str, Field(description="Who runs the lifecycle (audit log).")] = "dco-lifecycle",
) -> dict[str, Any]:
    """Plan → approve → conduct → assess → follow up one DCO, and export its STIX bundle."""
    logger = get_run_logger()
    out = Path(output_dir) if output_dir else get_settings().output_dir
    spec = load_operation_file(operation_file)
    dco = operation_id(spec)
    result: dict[str, Any] = {"dco": dco, "output_dir": str(out)}
    try:
        state = dco_state(dco)
    except NotFoundError:  # a new DCO: the plan flow registers it
        state = DcoState.DRAFT

    # -- plan and approval --------------------------------------------------------------------------------
    if state in PLANNABLE:
        result["plan"] = plan_dco(operation_file=operation_file, attack_source=attack_source, output_dir=str(out),
                                  actor=actor, wait_for_approval=approver is None)
        state = dco_state(dco)
    if state == DcoState.PLANNED and approver:
        decide_approval(dco, approver, comment="approved for the lifecycle run")
        state = DcoState.APPROVED
    if state not in CONDUCTABLE:
        logger.warning("%s is %s: nothing to conduct", dco, state.value)
        result["state"] = state.value
        return result

    # -- conduct ------------------------------------------------------------------------------------------------
    change_state(dco, DcoState.CONDUCTING, actor, "conduct phase of the lifecycle")
    data = telemetry if telemetry is not None else _telemetry()
    if spec.type.hunts and data:
        result["hunt"] = hunt(HuntParameters(dco=dco, data=data, attack_source=attack_source, actor=actor))
        result["triage"] = triage_hunt(dco=dco, verdicts=triage_verdicts, pause_for_input=triage_verdicts is None,
                                       analyst=actor)
    if spec.type.emulates:
        answers = emulation_outcomes or None
        result["emulation"] = conduct_emulation(
            dco=dco, dry_run=False, manual_outcomes=answers, pause_for_input=answers is None,
            operator=actor, attack_source=attack_source,
        )["status_counts"]
        result["vectr_csv"] = export_vectr_task(dco, str(out))

    # -- assess ---------------------------------------------------------------------------------------------------
    change_state(dco, DcoState.ASSESSING, actor, "assessment phase of the lifecycle")
    assessment = assess_dco(dco=dco, output_dir=str(out), attack_source=attack_source)[dco]
    result["assessment"] = {k: v for k, v in assessment.items() if k != "follow_up_gaps"}

    # -- follow up ------------------------------------------------------------------------------------------------
    change_state(dco, DcoState.FOLLOW_UP, actor, "follow-up phase of the lifecycle")
    # The same call the dco.phase.follow-up trigger makes: follow-up reads the stored assessment itself.
    result["follow_up"] = follow_up(dco=dco, attack_source=attack_source)

    result["brief"] = brief(dco, audience="both", meeting_body="CRMG", output_dir=str(out),
                            attack_source=attack_source)
    result["documents"] = write_documents_task(dco, str(out), attack_source)
    bundle = export_dco_bundle_task(dco, load_catalog(attack_source), out)
    result["stix_bundle"] = str(bundle)
    result["state"] = dco_state(dco).value
    return result
