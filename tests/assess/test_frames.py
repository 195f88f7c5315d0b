"""The assessment's pandas tables and the files written from them: the marked XLSX read back with
openpyxl, the tactic pivot behind the heatmap, the trend across DCOs (CSV + SVG), gap ranks."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from sqlmodel import Session
from typer.testing import CliRunner

from dcoflow.core.db import session_scope
from dcoflow.core.settings import Settings
from dcoflow.models.assessment_rows import TechniqueScore
from dcoflow.models.attack import Catalog
from dcoflow.models.marking import mark_svg
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.assessment import latest_scores, trend
from dcoflow.models.repository.operation import create_operation
from dcoflow.models.repository.stix_store import put_objects
from dcoflow.tasks.assess.frames import LEVELS, TABLE_COLUMNS, coverage_frame, tactic_table, trend_frame
from dcoflow.tasks.assess.outputs import publish, publish_trend, trend_marking, trend_svg
from dcoflow.tasks.assess.scoring import assess_dco, gaps_for_follow_up

from .stixdata import hunt_hit, hunt_run, outcome, verdict

T1 = "2026-05-20T10:00:00.000Z"
DAY1, DAY2 = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC)
BANNER = "TLP:RED — NATO RESTRICTED — REL TO A & B"


@pytest.fixture()
def session(settings: Settings) -> Iterator[Session]:
    with session_scope(settings.db_url) as s:
        yield s


def marked_dco(session: Session, name: str) -> str:
    spec = DcoSpec.model_validate({
        "name": name, "objective": "test", "type": "purple-team",
        "threat_profile": {"groups": ["APT29"], "techniques": ["T1003.001"]},
        "marking": {"tlp": "red", "classification": "NATO RESTRICTED", "releasability": "REL TO A & B"}})
    dco = create_operation(session, spec, "tester").id
    session.flush()
    hit = hunt_hit(dco, "r-lsass", ["T1003.001"], "ws01:1", T1, "run1")
    put_objects(session, [
        hunt_run(dco, "run1", T1, [{"rule_id": "r-lsass", "technique_ids": ["T1003.001"], "hits": 1}],
                 {"Microsoft-Windows-Sysmon/Operational": 100}, [hit["id"]]),
        hit, verdict(dco, hit, "true-positive", T1), outcome(dco, "s1", "edr", "T1059.001", "none", T1, T1),
    ], dco)
    return dco


def test_xlsx_carries_the_marking_and_the_stored_scores(session: Session, catalog_fixture: Catalog,
                                                        tmp_path: Path) -> None:
    dco = marked_dco(session, "marked drill")
    assess_dco(session, dco, catalog_fixture, DAY1)
    files = publish(session, dco, catalog_fixture, tmp_path)
    stored = {s.technique_id: s for s in latest_scores(session, dco)}

    book = openpyxl.load_workbook(files["xlsx"])
    assert book.sheetnames == ["coverage", "tactics"]
    assert book.properties.keywords == "TLP:RED" and book.properties.description == BANNER
    sheet = book["coverage"]
    assert sheet["A1"].value == BANNER and sheet["A1"].font.b
    end = get_column_letter(len(TABLE_COLUMNS))
    assert f"A1:{end}1" in {str(r) for r in sheet.merged_cells.ranges}
    assert [c.value for c in sheet[2]] == TABLE_COLUMNS and all(c.font.b for c in sheet[2])
    # header/footer text: the ampersand doubled for Excel, read back as written
    assert sheet.oddHeader.center.text == BANNER.replace("&", "&&")
    assert sheet.oddFooter.center.text.startswith(BANNER.replace("&", "&&") + " — page &P of &N")
    last = 2 + len(stored)
    assert sheet.cell(last + 2, 1).value == BANNER  # the banner again after the table, one row apart
    assert sheet.freeze_panes == "B3" and sheet.auto_filter.ref == f"A2:{end}{last}"
    formatted = {str(rng.sqref) for rng in sheet.conditional_formatting}
    assert f"E3:E{last}" in formatted and f"D3:D{last}" in formatted  # detection and visibility colour scales

    header = TABLE_COLUMNS
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=3, max_row=last)]
    lsass = next(r for r in rows if r["technique_id"] == "T1003.001")
    score = stored["T1003.001"]
    assert (lsass["visibility"], lsass["detection"], lsass["priority"], lsass["relevance"], lsass["evidence"]) == (
        score.visibility, score.detection, score.priority, score.relevance, score.evidence_count)
    assert lsass["gap_rank"] == score.explanation["gap_rank"]
    assert (lsass["real_hits"], lsass["exercise_hits"]) == (score.explanation["real_hits"], 0)
    assert (lsass["gap_reason"] or "") == (score.explanation["gap_reason"] or "")
    assert (lsass["hunt_coverage"] or "") == score.explanation["hunt_coverage"]["text"]
    assert lsass["assessed_at"] == score.assessed_at.isoformat()
    assert lsass["name"] == "LSASS Memory" and "credential-access" in lsass["tactics"]
    assert "triage-tp" in lsass["deciding_evidence"]
    ranks = [r["gap_rank"] for r in rows if r["gap_rank"] is not None]
    assert ranks == list(range(1, len(ranks) + 1)) and len(rows) == len(stored)

    tactics = book["tactics"]
    assert tactics["A1"].value == BANNER and tactics.oddHeader.center.text == BANNER.replace("&", "&&")
    assert [c.value for c in tactics[2]][:2] == ["tactic", f"detection {LEVELS[0]}"]
    table = tactic_table(list(stored.values()), catalog_fixture)
    first = [c.value for c in tactics[3]]
    assert first[0] == table.index[0] and first[1:1 + len(LEVELS)] == [int(table.iloc[0][lv]) for lv in LEVELS]


def test_xlsx_is_byte_identical_for_the_same_assessment(session: Session, catalog_fixture: Catalog,
                                                        tmp_path: Path) -> None:
    dco = marked_dco(session, "repeat drill")
    assess_dco(session, dco, catalog_fixture, DAY1)
    first = Path(publish(session, dco, catalog_fixture, tmp_path / "a")["xlsx"]).read_bytes()
    second = Path(publish(session, dco, catalog_fixture, tmp_path / "b")["xlsx"]).read_bytes()
    assert first == second


def test_gap_rank_is_follow_ups_rank_and_old_logs_rank_by_priority(session: Session,
                                                                   catalog_fixture: Catalog) -> None:
    dco = marked_dco(session, "rank drill")
    result = assess_dco(session, dco, catalog_fixture, DAY1)
    scores = latest_scores(session, dco)
    frame = coverage_frame(scores, catalog_fixture)
    follow_up = gaps_for_follow_up(result, catalog_fixture, limit=len(result.gaps))
    by_rank = frame.dropna(subset=["gap_rank"])
    assert list(by_rank["technique_id"]) == [g["technique_id"] for g in follow_up]
    assert list(by_rank["gap_rank"]) == [g["rank"] for g in follow_up]
    # ties in priority exist, and the stored rank breaks them (addressable first) as follow-up does
    assert by_rank["priority"].duplicated().any()

    logged_before = [TechniqueScore.model_validate({**s.model_dump(), "explanation": {
        k: v for k, v in s.explanation.items() if k != "gap_rank"}}) for s in scores]
    old = coverage_frame(logged_before, catalog_fixture).dropna(subset=["gap_rank"])
    expected = sorted((-s.priority, s.technique_id) for s in scores if s.priority > 0)
    assert list(old["technique_id"]) == [tid for _, tid in expected]
    assert list(old["gap_rank"]) == list(range(1, len(expected) + 1))


def test_tactic_table_counts_and_scores(session: Session, catalog_fixture: Catalog) -> None:
    dco = marked_dco(session, "tactic drill")
    assess_dco(session, dco, catalog_fixture, DAY1)
    scores = latest_scores(session, dco)
    table = tactic_table(scores, catalog_fixture)
    known = [t.shortname for t in catalog_fixture.tactics]
    assert list(table.index) == [t for t in known if t in table.index]  # kill-chain order
    cred = [s for s in scores if (tech := catalog_fixture.get_technique(s.technique_id))
            and "credential-access" in tech.tactics]
    row = table.loc["credential-access"]
    assert row["techniques"] == len(cred) == sum(int(row[lv]) for lv in LEVELS)
    for lv in LEVELS:
        assert row[lv] == sum(1 for s in cred if round(s.detection) == lv)
    assert row["min_detection"] == min(s.detection for s in cred)
    assert row["mean_visibility"] == pytest.approx(sum(s.visibility for s in cred) / len(cred), abs=0.005)


def test_trend_across_dcos_as_csv_and_one_line_per_dco(session: Session, catalog_fixture: Catalog,
                                                       tmp_path: Path) -> None:
    first, second = marked_dco(session, "trend one"), marked_dco(session, "trend two")
    for moment in (DAY1, DAY2):
        assess_dco(session, first, catalog_fixture, moment)
    assess_dco(session, second, catalog_fixture, DAY2)
    points = trend(session)
    files = publish_trend(session, tmp_path)

    rows = list(csv.DictReader(files["trend-csv"].read_text().splitlines()))
    assert [(r["dco_id"], r["assessed_at"]) for r in rows] == [(p.dco_id, p.assessed_at.isoformat()) for p in points]
    assert [(r["dco_id"], r["assessed_at"][:10]) for r in rows] == [
        (first, "2026-06-01"), *sorted([(first, "2026-06-02"), (second, "2026-06-02")])]
    assert [float(r["mean_detection"]) for r in rows] == [p.mean_detection for p in points]
    assert [int(r["detected"]) for r in rows] == [p.detected for p in points]

    svg = ElementTree.parse(files["trend"]).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    lines = svg.findall(f"{ns}polyline")
    titles = sorted(line.findtext(f"{ns}title") or "" for line in lines)
    assert titles == sorted([first, first, second, second])  # detection + visibility per DCO
    by_dco = {line.findtext(f"{ns}title"): line for line in lines if "stroke-dasharray" not in line.attrib}
    assert len(by_dco[first].attrib["points"].split()) == 2 and len(by_dco[second].attrib["points"].split()) == 1
    marking = trend_marking(session, {p.dco_id for p in points})
    assert mark_svg(trend_svg(trend_frame(points)), marking) == files["trend"].read_text()
    assert all(r["marking"] == marking.banner for r in rows)

    session.commit()  # the CLI reads through its own connection
    runner = CliRunner()
    from dcoflow.flows.cli.assess import app

    out_csv, out_svg = tmp_path / "cli" / "t.csv", tmp_path / "cli" / "t.svg"
    got = runner.invoke(app, ["trend", "--csv", str(out_csv), "--svg", str(out_svg), "--json"])
    assert got.exit_code == 0, got.output
    assert out_csv.read_text() == files["trend-csv"].read_text()
    assert [p["dco_id"] for p in json.loads(got.output)] == [r["dco_id"] for r in rows]
    ElementTree.parse(out_svg)
