"""Importing procedures into a DCO's plan, from Atomic Red Team, CTID emulation plans and Caldera (its REST
API). Two shapes, each built once: *filling* gives pending steps without a procedure the first fitting
procedure (atomics, Caldera abilities), *appending* adds a source's ordered chain of steps, each depending
on the one before (a CTID plan, a Caldera adversary profile). Writes are idempotent: step ids are
``x-dco-step`` over the DCO, the source and its natural key."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from dcoflow.connectors.caldera import CalderaClient
from dcoflow.connectors.content.atomics import AtomicsIndex
from dcoflow.core.db import upsert
from dcoflow.core.errors import ConnectorError
from dcoflow.models.attack.catalog import TECHNIQUE_ID, Catalog
from dcoflow.models.emulation import ImportSummary, current_technique
from dcoflow.models.operation import Operation
from dcoflow.models.plan import EmulationStep, ProcedureSource, StepStatus
from dcoflow.models.procedures import CtidPlan
from dcoflow.models.repository.emulation import load_steps, steps_without_procedure
from dcoflow.models.repository.operation import get_operation, record_event
from dcoflow.models.stix.ids import row_id

# -- the two builders ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Procedure:
    """One procedure that can fill a step: what it runs, where, and how it is listed among candidates."""

    source: ProcedureSource
    ref: str
    name: str
    platform: str | None
    executor: str
    command: str | None
    cleanup_command: str | None
    listing: dict[str, Any]
    input_arguments: dict[str, Any] = field(default_factory=dict)
    connector: str | None = None  # None: the step keeps its connector


def fill_steps(session: Session, steps: Iterable[EmulationStep], choices: Callable[[EmulationStep], list[Procedure]],
               summary: ImportSummary, none_found: Callable[[EmulationStep], str]) -> None:
    """Give each pending step the first of its ``choices`` (the next nine become its candidates). A step
    that already ran, or that nothing fits (``none_found`` says why), is left alone and reported."""
    for step in steps:
        if step.status != StepStatus.PENDING:
            summary.unchanged += 1
            summary.warnings.append(f"step {step.order} {step.technique_id}: already {step.status.value}; "
                                    "left untouched")
            continue
        procs = choices(step)
        if not procs:
            summary.unchanged += 1
            summary.warnings.append(none_found(step))
            continue
        chosen = procs[0]
        step.source, step.procedure_ref, step.procedure_name = chosen.source, chosen.ref, chosen.name
        step.platform = chosen.platform or step.platform
        step.executor, step.command, step.cleanup_command = chosen.executor, chosen.command, chosen.cleanup_command
        step.input_arguments = dict(chosen.input_arguments)
        step.connector = chosen.connector or step.connector
        step.candidates = [p.listing for p in procs[1:10]]
        step.version += 1
        session.add(step)
        summary.updated += 1


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One step of a chain a source appends: its id, what the source says the step is (``fields``, compared
    and refreshed), what is set only when it is created, and a warning that matters only then."""

    step_id: str
    fields: dict[str, Any]
    procedure_ref: str
    input_arguments: dict[str, Any] = field(default_factory=dict)
    warning_if_new: str | None = None


def append_chain(session: Session, op: Operation, source: ProcedureSource, links: Iterable[ChainLink],
                 summary: ImportSummary, *, refresh: bool) -> None:
    """Append ``links`` after the plan's last step, in order, each depending on the one before. A link whose
    step exists is unchanged, unless ``refresh`` and the step is still pending and differs: then it is
    updated (a new version). So importing the same chain twice creates nothing."""
    existing = {s.id: s for s in load_steps(session, op.id)}
    next_order = max((s.order for s in existing.values()), default=0) + 1
    previous: str | None = None
    rows: list[dict[str, Any]] = []
    for link in links:
        step = existing.get(link.step_id)
        previous_id, previous = previous, link.step_id
        if step is not None:
            if (not refresh or step.status != StepStatus.PENDING
                    or all(getattr(step, k) == v for k, v in link.fields.items())):
                summary.unchanged += 1
                continue
            for k, v in link.fields.items():
                setattr(step, k, v)
            step.version += 1
            session.add(step)
            summary.updated += 1
            continue
        if link.warning_if_new:
            summary.warnings.append(link.warning_if_new)
        rows.append({
            "id": link.step_id, "dco_id": op.id, "order": next_order, **link.fields, "source": source,
            "procedure_ref": link.procedure_ref, "input_arguments": link.input_arguments,
            "depends_on": [previous_id] if previous_id else [], "status": StepStatus.PENDING, "candidates": [],
            "version": 1,
        })
        next_order += 1
        summary.created += 1
    session.flush()
    upsert(session, EmulationStep, rows, keys=("id",))


def _resolved(tid: str, catalog: Catalog | None, label: str, warnings: list[str]) -> str:
    """``tid`` as the catalog's current id (revoked ids follow their replacement); an id the catalog does not
    know is kept and reported."""
    if catalog is None:
        return tid
    tech = current_technique(catalog, tid)
    if tech is not None:
        return tech.attack_id
    warnings.append(f"{label}: technique {tid} is not in ATT&CK {catalog.version} (kept)")
    return tid


# -- Atomic Red Team and CTID plans -------------------------------------------------------------------


def import_atomics_into_plan(
    session: Session, dco_id: str, atomics: AtomicsIndex, *, actor: str = "dcoflow"
) -> ImportSummary:
    """Give every pending step without a procedure the first atomic that fits the DCO's
    platforms and allowed executors (e.g. after updating the atomics checkout)."""
    op = get_operation(session, dco_id)
    platforms = [p.value for p in op.dco.scope.platforms]
    allowed = {e.lower() for e in op.dco.rules_of_engagement.allowed_executors}

    def choices(step: EmulationStep) -> list[Procedure]:
        return [Procedure(
            source=ProcedureSource.ATOMIC, ref=t.guid, name=t.name,
            platform=next((p for p in platforms if t.supports(p)), None), executor=t.executor, command=t.command,
            cleanup_command=t.cleanup_command, input_arguments={k: a.default for k, a in t.input_arguments.items()},
            listing={"guid": t.guid, "name": t.name, "executor": t.executor},
        ) for t in atomics.for_technique(step.technique_id, platforms) if t.executor in allowed and t.command]

    summary = ImportSummary()
    fill_steps(session, steps_without_procedure(session, op.id), choices, summary,
               lambda s: f"step {s.order} {s.technique_id}: no atomic for {', '.join(platforms)} "
                         "with an allowed executor")
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
    summary = ImportSummary(warnings=list(plan.warnings))
    links: list[ChainLink] = []
    for cstep in plan.steps:
        tid = _resolved(cstep.technique_id, catalog, cstep.label, summary.warnings) if cstep.is_technique \
            else cstep.technique_id
        platform, executor, command, cleanup = cstep.choose(platforms, allowed)
        links.append(ChainLink(
            step_id=row_id("x-dco-step", op.id, "ctid", cstep.id), procedure_ref=cstep.id,
            fields={"tactic": cstep.tactic or "unknown", "technique_id": tid, "technique_name": cstep.technique_name,
                    "procedure_name": cstep.name, "platform": platform, "executor": executor or "manual",
                    "command": command, "cleanup_command": cleanup, "connector": "manual"},
            input_arguments={k: a.default for k, a in cstep.input_arguments.items()},
            warning_if_new=None if platform is not None else
            f"{cstep.label}: no command for the DCO's platforms ({', '.join(platforms)}); kept as a manual step",
        ))
    append_chain(session, op, ProcedureSource.CTID, links, summary, refresh=False)
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
    return _resolved(tid, catalog, label, warnings)


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
    summary = ImportSummary()
    if not ordering:
        summary.warnings.append(f"adversary {adv_name!r} ({adv_id}) has no abilities")
    occurrences: dict[str, int] = {}
    links: list[ChainLink] = []
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
        tid = _caldera_technique(ability, catalog, label, summary.warnings)
        proc = caldera_procedure(ability, platforms, allowed)
        if proc is None:
            summary.warnings.append(f"{label}: no executor for {', '.join(platforms)}; kept as a manual step")
        links.append(ChainLink(
            step_id=row_id("x-dco-step", op.id, "caldera", *key), procedure_ref=aid,
            fields={"tactic": str(ability.get("tactic") or "unknown"), "technique_id": tid,
                    "technique_name": str(ability.get("technique_name") or tid),
                    "procedure_name": str(ability.get("name") or aid),
                    "platform": proc.platform if proc else None, "executor": proc.executor if proc else "manual",
                    "command": proc.command if proc else None,
                    "cleanup_command": proc.cleanup_command if proc else None,
                    "connector": "caldera" if proc else "manual"},
        ))
    append_chain(session, op, ProcedureSource.CALDERA, links, summary, refresh=True)
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

    def choices(step: EmulationStep) -> list[Procedure]:
        procs = [p for p in (caldera_procedure(a, platforms, allowed)
                             for a in by_technique.get(step.technique_id.upper(), [])) if p is not None]
        return [Procedure(source=ProcedureSource.CALDERA, ref=p.ability_id, name=p.name, platform=p.platform,
                          executor=p.executor, command=p.command, cleanup_command=p.cleanup_command,
                          connector="caldera", listing={"ability_id": p.ability_id, "name": p.name,
                                                        "platform": p.platform, "executor": p.executor})
                for p in procs]

    fill_steps(session, steps, choices, summary,
               lambda s: f"step {s.order} {s.technique_id}: no Caldera ability for {', '.join(platforms)}")
    session.flush()
    record_event(session, op.id, actor, "emulation-caldera-abilities-imported",
                 {"techniques": sorted(wanted) if wanted is not None else None, "platforms": platforms,
                  **summary.as_dict()})
    return summary
