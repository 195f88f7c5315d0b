"""Moving outcomes in and out: VECTR campaign CSV (export and import) and Caldera operation reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlmodel import Session

from dcoflow.connectors.content.caldera_report import CalderaReport, load_caldera_report
from dcoflow.connectors.content.vectr import VectrTestCase, read_vectr_csv, write_vectr_csv
from dcoflow.core.errors import (
    ValidationError,
)
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.emulation import (
    EmulationExecution,
    EmulationOutcome,
    ExecutionStatus,
    ImportSummary,
    Outcome,
    OutcomeSource,
    Severity,
    dco_marker,
)
from dcoflow.models.marking import MarkingFacts
from dcoflow.models.operation import utcnow
from dcoflow.models.plan import EmulationStep, StepStatus
from dcoflow.models.repository.emulation import (
    current_outcomes,
    latest_executions,
    load_steps,
    outcome_history,
    recorded_links,
    set_status,
)
from dcoflow.models.repository.operation import get_operation, record_event
from dcoflow.tasks.conduct.emulation.outcomes import Prior, record_outcome

SEVERITY_ORDER = list(Severity)


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
    # Every outcome version and every step's latest execution in two reads, not a few queries per row.
    versions: dict[tuple[str, str], list[EmulationOutcome]] = {}
    for row in outcome_history(session, op.id):
        versions.setdefault((row.step_id, row.tool), []).append(row)
    runs = latest_executions(session, op.id)
    for case in cases:
        step = _match_case(case, steps)
        if step is None:
            summary.warnings.append(f"test case {case.name!r} ({case.technique_id}) matches no step of {op.id}")
            continue
        for tool, outcome in sorted(case.tool_outcomes.items()):
            history = versions.setdefault((step.id, tool), [])
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
                row = record_outcome(session, op.id, step.id, data, source=OutcomeSource.VECTR, catalog=catalog,
                                     actor=actor, prior=Prior(history, runs.get(step.id)))
            except ValidationError as exc:
                summary.warnings.append(f"test case {case.name!r}: {exc.message}")
                continue
            if history:
                summary.updated += 1
            else:
                summary.created += 1
            if not history or history[-1].id != row.id:
                history.append(row)  # a later row of the file for the same step and tool sees this one
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
    recorded = recorded_links(session, op.id)  # one read, not one query per link
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
                set_status(session, step, StepStatus.RUNNING)
        if tool and outcome is not None and status == ExecutionStatus.SUCCEEDED:
            record_outcome(session, op.id, step.id, {
                "tool": tool, "outcome": outcome.value, "operator": actor,
                "attack_start": link.delegated, "attack_stop": link.finished or link.delegated,
                "target_host": link.host or link.paw,
            }, source=OutcomeSource.CALDERA, catalog=catalog, actor=actor)
    record_event(session, op.id, actor, "emulation-caldera-imported", {"report": rep.name, **summary.as_dict()})
    return summary
