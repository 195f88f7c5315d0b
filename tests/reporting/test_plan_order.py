"""The DCO plan as a five-paragraph order (DOCX and PDF), read back as a person would: pages rendered,
headings, the banner on every page, annexes; and the awkward cases (no plan yet, a very long plan,
names that break markup, a missing renderer or font)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from docx import Document as read_docx  # noqa: N813

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ConfigError
from dcoflow.core.settings import Settings
from dcoflow.models.attack import Catalog
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import create_operation, get_operation
from dcoflow.tasks.reporting.documents.blocks import to_html
from dcoflow.tasks.reporting.documents.pdf import write_pdf
from dcoflow.tasks.reporting.documents.plan_order import (
    BODY_ITEMS,
    PlanOrder,
    StepLine,
    gather_plan_order,
    plan_document,
    write_plan_documents,
)

from .conftest import DEMO, Built
from .pages import AMBER, band_has_colour, pdf_pages

BANNER = "TLP:AMBER — NATO UNCLASSIFIED — REL TO DCO CELL"
PARAGRAPHS = ["1. Situation", "2. Mission", "3. Execution", "4. Sustainment", "5. Command and signal"]
ANNEXES = ["Annex A — Emulation plan", "Annex B — Hunt plan", "Annex C — Rules of engagement",
           "Annex D — Deconfliction schedule", "Annex E — Tasking matrix"]


def test_plan_order_reads_as_an_order(built: Built, catalog: Catalog, tmp_path: Path) -> None:
    with session_scope() as s:
        order = gather_plan_order(s, get_operation(s, built.dco_id), catalog)
    files = write_plan_documents(order, tmp_path)
    pages = pdf_pages(files["plan-pdf"])
    text = "\n".join(p.text for p in pages)
    for heading in PARAGRAPHS + ANNEXES + ["Version and change log"]:
        assert heading in text, heading
    for page in pages:  # the banner in the header and the footer of every page, as text and as ink
        assert page.text.count(BANNER) >= 2, page.number
        assert band_has_colour(page.image, AMBER, 0.0, 0.08) and band_has_colour(page.image, AMBER, 0.92, 1.0)
    assert "Approval. Approved by coordinator on 20" in text  # the approval recorded by the state change
    assert "planned → approved" in text  # the change log
    assert f"{len(order.steps)} emulation steps" in text and order.steps[0].technique.split()[0] in text
    assert "H+0:00:00" in text and "H+0:01:00" in text  # the RoE's 60 s time box
    assert "CyOC" in text and "dco-coord@ocio.example" in text  # friendly forces and contacts
    assert "enterprise v18.1" in text  # content versions
    annex_a = next(p.number for p in pages if "Annex A — Emulation plan" in p.text)
    assert annex_a <= 5, "the body stays within four pages"
    body = "\n".join(p.text for p in pages if p.number < annex_a)
    assert "all in Annex A" in body and f"of {len(order.hypotheses)}; all in Annex B" in body
    word = read_docx(str(files["plan-docx"]))
    headings = [p.text for p in word.paragraphs if p.style is not None and p.style.name.startswith("Heading")]
    assert all(h in headings for h in PARAGRAPHS + ANNEXES)
    section = word.sections[0]
    assert section.header.paragraphs[0].text == BANNER and section.footer.paragraphs[0].text == BANNER
    assert word.core_properties.keywords == "TLP:AMBER" and word.core_properties.comments == BANNER
    matrix = word.tables[-2]  # Annex E
    orgs = [row.cells[0].text for row in matrix.rows[1:]]
    assert orgs == ["OCIO", "CyOC", "JISD", "NCIA", "Incident Manager"]
    header = [c.text for c in matrix.rows[0].cells]
    assert matrix.rows[2].cells[header.index("hunt")].text == "C"  # CyOC conducts the hunt


def test_a_dco_not_planned_yet_gets_a_valid_order(settings: Settings, catalog: Catalog, tmp_path: Path) -> None:
    spec = load_operation_file(DEMO)
    with session_scope() as s:
        dco_id = create_operation(s, spec, "alice").id
    with session_scope() as s:
        order = gather_plan_order(s, get_operation(s, dco_id), catalog)
    assert order.steps == [] and order.hypotheses == [] and order.record is None
    files = write_plan_documents(order, tmp_path)
    text = "\n".join(p.text for p in pdf_pages(files["plan-pdf"], render=False))
    assert "NOT YET APPROVED — the DCO is draft" in text
    assert "not planned yet" in text and "No emulation in this DCO" in text
    assert all(h in text for h in PARAGRAPHS + ANNEXES)


def _order(spec: DcoSpec, steps: int) -> PlanOrder:
    from dcoflow.models.marking import MarkingFacts

    lines = [StepLine(n + 1, "execution", f"T1059.{n % 9:03d} Command {n}", f"procedure number {n} " * 3,
                      "manual / sh / linux", f"H+0:{n:02d}:00", "—", "pending") for n in range(steps)]
    return PlanOrder(dco_id="long", spec=spec, state="planned", marking=MarkingFacts.of(spec.marking),
                     generated_at=datetime(2026, 12, 6, tzinfo=UTC), version=3, record=None, threat_actors=[],
                     threat=[], steps=lines, hypotheses=[], deconfliction=[], changes=[], approved_by=None,
                     approved_at=None, time_box=timedelta(seconds=60))


def test_a_very_long_plan_keeps_the_body_short_and_paginates_the_annex(tmp_path: Path) -> None:
    order = _order(load_operation_file(DEMO), 400)
    files = write_plan_documents(order, tmp_path)
    pages = pdf_pages(files["plan-pdf"], render=False)
    annex_a = next(p.number for p in pages if "Annex A — Emulation plan" in p.text)
    annex_b = next(p.number for p in pages if "Annex B — Hunt plan" in p.text)
    assert annex_a <= 5 and annex_b - annex_a >= 10  # 400 rows over many pages, the body a few pages
    body = "\n".join(p.text for p in pages if p.number < annex_a)
    assert f"({BODY_ITEMS} of 400; all in Annex A)" in body and "procedure number 399" not in body
    annex = "\n".join(p.text for p in pages if annex_a <= p.number < annex_b)
    assert "procedure number 399" in annex
    assert all(p.text.count("tactic") >= 1 for p in pages if annex_a < p.number < annex_b)  # header row repeats
    assert all(p.text.count(BANNER) >= 2 for p in pages)
    wide = [p.number for p in pdf_pages(files["plan-pdf"], scale=0.2) if p.image.size[0] > p.image.size[1]]
    assert annex_a in wide and annex_a - 1 not in wide  # the annex tables get landscape pages, the body not
    word = read_docx(str(files["plan-docx"]))
    assert [s.orientation for s in word.sections][:3] == [0, 1, 0]  # portrait body, landscape Annex A/B, Annex C
    assert all(s.header.is_linked_to_previous for s in word.sections[1:])  # the banner continues


def test_names_that_break_markup_are_shown_as_written(tmp_path: Path) -> None:
    spec = load_operation_file(DEMO).model_copy(deep=True)
    name = 'Op <b>"Ash" & Oak</b> — שלום עולם مرحبا 🚀'
    spec.name = name
    spec.participants[0].organisation = "R&D <CERT>"
    spec.marking.classification = 'SECRET <"&">'
    order = _order(spec, 3)
    files = write_plan_documents(order, tmp_path)
    text = "\n".join(p.text for p in pdf_pages(files["plan-pdf"], render=False))
    assert 'Op <b>"Ash" & Oak</b>' in text and "R&D <CERT>" in text
    assert "שלום" in text or "םולש" in text  # Hebrew, in logical or visual order
    assert 'TLP:AMBER — SECRET <"&"> — REL TO DCO CELL' in text
    html = to_html(plan_document(order))
    assert "<b>" not in html and "&lt;b&gt;" in html
    word = read_docx(str(files["plan-docx"]))
    assert word.paragraphs[0].text == f"DCO plan — {name}"
    assert word.sections[0].header.paragraphs[0].text == 'TLP:AMBER — SECRET <"&"> — REL TO DCO CELL'


def test_a_missing_renderer_or_font_is_a_clear_error_and_no_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    order = _order(load_operation_file(DEMO), 2)
    html = to_html(plan_document(order))
    target = tmp_path / "plan.pdf"
    with pytest.raises(ConfigError, match="not installed") as err:
        write_pdf(html, target, font="No Such Font Sans")
    assert "fonts-dejavu-core" in str(err.value)
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as when it is not installed
    with pytest.raises(ConfigError, match="WeasyPrint cannot be loaded") as err:
        write_plan_documents(order, tmp_path)
    assert "pip install weasyprint" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long-plan-order.docx"]  # no PDF, no partial file


def test_cli_writes_the_plan_documents(built: Built, catalog: Catalog, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from dcoflow.flows.cli import app

    got = CliRunner().invoke(app, ["doc", "plan", built.dco_id, "--out", str(tmp_path), "--json"])
    assert got.exit_code == 0, got.output
    files = json.loads(got.output)["files"]
    assert sorted(Path(p).name for p in files.values()) == [f"{built.dco_id}-plan-order.docx",
                                                            f"{built.dco_id}-plan-order.pdf"]
    missing = CliRunner().invoke(app, ["doc", "plan", "no-such-dco", "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "no-such-dco" in missing.output
