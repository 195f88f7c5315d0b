"""The executive deck (PPTX) and the PDF briefs with their charts, read back as a person would: slides
and their titles, pages rendered, banners on every page and slide, charts present, the numbers the
brief's facts hold; and a DCO with no results yet (honest, empty, still marked)."""

from __future__ import annotations

from pathlib import Path

from pptx import Presentation

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.repository.operation import create_operation
from dcoflow.tasks.reporting.documents.products import gather_brief_documents, write_brief_documents

from .conftest import DEMO, Built
from .pages import AMBER, band_has_colour, coloured_fraction, pdf_pages

BANNER = "TLP:AMBER — NATO UNCLASSIFIED — REL TO DCO CELL"
SLIDES = ["Bottom line", "What was tested", "What held", "Top risks", "Decisions needed", "Trend"]


def _slides(path: Path) -> list[tuple[list[str], int]]:
    """(texts of the slide's shapes, number of pictures) per slide."""
    out = []
    for slide in Presentation(str(path)).slides:
        texts = [s.text_frame.text for s in slide.shapes if s.has_text_frame]
        texts += [c.text for s in slide.shapes if s.has_table for row in s.table.rows for c in row.cells]
        out.append((texts, sum(1 for s in slide.shapes if s.shape_type == 13)))
    return out


def test_deck_and_pdf_briefs_show_the_briefs_numbers_and_charts(built: Built, catalog: Catalog,
                                                                tmp_path: Path) -> None:
    with session_scope() as s:
        docs = gather_brief_documents(s, built.dco_id, catalog)
    facts = docs.facts
    assert [c.key for c in docs.charts] == ["matrix", "heatmap", "trend", "risks"]
    files = write_brief_documents(docs, tmp_path)

    slides = _slides(files["deck"])
    assert 5 <= len(slides) <= 8
    assert [texts[3] for texts, _ in slides[1:]] == SLIDES  # banner, banner, page number, title
    for texts, _ in slides:
        assert texts[0] == BANNER and texts[1] == BANNER
    assert sum(p for _, p in slides) == 4  # matrix, heatmap, risk matrix, trend
    cov = facts.coverage_now
    assert cov is not None
    held = " ".join(slides[3][0])
    assert f"{cov.detected} of {cov.techniques} techniques would raise an alert" in held
    assert facts.rag.label in slides[0][0][4]
    decisions = " ".join(slides[5][0])
    assert all(r.authority in decisions for r in facts.decisions[:6])
    props = Presentation(str(files["deck"])).core_properties
    assert props.keywords == "TLP:AMBER" and props.comments == BANNER

    pages = pdf_pages(files["executive-pdf"])
    text = "\n".join(p.text for p in pages)
    assert "Bottom line up front" in text and "Pictures" in text
    assert f"alert for {cov.detected} of {cov.techniques}" in text  # the same number as the deck
    for page in pages:
        assert page.text.count(BANNER) >= 2
        assert band_has_colour(page.image, AMBER, 0.0, 0.08) and band_has_colour(page.image, AMBER, 0.9, 1.0)
    pictures = [p for p in pages if coloured_fraction(p.image, (0.1, 0.1, 0.9, 0.9)) > 0.08]
    assert len(pictures) >= 2, "the charts are on the pages"
    assert any(p.image.size[0] > p.image.size[1] for p in pages), "the ATT&CK matrix gets a landscape page"
    from dcoflow.tasks.reporting.briefing import write_briefs

    html = write_briefs(facts, tmp_path / "html", "executive", docs.charts)["executive-html"].read_text()
    assert html.count('<img src="data:image/png;base64,') == 4 and html.index("Pictures") < html.index("</main>")
    technical = pdf_pages(files["technical-pdf"], render=False)
    assert all(p.text.count(BANNER) >= 2 for p in technical)
    assert "Pictures" in "\n".join(p.text for p in technical)


def test_a_dco_without_results_gets_an_honest_empty_deck_and_brief(settings: Settings, catalog: Catalog,
                                                                   tmp_path: Path) -> None:
    spec = load_operation_file(DEMO).model_copy(deep=True)
    spec.name = 'Ops <x> & "y" — שלום 🚀'
    with session_scope() as s:
        dco_id = create_operation(s, spec, "alice").id
    with session_scope() as s:
        docs = gather_brief_documents(s, dco_id, catalog)
    assert docs.charts == []
    files = write_brief_documents(docs, tmp_path)
    slides = _slides(files["deck"])
    assert slides[0][0][3] == f"Executive brief — {spec.name}"
    assert "No assessment yet" in " ".join(slides[2][0]) and "No risk awaits a decision." in " ".join(slides[4][0])
    assert "the trend starts with the first assessment" in " ".join(slides[6][0])
    assert all(p == 0 for _, p in slides)
    text = "\n".join(p.text for p in pdf_pages(files["executive-pdf"], render=False))
    assert spec.name.split(" — ")[0] in text and "Pictures" not in text
    assert text.count(BANNER) >= 2
