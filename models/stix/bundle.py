"""A DCO as one STIX 2.1 bundle: a ``report`` whose object_refs are every result the DCO
recorded, the objects themselves, the ATT&CK attack-patterns they reference (as reference
copies carrying ATT&CK's own ids) and the marking-definitions they use."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.markings import TLP2_IDS, Tlp, tlp_marking

ATTACK_PATTERN_PREFIX = "attack-pattern--"


class TechniqueLike(Protocol):
    attack_id: str
    stix_id: str
    name: str
    url: str
    modified: str


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


def attack_pattern_copy(tech: TechniqueLike, created: str) -> dict[str, Any]:
    """A reference copy of an ATT&CK technique with its official id, so the bundle resolves."""
    return {
        "type": "attack-pattern",
        "spec_version": "2.1",
        "id": tech.stix_id,
        "created": created,
        "modified": tech.modified or created,
        "name": tech.name,
        "external_references": [{"source_name": "mitre-attack", "external_id": tech.attack_id, "url": tech.url}],
    }


def dco_bundle(
    dco_id: str,
    name: str,
    description: str,
    published: str,
    objects: Sequence[dict[str, Any]],
    technique_by_stix_id: Callable[[str], TechniqueLike | None],
    identity: dict[str, Any],
    marking_refs: Sequence[str],
    extra_markings: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The bundle of a DCO; ``technique_by_stix_id`` finds the catalog technique of an attack-pattern id."""
    by_id = {o["id"]: o for o in objects}
    by_id.setdefault(identity["id"], identity)
    for m in extra_markings:
        by_id.setdefault(m["id"], m)
    refs = referenced_ids(by_id.values())
    for ref in sorted(r for r in refs if r.startswith(ATTACK_PATTERN_PREFIX)):
        tech = technique_by_stix_id(ref) if ref not in by_id else None
        if tech is not None:
            by_id[ref] = attack_pattern_copy(tech, published)
    tlp_by_id = {v: k for k, v in TLP2_IDS.items()}
    for ref in sorted(refs | set(marking_refs)):
        if ref in tlp_by_id and ref not in by_id:
            by_id[ref] = tlp_marking(Tlp(tlp_by_id[ref]))
    content = [o for o in by_id.values() if o["type"] not in ("marking-definition",)]
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": stix_id("report", dco_id),
        "created": published,
        "modified": published,
        "published": published,
        "name": name,
        "description": description,
        "report_types": ["attack-pattern", "indicator", "observed-data"],
        "object_refs": sorted(o["id"] for o in content) or [identity["id"]],
        "created_by_ref": identity["id"],
        "object_marking_refs": list(marking_refs),
        "x_dco_id": dco_id,
    }
    return {"type": "bundle", "id": stix_id("bundle", dco_id, published), "objects": [report, *by_id.values()]}
