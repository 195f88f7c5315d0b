"""Batch readers count what they cannot use, with where and why (issue 14)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dcoflow.connectors.content.vectr import REQUIRED, read_vectr_csv
from dcoflow.connectors.telemetry.readers import iter_file_records
from dcoflow.core.errors import BatchReport, ContentError


def _vectr(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = [*REQUIRED, "Start Time", "Start Time Epoch", "Outcome Notes"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


GOOD = {"Variant": "good case", "MitreID": "T1059.001", "Phase": "execution"}


@pytest.mark.parametrize(("bad", "reason"), [
    ({"Start Time Epoch": "100000000000000000000"}, "not a time"),
    ({"Start Time Epoch": "1e20"}, "not a time"),
    ({"Start Time Epoch": "-99999999999999999999"}, "not a time"),
    ({"Start Time": "yesterday"}, "isoformat"),
    ({"Outcome Notes": "x" * 200_000}, "field larger than field limit"),
])
def test_vectr_bad_rows_are_counted(tmp_path: Path, bad: dict[str, str], reason: str) -> None:
    path = _vectr(tmp_path / "v.csv", [GOOD, {**GOOD, "Variant": "bad case", **bad}, {**GOOD, "Variant": "after"}])
    cases, report = read_vectr_csv(path)
    assert report.skipped == 1 and reason in report.bad[0].reason, report.summary()
    assert cases[0].name == "good case"


@pytest.mark.parametrize("content", ["Variant,MitreID\ncaf\xe9,T1059\n".encode("latin-1"), b"\xff\xfe\x00\x00binary"])
def test_vectr_non_utf8_is_a_content_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes(content)
    with pytest.raises(ContentError, match=r"UTF-8|unreadable|missing column"):
        read_vectr_csv(path)


@pytest.mark.parametrize("stamp", ["100000000000000000000", "99999999999999", "1e20"])
def test_auditd_out_of_range_timestamps_are_bad_records(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "audit.log"
    path.write_text(f"type=SYSCALL msg=audit({stamp}.123:1): arch=c000003e syscall=59 success=yes\n"
                    "type=SYSCALL msg=audit(1700000000.123:2): arch=c000003e syscall=59 success=yes\n",
                    encoding="utf-8")
    report = BatchReport(str(path))
    records = list(iter_file_records(path, report, max_member_bytes=1 << 20))
    assert len(records) == 1 and report.skipped == 1, report.summary()
