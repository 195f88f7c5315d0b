"""A document as a list of plain blocks (headings, paragraphs, lists, tables, pictures, page breaks),
written once by the product (plan order, brief) and rendered to HTML (for the PDF) and to DOCX.

One content, two renderers: the PDF and the DOCX of a document cannot say different things. Both put
the marking banner in the header and the footer of every page and in the document properties; tables
repeat their header row on every page, so long annexes paginate cleanly.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from dcoflow.models.marking import MarkingFacts, document_properties


@dataclass(slots=True, frozen=True)
class Heading:
    text: str
    level: int = 1
    page_break: bool = False  # start a new page (annexes)
    wide: bool = False  # with page_break: the pages from here to the next page break are landscape


@dataclass(slots=True, frozen=True)
class Para:
    text: str
    lead: str = ""  # a bold run before the text ("a. Enemy forces.")
    style: str = ""  # "meta" (small, grey) or "box" (framed)


@dataclass(slots=True, frozen=True)
class Bullets:
    items: tuple[str, ...]
    numbered: bool = False


@dataclass(slots=True, frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...] = ()  # relative column widths
    caption: str = ""
    small: bool = False


@dataclass(slots=True, frozen=True)
class Picture:
    png: bytes
    caption: str
    width_cm: float = 16.0


Block = Heading | Para | Bullets | Table | Picture


@dataclass(slots=True)
class Document:
    title: str
    marking: MarkingFacts
    subtitle: str = ""
    blocks: list[Block] = field(default_factory=list)
    created: datetime | None = None
    landscape: bool = False

    def add(self, *blocks: Block) -> Document:
        self.blocks.extend(blocks)
        return self


# -- HTML (print) -------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: object) -> str:
    """Text without the control characters XML (DOCX, PPTX, XHTML) cannot hold."""
    return _CONTROL.sub("", "" if text is None else str(text))


def css_string(text: str) -> str:
    """``text`` as a CSS string literal: everything but plain letters, digits and spaces as a hex escape,
    so no name (quotes, ``</style>``, backslashes) can end the string or the style sheet."""
    out = []
    for ch in clean(text):
        out.append(ch if (ch.isalnum() and ch.isascii()) or ch == " " else f"\\{ord(ch):x} ")
    return '"' + "".join(out) + '"'


def _e(text: object) -> str:
    return escape(clean(text))


def print_css(marking: MarkingFacts, *, landscape: bool = False, font: str = "DejaVu Sans") -> str:
    """Page set-up: A4, the marking banner at the top and bottom of every page, page numbers."""
    banner = css_string(marking.banner)
    size = "A4 landscape" if landscape else "A4"
    box = (f'font: bold 8.5pt "{font}"; color: #000; background: {marking.color}; border: 0.6pt solid #000; '
           "padding: 0.8mm 4mm; height: 4.5mm; vertical-align: middle;")
    return f"""
@page {{ size: {size}; margin: 22mm 16mm 22mm 16mm;
  @top-center {{ content: {banner}; {box} margin-top: 8mm; margin-bottom: 6mm; }}
  @bottom-center {{ content: {banner}; {box} margin-top: 6mm; margin-bottom: 8mm; }}
  @bottom-right {{ content: "page " counter(page) " of " counter(pages); font: 8pt "{font}"; color: #444; }} }}
html {{ font-family: "{font}", sans-serif; font-size: 9.5pt; line-height: 1.35; color: #111; }}
h1 {{ font-size: 17pt; margin: 0 0 2mm 0; }}
h2 {{ font-size: 12.5pt; margin: 5mm 0 1.5mm 0; border-bottom: 0.8pt solid #333; padding-bottom: 0.8mm; }}
h3 {{ font-size: 10.5pt; margin: 3.5mm 0 1mm 0; }}
h1, h2, h3 {{ break-after: avoid; }}
.break {{ break-before: page; }}
@page wide {{ size: A4 landscape; }}
section.wide {{ page: wide; }}
p {{ margin: 1.2mm 0; }}
p.meta {{ color: #555; font-size: 8.5pt; }}
p.box {{ border: 0.8pt solid #333; padding: 2mm 3mm; background: #f4f4f4; }}
ul, ol {{ margin: 1mm 0 1mm 5mm; padding-left: 3mm; }}
table {{ border-collapse: collapse; table-layout: fixed; width: 100%; margin: 1.5mm 0 3mm 0; font-size: 8.5pt; }}
table.small {{ font-size: 7.5pt; }}
thead {{ display: table-header-group; }}
th {{ background: #e6e6e6; text-align: left; }}
th, td {{ border: 0.5pt solid #999; padding: 0.8mm 1.3mm; vertical-align: top; overflow-wrap: anywhere; }}
tr {{ break-inside: avoid; }}
caption {{ caption-side: top; text-align: left; font-weight: bold; padding-bottom: 1mm; }}
figure {{ margin: 2mm 0; break-inside: avoid; text-align: center; }}
figure img {{ max-width: 100%; }}
figcaption {{ font-size: 8.5pt; color: #333; }}
"""


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_html(doc: Document, *, font: str = "DejaVu Sans") -> str:
    """A self-contained HTML page of ``doc`` (pictures inline) with the print style sheet."""
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           f'<meta name="tlp" content="{_e(doc.marking.label)}">',
           f'<meta name="marking" content="{_e(doc.marking.banner)}">',
           f"<title>{_e(doc.marking.label)} {_e(doc.title)}</title>",
           f"<style>{print_css(doc.marking, landscape=doc.landscape, font=font)}</style></head><body>",
           f'<h1 dir="auto">{_e(doc.title)}</h1>']
    if doc.subtitle:
        out.append(f'<p class="meta" dir="auto">{_e(doc.subtitle)}</p>')
    in_wide = False
    for block in doc.blocks:
        if isinstance(block, Heading) and block.page_break:
            if in_wide:
                out.append("</section>")
            in_wide = block.wide
            if in_wide:
                out.append('<section class="wide">')
        out.append(_html_block(block))
    if in_wide:
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        cls = ' class="break"' if block.page_break else ""
        level = min(max(block.level + 1, 2), 4)
        return f'<h{level}{cls} dir="auto">{_e(block.text)}</h{level}>'
    if isinstance(block, Para):
        cls = f' class="{block.style}"' if block.style else ""
        lead = f"<strong>{_e(block.lead)}</strong> " if block.lead else ""
        return f'<p{cls} dir="auto">{lead}{_e(block.text)}</p>'
    if isinstance(block, Bullets):
        tag = "ol" if block.numbered else "ul"
        return f"<{tag}>" + "".join(f'<li dir="auto">{_e(i)}</li>' for i in block.items) + f"</{tag}>"
    if isinstance(block, Table):
        cls = ' class="small"' if block.small else ""
        cols = ""
        if block.widths:
            total = sum(block.widths)
            cols = "<colgroup>" + "".join(f'<col style="width:{100 * w / total:.1f}%">' for w in block.widths) \
                + "</colgroup>"
        caption = f'<caption dir="auto">{_e(block.caption)}</caption>' if block.caption else ""
        head = "".join(f"<th>{_e(h)}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(f'<td dir="auto">{_e(c)}</td>' for c in row) + "</tr>" for row in block.rows)
        return f"<table{cls}>{caption}{cols}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return (f'<figure><img alt="{_e(block.caption)}" style="width:{block.width_cm}cm" src="{png_data_uri(block.png)}">'
            f'<figcaption dir="auto">{_e(block.caption)}</figcaption></figure>')


# -- DOCX ---------------------------------------------------------------------------------------------------


def to_docx(doc: Document, path: Path) -> Path:
    """``doc`` as a Word document: the banner in every section's header and footer, the marking in the
    core properties, header rows repeated on every page. Written to a temporary file, then renamed."""
    from docx import Document as new_word_document  # noqa: N813  (a factory function)
    from docx.enum.section import WD_ORIENT, WD_SECTION
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt, RGBColor

    word = new_word_document()
    props = word.core_properties
    for key, value in document_properties(doc.marking, doc.title).items():
        setattr(props, key, clean(value))
    props.category = clean(doc.marking.label)
    if doc.created is not None:
        props.created = doc.created.replace(tzinfo=None)
    normal = word.styles["Normal"]
    normal.font.name, normal.font.size = "DejaVu Sans", Pt(9.5)
    section = word.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    if doc.landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    for margin in ("left_margin", "right_margin"):
        setattr(section, margin, Cm(1.6))
    hex_color = doc.marking.color.lstrip("#")

    def banner(paragraph: Any) -> None:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = paragraph.add_run(clean(doc.marking.banner))
        run.bold, run.font.size = True, Pt(8.5)
        run.font.color.rgb = RGBColor(0, 0, 0)
        shading = OxmlElement("w:shd")
        shading.set(qn("w:val"), "clear")
        shading.set(qn("w:fill"), hex_color)
        paragraph._p.get_or_add_pPr().append(shading)

    banner(section.header.paragraphs[0])
    banner(section.footer.paragraphs[0])
    word.add_heading(clean(doc.title), level=0)
    if doc.subtitle:
        word.add_paragraph(clean(doc.subtitle)).runs[0].italic = True
    page_cm = 29.7 if doc.landscape else 21.0
    width = Cm(page_cm - 2 * 1.6)
    wide_now = doc.landscape
    for block in doc.blocks:
        if isinstance(block, Heading):
            if block.page_break and block.wide != wide_now:
                # a new section turned the other way; its header and footer continue the banner
                new = word.add_section(WD_SECTION.NEW_PAGE)
                wide_now = block.wide or doc.landscape
                new.orientation = WD_ORIENT.LANDSCAPE if wide_now else WD_ORIENT.PORTRAIT
                new.page_width, new.page_height = (Cm(29.7), Cm(21.0)) if wide_now else (Cm(21.0), Cm(29.7))
                page_cm = 29.7 if wide_now else 21.0
                width = Cm(page_cm - 2 * 1.6)
            elif block.page_break:
                word.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
            word.add_heading(clean(block.text), level=min(block.level, 3))
        elif isinstance(block, Para):
            p = word.add_paragraph()
            if block.lead:
                p.add_run(clean(block.lead) + " ").bold = True
            run = p.add_run(clean(block.text))
            if block.style == "meta":
                run.italic, run.font.size = True, Pt(8.5)
        elif isinstance(block, Bullets):
            for item in block.items:
                word.add_paragraph(clean(item), style="List Number" if block.numbered else "List Bullet")
        elif isinstance(block, Table):
            if block.caption:
                word.add_paragraph().add_run(clean(block.caption)).bold = True
            table = word.add_table(rows=1, cols=len(block.header))
            table.style = "Table Grid"
            head = table.rows[0]
            flag = OxmlElement("w:tblHeader")  # repeat the header row on every page
            flag.set(qn("w:val"), "true")
            head._tr.get_or_add_trPr().append(flag)
            size = Pt(7.5 if block.small else 8.5)
            for cell, text in zip(head.cells, block.header, strict=True):
                cell.text = ""
                run = cell.paragraphs[0].add_run(clean(text))
                run.bold, run.font.size = True, size
            for row in block.rows:
                cells = table.add_row().cells
                for cell, text in zip(cells, row, strict=True):
                    cell.paragraphs[0].add_run(clean(text)).font.size = size
            if block.widths:
                total = sum(block.widths)
                for column, w in zip(table.columns, block.widths, strict=True):
                    for cell in column.cells:
                        cell.width = int(width * w / total)
        else:
            word.add_picture(io.BytesIO(block.png), width=Cm(min(block.width_cm, page_cm - 2 * 1.6)))
            word.add_paragraph(clean(block.caption)).alignment = WD_ALIGN_PARAGRAPH.CENTER
    return _atomic_save(path, word.save)


def _atomic_save(path: Path, save: Any) -> Path:
    """Save through a temporary file in the same folder, renamed into place: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        save(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
