"""Planning work: load the content a plan needs, make the plan, store it, export it.

The steps of the plan action (``tasks/plan/actions.py`` puts them together). Settings come in as a value
from the edge (CLI command or flow entry); the SQL is in ``models/repository/plan.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from dcoflow.connectors.content.atomics import AtomicsIndex, load_atomics
from dcoflow.connectors.content.ctid import load_ctid_plan
from dcoflow.connectors.content.revisions import content_revision
from dcoflow.connectors.content.sigma_rules import RuleIndex, load_rule_index
from dcoflow.core.errors import ConfigError
from dcoflow.core.settings import Settings
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.marking import MarkingFacts, mark_json, mark_layer
from dcoflow.models.navigator import planned_layer
from dcoflow.models.operation import DcoSpec, DcoState, Operation
from dcoflow.models.plan import EmulationStep, HuntHypothesis, PlanRecord
from dcoflow.models.planning import (
    TechniqueSelection,
    emulation_steps,
    hunt_hypotheses,
    select_techniques,
    summarise,
)
from dcoflow.models.procedures import CtidPlan
from dcoflow.models.repository.operation import record_event, transition
from dcoflow.models.repository.plan import replace_plan

SIGMA_RULE_FOLDERS = ("rules", "rules-threat-hunting", "rules-emerging-threats")


@dataclass(slots=True)
class Plan:
    """A DCO's plan before it is stored."""

    dco_id: str
    spec: DcoSpec
    selection: TechniqueSelection
    steps: list[EmulationStep]
    hypotheses: list[HuntHypothesis]
    summary: dict[str, Any]
    attack: dict[str, str] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return self.selection.warnings


def load_content(settings: Settings) -> tuple[AtomicsIndex | None, RuleIndex | None, list[str]]:
    """The atomics and Sigma indexes for planning; a missing content part is a warning, not a failure,
    so a hunt-only cell without an atomics checkout can still plan."""
    warnings: list[str] = []
    atomics: AtomicsIndex | None = None
    rules: RuleIndex | None = None
    try:
        base = settings.content_path("atomics")
        atomics = load_atomics(base / "atomics" if (base / "atomics").is_dir() else base)
    except ConfigError as exc:
        warnings.append(f"no atomics: {exc.message}")
    try:
        sigma = settings.content_path("sigma")
        folders = [sigma / f for f in SIGMA_RULE_FOLDERS if (sigma / f).is_dir()] or [sigma]
        rules = load_rule_index(folders)
    except ConfigError as exc:
        warnings.append(f"no Sigma rules: {exc.message}")
    return atomics, rules, warnings


def resolve_plan_path(spec: DcoSpec, settings: Settings) -> Path | None:
    """A CTID plan path as written, or relative to the emulation-library content folder."""
    ref = spec.threat_profile.emulation_plan
    if not ref:
        return None
    path = Path(ref).expanduser()
    if path.exists():
        return path
    candidate = settings.content_path("emulation-library") / ref
    return candidate if candidate.exists() else path  # load_ctid_plan reports the missing file


def load_ctid(spec: DcoSpec, settings: Settings) -> CtidPlan | None:
    """The CTID emulation plan the threat profile names, if any."""
    path = resolve_plan_path(spec, settings)
    return load_ctid_plan(path) if path is not None else None


def check_threat_profile(spec: DcoSpec, catalog: Catalog) -> list[str]:
    """What planning would say about ``spec``'s threat profile, said when the DCO is created: an unknown
    group, campaign or software is a ValidationError naming the field with close matches; ids from other
    ATT&CK releases come back as warnings. Returns the warnings."""
    return select_techniques(spec, catalog).warnings


def make_plan(
    dco_id: str,
    spec: DcoSpec,
    catalog: Catalog,
    atomics: AtomicsIndex | None,
    rules: RuleIndex | None,
    ctid: CtidPlan | None = None,
) -> Plan:
    selection = select_techniques(spec, catalog, ctid)
    steps = emulation_steps(dco_id, spec, selection, catalog, atomics, ctid) if spec.type.emulates else []
    hypotheses = hunt_hypotheses(dco_id, selection, catalog, rules) if spec.type.hunts else []
    return Plan(
        dco_id=dco_id,
        spec=spec,
        selection=selection,
        steps=steps,
        hypotheses=hypotheses,
        summary=summarise(selection, steps, hypotheses),
        attack={"domain": catalog.domain, "version": catalog.version, "hash": catalog.content_hash},
    )


def store_plan(session: Session, plan: Plan, actor: str, *, op: Operation | None = None,
               content: Mapping[str, str] | None = None) -> PlanRecord:
    """Upsert the plan (``replace_plan``: started steps kept) and move the DCO to planned.

    ``op``: the DCO row when the caller has it already (else read by ``plan.dco_id``); ``content``: the Sigma and
    atomics revisions the plan was made from (``content_revisions``), recorded for the plan document."""
    op = op or session.get(Operation, plan.dco_id)
    if op is None:
        raise ConfigError("store the DCO before planning it", object=plan.dco_id)
    record = replace_plan(session, plan.dco_id, plan.steps, plan.hypotheses, PlanRecord(
        dco_id=plan.dco_id,
        attack_domain=plan.attack["domain"],
        attack_version=plan.attack["version"],
        attack_hash=plan.attack["hash"],
        techniques=sorted(plan.selection.techniques),
        summary={**plan.summary, "content": dict(content or {})},
        warnings=plan.warnings,
    ))
    record_event(session, plan.dco_id, actor, "plan", {"summary": plan.summary, "warnings": plan.warnings[:50]})
    if op.state in (DcoState.DRAFT, DcoState.PLANNED, DcoState.APPROVED):
        transition(session, op, DcoState.PLANNED, actor, "plan made" if op.state != DcoState.APPROVED else "re-planned")
    return record


def content_revisions(settings: Settings) -> dict[str, str]:
    """The Sigma and atomics revisions the plan was made from (its document's sustainment paragraph)."""
    out: dict[str, str] = {}
    for part in ("sigma", "atomics"):
        try:
            out[part] = content_revision(settings.content_path(part))
        except ConfigError:
            out[part] = "no content folder configured"
    return out


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as one JSON document (the export and the CLI's --json)."""
    return {
        "dco": plan.dco_id,
        "name": plan.spec.name,
        "type": plan.spec.type.value,
        "attack": plan.attack,
        "summary": plan.summary,
        "warnings": plan.warnings,
        "techniques": [
            {"id": t.attack_id, "name": t.name, "tactics": t.tactics, "known": t.known, "reasons": t.reasons}
            for t in plan.selection.techniques.values()
        ],
        "emulation_plan": [s.model_dump(mode="json", exclude={"version"}) for s in plan.steps],
        "hunt_plan": [h.model_dump(mode="json", exclude={"version"}) for h in plan.hypotheses],
    }


def export_plan(plan: Plan, out_dir: Path) -> list[Path]:
    """Write the plan JSON and a Navigator layer (4.5) of the planned techniques."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plan_path = out_dir / f"{plan.dco_id}-plan.json"
    marking = MarkingFacts.of(plan.spec.marking)
    plan_path.write_text(json.dumps(mark_json(plan_document(plan), marking), indent=2, default=str), encoding="utf-8")
    layer = planned_layer(
        name=f"{plan.spec.name} — planned techniques",
        catalog_version=plan.attack["version"],
        technique_ids=[t for t, p in plan.selection.techniques.items() if p.known],
        description=plan.spec.objective,
    )
    layer_path = out_dir / f"{plan.dco_id}-planned-layer.json"
    layer_path.write_text(json.dumps(mark_layer(layer, marking), indent=2), encoding="utf-8")
    return [plan_path, layer_path]


def plan_markdown(plan: Plan, limit: int = 60) -> str:
    s = plan.summary
    lines = [
        f"# Plan — {plan.spec.name}",
        "",
        f"*{plan.spec.type.value}* · ATT&CK {plan.attack['domain']} {plan.attack['version']} · "
        f"{s['techniques']} techniques · {s['emulation_steps']} emulation steps · {s['hypotheses']} hypotheses · "
        f"{s['sigma_rules']} Sigma rules",
        "",
        "| tactic | techniques |",
        "|---|---|",
        *[f"| {t} | {n} |" for t, n in s["by_tactic"].items()],
        "",
    ]
    if plan.steps:
        lines += ["## Emulation steps", "", "| # | tactic | technique | procedure | executor |"]
        lines += ["|---|---|---|---|---|"]
        lines += [
            f"| {st.order} | {st.tactic} | {st.technique_id} {st.technique_name} | {st.procedure_name} | "
            f"{st.executor or ''} |"
            for st in plan.steps[:limit]
        ]
        lines.append("")
    if plan.hypotheses:
        lines += ["## Hunt hypotheses", "", "| technique | data components | Sigma rules |", "|---|---|---|"]
        lines += [
            f"| {h.technique_id} {h.technique_name} | {', '.join(h.data_components[:3])} | {len(h.sigma_rules)} |"
            for h in plan.hypotheses[:limit]
        ]
        lines.append("")
    lines += [
        f"**Without procedure ({len(s['without_procedure'])}):** {', '.join(s['without_procedure'][:40]) or '—'}",
        "",
        f"**Without hunt content ({len(s['without_hunt_content'])}):** "
        f"{', '.join(s['without_hunt_content'][:40]) or '—'}",
    ]
    if plan.warnings:
        lines += ["", f"## Warnings ({len(plan.warnings)})", "", *[f"- {w}" for w in plan.warnings[:30]]]
    return "\n".join(lines)
