"""Bad telemetry and bad rules are counted and reported; the rest is processed."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from dcoflow.connectors.telemetry import iter_events
from dcoflow.core.errors import BatchReport, ContentError
from dcoflow.tasks.conduct.local_hunt import run_local_hunt

GOOD = b'{"Channel": "security", "EventID": 4688, "NewProcessName": "C:\\\\Windows\\\\System32\\\\whoami.exe"}\n'
WHOAMI_RULE = """title: Whoami
id: 0d1f3a3c-0000-4000-8000-000000000001
status: test
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\whoami.exe'}
  condition: sel
level: low
"""


def _events(path: Path, limit: int = 2**31) -> tuple[list[dict[str, object]], list[BatchReport]]:
    reports: list[BatchReport] = []
    events = list(iter_events(path, max_member_bytes=limit, reports=reports))
    return events, reports


def test_malformed_json_lines_are_counted(tmp_path: Path) -> None:
    f = tmp_path / "mixed.json"
    f.write_bytes(GOOD + b'{"Channel": "Security", "EventID": 46\n' + b"\x00\xff\xfe\x89PNG junk\n"
                  + '{"Channel": "Security", "User": "caf\xe9"}\n'.encode("latin-1") + b"[1, 2]\n" + GOOD)
    events, reports = _events(f)
    assert len(events) == 2 and events[0]["Channel"] == "Security"  # channel case normalised
    report = reports[0]
    assert report.read == 6 and report.kept == 2 and report.skipped == 4
    locations = [b.location for b in report.bad]
    assert locations == [f"{f}:2", f"{f}:3", f"{f}:4", f"{f}:5"]


def test_empty_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_bytes(b"")
    events, reports = _events(tmp_path / "empty.json")
    assert events == [] and reports[0].bad[0].reason == "empty file"


def test_corrupt_evtx_is_reported(tmp_path: Path, shared_dir: Path) -> None:
    real = next((shared_dir / "evtx-samples").rglob("*.evtx")).read_bytes()
    (tmp_path / "junk.evtx").write_bytes(b"ElfFile\x00" + b"\xde\xad" * 4000)
    (tmp_path / "cut.evtx").write_bytes(real[: len(real) // 2] + b"\x00" * 5000)
    events, reports = _events(tmp_path)
    by_name = {Path(r.source).name: r for r in reports}
    assert by_name["junk.evtx"].skipped >= 1 and by_name["junk.evtx"].kept == 0
    assert by_name["cut.evtx"].kept + by_name["cut.evtx"].skipped >= 1
    assert len(events) == by_name["cut.evtx"].kept


def test_evtx_events_are_flattened(shared_dir: Path) -> None:
    events, _ = _events(shared_dir / "evtx-samples")
    assert len(events) > 1000
    ev = next(e for e in events if e.get("EventID") == 4688)
    assert ev["Channel"] == "Security" and "NewProcessName" in ev and "Computer" in ev


def test_oversized_archive_member_is_skipped(tmp_path: Path) -> None:
    z = tmp_path / "data.zip"
    with zipfile.ZipFile(z, "w") as archive:
        archive.writestr("small.json", GOOD)
        archive.writestr("big.json", GOOD * 1000)
    events, reports = _events(z, limit=10_000)
    assert len(events) == 1
    bad = reports[0].bad
    assert len(bad) == 1 and bad[0].location.endswith("!big.json") and "limit" in bad[0].reason


def test_csv_telemetry(tmp_path: Path) -> None:
    f = tmp_path / "events.csv"
    f.write_text("Channel,EventID,ProcessID,Image\nMicrosoft-Windows-Sysmon/Operational,1,42,C:\\x\\whoami.exe\n"
                 "Security,4688,7,x,extra\n")
    events, reports = _events(f)
    assert events == [{"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": "1", "ProcessId": "42",
                       "Image": "C:\\x\\whoami.exe"}]
    assert reports[0].skipped == 1


def test_hunt_reports_bad_rules_and_runs_the_rest(tmp_path: Path, shared_dir: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(WHOAMI_RULE)
    (rules / "badmod.yml").write_text(WHOAMI_RULE.replace("0001", "0002").replace("endswith", "sounds_like"))
    (rules / "broken.yml").write_text("title: [\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.json").write_bytes(GOOD + b"{truncated\n")
    outcome = run_local_hunt([rules, shared_dir / "sigma" / "rules-placeholder"], data)
    assert [m.rule.title for m in outcome.matches] == ["Whoami"] and outcome.matches[0].count == 1
    reasons = {Path(s.path).name: s.reason for s in outcome.skipped}
    assert "sounds_like" in reasons["badmod.yml"] and "invalid YAML" in reasons["broken.yml"]
    placeholder = [s for s in outcome.skipped if "rules-placeholder" in s.path]
    assert placeholder and all("unexpanded placeholder %" in s.reason for s in placeholder)
    assert outcome.events_read == 1 and outcome.reports[0].skipped == 1


def test_missing_paths_name_themselves(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="nope-data"):
        run_local_hunt(tmp_path, tmp_path / "nope-data")
    with pytest.raises(ContentError, match="nope-rules"):
        run_local_hunt(tmp_path / "nope-rules", tmp_path)
