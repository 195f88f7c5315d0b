"""The executive brief as a PowerPoint deck (python-pptx), from the brief's own facts.

Seven slides: the title with the status, bottom line, what was tested, what held, top risks, decisions
needed, trend. Every number comes from ``BriefingFacts`` (the same object the Markdown/HTML/PDF briefs
render), every slide carries the marking banner at its top and bottom, and the marking is in the
document properties. A DCO without results gets the same slides saying so plainly.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcoflow.models.marking import document_properties
from dcoflow.tasks.reporting.briefing import BriefingFacts, key_risks, render
from dcoflow.tasks.reporting.documents.blocks import _atomic_save, clean
from dcoflow.tasks.reporting.documents.charts import Chart

RAG_COLORS = {"red": "E5484D", "amber": "FFB224", "green": "46A758"}
WIDTH_IN, HEIGHT_IN = 13.333, 7.5  # 16:9


def _font_file() -> str:
    """DejaVu Sans as matplotlib ships it (the same face Debian's fonts-dejavu-core installs)."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def bottom_line(facts: BriefingFacts) -> str:
    """The brief's BLUF paragraph (its own template), one sentence per line."""
    text = render("_bluf.txt.j2", f=facts)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class _Deck:
    def __init__(self, facts: BriefingFacts) -> None:
        from pptx import Presentation
        from pptx.util import Inches

        self.facts = facts
        self.prs = Presentation()
        self.prs.slide_width, self.prs.slide_height = Inches(WIDTH_IN), Inches(HEIGHT_IN)
        props = self.prs.core_properties
        for key, value in document_properties(facts.marking, f"Executive brief — {facts.name}").items():
            setattr(props, key, clean(value))
        props.category = clean(facts.marking.label)
        self.count = 0

    # -- primitives -------------------------------------------------------------------------------------------

    def _box(self, slide: Any, x: float, y: float, w: float, h: float, text: str, *, size: int = 16,
             bold: bool = False, fill: str | None = None, color: str = "000000", align: str = "left") -> Any:
        from pptx.dml.color import RGBColor as _RGBColor

        RGBColor: Any = _RGBColor  # noqa: N806  (untyped constructor)
        from pptx.enum.text import MSO_ANCHOR, MSO_AUTO_SIZE, PP_ALIGN
        from pptx.util import Inches, Pt

        shape = slide.shapes.add_textbox(Inches(x), Inches(y), Inches(w), Inches(h))
        frame = shape.text_frame
        frame.word_wrap = True
        if not fill:  # long lists shrink to their box when PowerPoint or LibreOffice lays the slide out
            frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
        frame.vertical_anchor = MSO_ANCHOR.MIDDLE if fill else MSO_ANCHOR.TOP
        if fill:
            shape.fill.solid()
            shape.fill.fore_color.rgb = RGBColor(*bytes.fromhex(fill))
        for n, line in enumerate(clean(text).split("\n")):
            para = frame.paragraphs[0] if n == 0 else frame.add_paragraph()
            para.alignment = {"left": PP_ALIGN.LEFT, "center": PP_ALIGN.CENTER}[align]
            run = para.add_run()
            run.text = line
            run.font.size, run.font.bold = Pt(size), bold
            run.font.color.rgb = RGBColor(*bytes.fromhex(color))
            run.font.name = "DejaVu Sans"
        return shape

    def slide(self, title: str) -> Any:
        slide = self.prs.slides.add_slide(self.prs.slide_layouts[6])  # blank
        self.count += 1
        banner, fill = self.facts.marking.banner, self.facts.marking.color.lstrip("#")
        self._box(slide, 0, 0, WIDTH_IN, 0.36, banner, size=11, bold=True, fill=fill, align="center")
        self._box(slide, 0, HEIGHT_IN - 0.36, WIDTH_IN, 0.36, banner, size=11, bold=True, fill=fill, align="center")
        self._box(slide, WIDTH_IN - 1.4, HEIGHT_IN - 0.78, 1.2, 0.35, str(self.count), size=10, color="555555")
        self._box(slide, 0.5, 0.5, WIDTH_IN - 1.0, 0.8, title, size=28, bold=True)
        return slide

    def bullets(self, slide: Any, items: Sequence[str], *, x: float = 0.6, y: float = 1.45, w: float | None = None,
                size: int = 16) -> None:
        """A list that always fits its box: the font size is chosen from the font's own metrics
        (python-pptx's fit_text with DejaVu Sans, the deck's font), never larger than ``size``."""
        shape = self._box(slide, x, y, w or WIDTH_IN - 1.2, HEIGHT_IN - y - 0.9, "\n".join(f"• {i}" for i in items),
                          size=size)
        shape.text_frame.fit_text(font_family="DejaVu Sans", max_size=size, font_file=_font_file())

    def picture(self, slide: Any, chart: Chart, x: float, y: float, w: float, h: float) -> None:
        """The chart scaled to fit the box, keeping its proportions."""
        from PIL import Image
        from pptx.util import Inches

        with Image.open(io.BytesIO(chart.png)) as img:
            ratio = img.width / img.height
        width, height = (w, w / ratio) if w / ratio <= h else (h * ratio, h)
        slide.shapes.add_picture(io.BytesIO(chart.png), Inches(x + (w - width) / 2), Inches(y), Inches(width),
                                 Inches(height))

    def table(self, slide: Any, header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float],
              y: float = 1.5, size: int = 12) -> None:
        from pptx.util import Inches, Pt

        shape = slide.shapes.add_table(len(rows) + 1, len(header), Inches(0.6), Inches(y), Inches(WIDTH_IN - 1.2),
                                       Inches(0.4 * (len(rows) + 1)))
        table = shape.table
        total = sum(widths)
        for c, w in enumerate(widths):
            table.columns[c].width = Inches((WIDTH_IN - 1.2) * w / total)
        for r, row in enumerate([header, *rows]):
            for c, text in enumerate(row):
                cell = table.cell(r, c)
                cell.text = clean(text)
                for para in cell.text_frame.paragraphs:
                    for run in para.runs:
                        run.font.size, run.font.bold = Pt(size), r == 0


def write_deck(facts: BriefingFacts, charts: Sequence[Chart], path: Path) -> Path:
    """The executive deck of ``facts`` with ``charts`` (by key: matrix, heatmap, trend, risks)."""
    deck = _Deck(facts)
    by_key = {c.key: c for c in charts}
    f = facts
    cov, before = f.coverage_now, f.coverage_before

    s = deck.slide(f"Executive brief — {f.name}")
    deck._box(s, 0.6, 1.6, WIDTH_IN - 1.2, 1.0, f"Status {f.rag.label}", size=40, bold=True,
              fill=RAG_COLORS[f.rag.level], color="000000", align="center")
    deck._box(s, 0.6, 2.9, WIDTH_IN - 1.2, 2.6,
              f"DCO {f.dco_id} · {f.type} · {f.state}\n{f.objective.strip()}\n"
              f"Prepared {f.generated_at:%Y-%m-%d %H:%M UTC} for the coordination cell and the risk owners.\n"
              f"{f.marking.label}: {f.marking.meaning}.", size=16)

    s = deck.slide("Bottom line")
    deck.bullets(s, [f"Status {f.rag.label}: " + "; ".join(f.rag.reasons) + ".", bottom_line(f)], size=18)

    s = deck.slide("What was tested")
    tested = []
    if f.plan is not None:
        tested.append(f"{f.plan.techniques} attacker techniques planned; {f.plan.emulation_steps} emulation steps, "
                      f"{f.plan.hypotheses} hunt hypotheses (ATT&CK {f.plan.attack_version}).")
    tested.append(f"Hunts: {f.hunts.runs} run(s) over {f.hunts.events_read} recorded events, {f.hunts.rules_run} "
                  f"rule runs, {f.hunts.real_hits} matches on real activity, {f.hunts.exercise_hits} on our own tests."
                  if f.hunts.runs else "Hunts: none run yet.")
    tested.append(f"Emulation: {f.emulation.done} of {f.emulation.steps} steps done."
                  if f.emulation.steps else "Emulation: no steps in this DCO.")
    if cov is None:
        tested.append("No assessment yet: nothing can be said about detection until the results are assessed.")
    deck.bullets(s, tested, w=5.4 if "matrix" in by_key else None, size=15)
    if "matrix" in by_key:
        deck.picture(s, by_key["matrix"], 6.2, 1.4, WIDTH_IN - 6.7, HEIGHT_IN - 2.3)

    s = deck.slide("What held")
    held = []
    if cov is not None:
        held.append(f"{cov.detected} of {cov.techniques} techniques would raise an alert today"
                    + (f" ({before.detected} at the previous assessment)." if before else "."))
        held.append(f"{cov.visible} of {cov.techniques} leave traces we can see (mean visibility "
                    f"{cov.mean_visibility:.1f} of 4; mean detection {cov.mean_detection:.1f} of 5).")
    for tool in f.emulation.tools:
        held.append(f"{tool.tool}: stopped or alerted on {tool.stopped_or_alerted} of {tool.total} steps "
                    f"({tool.prevented} prevented, {tool.alerted} alerted, {tool.logged} logged only).")
    deck.bullets(s, held or ["Nothing assessed yet: no result to report."], w=5.4 if "heatmap" in by_key else None,
                 size=15)
    if "heatmap" in by_key:
        deck.picture(s, by_key["heatmap"], 6.2, 1.4, WIDTH_IN - 6.7, HEIGHT_IN - 2.3)

    s = deck.slide("Top risks")
    risks = key_risks(f, len(f.decisions))
    lines = [f"R{n}. {r.plain} (score {r.score} of 25, owner {r.owner})" for n, r in enumerate(risks[:5], start=1)]
    if len(risks) > 5:
        lines.append(f"… and {len(risks) - 5} more risk(s) awaiting a decision (technical brief).")
    deck.bullets(s, lines or ["No risk awaits a decision."], w=7.4 if "risks" in by_key else None, size=13)
    if "risks" in by_key:
        deck.picture(s, by_key["risks"], 8.2, 1.4, WIDTH_IN - 8.6, HEIGHT_IN - 2.3)

    s = deck.slide("Decisions needed")
    if risks:
        rows = [(f"R{n}", r.plain, r.authority, f"{r.decide_by:%Y-%m-%d}", r.recommendation.value)
                for n, r in enumerate(risks[:6], start=1)]
        deck.table(s, ("", "decision", "who decides", "by", "recommended"), rows, (0.5, 7, 1.6, 1.3, 1.3), size=11)
        if len(risks) > 6:
            deck._box(s, 0.6, HEIGHT_IN - 1.1, WIDTH_IN - 1.2, 0.4,
                      f"… {len(risks) - 6} more in the technical brief and the meeting pack.", size=12)
    else:
        deck.bullets(s, ["No decision is needed now."])

    s = deck.slide("Trend")
    if "trend" in by_key:
        deck.picture(s, by_key["trend"], 0.6, 1.4, WIDTH_IN - 1.2, HEIGHT_IN - 2.3)
    else:
        deck.bullets(s, ["No assessment yet: the trend starts with the first assessment."])
    return _atomic_save(path, deck.prs.save)
