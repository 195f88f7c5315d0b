"""Conducting emulation steps: deconflict a step, preview it (a dry run), execute it on the local lab
host or through Caldera under the rules of engagement, or hand it to the operator.

Plain functions over a caller's Session; the use cases in ``actions`` open it. The step's ``status``
in the database is the source of truth for resuming: pending → running (executed or handed to the
operator, awaiting outcomes) → done (at least one outcome recorded); failed/skipped with the reason in
an execution record or the audit log.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from dcoflow.connectors.caldera import CalderaClient
from dcoflow.connectors.content.atomics import AtomicsIndex
from dcoflow.connectors.executor.local import ExecutionResult, LocalExecutor, Override
from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.errors import (
    DcoError,
    ExecutionError,
    ValidationError,
)
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import (
    Deconfliction,
    EmulationExecution,
    ExecutionStatus,
    current_technique,
    dco_marker,
)
from dcoflow.models.gates import require_approver, require_conduct
from dcoflow.models.marking import MarkingFacts, marking_json
from dcoflow.models.operation import Operation, utcnow
from dcoflow.models.plan import EmulationStep, ProcedureSource, StepStatus
from dcoflow.models.procedures import CtidPlan
from dcoflow.models.repository.deconfliction import get_notice
from dcoflow.models.repository.emulation import (
    get_step,
    load_steps,
    set_status,
)
from dcoflow.models.repository.operation import audit_trail, get_operation, record_event
from dcoflow.models.roe import command_only, destructive_reasons, elevation_means
from dcoflow.models.stix.ids import row_id
from dcoflow.tasks.conduct.deconfliction import deliver_notice, require_acknowledged

CONNECTORS = ("manual", "local", "caldera")


def ready(step: EmulationStep, statuses: Mapping[str, StepStatus]) -> bool:
    """A step may start when every step it depends on is done (or skipped by decision)."""
    return all(statuses.get(d) in (StepStatus.DONE, StepStatus.SKIPPED) for d in step.depends_on)


# -- deconfliction -----------------------------------------------------------------------------------


def deconflict_step(
    session: Session,
    op: Operation,
    step: EmulationStep,
    *,
    webhook: WebhookClient | None = None,
    actor: str = "dcoflow",
) -> list[Deconfliction]:
    """Tell the rules of engagement's deconfliction contacts that ``step`` is about to run.

    One row per (step, contact); a contact already told is not told again. Without a webhook the
    notice is recorded (channel ``record``) for the operator to pass on. A webhook failure is
    recorded on the row and raised as ExecutionError naming the step: the step must not run
    unannounced.
    """
    contacts = op.dco.rules_of_engagement.deconfliction_contacts
    marker = dco_marker(op.id)
    rows: list[Deconfliction] = []
    for contact in contacts:
        decon_id = row_id("x-dco-deconfliction", op.id, step.id, contact)
        existing = get_notice(session, decon_id)
        if existing is not None and existing.status in ("sent", "recorded"):
            rows.append(existing)
            continue
        row = existing or Deconfliction(id=decon_id, dco_id=op.id, step_id=step.id, notified=contact,
                                        channel="webhook" if webhook else "record", marker=marker)
        row.notified_at = utcnow()
        if webhook is None:
            row.status, row.error = "recorded", None
        else:
            payload = {
                "dco": op.id, "dco_name": op.name, "step": step.id, "order": step.order,
                "technique": step.technique_id, "procedure": step.procedure_name, "contact": contact,
                "marker": marker, "hosts": op.dco.rules_of_engagement.allowed_hosts,
                "marking": marking_json(MarkingFacts.of(op.dco.marking)),
            }
            deliver_notice(session, row, webhook, "emulation.step.starting", payload, subject=f"step {step.id}",
                           hint="the step was not run; retry once the receiver is reachable")
        session.add(row)
        rows.append(row)
    if rows:
        record_event(session, op.id, actor, "emulation-deconflicted",
                     {"step": step.id, "contacts": [r.notified for r in rows], "marker": marker})
    return rows


# -- execution ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class StepPreview:
    """What a step would do, without doing it (a dry run): the exact commands, where, as whom, and the
    rules of engagement's verdict."""

    step_id: str
    order: int
    technique: str
    connector: str
    executor: str | None
    host: str | None
    command: str | None
    cleanup_command: str | None
    status: str
    verdict: str  # allowed or refused
    reasons: list[str] = field(default_factory=list)
    run_as: str | None = None
    arguments: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step_id, "order": self.order, "technique": self.technique, "connector": self.connector,
                "executor": self.executor, "host": self.host, "run_as": self.run_as, "command": self.command,
                "cleanup_command": self.cleanup_command, "arguments": self.arguments, "status": self.status,
                "verdict": self.verdict, "reasons": self.reasons}


@dataclass(slots=True)
class StepExecution:
    """What ``execute_step`` did: the execution record (None for manual steps and dry runs), the step's
    new status, and for a dry run what it would have done."""

    step_id: str
    connector: str
    status: StepStatus
    execution: EmulationExecution | None = None
    message: str = ""
    preview: StepPreview | None = None


def check_conduct(op: Operation, action: str, now: datetime | None = None) -> None:
    """The conduct gate for ``op`` (see ``dcoflow.models.gates``): raises GateError unless it may conduct now."""
    require_conduct(op.id, op.state, op.dco.window, now or utcnow(), action)


def _record_execution(session: Session, dco_id: str, connector: str, result: ExecutionResult) -> EmulationExecution:
    row = EmulationExecution(
        dco_id=dco_id, step_id=result.step_id, connector=connector, status=result.status, marker=result.marker,
        host=result.host, command=result.command, cleanup_command=result.cleanup_command,
        exit_code=result.exit_code, cleanup_exit_code=result.cleanup_exit_code, stdout=result.stdout,
        stderr=result.stderr, started_at=result.started_at, finished_at=result.finished_at, details=result.details,
    )
    session.add(row)
    session.flush()
    return row


def _refusal(session: Session, op: Operation, step: EmulationStep, connector: str, exc: DcoError,
             actor: str) -> None:
    """A refused step: an execution record saying why, the step failed (so steps after it wait), an audit event."""
    session.add(EmulationExecution(
        dco_id=op.id, step_id=step.id, connector=connector, status=ExecutionStatus.REFUSED,
        marker=dco_marker(op.id), command=step.command, finished_at=utcnow(),
        details={"error": exc.as_dict()},
    ))
    set_status(session, step, StepStatus.FAILED)
    record_event(session, op.id, actor, "emulation-refused",
                 {"step": step.id, "technique": step.technique_id, "connector": connector, "reason": exc.reason})
    session.flush()


OVERRIDE_ACTION = "emulation-destructive-override"


def mark_destructive(session: Session, dco_id: str, step_ref: str, destructive: bool, *, actor: str,
                     reason: str) -> AuditEvent:
    """An operator's explicit call on whether one step is destructive, recorded with who and why.

    Marking a step destructive always counts; marking it not destructive overrules only what its
    command text suggests (an ``rm`` of a file the step made itself), never its technique."""
    op = get_operation(session, dco_id)
    step = get_step(session, op.id, step_ref)
    who = require_approver(actor)
    if not reason.strip():
        raise ValidationError("a destructive override needs a reason", field="reason", object=f"step {step.id}")
    return record_event(session, op.id, who, OVERRIDE_ACTION,
                        {"step": step.id, "technique": step.technique_id, "destructive": destructive,
                         "reason": reason.strip()})


def destructive_override(session: Session, dco_id: str, step_id: str) -> Override | None:
    """The latest operator override for a step, if any."""
    latest: Override | None = None
    for ev in audit_trail(session, dco_id):
        if ev.action == OVERRIDE_ACTION and ev.details.get("step") == step_id:
            latest = "destructive" if ev.details.get("destructive") else "not-destructive"
    return latest


def _elevation(step: EmulationStep, atomics: AtomicsIndex | None, ctid: CtidPlan | None) -> bool:
    """The procedure's own elevation flag (atomic ``elevation_required``, CTID executor
    ``elevation_required``), from the content the caller loaded once. A procedure whose content could
    not be read (``None``), or that it does not hold, counts as needing elevation."""
    if step.source == ProcedureSource.ATOMIC and step.procedure_ref:
        if atomics is None:
            return True
        try:
            return atomics.get(step.procedure_ref).elevation_required
        except DcoError:
            return True
    if step.source == ProcedureSource.CTID and step.procedure_ref:
        cstep = next((c for c in ctid.steps if c.id == step.procedure_ref), None) if ctid is not None else None
        if cstep is None:
            return True
        named = [e for e in cstep.executors if e.name == step.executor] or cstep.executors
        return any(e.elevation_required for e in named)
    return False


def _tactics(step: EmulationStep, catalog: Catalog | None) -> list[str]:
    tactics = [step.tactic]
    tech = current_technique(catalog, step.technique_id) if catalog is not None else None
    if tech is not None:
        tactics += tech.tactics
    return tactics


def _caldera_refusals(op: Operation, step: EmulationStep, tactics: list[str], override: Override | None) -> list[str]:
    """The rules of engagement that apply to a Caldera ability before it is sent to an agent."""
    roe = op.dco.rules_of_engagement
    out: list[str] = []
    if "caldera" not in [e.lower() for e in roe.allowed_executors]:
        out.append("executor 'caldera' is not allowed by the rules of engagement")
    tid = step.technique_id.upper()
    if tid in {t.upper() for t in roe.forbidden_techniques} or \
            tid.split(".")[0] in {t.upper() for t in roe.forbidden_techniques}:
        out.append(f"technique {tid} is forbidden by the rules of engagement")
    scripts = [step.command, step.cleanup_command]
    if not roe.requires_elevation_allowed and elevation_means(scripts):
        out.append("step needs elevated privileges (its command names " + ", ".join(elevation_means(scripts))
                   + "), which the rules of engagement do not allow")
    reasons = destructive_reasons(step.technique_id, tactics, scripts, shell=False)
    if override == "destructive":
        reasons.append("an operator marked the step destructive")
    elif override == "not-destructive":
        reasons = [r for r in reasons if r not in command_only(reasons)]
    if reasons and not roe.destructive_allowed:
        out.append("step is destructive, which the rules of engagement do not allow: " + "; ".join(reasons))
    return out


def _local_executor(op: Operation, executor: LocalExecutor | None) -> LocalExecutor:
    return executor or LocalExecutor(op.id, op.dco.rules_of_engagement, op.dco.scope)


def preview_step(
    session: Session,
    step: EmulationStep,
    op: Operation,
    *,
    connector: str | None = None,
    executor: LocalExecutor | None = None,
    caldera_group: str = "",
    atomics: AtomicsIndex | None = None,
    ctid: CtidPlan | None = None,
    catalog: Catalog | None = None,
    args: Mapping[str, Any] | None = None,
) -> StepPreview:
    """What ``execute_step`` would do for ``step``, read-only: nothing is run or written. ``atomics`` and
    ``ctid`` (the DCO's CTID plan) hold the procedures' own elevation flags."""
    chosen = (connector or step.connector or "manual").lower()
    base = functools.partial(StepPreview, step.id, step.order, step.technique_id, chosen,
                             status=step.status.value)
    override = destructive_override(session, op.id, step.id)
    tactics = _tactics(step, catalog)
    if chosen == "manual":
        return base(executor="manual", host=None, command=step.command,
                           cleanup_command=step.cleanup_command, verdict="allowed",
                           reasons=["performed by the operator; nothing runs here"])
    if chosen == "caldera":
        refusals = _caldera_refusals(op, step, tactics, override)
        if step.source != ProcedureSource.CALDERA or not step.procedure_ref:
            refusals.insert(0, "step has no Caldera ability to run")
        return base(executor=step.executor, host=caldera_group or "caldera agents",
                           command=step.command, cleanup_command=step.cleanup_command,
                           verdict="refused" if refusals else "allowed", reasons=refusals)
    runner = _local_executor(op, executor)
    try:
        prepared = runner.render(step, args)
    except ExecutionError as exc:
        return base(executor=step.executor, host=runner.host, command=step.command,
                           cleanup_command=step.cleanup_command, verdict="refused", reasons=[exc.reason],
                           run_as=runner.run_as())
    broken = runner.refusals(step, prepared, elevation_required=_elevation(step, atomics, ctid),
                             tactics=tactics, override=override)
    return base(executor=prepared.executor, host=prepared.host, command=prepared.command,
                       cleanup_command=prepared.cleanup_command, verdict="refused" if broken else "allowed",
                       reasons=[r for r, _ in broken], run_as=prepared.run_as, arguments=prepared.arguments)


def preview_emulation(
    session: Session, dco: str, *, connector_default: str = "manual", atomics: AtomicsIndex | None = None,
    ctid: CtidPlan | None = None, catalog: Catalog | None = None, executor: LocalExecutor | None = None,
) -> list[StepPreview]:
    """A dry run of the whole plan, in any state: per step the exact commands and the verdict. Read-only."""
    op = get_operation(session, dco)
    out: list[StepPreview] = []
    for step in load_steps(session, op.id):
        connector = normalise_connector(step.connector) if step.connector not in ("", "manual") \
            else normalise_connector(connector_default)
        out.append(preview_step(session, step, op, connector=connector, atomics=atomics, ctid=ctid,
                                catalog=catalog, executor=executor))
    return out


def execute_step(
    session: Session,
    step: EmulationStep,
    op: Operation,
    *,
    connector: str | None = None,
    dry_run: bool = True,
    executor: LocalExecutor | None = None,
    caldera: CalderaClient | None = None,
    caldera_group: str = "",
    caldera_timeout_s: float = 600.0,
    atomics: AtomicsIndex | None = None,
    ctid: CtidPlan | None = None,
    catalog: Catalog | None = None,
    args: Mapping[str, Any] | None = None,
    actor: str = "dcoflow",
) -> StepExecution:
    """Run one step with ``connector`` (default: the step's own).

    A dry run works in any state and writes nothing: it returns the preview. A live run first
    passes the conduct gate (GateError: the DCO is not approved or outside its window; nothing is
    recorded, nothing runs), then the rules of engagement: a refusal is recorded (execution status
    refused, step failed, audit event) and raised as ExecutionError. Manual steps run nothing: they
    move to running and wait for the operator's outcomes. ``atomics`` and ``ctid`` (the DCO's CTID
    plan) hold the procedures' own elevation flags; a procedure not found there counts as needing it."""
    chosen = (connector or step.connector or "manual").lower()
    if chosen not in CONNECTORS:
        raise ValidationError(f"unknown connector {chosen!r}", field="connector", suggestions=list(CONNECTORS),
                              object=f"step {step.id}")
    if dry_run:
        preview = preview_step(session, step, op, connector=chosen, executor=executor, caldera_group=caldera_group,
                               atomics=atomics, ctid=ctid, catalog=catalog, args=args)
        return StepExecution(step.id, chosen, step.status, None, "dry run: nothing was executed or recorded",
                             preview)
    check_conduct(op, f"step {step.order} ({step.technique_id})")
    require_acknowledged(session, op)
    if chosen == "manual":
        set_status(session, step, StepStatus.RUNNING)
        return StepExecution(step.id, chosen, step.status, None, "performed by the operator; awaiting outcomes")

    override = destructive_override(session, op.id, step.id)
    tactics = _tactics(step, catalog)
    if chosen == "local":
        runner = _local_executor(op, executor)
        try:
            result = runner.run(step, args, elevation_required=_elevation(step, atomics, ctid), tactics=tactics,
                                override=override)
        except ExecutionError as exc:
            _refusal(session, op, step, chosen, exc, actor)
            raise
        row = _record_execution(session, op.id, chosen, result)
    else:
        refused = _caldera_refusals(op, step, tactics, override)
        if refused:
            refusal = ExecutionError(refused[0], object=f"step {step.id} ({step.technique_id})",
                                     details={"step": step.id, "dco": op.id, "refusals": refused})
            _refusal(session, op, step, chosen, refusal, actor)
            raise refusal
        row = _run_caldera(session, step, op, caldera, group=caldera_group, timeout_s=caldera_timeout_s)

    ok = row.status == ExecutionStatus.SUCCEEDED
    set_status(session, step, StepStatus.RUNNING if ok else StepStatus.FAILED)
    record_event(session, op.id, actor, "emulation-executed",
                 {"step": step.id, "connector": chosen, "status": row.status.value, "exit_code": row.exit_code})
    message = "executed; awaiting outcomes" if ok else f"execution {row.status.value} (exit {row.exit_code})"
    return StepExecution(step.id, chosen, step.status, row, message)


def _run_caldera(
    session: Session, step: EmulationStep, op: Operation, client: CalderaClient | None, *,
    group: str, timeout_s: float,
) -> EmulationExecution:
    if step.source != ProcedureSource.CALDERA or not step.procedure_ref:
        raise ExecutionError("step has no Caldera ability to run", object=f"step {step.id} ({step.technique_id})",
                             hint="set the step's procedure to a Caldera ability id, or run it manually")
    if client is None:
        raise ExecutionError("no Caldera client configured", object=f"step {step.id}",
                             hint="set DCO_CALDERA_URL and DCO_CALDERA_API_KEY")
    name = f"dcoflow {op.id} {step.id}"
    started = utcnow()
    adversary = client.ensure_adversary(name, [step.procedure_ref], description=f"{op.name}: {step.procedure_name}")
    operation = client.create_operation(f"{name} {started:%Y%m%dT%H%M%S}", str(adversary["adversary_id"]),
                                        group=group)
    client.wait(str(operation["id"]), timeout_s=timeout_s)
    links = [lk for lk in client.operation_links(str(operation["id"])) if lk.ability_id == step.procedure_ref]
    statuses = [lk.execution_status for lk in links if lk.execution_status is not None]
    status = (ExecutionStatus.SUCCEEDED if ExecutionStatus.SUCCEEDED in statuses
              else statuses[0] if statuses else ExecutionStatus.FAILED)
    return _record_execution(session, op.id, "caldera", ExecutionResult(
        step_id=step.id, status=status, marker=dco_marker(op.id),
        host=next((lk.host for lk in links if lk.host), None) or group or "caldera",
        command="\n".join(lk.command for lk in links), cleanup_command=None,
        started_at=started, finished_at=utcnow(),
        exit_code=0 if status == ExecutionStatus.SUCCEEDED else None,
        stdout="\n".join(lk.output or "" for lk in links),
        details={"operation": operation["id"], "links": [{"id": lk.link_id, "status": int(lk.status),
                                                            "paw": lk.paw} for lk in links]},
    ))


def normalise_connector(name: str) -> str:
    key = name.strip().lower()
    return {"atomic": "local", "sh": "local", "bash": "local"}.get(key, key)
