"""Conducting emulation: deconflict a step, execute it (local lab host, Caldera, or by hand),
record each defensive tool's outcome (row + STIX + audit), and move outcomes in and out of
VECTR CSV and Caldera reports.

Plain functions over a Session that tests call directly; thin Prefect task wrappers at the
bottom open their own session. The step's ``status`` in the database is the source of truth
for resuming: pending → running (executed or handed to the operator, awaiting outcomes) →
done (at least one outcome recorded); failed/skipped with the reason in an execution record.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import func
from sqlmodel import Session, col, select

from dcoflow.connectors.caldera import CalderaClient
from dcoflow.connectors.content.atomics import AtomicsIndex, load_atomics
from dcoflow.connectors.content.caldera_report import CalderaReport, load_caldera_report
from dcoflow.connectors.content.ctid import load_ctid_plan
from dcoflow.connectors.content.vectr import VectrTestCase, read_vectr_csv, write_vectr_csv
from dcoflow.connectors.executor.local import ExecutionResult, LocalExecutor, Override
from dcoflow.connectors.webhook import WebhookClient
from dcoflow.core.db import insert_if_absent, session_scope, upsert
from dcoflow.core.errors import (
    ConflictError,
    ConnectorError,
    DcoError,
    ExecutionError,
    NotFoundError,
    ValidationError,
)
from dcoflow.core.settings import get_settings
from dcoflow.models.attack.catalog import TECHNIQUE_ID, Catalog
from dcoflow.models.attack.objects import Technique
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import (
    Deconfliction,
    EmulationExecution,
    EmulationOutcome,
    ExecutionStatus,
    Outcome,
    OutcomeInput,
    OutcomeSource,
    Severity,
    aware,
    dco_marker,
)
from dcoflow.models.gates import require_approver, require_conduct
from dcoflow.models.marking import MarkingFacts, marking_json
from dcoflow.models.operation import Operation, utcnow
from dcoflow.models.plan import EmulationStep, ProcedureSource, StepStatus
from dcoflow.models.procedures import CtidPlan
from dcoflow.models.repository.operation import audit_trail, get_operation, lock_row, record_event
from dcoflow.models.repository.stix_store import put_objects
from dcoflow.models.roe import command_only, destructive_reasons, elevation_means
from dcoflow.models.stix.common import DcoContext
from dcoflow.models.stix.emulation_objects import outcome_objects, sighting_id
from dcoflow.models.stix.ids import row_id
from dcoflow.tasks.conduct.deconfliction import notify_window, require_acknowledged
from dcoflow.tasks.plan.planning import resolve_plan_path
from dcoflow.tasks.retry import retry_when_retryable

CONNECTORS = ("manual", "local", "caldera")
SEVERITY_ORDER = list(Severity)


# -- steps ------------------------------------------------------------------------------------------


def load_steps(session: Session, dco_id: str) -> list[EmulationStep]:
    stmt = select(EmulationStep).where(EmulationStep.dco_id == dco_id).order_by(col(EmulationStep.order))
    return list(session.exec(stmt))


def get_step(session: Session, dco_id: str, ref: str) -> EmulationStep:
    """A step by id, by order number (``3``) or by technique id (when it is unique in the plan)."""
    step = session.get(EmulationStep, ref)
    if step is not None and step.dco_id == dco_id:
        return step
    steps = load_steps(session, dco_id)
    if ref.isdigit():
        match = [s for s in steps if s.order == int(ref)]
    else:
        match = [s for s in steps if s.technique_id.upper() == ref.upper()]
    if len(match) == 1:
        return match[0]
    known = [s.id for s in steps]
    close = difflib.get_close_matches(ref, known, n=3, cutoff=0.5)
    raise NotFoundError(
        "no such emulation step" + (f" ({len(match)} steps match; use the step id)" if match else ""),
        system="emulation", object=f"step {ref} of DCO {dco_id}",
        hint=("did you mean: " + ", ".join(close)) if close else "see `dco emulate steps DCO`",
    )


def steps_without_procedure(session: Session, dco_id: str) -> list[EmulationStep]:
    """Steps that have nothing an executor could run (an operator performs them by hand)."""
    return [s for s in load_steps(session, dco_id) if not (s.command and s.command.strip())]


def ready(step: EmulationStep, statuses: Mapping[str, StepStatus]) -> bool:
    """A step may start when every step it depends on is done (or skipped by decision)."""
    return all(statuses.get(d) in (StepStatus.DONE, StepStatus.SKIPPED) for d in step.depends_on)


def _set_status(session: Session, step: EmulationStep, status: StepStatus) -> None:
    if step.status != status:
        step.status = status
        step.version += 1
        session.add(step)


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
        existing = session.get(Deconfliction, decon_id)
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
            try:
                answer = webhook.post("emulation.step.starting", payload, idempotency_key=decon_id)
            except ConnectorError as exc:
                row.status, row.error = "failed", exc.message
                session.add(row)
                session.flush()
                raise ExecutionError(
                    f"deconfliction notice to {contact} failed: {exc.reason}", object=f"step {step.id}",
                    retryable=exc.retryable, hint="the step was not run; retry once the receiver is reachable",
                ) from exc
            row.status, row.error = "sent", None
            row.receipt = str(answer.get("id") or answer.get("receipt") or answer.get("status") or "accepted")
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
    _set_status(session, step, StepStatus.FAILED)
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


def _elevation(op: Operation, step: EmulationStep, atomics: AtomicsIndex | None) -> bool:
    """The procedure's own elevation flag (atomic ``elevation_required``, CTID executor
    ``elevation_required``). A procedure whose content cannot be read counts as needing elevation."""
    if step.source == ProcedureSource.ATOMIC and step.procedure_ref:
        try:
            index = atomics or load_atomics(get_settings().content_path("atomics"))
            return index.get(step.procedure_ref).elevation_required
        except DcoError:
            return True
    if step.source == ProcedureSource.CTID and step.procedure_ref:
        try:
            path = resolve_plan_path(op.dco)
            plan = load_ctid_plan(path) if path is not None else None
        except DcoError:
            return True
        if plan is None:
            return True
        cstep = next((c for c in plan.steps if c.id == step.procedure_ref), None)
        if cstep is None:
            return True
        named = [e for e in cstep.executors if e.name == step.executor] or cstep.executors
        return any(e.elevation_required for e in named)
    return False


def _tactics(step: EmulationStep, catalog: Catalog | None) -> list[str]:
    tactics = [step.tactic]
    tech = _current_technique(catalog, step.technique_id) if catalog is not None else None
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
    catalog: Catalog | None = None,
    args: Mapping[str, Any] | None = None,
) -> StepPreview:
    """What ``execute_step`` would do for ``step``, read-only: nothing is run or written."""
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
    broken = runner.refusals(step, prepared, elevation_required=_elevation(op, step, atomics), tactics=tactics,
                             override=override)
    return base(executor=prepared.executor, host=prepared.host, command=prepared.command,
                       cleanup_command=prepared.cleanup_command, verdict="refused" if broken else "allowed",
                       reasons=[r for r, _ in broken], run_as=prepared.run_as, arguments=prepared.arguments)


def preview_emulation(
    session: Session, dco: str, *, connector_default: str = "manual", atomics: AtomicsIndex | None = None,
    catalog: Catalog | None = None, executor: LocalExecutor | None = None,
) -> list[StepPreview]:
    """A dry run of the whole plan, in any state: per step the exact commands and the verdict. Read-only."""
    op = get_operation(session, dco)
    out: list[StepPreview] = []
    for step in load_steps(session, op.id):
        connector = normalise_connector(step.connector) if step.connector not in ("", "manual") \
            else normalise_connector(connector_default)
        out.append(preview_step(session, step, op, connector=connector, atomics=atomics, catalog=catalog,
                                executor=executor))
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
    catalog: Catalog | None = None,
    args: Mapping[str, Any] | None = None,
    actor: str = "dcoflow",
) -> StepExecution:
    """Run one step with ``connector`` (default: the step's own).

    A dry run works in any state and writes nothing: it returns the preview. A live run first
    passes the conduct gate (GateError: the DCO is not approved or outside its window; nothing is
    recorded, nothing runs), then the rules of engagement: a refusal is recorded (execution status
    refused, step failed, audit event) and raised as ExecutionError. Manual steps run nothing: they
    move to running and wait for the operator's outcomes."""
    chosen = (connector or step.connector or "manual").lower()
    if chosen not in CONNECTORS:
        raise ValidationError(f"unknown connector {chosen!r}", field="connector", suggestions=list(CONNECTORS),
                              object=f"step {step.id}")
    if dry_run:
        preview = preview_step(session, step, op, connector=chosen, executor=executor, caldera_group=caldera_group,
                               atomics=atomics, catalog=catalog, args=args)
        return StepExecution(step.id, chosen, step.status, None, "dry run: nothing was executed or recorded",
                             preview)
    check_conduct(op, f"step {step.order} ({step.technique_id})")
    require_acknowledged(session, op)
    if chosen == "manual":
        _set_status(session, step, StepStatus.RUNNING)
        return StepExecution(step.id, chosen, step.status, None, "performed by the operator; awaiting outcomes")

    override = destructive_override(session, op.id, step.id)
    tactics = _tactics(step, catalog)
    if chosen == "local":
        runner = _local_executor(op, executor)
        try:
            result = runner.run(step, args, elevation_required=_elevation(op, step, atomics), tactics=tactics,
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
    _set_status(session, step, StepStatus.RUNNING if ok else StepStatus.FAILED)
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


def last_refusals(session: Session, dco_id: str) -> dict[str, str]:
    """Step id → the reason of its latest refusal by the rules of engagement (for listings)."""
    stmt = (select(EmulationExecution)
            .where(EmulationExecution.dco_id == dco_id, EmulationExecution.status == ExecutionStatus.REFUSED)
            .order_by(col(EmulationExecution.id)))
    return {row.step_id: str(row.details.get("error", {}).get("reason") or "refused") for row in session.exec(stmt)}


def latest_execution(session: Session, dco_id: str, step_id: str) -> EmulationExecution | None:
    stmt = (select(EmulationExecution)
            .where(EmulationExecution.dco_id == dco_id, EmulationExecution.step_id == step_id,
                   col(EmulationExecution.status).in_([ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED,
                                                       ExecutionStatus.TIMED_OUT]))
            .order_by(col(EmulationExecution.id).desc()))
    return session.exec(stmt).first()


# -- outcomes -----------------------------------------------------------------------------------------


def _current_technique(catalog: Catalog, technique_id: str) -> Technique | None:
    """The catalog's technique for an id of any release (revoked ids follow their replacement)."""
    res = catalog.resolve(technique_id, warn=False)
    return catalog.get_technique(res.attack_id) if res.attack_id else None


def attack_pattern_ref(catalog: Catalog | None, technique_id: str) -> str | None:
    """The ATT&CK STIX id of a technique (revoked ids follow their replacement); None when unknown."""
    tech = _current_technique(catalog, technique_id) if catalog is not None else None
    return tech.stix_id if tech is not None else None


def outcome_history(
    session: Session, dco_id: str, step_id: str | None = None, tool: str | None = None
) -> list[EmulationOutcome]:
    stmt = select(EmulationOutcome).where(EmulationOutcome.dco_id == dco_id)
    if step_id is not None:
        stmt = stmt.where(EmulationOutcome.step_id == step_id)
    if tool is not None:
        stmt = stmt.where(EmulationOutcome.tool == tool)
    return list(session.exec(stmt.order_by(col(EmulationOutcome.step_id), col(EmulationOutcome.tool),
                                           col(EmulationOutcome.version))))


def current_outcomes(session: Session, dco_id: str) -> list[EmulationOutcome]:
    """The latest version per (step, tool): a corrected outcome wins, its history stays."""
    newest = (select(EmulationOutcome.step_id, EmulationOutcome.tool,
                     func.max(EmulationOutcome.version).label("v"))
              .where(EmulationOutcome.dco_id == dco_id)
              .group_by(EmulationOutcome.step_id, EmulationOutcome.tool).subquery())
    stmt = (select(EmulationOutcome)
            .join(newest, (col(EmulationOutcome.step_id) == newest.c.step_id)
                  & (col(EmulationOutcome.tool) == newest.c.tool) & (col(EmulationOutcome.version) == newest.c.v))
            .where(EmulationOutcome.dco_id == dco_id)
            .order_by(col(EmulationOutcome.step_id), col(EmulationOutcome.tool)))
    return list(session.exec(stmt))


def record_outcome(
    session: Session,
    dco_id: str,
    step_id: str,
    data: OutcomeInput | Mapping[str, Any],
    *,
    source: OutcomeSource = OutcomeSource.MANUAL,
    catalog: Catalog | None = None,
    actor: str | None = None,
) -> EmulationOutcome:
    """Record one tool's outcome for one step: a new version row (unless nothing changed), the
    STIX sighting/observed-data/note, and an audit event. The step becomes done."""
    op = get_operation(session, dco_id)
    step = get_step(session, op.id, step_id)
    given = data if isinstance(data, OutcomeInput) else OutcomeInput.parse(step.id, dict(data))
    # Attack times and target default to what the executor recorded, so sightings line up with telemetry.
    run = latest_execution(session, op.id, step.id)
    if run is not None:
        given = given.model_copy(update={
            "attack_start": given.attack_start or aware(run.started_at),
            "attack_stop": given.attack_stop or aware(run.finished_at),
            "target_host": given.target_host or run.host,
        })
    history = outcome_history(session, op.id, step.id, given.tool)
    latest = history[-1] if history else None
    if latest is not None and latest.same_as(given):
        return latest
    key = insert_if_absent(session, EmulationOutcome(
        dco_id=op.id, step_id=step.id, technique_id=step.technique_id, tool=given.tool,
        version=(latest.version + 1) if latest else 1, outcome=given.outcome, severity=given.severity,
        attack_start=given.attack_start, attack_stop=given.attack_stop, detected_at=given.detected_at,
        operator=given.operator, target_host=given.target_host, notes=given.notes, source=source,
        telemetry=given.telemetry, compromise=given.compromise, sighting_id=sighting_id(op.id, step.id, given.tool),
    ))
    if key is None:  # someone recorded this step and tool meanwhile: theirs stands, ours is not applied
        now = outcome_history(session, op.id, step.id, given.tool)[-1]
        if now.same_as(given):
            return now
        raise ConflictError(
            f"step {step.id} ({given.tool}) was recorded by someone else meanwhile: {now.outcome.value} by "
            f"{now.operator} (version {now.version}); yours ({given.outcome.value}) was not stored",
            system="emulation", object=f"step {step.id} of DCO {op.id}",
            details={"current": {"outcome": now.outcome.value, "operator": now.operator, "version": now.version}},
            hint="look with `dco emulate steps DCO`, then record again to supersede it")
    row = session.get_one(EmulationOutcome, key[0])
    ctx = DcoContext.for_operation(op)
    first = history[0].recorded_at if history else row.recorded_at
    objects = outcome_objects(ctx, row, attack_pattern_ref=attack_pattern_ref(catalog, step.technique_id),
                              technique_name=step.technique_name, first_recorded=first)
    put_objects(session, objects, op.id)
    _set_status(session, lock_row(session, step), StepStatus.DONE)  # other tools' outcomes may mark it too
    record_event(session, op.id, actor or given.operator, "emulation-outcome", {
        "step": step.id, "technique": step.technique_id, "tool": row.tool, "outcome": row.outcome.value,
        "version": row.version, "source": source.value,
    })
    return row


# -- import of procedures into an existing plan -------------------------------------------------------------


@dataclass(slots=True)
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "warnings": self.warnings}


def import_atomics_into_plan(
    session: Session, dco_id: str, atomics: AtomicsIndex, *, actor: str = "dcoflow"
) -> ImportSummary:
    """Give every pending step without a procedure the first atomic that fits the DCO's
    platforms and allowed executors (e.g. after updating the atomics checkout)."""
    op = get_operation(session, dco_id)
    spec = op.dco
    platforms = [p.value for p in spec.scope.platforms]
    allowed = {e.lower() for e in spec.rules_of_engagement.allowed_executors}
    summary = ImportSummary()
    for step in steps_without_procedure(session, op.id):
        if step.status != StepStatus.PENDING:
            continue
        tests = [t for t in atomics.for_technique(step.technique_id, platforms)
                 if t.executor in allowed and t.command]
        if not tests:
            summary.unchanged += 1
            summary.warnings.append(f"step {step.order} {step.technique_id}: no atomic for "
                                    f"{', '.join(platforms)} with an allowed executor")
            continue
        chosen = tests[0]
        step.source, step.procedure_ref, step.procedure_name = ProcedureSource.ATOMIC, chosen.guid, chosen.name
        step.platform = next((p for p in platforms if chosen.supports(p)), step.platform)
        step.executor, step.command, step.cleanup_command = chosen.executor, chosen.command, chosen.cleanup_command
        step.input_arguments = {k: a.default for k, a in chosen.input_arguments.items()}
        step.candidates = [{"guid": t.guid, "name": t.name, "executor": t.executor} for t in tests[1:10]]
        step.version += 1
        session.add(step)
        summary.updated += 1
    record_event(session, op.id, actor, "emulation-atomics-imported", summary.as_dict())
    return summary


def import_ctid_plan(
    session: Session, dco_id: str, plan: CtidPlan, *, catalog: Catalog | None = None, actor: str = "dcoflow"
) -> ImportSummary:
    """Append a CTID emulation plan's steps to the DCO's plan, in the plan's order, each depending on
    the one before. Ids match the planning flow's (``x-dco-step`` over dco, ``ctid``, procedure id),
    so importing twice changes nothing. Steps whose technique is not an ATT&CK id, or one the
    catalog does not know, are kept and reported."""
    op = get_operation(session, dco_id)
    platforms = [p.value for p in op.dco.scope.platforms]
    allowed = [e.lower() for e in op.dco.rules_of_engagement.allowed_executors]
    existing = {s.id: s for s in load_steps(session, op.id)}
    next_order = max((s.order for s in existing.values()), default=0) + 1
    summary = ImportSummary(warnings=list(plan.warnings))
    previous: str | None = None
    rows: list[dict[str, Any]] = []
    for cstep in plan.steps:
        sid = row_id("x-dco-step", op.id, "ctid", cstep.id)
        tid = cstep.technique_id
        if cstep.is_technique and catalog is not None:
            tech = _current_technique(catalog, tid)
            if tech is not None:
                tid = tech.attack_id
            else:
                summary.warnings.append(f"{cstep.label}: technique {tid} is not in ATT&CK "
                                        f"{catalog.version} (kept)")
        if sid in existing:
            summary.unchanged += 1
            previous = sid
            continue
        platform, executor, command, cleanup = cstep.choose(platforms, allowed)
        if platform is None:
            summary.warnings.append(f"{cstep.label}: no command for the DCO's platforms "
                                    f"({', '.join(platforms)}); kept as a manual step")
        rows.append({
            "id": sid, "dco_id": op.id, "order": next_order, "tactic": cstep.tactic or "unknown",
            "technique_id": tid, "technique_name": cstep.technique_name, "source": ProcedureSource.CTID,
            "procedure_ref": cstep.id, "procedure_name": cstep.name, "platform": platform,
            "executor": executor or "manual", "command": command, "cleanup_command": cleanup,
            "input_arguments": {k: a.default for k, a in cstep.input_arguments.items()},
            "depends_on": [previous] if previous else [], "connector": "manual", "status": StepStatus.PENDING,
            "candidates": [], "version": 1,
        })
        next_order += 1
        previous = sid
        summary.created += 1
    upsert(session, EmulationStep, rows, keys=("id",))
    record_event(session, op.id, actor, "emulation-ctid-imported",
                 {"adversary": plan.adversary_name, "source": plan.source, **summary.as_dict()})
    return summary


# -- Caldera abilities and adversary profiles (through the server's REST API) -----------------------------

# Caldera's executor names (sandcat agent: sh, psh = Windows PowerShell, pwsh = PowerShell Core, cmd = cmd.exe)
# as the rules of engagement name executors; used only to prefer an allowed one.
_CALDERA_EXECUTORS = {"sh": "sh", "psh": "powershell", "pwsh": "powershell", "cmd": "command_prompt"}
# ATT&CK platform names (the DCO's scope) → Caldera's executor platforms; back again for the step.
_TO_CALDERA_PLATFORM = {"macos": "darwin"}
_FROM_CALDERA_PLATFORM = {"darwin": "macos"}


@dataclass(frozen=True, slots=True)
class CalderaProcedure:
    """What one Caldera ability runs on one of the DCO's platforms."""

    ability_id: str
    name: str
    platform: str
    executor: str
    command: str
    cleanup_command: str | None


def caldera_procedure(ability: Mapping[str, Any], platforms: Sequence[str],
                      allowed_executors: Iterable[str] = ()) -> CalderaProcedure | None:
    """The ability's command for the first of ``platforms`` it has an executor for (preferring an
    executor the rules of engagement allow), or None when it runs on none of them."""
    allowed = {e.lower() for e in allowed_executors}
    executors = [e for e in ability.get("executors") or [] if isinstance(e, Mapping)]
    for platform in platforms:
        wanted = _TO_CALDERA_PLATFORM.get(platform, platform)
        fitting = [e for e in executors if e.get("platform") == wanted and str(e.get("command") or "").strip()]
        if not fitting:
            continue
        chosen = next((e for e in fitting if _CALDERA_EXECUTORS.get(str(e.get("name")), str(e.get("name")))
                       in allowed), fitting[0])
        cleanup = "\n".join(str(c) for c in chosen.get("cleanup") or [] if str(c).strip())
        return CalderaProcedure(
            ability_id=str(ability.get("ability_id") or ""), name=str(ability.get("name") or ""),
            platform=_FROM_CALDERA_PLATFORM.get(wanted, wanted), executor=str(chosen.get("name") or "manual"),
            command=str(chosen["command"]), cleanup_command=cleanup or None,
        )
    return None


def _caldera_platforms(op: Operation, platform: str | None) -> list[str]:
    if platform is None:
        return [p.value for p in op.dco.scope.platforms]
    key = platform.strip().lower()
    return [_FROM_CALDERA_PLATFORM.get(key, key)]


def _caldera_technique(ability: Mapping[str, Any], catalog: Catalog | None, label: str,
                       warnings: list[str]) -> str:
    """The ability's technique id (Caldera's may carry stray spaces), resolved through the catalog
    when one is given. Ids that are not ATT&CK's, or that the catalog does not know, are kept and reported."""
    tid = str(ability.get("technique_id") or "").strip().upper()
    if not TECHNIQUE_ID.match(tid):
        warnings.append(f"{label}: technique {tid or '(none)'!r} is not an ATT&CK id (kept)")
        return tid or "unknown"
    if catalog is not None:
        tech = _current_technique(catalog, tid)
        if tech is not None:
            return tech.attack_id
        warnings.append(f"{label}: technique {tid} is not in ATT&CK {catalog.version} (kept)")
    return tid


def import_caldera_adversary(
    session: Session,
    dco_id: str,
    client: CalderaClient,
    adversary_id: str,
    *,
    platform: str | None = None,
    catalog: Catalog | None = None,
    actor: str = "dcoflow",
) -> ImportSummary:
    """Append a Caldera adversary profile to the DCO's plan: one step per ability of its
    ``atomic_ordering``, in that order, each depending on the one before, run by the ``caldera``
    connector with the ability's command for the DCO's platforms (or ``platform``).

    Step ids are ``x-dco-step`` over dco, ``caldera``, adversary id and ability id (plus the
    occurrence when the profile repeats an ability), so importing twice creates nothing; a pending
    step is refreshed when the server's ability changed, a step that already ran is left alone.
    Abilities the server does not have are reported and skipped; an ability with no executor for
    the platforms is kept as a manual step and reported. An unknown adversary is a NotFoundError."""
    op = get_operation(session, dco_id)
    platforms = _caldera_platforms(op, platform)
    allowed = op.dco.rules_of_engagement.allowed_executors
    adversary = client.adversary(adversary_id)
    adv_id = str(adversary.get("adversary_id") or adversary_id)
    adv_name = str(adversary.get("name") or adv_id)
    ordering = adversary.get("atomic_ordering")
    if not isinstance(ordering, list):
        raise ConnectorError("adversary profile has no atomic_ordering list", system="caldera",
                             object=f"adversary {adv_id}")
    abilities = {str(a.get("ability_id")): a for a in client.abilities()}
    existing = {s.id: s for s in load_steps(session, op.id)}
    next_order = max((s.order for s in existing.values()), default=0) + 1
    summary = ImportSummary()
    if not ordering:
        summary.warnings.append(f"adversary {adv_name!r} ({adv_id}) has no abilities")
    occurrences: dict[str, int] = {}
    previous: str | None = None
    rows: list[dict[str, Any]] = []
    for position, ref in enumerate(ordering, 1):
        aid = str(ref)
        occurrences[aid] = occurrences.get(aid, 0) + 1
        ability = abilities.get(aid)
        if ability is None:
            summary.warnings.append(f"adversary {adv_name!r} ability {position} ({aid}) is not on the Caldera "
                                    "server (skipped)")
            continue
        label = f"ability {position} {ability.get('name')!r} ({aid})"
        key: tuple[str, ...] = (adv_id, aid) if occurrences[aid] == 1 else (adv_id, aid, str(occurrences[aid]))
        sid = row_id("x-dco-step", op.id, "caldera", *key)
        tid = _caldera_technique(ability, catalog, label, summary.warnings)
        proc = caldera_procedure(ability, platforms, allowed)
        if proc is None:
            summary.warnings.append(f"{label}: no executor for {', '.join(platforms)}; kept as a manual step")
        fields: dict[str, Any] = {
            "tactic": str(ability.get("tactic") or "unknown"), "technique_id": tid,
            "technique_name": str(ability.get("technique_name") or tid),
            "procedure_name": str(ability.get("name") or aid),
            "platform": proc.platform if proc else None, "executor": proc.executor if proc else "manual",
            "command": proc.command if proc else None, "cleanup_command": proc.cleanup_command if proc else None,
            "connector": "caldera" if proc else "manual",
        }
        step = existing.get(sid)
        previous_id, previous = previous, sid
        if step is not None:
            if step.status != StepStatus.PENDING or all(getattr(step, k) == v for k, v in fields.items()):
                summary.unchanged += 1
                continue
            for k, v in fields.items():
                setattr(step, k, v)
            step.version += 1
            session.add(step)
            summary.updated += 1
            continue
        rows.append({
            "id": sid, "dco_id": op.id, "order": next_order, **fields, "source": ProcedureSource.CALDERA,
            "procedure_ref": aid, "input_arguments": {}, "depends_on": [previous_id] if previous_id else [],
            "status": StepStatus.PENDING, "candidates": [], "version": 1,
        })
        next_order += 1
        summary.created += 1
    session.flush()
    upsert(session, EmulationStep, rows, keys=("id",))
    record_event(session, op.id, actor, "emulation-caldera-adversary-imported",
                 {"adversary": adv_id, "name": adv_name, "platforms": platforms, **summary.as_dict()})
    return summary


def import_caldera_abilities(
    session: Session,
    dco_id: str,
    client: CalderaClient,
    technique_ids: Iterable[str] | None = None,
    *,
    platform: str | None = None,
    actor: str = "dcoflow",
) -> ImportSummary:
    """Give each pending step without a procedure (optionally only those of ``technique_ids``) the
    first Caldera ability of its technique with an executor for the DCO's platforms (or
    ``platform``); the others become the step's candidates. Steps that already ran are left alone.

    Matching is :meth:`CalderaClient.abilities_for`'s (same technique, an executor for the
    platform) over one ``GET /api/v2/abilities``, not one request per step."""
    op = get_operation(session, dco_id)
    platforms = _caldera_platforms(op, platform)
    allowed = op.dco.rules_of_engagement.allowed_executors
    wanted = {t.strip().upper() for t in technique_ids} if technique_ids is not None else None
    summary = ImportSummary()
    steps = [s for s in steps_without_procedure(session, op.id)
             if wanted is None or s.technique_id.upper() in wanted]
    if not steps:
        record_event(session, op.id, actor, "emulation-caldera-abilities-imported", summary.as_dict())
        return summary
    by_technique: dict[str, list[Mapping[str, Any]]] = {}
    for ability in client.abilities():
        by_technique.setdefault(str(ability.get("technique_id") or "").strip().upper(), []).append(ability)
    for step in steps:
        if step.status != StepStatus.PENDING:
            summary.unchanged += 1
            summary.warnings.append(f"step {step.order} {step.technique_id}: already {step.status.value}; "
                                    "left untouched")
            continue
        procs = [p for p in (caldera_procedure(a, platforms, allowed)
                             for a in by_technique.get(step.technique_id.upper(), [])) if p is not None]
        if not procs:
            summary.unchanged += 1
            summary.warnings.append(f"step {step.order} {step.technique_id}: no Caldera ability for "
                                    f"{', '.join(platforms)}")
            continue
        chosen = procs[0]
        step.source, step.procedure_ref, step.procedure_name = ProcedureSource.CALDERA, chosen.ability_id, chosen.name
        step.platform, step.executor, step.command = chosen.platform, chosen.executor, chosen.command
        step.cleanup_command, step.input_arguments, step.connector = chosen.cleanup_command, {}, "caldera"
        step.candidates = [{"ability_id": p.ability_id, "name": p.name, "platform": p.platform,
                            "executor": p.executor} for p in procs[1:10]]
        step.version += 1
        session.add(step)
        summary.updated += 1
    session.flush()
    record_event(session, op.id, actor, "emulation-caldera-abilities-imported",
                 {"techniques": sorted(wanted) if wanted is not None else None, "platforms": platforms,
                  **summary.as_dict()})
    return summary


# -- VECTR and Caldera reports ------------------------------------------------------------------------------


def vectr_cases(session: Session, dco_id: str) -> list[VectrTestCase]:
    op = get_operation(session, dco_id)
    by_step: dict[str, list[EmulationOutcome]] = {}
    for row in current_outcomes(session, op.id):
        by_step.setdefault(row.step_id, []).append(row)
    orgs = sorted({p.organisation for p in op.dco.participants})
    cases: list[VectrTestCase] = []
    for step in load_steps(session, op.id):
        rows = by_step.get(step.id, [])
        starts = [r.attack_start for r in rows if r.attack_start]
        stops = [r.attack_stop for r in rows if r.attack_stop]
        detections = [r.detected_at for r in rows if r.detected_at]
        severities = [r.severity for r in rows if r.severity]
        cases.append(VectrTestCase(
            assessment=op.name, campaign=op.name, name=f"{step.order}. {step.procedure_name}",
            technique_id=step.technique_id, tactic=step.tactic, method=step.technique_name,
            status="Completed" if step.status == StepStatus.DONE else "Not Performed"
            if step.status == StepStatus.SKIPPED else "In Progress",
            tool_outcomes={r.tool: r.outcome for r in rows},
            severity=max(severities, key=SEVERITY_ORDER.index).value if severities else None,
            notes=" | ".join(f"{r.tool}: {r.notes}" for r in rows if r.notes),
            target_assets=sorted({r.target_host for r in rows if r.target_host}),
            start=min(starts) if starts else None, stop=max(stops) if stops else None,
            detected_at=min(detections) if detections else None,
            operator=", ".join(sorted({r.operator for r in rows})), organizations=orgs,
            tags=[f"dco:{op.id}"], command=step.command or "", step_id=step.id,
        ))
    return cases


def export_vectr(session: Session, dco_id: str, path: Path) -> int:
    marking = MarkingFacts.of(get_operation(session, dco_id).dco.marking)
    return write_vectr_csv(path, vectr_cases(session, dco_id), marking.banner)


def import_vectr(
    session: Session, dco_id: str, path: Path, *, catalog: Catalog | None = None, actor: str = "vectr-import"
) -> ImportSummary:
    """Outcomes from a VECTR CSV: rows match steps by our step column, else by technique id and
    test case name. Rows that match no step, or carry invalid values, are reported and skipped."""
    op = get_operation(session, dco_id)
    cases, report = read_vectr_csv(path)
    summary = ImportSummary(warnings=[f"{b.location}: {b.reason}" for b in report.bad])
    steps = load_steps(session, op.id)
    for case in cases:
        step = _match_case(case, steps)
        if step is None:
            summary.warnings.append(f"test case {case.name!r} ({case.technique_id}) matches no step of {op.id}")
            continue
        for tool, outcome in sorted(case.tool_outcomes.items()):
            history = outcome_history(session, op.id, step.id, tool)
            # A VECTR row is per test case, not per tool: only the tool's verdict is authoritative,
            # so re-importing our own export changes nothing.
            if history and history[-1].outcome == outcome:
                summary.unchanged += 1
                continue
            data = {"tool": tool, "outcome": outcome.value, "severity": case.severity,
                    "attack_start": case.start, "attack_stop": case.stop,
                    "detected_at": case.detected_at if outcome != Outcome.NONE else None,
                    "operator": case.operator or actor, "target_host": ",".join(case.target_assets) or None,
                    "notes": case.notes or None}
            try:
                record_outcome(session, op.id, step.id, data, source=OutcomeSource.VECTR, catalog=catalog,
                               actor=actor)
            except ValidationError as exc:
                summary.warnings.append(f"test case {case.name!r}: {exc.message}")
                continue
            if history:
                summary.updated += 1
            else:
                summary.created += 1
    return summary


def _match_case(case: VectrTestCase, steps: Sequence[EmulationStep]) -> EmulationStep | None:
    if case.step_id:
        for s in steps:
            if s.id == case.step_id:
                return s
    same = [s for s in steps if s.technique_id.upper() == case.technique_id.upper()]
    if len(same) == 1:
        return same[0]
    named = [s for s in same if s.procedure_name.lower() in case.name.lower()]
    return named[0] if len(named) == 1 else None


def import_caldera_report(
    session: Session,
    dco_id: str,
    report: CalderaReport | Path,
    *,
    tool: str | None = None,
    outcome: Outcome | None = None,
    catalog: Catalog | None = None,
    actor: str = "caldera-import",
) -> ImportSummary:
    """Execution records from a Caldera operation report, matched to steps by ability id (then by
    technique). Caldera knows what ran, not what the defence saw: outcomes are recorded only when
    the operator gives the verdict of a ``tool`` for the operation (``outcome``)."""
    op = get_operation(session, dco_id)
    rep = load_caldera_report(report) if isinstance(report, Path) else report
    summary = ImportSummary(warnings=[f"{b.location}: {b.reason}" for b in rep.report.bad])
    steps = load_steps(session, op.id)
    # One read of the links already recorded for the DCO, not one query per link.
    recorded = {d.get("link") for d in session.exec(
        select(EmulationExecution.details).where(EmulationExecution.dco_id == op.id))}
    for link in rep.steps:
        step = next((s for s in steps if s.procedure_ref == link.ability_id), None)
        if step is None:
            same = [s for s in steps if link.technique_id and s.technique_id == link.technique_id]
            step = same[0] if len(same) == 1 else None
        if step is None:
            summary.warnings.append(f"link {link.link_id} ({link.name}, {link.technique_id}) matches no step")
            continue
        status = link.status.execution_status
        if status is None:
            summary.warnings.append(f"link {link.link_id} ({link.name}) has not finished (status {int(link.status)})")
            continue
        key = f"caldera-link:{link.link_id}"
        if key in recorded:
            summary.unchanged += 1
        else:
            recorded.add(key)
            session.add(EmulationExecution(
                dco_id=op.id, step_id=step.id, connector="caldera", status=status, marker=dco_marker(op.id),
                host=link.host or link.paw, command=link.command, exit_code=0 if status == ExecutionStatus.SUCCEEDED
                else None, stdout=link.output or "", started_at=link.delegated or utcnow(),
                finished_at=link.finished, details={"link": key, "operation": rep.name, "paw": link.paw,
                                                    "caldera_status": int(link.status)},
            ))
            session.flush()
            summary.created += 1
            if status == ExecutionStatus.SUCCEEDED and step.status == StepStatus.PENDING:
                _set_status(session, step, StepStatus.RUNNING)
        if tool and outcome is not None and status == ExecutionStatus.SUCCEEDED:
            record_outcome(session, op.id, step.id, {
                "tool": tool, "outcome": outcome.value, "operator": actor,
                "attack_start": link.delegated, "attack_stop": link.finished or link.delegated,
                "target_host": link.host or link.paw,
            }, source=OutcomeSource.CALDERA, catalog=catalog, actor=actor)
    record_event(session, op.id, actor, "emulation-caldera-imported", {"report": rep.name, **summary.as_dict()})
    return summary


# -- Prefect task wrappers (own session each) ------------------------------------------------------------------


def _deconflict_in_session(dco_id: str, step: EmulationStep, webhook_url: str | None = None,
                           webhook_secret: str | None = None) -> int:
    with session_scope() as session:
        op = get_operation(session, dco_id)
        fresh = get_step(session, op.id, step.id)
        hook = WebhookClient(webhook_url, secret=webhook_secret) if webhook_url else None
        try:
            return len(deconflict_step(session, op, fresh, webhook=hook))
        finally:
            if hook is not None:
                hook.close()


def _notify_window_in_session(dco_id: str, webhook_url: str | None = None, webhook_secret: str | None = None,
                              actor: str = "dcoflow") -> list[dict[str, Any]]:
    with session_scope() as session:
        op = get_operation(session, dco_id)
        hook = WebhookClient(webhook_url, secret=webhook_secret) if webhook_url else None
        try:
            return [{"contact": r.notified, "status": r.status, "channel": r.channel}
                    for r in notify_window(session, op, webhook=hook, actor=actor)]
        finally:
            if hook is not None:
                hook.close()


def acknowledged_in_session(dco_id: str) -> bool:
    """Whether the DCO may start live steps as far as deconfliction goes (own session; polled by the flow)."""
    with session_scope() as session:
        op = get_operation(session, dco_id)
        try:
            require_acknowledged(session, op)
        except DcoError:
            return False
        return True


def _execute_in_session(dco_id: str, step: EmulationStep, connector: str | None, dry_run: bool,
                        atomics: AtomicsIndex | None = None, executor: LocalExecutor | None = None,
                        caldera: CalderaClient | None = None, catalog: Catalog | None = None,
                        actor: str = "dcoflow") -> dict[str, Any]:
    with session_scope() as session:
        op = get_operation(session, dco_id)
        fresh = get_step(session, op.id, step.id)
        done = execute_step(session, fresh, op, connector=connector, dry_run=dry_run, atomics=atomics,
                            executor=executor, caldera=caldera, catalog=catalog, actor=actor)
        if done.preview is not None:
            return {**done.preview.as_dict(), "message": done.message, "execution": "dry-run"}
        ex = done.execution
        return {"step": done.step_id, "order": fresh.order, "technique": fresh.technique_id,
                "connector": done.connector, "status": done.status.value, "message": done.message,
                "command": ex.command if ex else None, "cleanup_command": ex.cleanup_command if ex else None,
                "exit_code": ex.exit_code if ex else None,
                "execution": ex.status.value if ex else None}


def _record_in_session(dco_id: str, step: EmulationStep, outcomes: Iterable[Mapping[str, Any]],
                       source: OutcomeSource = OutcomeSource.MANUAL, catalog: Catalog | None = None) -> list[str]:
    with session_scope() as session:
        return [f"{r.tool}={r.outcome.value} v{r.version}"
                for r in (record_outcome(session, dco_id, step.id, o, source=source, catalog=catalog)
                          for o in outcomes)]


deconflict_step_task = task(name="deconflict-step", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE,
                            retry_condition_fn=retry_when_retryable,
                            task_run_name="deconflict-{step.order}-{step.technique_id}")(_deconflict_in_session)
notify_window_task = task(name="deconflict-window", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE,
                          retry_condition_fn=retry_when_retryable)(_notify_window_in_session)
execute_step_task = task(name="execute-step", cache_policy=NO_CACHE,
                         task_run_name="step-{step.order}-{step.technique_id}")(_execute_in_session)
record_outcome_task = task(name="record-outcome", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
                           retry_condition_fn=retry_when_retryable,
                           task_run_name="outcome-{step.order}-{step.technique_id}")(_record_in_session)


def normalise_connector(name: str) -> str:
    key = name.strip().lower()
    return {"atomic": "local", "sh": "local", "bash": "local"}.get(key, key)


def _export_vectr_file(dco: str, output_dir: str) -> str:
    """``<output_dir>/<dco>-vectr.csv``: the DCO's outcomes as a VECTR campaign (the lifecycle's export)."""
    from dcoflow.core.db import session_scope

    with session_scope() as session:
        dco_id = get_operation(session, dco).id
        path = Path(output_dir) / f"{dco_id}-vectr.csv"
        export_vectr(session, dco_id, path)
    return str(path)


export_vectr_task = task(name="export-vectr",
                         retry_condition_fn=retry_when_retryable, retries=1, cache_policy=NO_CACHE)(_export_vectr_file)
