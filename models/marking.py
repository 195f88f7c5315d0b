"""A DCO's marking (TLP 2.0 + classification/releasability) as every export format carries it.

One place decides the words (``MarkingFacts.label``/``banner``) and how each format holds them, so a
reader finds the same marking in a brief, a layer, a CSV or a workbook:

- documents and slides: ``banner`` in the header and footer of every page (the renderers);
- JSON exports: a top-level ``marking`` object (``marking_json``);
- Navigator layers: the ``description`` starts with the banner and ``metadata`` has a ``marking`` entry,
  both fields the layer format 4.5 defines, so the Navigator shows them and validators accept them;
- CSV: a ``marking`` column on every row (a first comment line would break VECTR's and pandas'
  readers; a column survives any CSV reader and every row cut out of the file keeps its marking);
- SVG: a banner line above and below the picture and the banner as ``<metadata>``;
- XLSX/DOCX/PPTX: document properties (keywords = label, comments = banner) besides the visible banner;
- STIX bundles: marking-definitions (models/stix/markings.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from typing import Any

from dcoflow.models.operation import Marking
from dcoflow.models.stix.markings import Tlp

TLP_ORDER = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED]
TLP_MEANING: dict[Tlp, str] = {
    Tlp.CLEAR: "disclosure is not limited",
    Tlp.GREEN: "limited to the community",
    Tlp.AMBER: "limited to recipients' organisations on a need-to-know basis",
    Tlp.AMBER_STRICT: "limited to the recipients' organisation only",
    Tlp.RED: "for the named recipients only",
}
#: The column (CSV) and metadata entry (Navigator layer) that hold the banner.
MARKING_KEY = "marking"
#: Banner colours by TLP, as FIRST's TLP 2.0 standard prints the labels (text on black).
TLP_COLORS: dict[Tlp, str] = {
    Tlp.CLEAR: "#FFFFFF", Tlp.GREEN: "#33FF00", Tlp.AMBER: "#FFC000", Tlp.AMBER_STRICT: "#FFC000", Tlp.RED: "#FF2B2B",
}


@dataclass(slots=True, frozen=True)
class MarkingFacts:
    tlp: Tlp
    statements: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"TLP:{self.tlp.value.upper()}"

    @property
    def statement(self) -> str:
        return "; ".join(self.statements) or "no classification or releasability statement"

    @property
    def banner(self) -> str:
        return f"{self.label} — {self.statement}"

    @property
    def meaning(self) -> str:
        return TLP_MEANING[self.tlp]

    @property
    def color(self) -> str:
        return TLP_COLORS[self.tlp]

    @classmethod
    def of(cls, marking: Marking) -> MarkingFacts:
        return cls(marking.tlp, (marking.statement,) if marking.statement else ())


def strictest(markings: Iterable[MarkingFacts]) -> MarkingFacts:
    """The marking of a document that combines several DCOs: the strictest TLP, every statement."""
    found = list(markings)
    if not found:
        return MarkingFacts(Tlp.AMBER)
    tlp = max((m.tlp for m in found), key=TLP_ORDER.index)
    statements = tuple(dict.fromkeys(s for m in found for s in m.statements))
    return MarkingFacts(tlp, statements)


def marking_json(marking: MarkingFacts) -> dict[str, Any]:
    """The ``marking`` object of a JSON export."""
    return {"tlp": marking.tlp.value, "label": marking.label, "statement": marking.statement,
            "banner": marking.banner, "meaning": marking.meaning}


def mark_json(document: dict[str, Any], marking: MarkingFacts) -> dict[str, Any]:
    """``document`` with ``marking`` as its first key (a reader opening the file sees it first)."""
    return {MARKING_KEY: marking_json(marking), **{k: v for k, v in document.items() if k != MARKING_KEY}}


def mark_layer(layer: dict[str, Any], marking: MarkingFacts) -> dict[str, Any]:
    """A Navigator layer with the banner leading its description and a ``marking`` metadata entry."""
    description = str(layer.get("description") or "")
    if not description.startswith(marking.banner):
        description = f"{marking.banner}. {description}".strip()
    metadata = [m for m in layer.get("metadata", []) if m.get("name") != MARKING_KEY]
    return {**layer, "description": description,
            "metadata": [{"name": MARKING_KEY, "value": marking.banner}, *metadata]}


def xlsx_header(marking: MarkingFacts) -> str:
    """The banner as an Excel header/footer section: ampersands are codes there and must be doubled."""
    return marking.banner.replace("&", "&&")


def document_properties(marking: MarkingFacts, title: str) -> dict[str, str]:
    """Core properties an office document carries (DOCX/PPTX/XLSX): what file managers and DLP tools read."""
    return {"title": title, "keywords": marking.label, "comments": marking.banner, "subject": marking.banner}


_SVG_ROOT = re.compile(r"<svg\b[^>]*>", re.S)
_ATTR = re.compile(r'\s(width|height|viewBox)="([^"]*)"')


def mark_svg(svg: str, marking: MarkingFacts, *, band: int = 22) -> str:
    """An SVG picture with a banner line above and below it and the banner in ``<metadata>``: whoever
    opens or prints the picture alone sees the marking. The root grows by two bands through its
    ``viewBox`` (the bands sit at negative y and below the old height), so the picture's own elements
    keep their coordinates and stay where readers of the SVG look for them."""
    root = _SVG_ROOT.search(svg)
    attrs = dict(_ATTR.findall(root.group(0))) if root else {}
    if root is None or "width" not in attrs or "height" not in attrs:
        raise ValueError("an SVG without width and height on its root element cannot be marked")
    width, height = float(attrs["width"]), float(attrs["height"])
    x0, y0, vw, vh = (float(v) for v in attrs["viewBox"].split()) if "viewBox" in attrs else (0, 0, width, height)
    scale = vh / height
    b = band * scale
    size = f'width="{width:g}" height="{height + 2 * band:g}" viewBox="{x0:g} {y0 - b:g} {vw:g} {vh + 2 * b:g}"'
    head = _ATTR.sub("", root.group(0)).replace("<svg", f"<svg {size}", 1)
    text = escape(marking.banner)

    def line(y: float) -> str:
        return (f'<rect x="{x0:g}" y="{y:g}" width="{vw:g}" height="{b:g}" fill="#000000"/>'
                f'<text x="{x0 + vw / 2:g}" y="{y + b * 0.72:g}" text-anchor="middle" font-family="sans-serif" '
                f'font-size="{12 * scale:g}" font-weight="bold" fill="{marking.color}">{text}</text>')

    body = svg[root.end():]
    close = body.rindex("</svg>")
    return (svg[:root.start()] + head + f"<metadata>{text}</metadata>{line(y0 - b)}" + body[:close]
            + line(y0 + vh) + body[close:])
