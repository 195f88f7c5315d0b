"""A threat profile from CTI: the intrusion sets, campaigns, malware/tools and attack-patterns of a STIX report
(or of a whole bundle without one), mapped to the loaded ATT&CK by STIX id or ATT&CK external id. Objects ATT&CK
does not know are reported with why, never dropped silently. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcoflow.core.errors import NotFoundError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.attack.objects import Kind

_KINDS = {"intrusion-set": Kind.GROUP, "campaign": Kind.CAMPAIGN, "malware": Kind.SOFTWARE, "tool": Kind.SOFTWARE,
          "attack-pattern": Kind.TECHNIQUE}
_FIELDS = {Kind.GROUP: "groups", Kind.CAMPAIGN: "campaigns", Kind.SOFTWARE: "software", Kind.TECHNIQUE: "techniques"}


@dataclass(slots=True)
class CtiProfile:
    groups: list[str] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)
    software: list[str] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    unknown: list[dict[str, str | None]] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"groups": self.groups, "campaigns": self.campaigns, "software": self.software,
                "techniques": self.techniques, "unknown": self.unknown, "reports": self.reports}


def _external_id(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("external_references") or ():
        if str(ref.get("source_name", "")).startswith("mitre") and ref.get("external_id"):
            return str(ref["external_id"])
    return None


def profile_from_cti(objects: Sequence[dict[str, Any]], catalog: Catalog) -> CtiProfile:
    by_id = {o["id"]: o for o in objects if isinstance(o, dict) and "id" in o}
    reports = [o for o in by_id.values() if o.get("type") == "report"]
    wanted = ({r for rep in reports for r in rep.get("object_refs") or ()} if reports else set(by_id))
    out = CtiProfile(reports=[str(r.get("name") or r["id"]) for r in reports])
    seen: set[tuple[Kind, str]] = set()
    for oid in sorted(wanted):
        obj = by_id.get(oid)
        kind = _KINDS.get(str(obj.get("type"))) if obj else None
        if obj is None or kind is None:
            continue
        ext = _external_id(obj)
        known = catalog.by_stix_id(oid)
        attack_id = known.attack_id if known is not None and known.kind is kind else None
        if attack_id is None and ext:
            try:
                attack_id = catalog.get(kind, ext).attack_id
            except NotFoundError:
                attack_id = None
        if attack_id is None:
            why = (f"{ext} is not in ATT&CK {catalog.name or catalog.domain} v{catalog.version}" if ext
                   else "no ATT&CK external id")
            out.unknown.append({"id": oid, "type": str(obj.get("type")), "name": obj.get("name"),
                                "external_id": ext, "reason": why})
            continue
        if (kind, attack_id) not in seen:
            seen.add((kind, attack_id))
            getattr(out, _FIELDS[kind]).append(attack_id)
    for name in _FIELDS.values():
        getattr(out, name).sort()
    return out
