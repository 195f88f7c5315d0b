"""Build a ``Catalog`` from a parsed ATT&CK STIX 2.1 bundle (plain dicts, no stix2).

Pure: the caller reads and parses the bytes (``dcoflow.connectors.attack``) and passes the dict.
Records that cannot be used (no id or type, no ATT&CK id) are collected in a
``BatchReport``; a bundle with no techniques or tactics at all is not ATT&CK and raises
``ContentError``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from dcoflow.core.errors import BatchReport, ContentError
from dcoflow.models.attack.catalog import DOMAINS, Catalog
from dcoflow.models.attack.objects import (
    Analytic,
    AttackObject,
    Campaign,
    DataComponent,
    DetectionStrategy,
    Group,
    Kind,
    LogSource,
    Mitigation,
    Software,
    Tactic,
    Technique,
)

ATTACK_SOURCE_NAMES = frozenset({"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"})
KILL_CHAIN_NAMES = frozenset({"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"})

STIX_KINDS: dict[str, Kind] = {
    "x-mitre-tactic": Kind.TACTIC,
    "attack-pattern": Kind.TECHNIQUE,
    "intrusion-set": Kind.GROUP,
    "campaign": Kind.CAMPAIGN,
    "malware": Kind.SOFTWARE,
    "tool": Kind.SOFTWARE,
    "course-of-action": Kind.MITIGATION,
    "x-mitre-detection-strategy": Kind.DETECTION_STRATEGY,
    "x-mitre-analytic": Kind.ANALYTIC,
    "x-mitre-data-component": Kind.DATA_COMPONENT,
}


def _attack_ref(obj: Mapping[str, Any]) -> tuple[str, str]:
    for ref in obj.get("external_references") or ():
        if ref.get("source_name") in ATTACK_SOURCE_NAMES and ref.get("external_id"):
            return str(ref["external_id"]), str(ref.get("url") or "")
    return "", ""


def _objects_of(bundle: Any, source: str) -> list[Any]:
    if isinstance(bundle, list):
        return bundle
    if isinstance(bundle, dict) and isinstance(bundle.get("objects"), list):
        return list(bundle["objects"])
    raise ContentError(
        "not a STIX bundle (expected an object with an 'objects' list)",
        object=source,
        hint="point DCO_ATTACK_SOURCE at an ATT&CK bundle such as enterprise-attack.json",
    )


def _latest_versions(raw: Iterable[Any], report: BatchReport) -> dict[str, dict[str, Any]]:
    """One dict per STIX id, the newest ``modified`` winning (TAXII may return several versions)."""
    latest: dict[str, dict[str, Any]] = {}
    for n, obj in enumerate(raw):
        report.read += 1
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("type"), str):
            report.skip(f"objects[{n}]", "not a STIX object (no id or type)")
            continue
        old = latest.get(obj["id"])
        if old is None or str(obj.get("modified", "")) >= str(old.get("modified", "")):
            latest[obj["id"]] = obj
    return latest


def _domain_of(matrices: list[dict[str, Any]], collection: dict[str, Any] | None,
               objs: Iterable[dict[str, Any]]) -> str:
    for m in matrices:
        ext, _ = _attack_ref(m)
        if ext.endswith("-attack") and ext[: -len("-attack")] in DOMAINS:
            return ext[: -len("-attack")]
    if collection is not None:
        first = str(collection.get("name", "")).split(" ")[0].lower()
        if first in DOMAINS:
            return first
    counts: Counter[str] = Counter()
    for o in objs:
        for d in o.get("x_mitre_domains") or ():
            counts[str(d)] += 1
    if counts:
        top = counts.most_common(1)[0][0]
        return top[: -len("-attack")] if top.endswith("-attack") else top
    return "enterprise"


def build_catalog(bundle: Any, *, content_hash: str, source: str = "bundle") -> Catalog:
    """Index a parsed bundle (dict with ``objects``, or a bare list of objects)."""
    report = BatchReport(source=source)
    latest = _latest_versions(_objects_of(bundle, source), report)

    collection: dict[str, Any] | None = None
    matrices: list[dict[str, Any]] = []
    relationships: list[dict[str, Any]] = []
    data_sources: dict[str, str] = {}
    by_stix: dict[str, AttackObject] = {}
    descriptions: dict[str, str] = {}
    raw_of: dict[str, dict[str, Any]] = {}

    for sid, o in latest.items():
        t = o["type"]
        if t == "relationship":
            relationships.append(o)
            continue
        if t == "x-mitre-collection":
            collection = o
            continue
        if t == "x-mitre-matrix":
            matrices.append(o)
            continue
        if t == "x-mitre-data-source":
            data_sources[sid] = str(o.get("name", ""))
            continue
        kind = STIX_KINDS.get(t)
        if kind is None:
            continue  # identity, marking-definition, … are not part of the index
        try:
            attack_id, url = _attack_ref(o)
        except (TypeError, AttributeError) as exc:
            report.skip(sid, f"{t} with malformed external_references: {exc}")
            continue
        if not attack_id:
            report.skip(sid, f"{t} without an ATT&CK external id")
            continue
        if not isinstance(o.get("name"), str) or not o["name"].strip():
            report.skip(sid, f"{t} {attack_id} has no name; kept without one")
        try:
            obj = _make_object(kind, t, sid, attack_id, url, o)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            report.skip(sid, f"{t} {attack_id} with malformed fields: {exc}")
            continue
        by_stix[sid] = obj
        raw_of[sid] = o
        if o.get("description"):
            descriptions[sid] = str(o["description"])

    _one_per_attack_id(by_stix, report)
    _link_relationships(relationships, by_stix, report, set(latest))
    _link_detections(by_stix, raw_of, data_sources)

    tactics = _ordered_tactics(matrices, by_stix)
    if not tactics or not any(isinstance(o, Technique) for o in by_stix.values()):
        raise ContentError(
            "not an ATT&CK bundle: no tactics or techniques with ATT&CK ids",
            object=source,
            hint="point DCO_ATTACK_SOURCE at an ATT&CK STIX 2.1 bundle (enterprise, mobile or ics)",
        )
    _order_and_fill(tactics, by_stix)
    report.kept = len(by_stix)

    domain = _domain_of(matrices, collection, latest.values())
    return Catalog(
        domain=domain,
        version=str(collection.get("x_mitre_version", "")) if collection else "",
        name=str(collection.get("name", "")) if collection else f"{domain.title()} ATT&CK",
        modified=str(collection.get("modified", "")) if collection else "",
        content_hash=content_hash,
        tactics=tactics,
        objects=list(by_stix.values()),
        descriptions=descriptions,
        report=report.summary(),
    )


def _make_object(kind: Kind, t: str, sid: str, attack_id: str, url: str, o: dict[str, Any]) -> AttackObject:
    """One index object from its STIX dict; TypeError/ValueError when a field has the wrong shape."""
    common: dict[str, Any] = {
        "attack_id": attack_id,
        "stix_id": sid,
        "name": _text(o.get("name")),
        "url": url,
        "revoked": bool(o.get("revoked", False)),
        "deprecated": bool(o.get("x_mitre_deprecated", False)),
        "version": str(o.get("x_mitre_version", "")),
        "modified": str(o.get("modified", "")),
    }
    obj: AttackObject
    if kind is Kind.TACTIC:
        obj = Tactic(**common, shortname=str(o.get("x_mitre_shortname", "")))
    elif kind is Kind.TECHNIQUE:
        is_sub = bool(o.get("x_mitre_is_subtechnique", False)) or "." in attack_id
        obj = Technique(
            **common,
            tactics=[str(p["phase_name"]) for p in _list(o, "kill_chain_phases")
                     if p.get("kill_chain_name") in KILL_CHAIN_NAMES],
            platforms=_strings(o, "x_mitre_platforms"),
            is_subtechnique=is_sub,
            parent_id=attack_id.split(".", maxsplit=1)[0] if is_sub else None,
        )
    elif kind is Kind.GROUP:
        obj = Group(**common, aliases=_strings(o, "aliases"))
    elif kind is Kind.CAMPAIGN:
        obj = Campaign(**common, aliases=_strings(o, "aliases"),
                       first_seen=o.get("first_seen"), last_seen=o.get("last_seen"))
    elif kind is Kind.SOFTWARE:
        obj = Software(**common, software_type=t, aliases=_strings(o, "x_mitre_aliases"),
                       platforms=_strings(o, "x_mitre_platforms"))
    elif kind is Kind.MITIGATION:
        obj = Mitigation(**common)
    elif kind is Kind.DETECTION_STRATEGY:
        obj = DetectionStrategy(**common)
    elif kind is Kind.ANALYTIC:
        obj = Analytic(**common, platforms=_strings(o, "x_mitre_platforms"))
    else:
        obj = DataComponent(**common, log_sources=[
            (str(s.get("name", "")), str(s.get("channel", ""))) for s in _list(o, "x_mitre_log_sources")
        ])
    return obj


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _list(o: Mapping[str, Any], key: str) -> list[Any]:
    value = o.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{key} is a {type(value).__name__}, not a list")
    return value


def _strings(o: Mapping[str, Any], key: str) -> list[str]:
    values = _list(o, key)
    if not all(isinstance(v, str) for v in values):
        raise TypeError(f"{key} holds something other than text")
    return values


def _one_per_attack_id(by_stix: dict[str, AttackObject], report: BatchReport) -> None:
    """Two objects of one kind claiming one ATT&CK id: keep the current one, then the newest
    (``modified``), then the greater STIX id — the same choice on every load — and report the rest."""
    claims: dict[tuple[Kind, str], list[AttackObject]] = {}
    for obj in by_stix.values():
        claims.setdefault((obj.kind, obj.attack_id), []).append(obj)
    for (_, attack_id), objs in claims.items():
        if len(objs) < 2:
            continue
        ranked = sorted(objs, key=lambda o: (o.is_current, o.modified, o.stix_id), reverse=True)
        for loser in ranked[1:]:
            del by_stix[loser.stix_id]
            report.skip(loser.stix_id, f"duplicate ATT&CK id {attack_id}: {ranked[0].stix_id} "
                                       "(current, then newest) is used instead")


def _link_relationships(rels: list[dict[str, Any]], by_stix: dict[str, AttackObject],
                        report: BatchReport, in_bundle: set[str]) -> None:
    for r in rels:
        refs = (str(r.get("source_ref", "")), str(r.get("target_ref", "")))
        src, tgt = by_stix.get(refs[0]), by_stix.get(refs[1])
        rtype = r.get("relationship_type")
        if src is None or tgt is None:
            missing = [ref for ref in refs if ref not in in_bundle]
            if missing:  # dangling: a broken or partial bundle, not an object kind we do not index
                report.skip(str(r.get("id")), f"{rtype} relationship to {missing[0]}, which is not in the bundle")
            continue
        if rtype == "revoked-by":
            src.revoked_by = tgt.attack_id
            continue
        if r.get("revoked") or r.get("x_mitre_deprecated") or not (src.is_current and tgt.is_current):
            continue
        if rtype == "subtechnique-of" and isinstance(src, Technique) and isinstance(tgt, Technique):
            src.parent_id = tgt.attack_id
            src.is_subtechnique = True
            tgt.subtechnique_ids.append(src.attack_id)
        elif rtype == "uses":
            _link_use(src, tgt)
            if isinstance(tgt, Technique) and r.get("modified"):
                tgt.use_dates[src.attack_id] = max(str(r["modified"]), tgt.use_dates.get(src.attack_id, ""))
        elif rtype == "attributed-to" and isinstance(src, Campaign) and isinstance(tgt, Group):
            src.group_ids.append(tgt.attack_id)
            tgt.campaign_ids.append(src.attack_id)
        elif rtype == "mitigates" and isinstance(src, Mitigation) and isinstance(tgt, Technique):
            src.technique_ids.append(tgt.attack_id)
            tgt.mitigation_ids.append(src.attack_id)
        elif rtype == "detects" and isinstance(src, DetectionStrategy) and isinstance(tgt, Technique):
            src.technique_ids.append(tgt.attack_id)
            tgt.detection_strategy_ids.append(src.attack_id)
        else:
            report.skip(str(r.get("id")), f"unexpected relationship {src.kind} {rtype} {tgt.kind}")


def _link_use(src: AttackObject, tgt: AttackObject) -> None:
    if isinstance(tgt, Technique):
        if isinstance(src, Group):
            src.technique_ids.append(tgt.attack_id)
            tgt.group_ids.append(src.attack_id)
        elif isinstance(src, Campaign):
            src.technique_ids.append(tgt.attack_id)
            tgt.campaign_ids.append(src.attack_id)
        elif isinstance(src, Software):
            src.technique_ids.append(tgt.attack_id)
            tgt.software_ids.append(src.attack_id)
    elif isinstance(tgt, Software):
        if isinstance(src, Group):
            src.software_ids.append(tgt.attack_id)
            tgt.group_ids.append(src.attack_id)
        elif isinstance(src, Campaign):
            src.software_ids.append(tgt.attack_id)
            tgt.campaign_ids.append(src.attack_id)


def _link_detections(by_stix: dict[str, AttackObject], raw_of: dict[str, dict[str, Any]],
                     data_sources: dict[str, str]) -> None:
    """Detection strategy → analytics → data components (the ATT&CK v18 detection model)."""
    for sid, obj in by_stix.items():
        raw = raw_of[sid]
        if isinstance(obj, DataComponent):
            obj.data_source = data_sources.get(str(raw.get("x_mitre_data_source_ref") or "")) or None
        elif isinstance(obj, Analytic):
            for ref in raw.get("x_mitre_log_source_references") or ():
                dc = by_stix.get(str(ref.get("x_mitre_data_component_ref", "")))
                dc_id = dc.attack_id if isinstance(dc, DataComponent) else None
                obj.log_sources.append(LogSource(dc_id, str(ref.get("name", "")), str(ref.get("channel", ""))))
                if isinstance(dc, DataComponent) and dc.is_current and dc_id not in obj.data_component_ids:
                    obj.data_component_ids.append(dc.attack_id)
    for sid, obj in by_stix.items():
        if not isinstance(obj, DetectionStrategy) or not obj.is_current:
            continue
        for ref in raw_of[sid].get("x_mitre_analytic_refs") or ():
            an = by_stix.get(str(ref))
            if isinstance(an, Analytic) and an.is_current:
                obj.analytic_ids.append(an.attack_id)
                an.detection_strategy_ids.append(obj.attack_id)
    techniques = {o.attack_id: o for o in by_stix.values() if isinstance(o, Technique)}
    analytics = {o.attack_id: o for o in by_stix.values() if isinstance(o, Analytic)}
    components = {o.attack_id: o for o in by_stix.values() if isinstance(o, DataComponent)}
    for obj in by_stix.values():
        if not isinstance(obj, DetectionStrategy):
            continue
        for tid in obj.technique_ids:
            tech = techniques[tid]
            for aid in obj.analytic_ids:
                tech.analytic_ids.append(aid)
                for dcid in analytics[aid].data_component_ids:
                    tech.data_component_ids.append(dcid)
                    components[dcid].analytic_ids.append(aid)
                    components[dcid].technique_ids.append(tid)


def _ordered_tactics(matrices: list[dict[str, Any]], by_stix: dict[str, AttackObject]) -> list[Tactic]:
    ordered: dict[str, Tactic] = {}
    for m in matrices:
        if m.get("revoked") or m.get("x_mitre_deprecated"):
            continue
        for ref in m.get("tactic_refs") or ():
            tac = by_stix.get(str(ref))
            if isinstance(tac, Tactic):
                ordered.setdefault(tac.shortname, tac)
    for obj in by_stix.values():  # tactics no matrix lists (a subset bundle) come last, by id
        if isinstance(obj, Tactic) and obj.is_current and obj.shortname not in ordered:
            ordered[obj.shortname] = obj
    return list(ordered.values())


def _order_and_fill(tactics: list[Tactic], by_stix: dict[str, AttackObject]) -> None:
    """Deduplicate and sort every id list; tactics in kill-chain order; tactic → techniques."""
    rank = {t.shortname: n for n, t in enumerate(tactics)}
    last = len(rank)
    by_short = {t.shortname: t for t in tactics}
    for obj in sorted(by_stix.values(), key=lambda o: o.attack_id):
        for name in obj.__slots__:
            value = getattr(obj, name)
            if name.endswith("_ids") and isinstance(value, list):
                setattr(obj, name, sorted(dict.fromkeys(value)))
        if isinstance(obj, Technique):
            obj.tactics = sorted(dict.fromkeys(obj.tactics), key=lambda s: rank.get(s, last))
            if obj.is_current:
                for s in obj.tactics:
                    if s in by_short:
                        by_short[s].technique_ids.append(obj.attack_id)
