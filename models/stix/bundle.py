"""A DCO as one STIX 2.1 bundle: a ``report`` whose object_refs are every result the DCO
recorded, the objects themselves, the ATT&CK objects they reference exactly as MITRE published them
(with MITRE's identity and marking-definition; by reference when they are not at hand) and the
marking-definitions they use."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.markings import TLP2_IDS, Tlp, tlp_marking

ATTACK_PATTERN_PREFIX = "attack-pattern--"


def referenced_ids(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every STIX id an object points at (``*_ref`` and ``*_refs`` properties, one level deep)."""
    refs: set[str] = set()
    for obj in objects:
        for key, value in obj.items():
            if key.endswith("_ref") and isinstance(value, str):
                refs.add(value)
            elif key.endswith("_refs") and isinstance(value, list):
                refs.update(v for v in value if isinstance(v, str))
    return refs


def dco_bundle(
    dco_id: str,
    name: str,
    description: str,
    published_at: str,
    objects: Sequence[dict[str, Any]],
    published: Callable[[str], dict[str, Any] | None],
    identity: dict[str, Any],
    marking_refs: Sequence[str],
    extra_markings: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The bundle of a DCO; ``published`` gives an ATT&CK object as published by its id (None: not at hand)."""
    by_id = {o["id"]: o for o in objects}
    by_id.setdefault(identity["id"], identity)
    for m in extra_markings:
        by_id.setdefault(m["id"], m)
    refs = referenced_ids(by_id.values())
    attack = [p for p in (published(r) for r in sorted(refs) if r.startswith(ATTACK_PATTERN_PREFIX)
                          and r not in by_id) if p is not None]
    for obj in attack:
        by_id[obj["id"]] = obj
    # MITRE's identity and marking-definition the published objects point at
    for ref in sorted(referenced_ids(attack)):
        found = published(ref) if ref not in by_id else None
        if found is not None:
            by_id[ref] = found
    refs |= referenced_ids(attack)
    tlp_by_id = {v: k for k, v in TLP2_IDS.items()}
    for ref in sorted(refs | set(marking_refs)):
        if ref in tlp_by_id and ref not in by_id:
            by_id[ref] = tlp_marking(Tlp(tlp_by_id[ref]))
    content = [o for o in by_id.values() if o["type"] not in ("marking-definition",)]
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": stix_id("report", dco_id),
        "created": published_at,
        "modified": published_at,
        "published": published_at,
        "name": name,
        "description": description,
        "report_types": ["attack-pattern", "indicator", "observed-data"],
        "object_refs": sorted(o["id"] for o in content) or [identity["id"]],
        "created_by_ref": identity["id"],
        "object_marking_refs": list(marking_refs),
        "x_dco_id": dco_id,
    }
    return {"type": "bundle", "id": stix_id("bundle", dco_id, published_at), "objects": [report, *by_id.values()]}
