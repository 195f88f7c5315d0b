"""One function per emulation action a person takes, shared by the ``conduct-emulation`` flow and
``dco emulate``: preview the plan, start a live run, run a step, record outcomes, skip a step, mark a
step destructive, import procedures into the plan, and exchange outcomes with VECTR and Caldera.

Each opens its own session, loads the DCO once, takes its clients from a
:class:`~dcoflow.connectors.registry.ConnectorRegistry` (built from settings when none is given) and
returns plain data the flow can keep as a result and the CLI can print. The conduct gate and the rules
of engagement are checked inside ``execute_step``, so every path that runs something passes them.
Prefect task wrappers for the flow are at the bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from dcoflow.connectors.content.atomics import AtomicsIndex, load_atomics
from dcoflow.connectors.content.ctid import load_ctid_plan
from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.db import session_scope
from dcoflow.core.errors import DcoError, ExecutionError, StateError, ValidationError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.emulation import ImportSummary, Outcome, OutcomeInput, OutcomeSource
from dcoflow.models.operation import Operation
from dcoflow.models.plan import EmulationStep, StepStatus
from dcoflow.models.procedures import CtidPlan
from dcoflow.models.repository.emulation import (
    current_outcomes,
    get_step,
    last_refusals,
    latest_execution,
    load_steps,
    set_status,
)
from dcoflow.models.repository.operation import get_operation, record_event
from dcoflow.tasks.conduct.deconfliction import (
    ACKNOWLEDGED,
    MONITORING,
    notify_window,
    require_acknowledged,
    window_notices,
)
from dcoflow.tasks.conduct.emulation import exchange, plan_import
from dcoflow.tasks.conduct.emulation.outcomes import record_outcome
from dcoflow.tasks.conduct.emulation.steps import (
    check_conduct,
    deconflict_step,
    execute_step,
    mark_destructive,
    preview_emulation,
)
from dcoflow.tasks.plan.planning import resolve_plan_path
from dcoflow.tasks.retry import retry_when_retryable

T = TypeVar("T")


def _registry(registry: ConnectorRegistry | None) -> ConnectorRegistry:
    return registry or ConnectorRegistry.from_settings()


def _procedures(op: Operation, reg: ConnectorRegistry,
                atomics: AtomicsIndex | None) -> tuple[AtomicsIndex | None, CtidPlan | None]:
    """The atomics index (the edge's, else the configured checkout) and the DCO's CTID plan, read once for
    a run: the steps' own elevation flags come from them. What cannot be read is None, and its steps then
    count as needing elevation."""
    if atomics is None:
        try:
            atomics = load_atomics(reg.settings.content_path("atomics"))
        except DcoError:
            atomics = None
    try:
        path = resolve_plan_path(op.dco, reg.settings)
        ctid = load_ctid_plan(path) if path is not None else None
    except DcoError:
        ctid = None
    return atomics, ctid


# -- conducting -------------------------------------------------------------------------------------


def list_steps(dco: str) -> tuple[str, list[dict[str, Any]]]:
    """The DCO's id and its steps in order, each with its status, current outcome per tool and, for a
    failed step, the rules of engagement's latest refusal."""
    with session_scope() as session:
        op = get_operation(session, dco)
        outcomes: dict[str, list[str]] = {}
        for row in current_outcomes(session, op.id):
            outcomes.setdefault(row.step_id, []).append(f"{row.tool}={row.outcome.value}")
        refused = last_refusals(session, op.id)
        return op.id, [{
            "id": s.id, "order": s.order, "tactic": s.tactic, "technique": s.technique_id,
            "procedure": s.procedure_name, "source": s.source.value, "executor": s.executor,
            "connector": s.connector, "status": s.status.value, "version": s.version, "depends_on": s.depends_on,
            "outcomes": outcomes.get(s.id, []), "refused": refused.get(s.id) if s.status == StepStatus.FAILED else None,
        } for s in load_steps(session, op.id)]


def preview_plan(dco: str, *, connector_default: str = "manual", atomics: AtomicsIndex | None = None,
                 catalog: Catalog | None = None, registry: ConnectorRegistry | None = None) -> dict[str, Any]:
    """A dry run of the whole plan, in any state, writing nothing: per step the exact commands, where, as
    whom, and the rules of engagement's verdict."""
    reg = _registry(registry)
    with session_scope() as session:
        op = get_operation(session, dco)
        executor = reg.local_executor(op.id, op.dco.rules_of_engagement, op.dco.scope)
        index, ctid = _procedures(op, reg, atomics)
        steps = [p.as_dict() for p in preview_emulation(session, op.id, connector_default=connector_default,
                                                         atomics=index, ctid=ctid, catalog=catalog,
                                                         executor=executor)]
        state = op.state.value
        dco_id = op.id
    verdicts: dict[str, int] = {}
    for p in steps:
        verdicts[p["verdict"]] = verdicts.get(p["verdict"], 0) + 1
    return {"dco": dco_id, "state": state, "dry_run": True, "steps": steps, "status_counts": verdicts}


def start_live_run(dco: str) -> tuple[str, list[EmulationStep]]:
    """The DCO's id and its steps in order, once it passes the conduct gate (before any notice goes out)."""
    with session_scope() as session:
        op = get_operation(session, dco)
        check_conduct(op, "emulation")
        return op.id, load_steps(session, op.id)


def announce_window(dco: str, *, actor: str = "dcoflow",
                    registry: ConnectorRegistry | None = None) -> list[dict[str, Any]]:
    """Send (once) the DCO's window notice to its deconfliction contacts (webhook when configured, always the
    inbox) before the first live step."""
    reg = _registry(registry)
    with ExitStack() as stack, session_scope() as session:
        op = get_operation(session, dco)
        hook = stack.enter_context(reg.webhook()) if reg.webhook_configured else None
        return [{"contact": r.notified, "status": r.status, "channel": r.channel}
                for r in _committing(session, lambda: notify_window(session, op, webhook=hook, actor=actor))]


def deconfliction_acknowledged(dco: str) -> bool:
    """Whether the DCO may start live steps as far as deconfliction goes (polled by the flow)."""
    with session_scope() as session:
        try:
            require_acknowledged(session, get_operation(session, dco))
        except DcoError:
            return False
        return True


def require_deconfliction_ack(dco: str) -> None:
    """GateError naming who must acknowledge, unless the rules of engagement need no answer or it came."""
    with session_scope() as session:
        require_acknowledged(session, get_operation(session, dco))


def step_status(dco: str, step: str) -> StepStatus:
    with session_scope() as session:
        return get_step(session, get_operation(session, dco).id, step).status


def run_step(
    dco: str,
    step: str,
    *,
    connector: str | None = None,
    dry_run: bool = False,
    actor: str = "dcoflow",
    atomics: AtomicsIndex | None = None,
    catalog: Catalog | None = None,
    registry: ConnectorRegistry | None = None,
) -> dict[str, Any]:
    """Run one step (by id, order or technique) with ``connector`` (default: the step's own).

    A dry run writes nothing and shows what would run. A live run passes the conduct gate, sends the
    window notice when no run has yet, tells the deconfliction contacts about the step, then runs it
    under the rules of engagement; a step that already ran is not run again (it waits for its
    outcomes). A refusal or a failed notice is stored before the error is raised, so the record says
    why the step did not run."""
    reg = _registry(registry)
    with ExitStack() as stack, session_scope() as session:
        op = get_operation(session, dco)
        row = get_step(session, op.id, step)
        chosen = (connector or row.connector or "manual").lower()
        base = {"step": row.id, "order": row.order, "technique": row.technique_id, "connector": chosen}
        if not dry_run and row.status != StepStatus.PENDING and latest_execution(session, op.id, row.id):
            return {**base, "status": row.status.value, "message": "ran before; awaiting outcomes",
                    "execution": None}
        executor = reg.local_executor(op.id, op.dco.rules_of_engagement, op.dco.scope)
        caldera = (stack.enter_context(reg.caldera())
                   if chosen == "caldera" and not dry_run and reg.caldera_configured else None)
        if not dry_run:
            check_conduct(op, f"step {row.order} ({row.technique_id})")  # before anyone is told anything
            hook = stack.enter_context(reg.webhook()) if reg.webhook_configured else None
            if not _window_announced(session, op):  # the flow announced it already; a lone step does it here
                _committing(session, lambda: notify_window(session, op, webhook=hook, actor=actor))
                session.commit()  # the notice went out: keep its record whatever happens next
            require_acknowledged(session, op)
            _committing(session, lambda: deconflict_step(session, op, row, webhook=hook, actor=actor))
        index, ctid = _procedures(op, reg, atomics)
        done = _committing(session, lambda: execute_step(
            session, row, op, connector=chosen, dry_run=dry_run, executor=executor, caldera=caldera,
            atomics=index, ctid=ctid, catalog=catalog, actor=actor))
        if done.preview is not None:
            return {**done.preview.as_dict(), "message": done.message, "execution": "dry-run"}
        ex = done.execution
        return {**base, "status": done.status.value, "message": done.message,
                "command": ex.command if ex else None, "cleanup_command": ex.cleanup_command if ex else None,
                "exit_code": ex.exit_code if ex else None, "execution": ex.status.value if ex else None}


def _window_announced(session: Session, op: Operation) -> bool:
    """Whether every deconfliction contact has the DCO's window notice (sent, recorded or acknowledged)."""
    told = {r.notified for r in window_notices(session, op.id) if r.status in ("sent", "recorded", ACKNOWLEDGED)}
    return set(op.dco.rules_of_engagement.deconfliction_contacts or [MONITORING]) <= told


def _committing(session: Session, call: Callable[[], T]) -> T:
    """``call()``; when it raises ExecutionError, what it stored first (a refusal, a failed notice) is
    committed before the error goes on: the record must say why a step did not run."""
    try:
        return call()
    except ExecutionError:
        session.commit()
        raise


def record_outcomes(
    dco: str,
    step: str,
    outcomes: Iterable[Mapping[str, Any]],
    *,
    source: OutcomeSource = OutcomeSource.MANUAL,
    catalog: Catalog | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Record each defensive tool's outcome for one step, all or none: every answer is checked before
    anything is written. A correction is a new version; identical input changes nothing."""
    with session_scope() as session:
        op = get_operation(session, dco)
        row = get_step(session, op.id, step)
        given = [OutcomeInput.parse(row.id, dict(o)) for o in outcomes]
        out = []
        for item in given:
            rec = record_outcome(session, op.id, row.id, item, source=source, catalog=catalog, actor=actor)
            out.append({"step": rec.step_id, "tool": rec.tool, "outcome": rec.outcome.value, "version": rec.version,
                        "sighting": rec.sighting_id})
        return out


def skip_step(dco: str, step: str, *, by: str, reason: str | None = None) -> dict[str, Any]:
    """An operator's decision not to run a step: the step becomes skipped (steps after it may go on), its
    version moves on and the audit log says who and why. A step with outcomes cannot be skipped."""
    who = by.strip()
    if not who:
        raise ValidationError("skipping a step needs the name of who decides", field="by", object=f"step {step}")
    with session_scope() as session:
        op = get_operation(session, dco)
        row = get_step(session, op.id, step)
        if row.status == StepStatus.DONE:
            raise StateError(f"step {row.id} has outcomes recorded; it cannot be skipped", system="emulation",
                             object=f"step {row.id} of DCO {op.id}",
                             hint="record a corrected outcome instead (dco emulate record)")
        if row.status != StepStatus.SKIPPED:
            set_status(session, row, StepStatus.SKIPPED)
            record_event(session, op.id, who, "emulation-skipped",
                         {"step": row.id, "technique": row.technique_id, "reason": (reason or "").strip() or None})
        return {"step": row.id, "order": row.order, "technique": row.technique_id, "status": row.status.value,
                "version": row.version, "message": f"skipped by {who}"}


def mark_step_destructive(dco: str, step: str, destructive: bool, *, by: str, reason: str) -> dict[str, Any]:
    """An operator's call on whether a step is destructive, audited with who and why."""
    with session_scope() as session:
        ev = mark_destructive(session, dco, step, destructive, actor=by, reason=reason)
        return {"step": ev.details["step"], "destructive": destructive, "by": ev.actor}


# -- importing procedures into the plan -------------------------------------------------------------


def import_atomics(dco: str, atomics: AtomicsIndex, *, actor: str = "dcoflow") -> ImportSummary:
    with session_scope() as session:
        return plan_import.import_atomics_into_plan(session, dco, atomics, actor=actor)


def import_ctid(dco: str, plan: Path, *, catalog: Catalog | None = None, actor: str = "dcoflow") -> ImportSummary:
    with session_scope() as session:
        return plan_import.import_ctid_plan(session, dco, load_ctid_plan(plan), catalog=catalog, actor=actor)


def import_caldera_adversary(dco: str, adversary_id: str, *, platform: str | None = None,
                             catalog: Catalog | None = None, actor: str = "dcoflow",
                             registry: ConnectorRegistry | None = None) -> ImportSummary:
    """A Caldera adversary profile's abilities appended to the DCO's plan, in its order."""
    with _registry(registry).caldera() as client, session_scope() as session:
        return plan_import.import_caldera_adversary(session, dco, client, adversary_id, platform=platform,
                                                    catalog=catalog, actor=actor)


def import_caldera_abilities(dco: str, technique_ids: Sequence[str] | None = None, *, platform: str | None = None,
                             actor: str = "dcoflow", registry: ConnectorRegistry | None = None) -> ImportSummary:
    """Pending steps without a procedure given a matching Caldera ability."""
    with _registry(registry).caldera() as client, session_scope() as session:
        return plan_import.import_caldera_abilities(session, dco, client, technique_ids, platform=platform,
                                                    actor=actor)


# -- exchange ---------------------------------------------------------------------------------------


def export_vectr(dco: str, path: Path) -> tuple[str, int]:
    """The DCO's outcomes as a VECTR campaign CSV at ``path``: (DCO id, test cases written)."""
    with session_scope() as session:
        dco_id = get_operation(session, dco).id
        return dco_id, exchange.export_vectr(session, dco_id, path)


def import_vectr(dco: str, path: Path, *, catalog: Catalog | None = None, actor: str = "vectr-import") -> ImportSummary:
    with session_scope() as session:
        return exchange.import_vectr(session, dco, path, catalog=catalog, actor=actor)


def import_caldera_report(dco: str, report: Path, *, tool: str | None = None, outcome: Outcome | None = None,
                          catalog: Catalog | None = None, actor: str = "caldera-import") -> ImportSummary:
    with session_scope() as session:
        return exchange.import_caldera_report(session, dco, report, tool=tool, outcome=outcome, catalog=catalog,
                                              actor=actor)


# -- Prefect task wrappers ----------------------------------------------------------------------------


def _export_vectr_file(dco: str, output_dir: str) -> str:
    """``<output_dir>/<dco>-vectr.csv``: the DCO's outcomes as a VECTR campaign (the lifecycle's export)."""
    with session_scope() as session:
        dco_id = get_operation(session, dco).id
        path = Path(output_dir) / f"{dco_id}-vectr.csv"
        exchange.export_vectr(session, dco_id, path)
    return str(path)


announce_window_task = task(name="deconflict-window", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE,
                            retry_condition_fn=retry_when_retryable)(announce_window)
# No retries: a step that ran must not run twice (the flow's re-run resumes from the stored status instead).
run_step_task = task(name="run-step", cache_policy=NO_CACHE, task_run_name="step-{step}")(run_step)
record_outcomes_task = task(name="record-outcome", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
                            retry_condition_fn=retry_when_retryable,
                            task_run_name="outcome-{step}")(record_outcomes)
skip_step_task = task(name="skip-step", cache_policy=NO_CACHE, task_run_name="skip-{step}")(skip_step)
export_vectr_task = task(name="export-vectr", retry_condition_fn=retry_when_retryable, retries=1,
                         cache_policy=NO_CACHE)(_export_vectr_file)
