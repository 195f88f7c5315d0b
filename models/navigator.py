"""ATT&CK Navigator layers (layer format 4.5, Navigator 5.1) built from plain values (pure).

Builders take what the caller already has — technique ids with their tactic shortnames, scores,
relevance counts — and return the layer as a dict ready for ``json.dumps``. Every technique entry
carries ``techniqueID``, ``tactic`` (one entry per tactic when the tactics are known, so the cell
lands in the right column), ``score``, ``color``, ``comment``, ``enabled``, ``metadata`` and
``showSubtechniques``. Parents of scored sub-techniques get an entry with ``showSubtechniques``
so the Navigator opens them.

``import_layer`` reads a layer made against another ATT&CK release and maps its ids onto the
loaded one, reporting ids that moved (revoked → replacement) and ids that vanished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dcoflow.core.errors import ContentError

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
DOMAIN = "enterprise-attack"

# Detection −1..5: red (none) through amber to green (excellent).
DETECTION_COLORS = ["#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850"]
GAP_COLORS = ["#ffffff", "#fdae61", "#d7191c"]
THREAT_COLORS = ["#fff5eb", "#fd8d3c", "#7f2704"]
COMPARE_COLORS = ["#d7191c", "#ffffff", "#1a9641"]
PLANNED_COLOR = "#66b1ff"


class Resolver(Protocol):
    """The part of the ATT&CK catalog ``import_layer`` needs (``Catalog.resolve``)."""

    def resolve(self, technique_id: str, *, warn: bool = True) -> Any: ...


@dataclass(slots=True, frozen=True)
class Cell:
    """One technique to show: its score (None: shown, not scored), comment and metadata lines."""

    technique_id: str
    score: int | None = None  # the Navigator schema (and mitreattack-python) want integers
    comment: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    color: str = ""
    enabled: bool = True


def attack_major(catalog_version: str) -> str:
    """Navigator wants the ATT&CK major version (``"18"`` for 18.1)."""
    major = str(catalog_version).split(".")[0].strip()
    if not major.isdigit():
        raise ContentError(f"ATT&CK version {catalog_version!r} has no numeric major version", system="navigator")
    return major


def interpolate(colors: Sequence[str], low: float, high: float, value: float) -> str:
    """The gradient colour for ``value`` (as the Navigator draws it), for legends and exports."""
    if high <= low:
        return colors[-1]
    t = min(1.0, max(0.0, (value - low) / (high - low))) * (len(colors) - 1)
    i = min(int(t), len(colors) - 2)
    frac = t - i
    a, b = colors[i], colors[i + 1]
    rgb = [round(int(a[k:k + 2], 16) * (1 - frac) + int(b[k:k + 2], 16) * frac) for k in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def build_layer(
    name: str,
    catalog_version: str,
    cells: Iterable[Cell],
    *,
    tactics: Mapping[str, Sequence[str]] | None = None,
    description: str = "",
    gradient: tuple[Sequence[str], int, int] | None = None,
    legend: Sequence[tuple[str, str]] = (),
    metadata: Sequence[tuple[str, str]] = (),
    platforms: Sequence[str] = (),
) -> dict[str, Any]:
    """A complete layer dict. ``tactics`` maps technique id → tactic shortnames (kill-chain order)."""
    tactics = tactics or {}
    entries: list[dict[str, Any]] = []
    shown: set[str] = set()
    parents: set[str] = set()
    for cell in cells:
        shown.add(cell.technique_id)
        if "." in cell.technique_id:
            parents.add(cell.technique_id.split(".")[0])
        base: dict[str, Any] = {
            "techniqueID": cell.technique_id,
            "comment": cell.comment,
            "enabled": cell.enabled,
            "metadata": [{"name": k, "value": v} for k, v in cell.metadata],
            "showSubtechniques": False,
        }
        if cell.score is not None:
            base["score"] = cell.score
        if cell.color:
            base["color"] = cell.color
        entries.extend(_per_tactic(base, tactics.get(cell.technique_id, ())))
    for entry in entries:
        if entry["techniqueID"] in parents:
            entry["showSubtechniques"] = True
    for parent in sorted(parents - shown):
        base = {"techniqueID": parent, "comment": "", "enabled": True, "metadata": [], "showSubtechniques": True}
        entries.extend(_per_tactic(base, tactics.get(parent, ())))
    layer: dict[str, Any] = {
        "name": name,
        "versions": {"attack": attack_major(catalog_version), "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": DOMAIN,
        "description": description,
        "sorting": 3,  # by score, descending
        "layout": {"layout": "side", "aggregateFunction": "max", "showID": True, "showName": True,
                   "showAggregateScores": False, "countUnscored": False, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": entries,
        "showTacticRowBackground": False,
        "tacticRowBackground": "#dddddd",
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
    }
    if legend:
        layer["legendItems"] = [{"label": label, "color": color} for label, color in legend]
    if metadata:
        layer["metadata"] = [{"name": k, "value": v} for k, v in metadata]
    if platforms:
        layer["filters"] = {"platforms": [_platform_label(p) for p in platforms]}
    if gradient is not None:
        colors, low, high = gradient
        high = max(high, low + len(colors) - 1)  # a narrower span leaves gradient segments with no colours
        layer["gradient"] = {"colors": list(colors), "minValue": low, "maxValue": high}
    return layer


def _per_tactic(base: dict[str, Any], tactics: Sequence[str]) -> list[dict[str, Any]]:
    if not tactics:
        return [dict(base)]
    return [{**base, "tactic": t, "metadata": list(base["metadata"])} for t in tactics]


_PLATFORM_LABELS = {"windows": "Windows", "linux": "Linux", "macos": "macOS", "network devices": "Network Devices",
                    "containers": "Containers", "iaas": "IaaS", "saas": "SaaS", "office suite": "Office Suite",
                    "identity provider": "Identity Provider", "esxi": "ESXi", "pre": "PRE"}


def _platform_label(platform: str) -> str:
    return _PLATFORM_LABELS.get(platform.lower(), platform)


# -- the layers dcoflow publishes ----------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class ScoredTechnique:
    """What the coverage and gap layers show for one technique (from an assessment)."""

    technique_id: str
    visibility: float
    detection: float
    explanation: tuple[str, ...] = ()
    priority: float = 0.0
    relevance: int = 0
    reason: str = ""  # why the gap ranks where it does (``Gap.reason``)
    coverage: str = ""  # hunt coverage ("hunted with N rules over …, nothing found")


def planned_layer(
    name: str, catalog_version: str, technique_ids: Iterable[str], description: str = "",
    *, tactics: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The techniques a DCO plans to hunt for or emulate, all in one colour."""
    ids = sorted(dict.fromkeys(technique_ids))
    cells = [Cell(t, score=1, color=PLANNED_COLOR, comment="planned") for t in ids]
    return build_layer(
        name, catalog_version, cells, tactics=tactics,
        description=description or f"{len(ids)} planned techniques",
        legend=[("planned", PLANNED_COLOR)], metadata=[("techniques", str(len(ids)))],
    )


def coverage_layer(
    name: str, catalog_version: str, scores: Iterable[ScoredTechnique], description: str = "",
    *, tactics: Mapping[str, Sequence[str]] | None = None, explanation_lines: int = 8,
) -> dict[str, Any]:
    """Detection score (−1..5) per technique; visibility and the evidence behind it as metadata."""
    cells = []
    for s in scores:
        meta = [("visibility", f"{s.visibility:g}"), ("detection", f"{s.detection:g}")]
        if s.coverage:
            meta.append(("hunt coverage", s.coverage))
        meta += [("evidence", line) for line in s.explanation[:explanation_lines]]
        if len(s.explanation) > explanation_lines:
            meta.append(("evidence", f"… {len(s.explanation) - explanation_lines} more"))
        cells.append(Cell(s.technique_id, score=round(s.detection),
                          comment=f"visibility {s.visibility:g}/4, detection {s.detection:g}/5",
                          metadata=tuple(meta)))
    labels = ["none", "forensics", "basic", "fair", "good", "very good / excellent"]
    return build_layer(
        name, catalog_version, cells, tactics=tactics, description=description or "Detection coverage (DeTT&CT scale)",
        gradient=(DETECTION_COLORS, -1, 5), legend=list(zip(labels, DETECTION_COLORS, strict=True)),
    )


def gap_layer(
    name: str, catalog_version: str, gaps: Iterable[ScoredTechnique], description: str = "",
    *, tactics: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Gap priority (threat relevance × shortfall below target) per technique, scaled 0–100 to the largest gap;
    the comment is the gap's reason."""
    items = list(gaps)
    top = max((g.priority for g in items), default=0.0) or 1.0
    cells = [
        Cell(g.technique_id, score=round(100 * g.priority / top),
             comment=f"priority {g.priority:.2f}: " + (g.reason or f"relevance {g.relevance}; visibility "
                                                       f"{g.visibility:g}/4, detection {g.detection:g}/5"),
             metadata=(("relevance", str(g.relevance)), ("visibility", f"{g.visibility:g}"),
                       ("detection", f"{g.detection:g}")))
        for g in items
    ]
    return build_layer(
        name, catalog_version, cells, tactics=tactics, description=description or "Ranked gaps",
        gradient=(GAP_COLORS, 0, 100), legend=[("small gap", GAP_COLORS[0]), ("large gap", GAP_COLORS[-1])],
    )


def threat_layer(
    name: str, catalog_version: str, users: Mapping[str, Sequence[str]], description: str = "",
    *, tactics: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """How many in-scope groups and campaigns use each technique (``users``: technique → their names)."""
    top = max((len(v) for v in users.values()), default=1) or 1
    cells = [
        Cell(tid, score=len(names), comment="used by " + ", ".join(names),
             metadata=tuple(("used by", n) for n in names))
        for tid, names in sorted(users.items())
    ]
    return build_layer(
        name, catalog_version, cells, tactics=tactics, description=description or "Threat profile",
        gradient=(THREAT_COLORS, 0, top), legend=[("few users", THREAT_COLORS[0]), ("many users", THREAT_COLORS[-1])],
    )


def compare_layer(
    name: str, catalog_version: str, before: Mapping[str, float], after: Mapping[str, float],
    description: str = "", *, tactics: Mapping[str, Sequence[str]] | None = None, missing: float = -1,
) -> dict[str, Any]:
    """After minus before (detection scores): green improved, red regressed, white unchanged."""
    cells = []
    for tid in sorted(set(before) | set(after)):
        b, a = before.get(tid, missing), after.get(tid, missing)
        cells.append(Cell(tid, score=round(a) - round(b), comment=f"{b:g} → {a:g}",
                          metadata=(("before", f"{b:g}"), ("after", f"{a:g}"))))
    span = 6
    return build_layer(
        name, catalog_version, cells, tactics=tactics, description=description or "Before/after comparison",
        gradient=(COMPARE_COLORS, -span, span),
        legend=[("regressed", COMPARE_COLORS[0]), ("unchanged", COMPARE_COLORS[1]), ("improved", COMPARE_COLORS[2])],
    )


# -- importing a layer from another release -------------------------------------------------------

@dataclass(slots=True)
class LayerImport:
    """A layer mapped onto the loaded release, and what had to change."""

    layer: dict[str, Any]
    from_version: str | None
    to_version: str
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # (old id, new id, note)
    vanished: list[tuple[str, str]] = field(default_factory=list)  # (id, note)
    deprecated: list[tuple[str, str]] = field(default_factory=list)  # kept, but no replacement

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.vanished or self.deprecated)

    def summary(self) -> str:
        head = f"layer from ATT&CK v{self.from_version or '?'} onto v{self.to_version}"
        parts = [f"{len(self.moved)} moved", f"{len(self.vanished)} vanished", f"{len(self.deprecated)} deprecated"]
        return f"{head}: " + ", ".join(parts)


def import_layer(
    data: Mapping[str, Any], catalog: Resolver, catalog_version: str, source: str = "layer"
) -> LayerImport:
    """Map a layer's technique ids onto the loaded release.

    Revoked ids become their replacement (the entry keeps a ``moved from`` metadata line; when two
    old entries land on one id, the higher score wins); ids the release does not know are dropped
    from the layer and listed in ``vanished``; deprecated ids stay and are listed.
    """
    if not isinstance(data, Mapping) or "techniques" not in data or not isinstance(data["techniques"], list):
        raise ContentError("not an ATT&CK Navigator layer (no 'techniques' list)", object=source, system="navigator")
    versions = data.get("versions") if isinstance(data.get("versions"), Mapping) else {}
    from_version = str(versions.get("attack")) if versions and versions.get("attack") is not None else None
    result = LayerImport(layer={}, from_version=from_version, to_version=catalog_version)
    kept: dict[tuple[str, str | None], dict[str, Any]] = {}
    seen_moved: set[str] = set()
    for n, raw in enumerate(data["techniques"]):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("techniqueID"), str):
            raise ContentError(f"technique entry {n} has no techniqueID", object=source, system="navigator")
        old = raw["techniqueID"]
        metadata = raw.get("metadata", [])
        if not isinstance(metadata, list) or not all(
                isinstance(m, Mapping) and (isinstance(m.get("name"), str) or m.get("divider") is True)
                for m in metadata):
            raise ContentError(f"technique entry {n} ({old}): metadata must be a list of {{name, value}} objects",
                               object=source, system="navigator")
        res = catalog.resolve(old, warn=False)
        entry = dict(raw)
        if res.attack_id is None:
            if old not in {v[0] for v in result.vanished}:
                result.vanished.append((old, res.note))
            continue
        if res.attack_id != old.upper():
            if old not in seen_moved:
                result.moved.append((old, res.attack_id, res.note))
                seen_moved.add(old)
            entry["techniqueID"] = res.attack_id
            entry["metadata"] = [*metadata, {"name": "moved from", "value": old}]
        elif res.status == "deprecated" and old not in {v[0] for v in result.deprecated}:
            result.deprecated.append((old, res.note))
        key = (entry["techniqueID"], entry.get("tactic"))
        prior = kept.get(key)
        if prior is None or _score(entry) > _score(prior):
            kept[key] = entry
    layer = {k: v for k, v in data.items() if k != "techniques"}
    layer["techniques"] = list(kept.values())
    layer["versions"] = {**(dict(versions) if versions else {}), "attack": attack_major(catalog_version),
                         "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION}
    layer.setdefault("domain", DOMAIN)
    result.layer = layer
    return result


def _score(entry: Mapping[str, Any]) -> float:
    value = entry.get("score")
    return float(value) if isinstance(value, int | float) else float("-inf")
