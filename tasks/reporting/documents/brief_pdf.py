"""The executive and technical briefs as PDF: the brief's own HTML (its templates, so the PDF says exactly
what the HTML says) with the charts added, set on A4 pages with the marking banner at the top and the
bottom of every page (the print style sheet of blocks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Literal

from dcoflow.core.errors import ContentError
from dcoflow.models.marking import MarkingFacts
from dcoflow.tasks.reporting.briefing import BriefingFacts, executive_brief, technical_brief
from dcoflow.tasks.reporting.documents.blocks import png_data_uri, print_css
from dcoflow.tasks.reporting.documents.charts import Chart
from dcoflow.tasks.reporting.documents.pdf import FONT, write_pdf

# The brief's screen styles set their own font and width; on paper the document font and the page rule.
_PAPER = f"""
body, html {{ font-family: "{FONT}", sans-serif !important; font-size: 9.5pt !important; }}
main {{ max-width: none !important; padding: 0 !important; }}
h2 {{ break-after: avoid; }}
table {{ font-size: 8.5pt !important; }}
tr, figure {{ break-inside: avoid; }}
figure {{ margin: 3mm 0; text-align: center; }}
figure img {{ max-width: 100%; max-height: 200mm; }}
figcaption {{ font-size: 8.5pt; color: #333; }}
.marking {{ display: none; }}
p.tlp-meaning {{ font-size: 8.5pt; color: #333; border-top: 0.6pt solid #999; padding-top: 1mm; }}
@page wide {{ size: A4 landscape; }}
figure.wide {{ page: wide; }}
figure.wide img {{ max-height: 150mm; }}
"""


def charts_html(charts: Sequence[Chart]) -> str:
    """The charts as a section of inline PNG figures (nothing when there is no chart)."""
    if not charts:
        return ""
    # The matrix takes a landscape page of its own in print: it goes last, so the heading stays with a picture.
    ordered = sorted(charts, key=lambda c: c.key == "matrix")
    figures = "".join(f'<figure class="{"wide" if c.key == "matrix" else "chart"}">'
                      f'<img src="{png_data_uri(c.png)}" alt="{escape(c.caption)}">'
                      f"<figcaption>{escape(c.caption)}</figcaption></figure>" for c in ordered)
    return f'<section class="charts"><h2>Pictures</h2>{figures}</section>'


def with_charts(html: str, charts: Sequence[Chart], *, lead: str = "") -> str:
    """The brief's HTML with ``lead`` (HTML) and the charts section at the end of its main part."""
    if not charts and not lead:
        return html
    at = html.rfind("</main>")
    if at < 0:
        raise ContentError("the brief's HTML has no </main> to put the charts in", system="documents",
                           object="brief template")
    return html[:at] + lead + charts_html(charts) + html[at:]


def paper_css(marking: MarkingFacts) -> str:
    return print_css(marking) + _PAPER


def write_brief_pdf(facts: BriefingFacts, kind: Literal["executive", "technical"], charts: Sequence[Chart],
                    path: Path) -> Path:
    html = executive_brief(facts, "html") if kind == "executive" else technical_brief(facts, "html")
    # On paper the banner is on every page; what the TLP label means closes the text, before the pictures
    # (the matrix's landscape page would otherwise push the closing marking line onto a page of its own).
    m = facts.marking
    lead = f'<p class="tlp-meaning">{escape(m.banner)} · {escape(m.label)}: {escape(m.meaning)}</p>'
    return write_pdf(with_charts(html, charts, lead=lead), path, extra_css=paper_css(facts.marking))
