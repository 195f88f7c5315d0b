"""Turn a threat profile and a scope into a plan — pure functions over the catalog and
the content indexes (atomics, Sigma rules, a CTID plan), no I/O.

1. ``select_techniques``: which techniques the threat profile brings in, and why
   (group direct use, via campaigns, via software, a campaign, software, an extra id,
   a CTID plan step). Revoked ids resolve to their replacement and newer-release ids (v19's
   T1685) to their id here, with a note; other unknown ids are kept and reported.
2. ``emulation_steps``: per technique, ordered by tactic, the candidate procedures for the
   scope's platforms (atomics), or the steps of an imported CTID plan.
3. ``hunt_hypotheses``: per technique, a hypothesis with the data components and analytics
   that would show it, the Sigma rules tagged with it and the telemetry those rules need.
4. ``summarise``: counts by tactic, techniques without procedure, without hunt content.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dcoflow.core.errors import NotFoundError, ValidationError
from dcoflow.models.attack.catalog import Via
from dcoflow.models.attack.newer_ids import newer_ids_for
from dcoflow.models.operation import DcoSpec
from dcoflow.models.plan import EmulationStep, HuntHypothesis, ProcedureSource
from dcoflow.models.stix.ids import row_id

if TYPE_CHECKING:
    from dcoflow.connectors.content.atomics import AtomicsIndex
    from dcoflow.connectors.content.sigma_rules import RuleIndex
    from dcoflow.models.attack.catalog import Catalog
    from dcoflow.models.hunting import RuleInfo
    from dcoflow.models.procedures import AtomicTest, CtidPlan

UNKNOWN_TACTIC = "unknown"

# Executors a local/lab run can use per platform, best first (atomics' executor names).
PREFERRED_EXECUTORS: dict[str, tuple[str, ...]] = {
    "windows": ("powershell", "command_prompt", "manual"),
    "linux": ("sh", "bash", "manual"),
    "macos": ("sh", "bash", "manual"),
}


@dataclass(slots=True)
class PlannedTechnique:
    """A technique in the plan: its (resolved) id, name, tactics, and why it is in scope."""

    attack_id: str
    name: str
    tactics: list[str]
    reasons: list[str] = field(default_factory=list)
    known: bool = True  # False: the loaded ATT&CK release does not know this id


@dataclass(slots=True)
class TechniqueSelection:
    techniques: dict[str, PlannedTechnique] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, tech: PlannedTechnique, reason: str) -> None:
        current = self.techniques.setdefault(tech.attack_id, tech)
        if reason not in current.reasons:
            current.reasons.append(reason)


def _lookup(kind: str, field_name: str, index: int, ref: str, finder: Any, suggest: Any) -> Any:
    """Find a group/campaign/software or raise a ValidationError naming the field with suggestions."""
    try:
        return finder(ref)
    except NotFoundError as exc:
        raise ValidationError(
            f"unknown ATT&CK {kind} {ref!r}",
            object="threat_profile",
            field=f"threat_profile.{field_name}[{index}]",
            suggestions=suggest(ref),
        ) from exc


def _add_technique_id(sel: TechniqueSelection, catalog: Catalog, raw_id: str, reason: str) -> None:
    res = catalog.resolve(raw_id)
    if res.attack_id is None:
        sel.warnings.append(
            f"{raw_id}: not in ATT&CK {catalog.domain} {catalog.version} ({reason}); kept as given — "
            f"{res.note or 'it may come from another ATT&CK release'}"
        )
        sel.add(PlannedTechnique(raw_id.upper(), raw_id.upper(), [UNKNOWN_TACTIC], known=False), reason)
        return
    if res.attack_id != raw_id.upper() or res.status != "current":
        sel.warnings.append(f"{raw_id}: {res.note or res.status} ({reason}); using {res.attack_id}")
    tech = catalog.technique(res.attack_id)
    sel.add(PlannedTechnique(tech.attack_id, tech.name, list(tech.tactics) or [UNKNOWN_TACTIC]), reason)


def select_techniques(spec: DcoSpec, catalog: Catalog, ctid: CtidPlan | None = None) -> TechniqueSelection:
    """Expand the threat profile into techniques, recording for each why it is there."""
    sel = TechniqueSelection()
    prof = spec.threat_profile
    for i, ref in enumerate(prof.groups):
        group = _lookup("group", "groups", i, ref, catalog.group, catalog.suggest_groups)
        via = list(prof.via) or [Via.DIRECT]
        for tid, sources in sorted(catalog.group_techniques(group.attack_id, via=via).items()):
            how = "+".join(sorted(str(s) for s in sources))
            _add_technique_id(sel, catalog, tid, f"{group.attack_id} {group.name} ({how})")
    for i, ref in enumerate(prof.campaigns):
        camp = _lookup("campaign", "campaigns", i, ref, catalog.campaign, lambda r: [])
        for tid in sorted(camp.technique_ids):
            _add_technique_id(sel, catalog, tid, f"{camp.attack_id} {camp.name}")
    for i, ref in enumerate(prof.software):
        soft = _lookup("software", "software", i, ref, catalog.software, lambda r: [])
        for tid in sorted(soft.technique_ids):
            _add_technique_id(sel, catalog, tid, f"{soft.attack_id} {soft.name}")
    for tid in prof.techniques:
        _add_technique_id(sel, catalog, tid, "listed in the threat profile")
    if ctid is not None:
        sel.warnings.extend(f"CTID {ctid.adversary_name}: {w}" for w in ctid.warnings)
        if ctid.attack_version.split(".")[0] != catalog.version.split(".")[0]:
            sel.warnings.append(
                f"CTID {ctid.adversary_name} was written for ATT&CK {ctid.attack_version}; "
                f"its ids were checked against {catalog.version}"
            )
        for step in (s for s in ctid.steps if s.is_technique):
            _add_technique_id(
                sel, catalog, step.technique_id, f"CTID {ctid.adversary_name} step {step.procedure_step or step.id}"
            )
    return sel


def _tactic_order(catalog: Catalog, tactic: str) -> int:
    try:
        return catalog.tactic_rank(tactic)
    except (KeyError, ValueError, NotFoundError):
        return 10_000


def ordered(selection: TechniqueSelection, catalog: Catalog) -> list[tuple[str, PlannedTechnique]]:
    """(first tactic, technique) pairs in kill-chain order, then by id."""
    rows = [(t.tactics[0], t) for t in selection.techniques.values()]
    rows.sort(key=lambda r: (_tactic_order(catalog, r[0]), r[1].attack_id))
    return rows


def _atomic_summary(test: AtomicTest) -> dict[str, Any]:
    return {
        "guid": test.guid,
        "name": test.name,
        "platforms": list(test.platforms),
        "executor": test.executor,
        "elevation_required": test.elevation_required,
    }


def _pick(tests: list[AtomicTest], platforms: list[str], allowed_executors: set[str]) -> AtomicTest | None:
    """Prefer a test whose executor the rules of engagement allow and that needs no elevation."""

    def rank(t: AtomicTest) -> tuple[int, int, int]:
        best = min(
            (PREFERRED_EXECUTORS.get(p, ()).index(t.executor) for p in platforms
             if t.executor in PREFERRED_EXECUTORS.get(p, ())),
            default=9,
        )
        return (0 if t.executor in allowed_executors else 1, 1 if t.elevation_required else 0, best)

    return min(tests, key=rank) if tests else None


def emulation_steps(
    dco_id: str,
    spec: DcoSpec,
    selection: TechniqueSelection,
    catalog: Catalog,
    atomics: AtomicsIndex | None,
    ctid: CtidPlan | None = None,
) -> list[EmulationStep]:
    """The emulation plan: CTID steps in their own order when a plan is imported, else one step per
    technique in kill-chain order with its best atomic (other candidates kept on the step)."""
    platforms = [p.value for p in spec.scope.platforms]
    roe = spec.rules_of_engagement
    allowed = set(roe.allowed_executors)
    steps: list[EmulationStep] = []
    if ctid is not None:
        previous: str | None = None
        for n, cstep in enumerate(ctid.steps, start=1):
            res = catalog.resolve(cstep.technique_id) if cstep.is_technique else None
            tid = (res.attack_id if res else None) or cstep.technique_id.upper()
            platform, executor, command, cleanup = cstep.choose(platforms, allowed)
            sid = row_id("x-dco-step", dco_id, "ctid", cstep.id)
            steps.append(EmulationStep(
                id=sid, dco_id=dco_id, order=n, tactic=cstep.tactic or UNKNOWN_TACTIC, technique_id=tid,
                technique_name=cstep.technique_name, source=ProcedureSource.CTID, procedure_ref=cstep.id,
                procedure_name=cstep.name, platform=platform, executor=executor or "manual", command=command,
                cleanup_command=cleanup, input_arguments={k: a.default for k, a in cstep.input_arguments.items()},
                depends_on=[previous] if previous else [], connector="manual",
            ))
            previous = sid
        return steps
    pinned = {k.upper(): v.lower() for k, v in spec.emulation.procedures.items()}
    connectors = {k.upper(): v for k, v in spec.emulation.connectors.items()}
    forbidden = {t.upper() for t in roe.forbidden_techniques}
    for n, (tactic, tech) in enumerate(ordered(selection, catalog), start=1):
        if tech.attack_id in forbidden:
            continue
        tests = _atomics_for(atomics, tech.attack_id, platforms) if atomics is not None and tech.known else []
        chosen = _pick(tests, platforms, allowed)
        if tech.attack_id in pinned:
            wanted = next((t for t in tests if t.guid == pinned[tech.attack_id]), None)
            if wanted is None:
                selection.warnings.append(
                    f"{tech.attack_id}: pinned atomic {pinned[tech.attack_id]} is not one of its tests for "
                    f"{', '.join(platforms)}; using {chosen.guid if chosen else 'a manual step'}"
                )
            chosen = wanted or chosen
        sid = row_id("x-dco-step", dco_id, tech.attack_id)
        steps.append(EmulationStep(
            id=sid, dco_id=dco_id, order=n, tactic=tactic, technique_id=tech.attack_id,
            technique_name=tech.name,
            source=ProcedureSource.ATOMIC if chosen else ProcedureSource.MANUAL,
            procedure_ref=chosen.guid if chosen else None,
            procedure_name=chosen.name if chosen else f"Operator-performed {tech.name}",
            platform=next((p for p in platforms if chosen and p in chosen.platforms), next(iter(platforms), None)),
            executor=chosen.executor if chosen else "manual",
            command=chosen.command if chosen else None,
            cleanup_command=chosen.cleanup_command if chosen else None,
            input_arguments={k: a.default for k, a in chosen.input_arguments.items()} if chosen else {},
            connector=connectors.get(tech.attack_id, "manual"),
            candidates=[_atomic_summary(t) for t in tests if chosen is None or t.guid != chosen.guid][:10],
        ))
    return steps


def _atomics_for(atomics: AtomicsIndex, technique_id: str, platforms: list[str]) -> list[AtomicTest]:
    """The technique's atomic tests, plus those filed under its id of a newer ATT&CK release (the
    atomics already file T1562.001's tests under v19's T1685)."""
    found = atomics.for_technique(technique_id, platforms)
    for newer in newer_ids_for(technique_id, include_subtechniques=False):
        found.extend(atomics.for_technique(newer, platforms))
    return found


def _rules_for(rules: RuleIndex, technique_id: str) -> list[RuleInfo]:
    """Rules tagged with the technique (or its sub-techniques), plus rules tagged with exactly one of
    its newer-release ids (SigmaHQ tags T1562.001's rules with v19's T1685)."""
    found = {r.rule_id: r for r in rules.for_technique(technique_id)}
    newer = set(newer_ids_for(technique_id))
    if newer:
        for r in rules.rules:
            if newer.intersection(r.technique_ids):
                found.setdefault(r.rule_id, r)
    return list(found.values())


def hunt_hypotheses(
    dco_id: str, selection: TechniqueSelection, catalog: Catalog, rules: RuleIndex | None
) -> list[HuntHypothesis]:
    out: list[HuntHypothesis] = []
    for tactic, tech in ordered(selection, catalog):
        t = catalog.get_technique(tech.attack_id) if tech.known else None
        components = [dc.name for dc in t.data_components] if t is not None else []
        analytics = list(t.analytic_ids) if t is not None else []
        tagged = _rules_for(rules, tech.attack_id) if rules is not None else []
        telemetry = sorted({
            "/".join(v for k in ("product", "category", "service") if (v := r.logsource.get(k))) for r in tagged
        } - {""})
        why = "; ".join(tech.reasons[:3])
        out.append(HuntHypothesis(
            id=row_id("x-dco-hypothesis", dco_id, tech.attack_id),
            dco_id=dco_id, technique_id=tech.attack_id, technique_name=tech.name, tactics=tech.tactics,
            statement=(
                f"If the adversary used {tech.name} ({tech.attack_id}, {tactic}) in scope, "
                f"{', '.join(components[:4]) or 'the relevant telemetry'} would show it. Why in scope: {why}."
            ),
            data_components=components, analytics=analytics,
            sigma_rules=[{"rule_id": r.rule_id, "title": r.title, "level": r.level, "path": r.path} for r in tagged],
            telemetry=telemetry,
        ))
    return out


def summarise(
    selection: TechniqueSelection, steps: list[EmulationStep], hypotheses: list[HuntHypothesis]
) -> dict[str, Any]:
    by_tactic = Counter(t.tactics[0] for t in selection.techniques.values())
    with_procedure = {s.technique_id for s in steps if s.source != ProcedureSource.MANUAL}
    with_rules = {h.technique_id for h in hypotheses if h.sigma_rules}
    return {
        "techniques": len(selection.techniques),
        "unknown_techniques": sorted(t for t, p in selection.techniques.items() if not p.known),
        "by_tactic": dict(by_tactic.most_common()),
        "emulation_steps": len(steps),
        "without_procedure": sorted(set(selection.techniques) - with_procedure),
        "hypotheses": len(hypotheses),
        "without_hunt_content": sorted(set(selection.techniques) - with_rules),
        "sigma_rules": len({r["rule_id"] for h in hypotheses for r in h.sigma_rules}),
        "warnings": len(selection.warnings),
    }
