"""STIX 2.1 for emulation outcomes (docs/STIX.md): a ``sighting`` of the technique's
attack-pattern where_sighted_refs = the defensive tool's identity, an ``observed-data`` (with
its SCOs) when telemetry was captured, and a ``note`` for the operator's remarks.

Ids are deterministic: the sighting by (dco, step, tool), so a corrected outcome is a new
``modified`` of the same sighting and the store keeps every version. Pure, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dcoflow.models.emulation import EmulationOutcome, Outcome
from dcoflow.models.stix.common import DcoContext, system_identity, system_identity_id
from dcoflow.models.stix.ids import sco, stix_id
from dcoflow.models.stix.rows import stix_time


def tool_identity(ctx: DcoContext, tool: str, created: datetime) -> dict[str, Any]:
    """The defensive tool as an ``identity`` (identity_class ``system``), keyed by its name."""
    return system_identity(tool, created=stix_time(created), **ctx.properties())


def sighting_id(dco_id: str, step_id: str, tool: str) -> str:
    return stix_id("sighting", dco_id, step_id, tool)


def fallback_attack_pattern(ctx: DcoContext, technique_id: str, name: str, created: datetime) -> dict[str, Any]:
    """An attack-pattern for a technique the loaded ATT&CK release does not know (e.g. a v19 id):
    kept, with its ATT&CK external id, so the evidence is not lost."""
    obj = ctx.sdo("attack-pattern", stix_id("attack-pattern", technique_id), created, created)
    obj.update(
        {
            "name": name or technique_id,
            "external_references": [{"source_name": "mitre-attack", "external_id": technique_id}],
            "x_dco_unknown_to_catalog": True,
        }
    )
    return obj


def _sco(item: dict[str, Any], key: tuple[object, ...]) -> dict[str, Any]:
    props = {k: v for k, v in item.items() if k not in ("id", "spec_version", "type")}
    if item.get("id"):
        return {"type": item["type"], "spec_version": "2.1", "id": item["id"], **props}
    return sco(item["type"], props, *key)


def outcome_objects(
    ctx: DcoContext,
    row: EmulationOutcome,
    *,
    attack_pattern_ref: str | None,
    technique_name: str = "",
    first_recorded: datetime | None = None,
    note_index: int | None = None,
) -> list[dict[str, Any]]:
    """The STIX objects for one outcome version.

    ``attack_pattern_ref`` is the ATT&CK stix id from the catalog (``Technique.stix_id``); when
    None, a fallback attack-pattern carrying the technique's external id is built and included.
    ``first_recorded`` (the first version's time) is the sighting's ``created``.
    """
    created = first_recorded or row.recorded_at
    objects: list[dict[str, Any]] = [tool_identity(ctx, row.tool, created)]
    if attack_pattern_ref is None:
        pattern = fallback_attack_pattern(ctx, row.technique_id, technique_name, created)
        objects.append(pattern)
        attack_pattern_ref = pattern["id"]

    sid = sighting_id(ctx.dco_id, row.step_id, row.tool)
    sighting = ctx.sdo("sighting", sid, created, row.recorded_at)
    sighting.update(
        {
            "sighting_of_ref": attack_pattern_ref,
            "where_sighted_refs": [system_identity_id(row.tool)],
            # A non-detection is still evidence (of a gap): count 0 says the tool saw nothing.
            "count": 0 if row.outcome == Outcome.NONE else 1,
            "x_dco_outcome": row.outcome.value,
            "x_dco_step_id": row.step_id,
            "x_dco_technique_id": row.technique_id,
            "x_dco_operator": row.operator,
            "x_dco_version": row.version,
            "x_dco_source": row.source.value,
        }
    )
    if row.severity is not None:
        sighting["x_dco_severity"] = row.severity.value
    if row.detected_at is not None:
        sighting["x_dco_detected_at"] = stix_time(row.detected_at)
    if row.target_host:
        sighting["x_dco_target"] = row.target_host
    if row.compromise:
        sighting["x_dco_compromise"] = True
    if row.attack_start is not None:
        sighting["first_seen"] = stix_time(row.attack_start)
        sighting["last_seen"] = stix_time(row.attack_stop or row.attack_start)

    if row.telemetry:
        scos = [_sco(item, (ctx.dco_id, row.step_id, row.tool, i)) for i, item in enumerate(row.telemetry)]
        first = row.attack_start or row.recorded_at
        last = row.attack_stop or row.detected_at or first
        observed = ctx.sdo(
            "observed-data", stix_id("observed-data", ctx.dco_id, row.step_id, row.tool), created, row.recorded_at
        )
        observed.update(
            {
                "first_observed": stix_time(first),
                "last_observed": stix_time(max(first, last)),
                "number_observed": max(1, len(scos)),
                "object_refs": [s["id"] for s in scos],
                "x_dco_step_id": row.step_id,
            }
        )
        objects.extend(scos)
        objects.append(observed)
        sighting["observed_data_refs"] = [observed["id"]]
    objects.append(sighting)

    if row.notes:
        n = note_index if note_index is not None else row.version
        note = ctx.sdo("note", stix_id("note", sid, n), row.recorded_at, row.recorded_at)
        note.update({"content": row.notes, "authors": [row.operator], "object_refs": [sid]})
        objects.append(note)
    return objects
