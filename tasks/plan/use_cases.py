"""The plan phase's user actions, one function each: create a DCO (``dco ops create``, optionally seeded from a CTI
report) and plan it (``dco plan``, the plan-dco flow, the lifecycle's plan step).

Each opens its own sessions, reads the DCO once, and calls the pure rules in ``models/planning.py`` and the SQL
in ``models/repository/``; the CLI only parses and prints, the flows add Prefect's artifacts and the approval
pause. Settings arrive as a value from the edge (the CLI command or the flow's entry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from dcoflow.core.db import session_scope
from dcoflow.core.errors import ConfigError, ConnectorError, ContentError, ValidationError
from dcoflow.core.settings import Settings
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import create_operation, operation_id_for
from dcoflow.tasks.lifecycle import emit_dco_event
from dcoflow.tasks.plan.planning import (
    Plan,
    check_threat_profile,
    content_revisions,
    export_plan,
    load_content,
    load_ctid,
    make_plan,
    store_plan,
)


def create_dco(operation_file: Path, actor: str, *, attack_source: str | None = None,
               from_stix: str | None = None) -> dict[str, Any]:
    """Store a DCO from an operation file, in draft (an unchanged re-submit changes nothing).

    Its threat profile is checked against ATT&CK first: an unknown group, campaign or software is refused here,
    with close matches. Without a catalog the DCO is stored anyway, with a warning (planning checks it again).
    ``from_stix``: a CTI report (bundle file or ``taxii+https://…/collections/<id>/``) whose ATT&CK groups,
    campaigns, software and techniques are added to the threat profile; it needs the catalog.
    """
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.connectors.content.operation_file import load_operation_file

    cti: dict[str, Any] | None = None
    if from_stix:
        from dcoflow.tasks.plan.cti_import import spec_from_cti

        catalog = load_catalog(attack_source)
        spec, profile = spec_from_cti(operation_file, from_stix, catalog)
        cti, warnings = profile.as_dict(), check_threat_profile(spec, catalog)
    else:
        spec = load_operation_file(operation_file)
        try:
            warnings = check_threat_profile(spec, load_catalog(attack_source))
        except (ConfigError, ConnectorError, ContentError) as exc:  # stored anyway; planning checks it again
            warnings = [f"threat profile not checked: no ATT&CK catalog ({exc.message})"]
    with session_scope() as s:
        op = create_operation(s, spec, actor)
        out: dict[str, Any] = {"dco": op.id, "state": op.state.value, "version": op.version, "warnings": warnings}
    if cti is not None:
        out["cti"] = cti
    return out


@dataclass(slots=True)
class Planned:
    """A stored plan and the files written for it."""

    dco_id: str
    plan: Plan
    exports: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"dco": self.dco_id, "summary": self.plan.summary, "exports": [str(p) for p in self.exports]}


def plan_dco(spec: DcoSpec, actor: str, *, settings: Settings, output_dir: Path, attack_source: str | None = None,
             source: str | None = None) -> Planned:
    """Plan a DCO: techniques from its threat profile, an emulation plan, a hunt plan, a summary; store the DCO
    (created, or its draft spec replaced) with the plan in one transaction, announce ``dco.phase.planned``, and
    write the plan JSON, the planned Navigator layer and the plan order (DOCX, PDF) into ``output_dir``.

    The plan is made before anything is stored: a bad threat profile (an unknown group…) raises a
    ValidationError naming ``source`` (the operation file) and leaves the stored DCO and its plan as they were.
    """
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.tasks.reporting.documents.plan_order import gather_plan_order, write_plan_documents

    catalog = load_catalog(attack_source)
    ctid = load_ctid(spec, settings)
    atomics, rules, content_warnings = load_content(settings)
    with session_scope() as s:
        dco_id = operation_id_for(s, spec)

    def make(dco_id: str) -> Plan:
        try:
            plan = make_plan(dco_id, spec, catalog, atomics, rules, ctid)
        except ValidationError as exc:  # name the operation file, as for any other bad field in it
            raise ValidationError(exc.reason, object=source or exc.object, field=exc.field,
                                  suggestions=exc.suggestions) from exc
        plan.selection.warnings.extend(content_warnings)
        return plan

    plan = make(dco_id)
    content = content_revisions(settings)
    with session_scope() as s:
        op = create_operation(s, spec, actor)
        if op.id != plan.dco_id:  # another DCO took the free id meanwhile: plan under the id this one got
            plan = make(op.id)
        store_plan(s, plan, actor, op=op, content=content)
        s.flush()
        order = gather_plan_order(s, op, catalog)
    emit_dco_event(plan.dco_id, "phase.planned", {"summary": plan.summary})
    exports = export_plan(plan, output_dir)
    exports += write_plan_documents(order, output_dir).values()
    return Planned(plan.dco_id, plan, exports)


# The whole action as one Prefect task: its steps share one catalog and one transaction, and it is not retried
# (each run audits a plan version). NO_CACHE: hashing the settings and spec per call buys nothing.
plan_dco_task = task(name="plan-dco", cache_policy=NO_CACHE)(plan_dco)
