"""The hunt's worker processes, the chunked line reader and the lazy match view."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.connectors.telemetry import iter_data_files, iter_file_records, match_view, normalise_event, readers
from dcoflow.core.errors import BatchReport
from dcoflow.models.hunting import HuntOutcome
from dcoflow.models.sigma.compiler import RuleSet, compile_rule
from dcoflow.tasks.conduct import local_hunt
from dcoflow.tasks.conduct.local_hunt import cores_available, default_workers, hunt_compiled, run_local_hunt

DATA = "security-datasets/data/atomic/windows"
FILES = [
    "credential_access/host/psh_lsass_memory_dump_comsvcs.zip",
    "credential_access/host/cmd_sam_copy_esentutl.zip",
    "discovery/host/empire_shell_net_local_users.zip",
    "defense_evasion/host/empire_monologue_netntlm_downgrade.zip",
]


@pytest.fixture(scope="module")
def ruleset(shared_dir: Path) -> RuleSet:
    return RuleSet(compile_rule(info) for info in load_rule_index(shared_dir / "sigma" / "rules" / "windows").rules)


def _summary(outcome: HuntOutcome) -> dict[str, Any]:
    return {
        "events": outcome.events_read,
        "matches": [(m.rule.rule_id, m.count, m.events) for m in outcome.matches],
        "no_logsource": sorted(r.rule_id for r in outcome.no_logsource),
        "reports": [(r.source, r.read, r.kept, [(b.location, b.reason) for b in r.bad]) for r in outcome.reports],
    }


def test_two_workers_give_the_same_outcome(shared_dir: Path, ruleset: RuleSet) -> None:
    files = [shared_dir / DATA / f for f in FILES]
    files = [*files, files[2], files[0]]  # repeats: samples must come from the first files in order
    one = hunt_compiled(ruleset, files, sample=3, workers=1)
    two = hunt_compiled(ruleset, files, sample=3, workers=2)
    assert _summary(one) == _summary(two)
    assert one.events_read > 5000 and len(one.matches) > 5
    capped = [m for m in one.matches if m.count > 3]
    assert capped and all(len(m.events) == 3 for m in capped)
    # the repeated first file sits at both ends: a rule it matches more than 3 times keeps its first 3 events
    first = hunt_compiled(ruleset, files[:1], sample=3, workers=1)
    by_rule = {m.rule.rule_id: m.events for m in two.matches}
    assert all(by_rule[m.rule.rule_id][: len(m.events)] == m.events for m in first.matches)


def test_run_local_hunt_with_workers(shared_dir: Path) -> None:
    rules = shared_dir / "sigma" / "rules" / "windows" / "process_creation"
    data = [shared_dir / DATA / f for f in FILES]
    progress: list[int] = []
    two = run_local_hunt(rules, data, workers=2, progress=progress.append)
    one = run_local_hunt(rules, data, workers=1)
    assert _summary(one) == _summary(two)
    assert progress[-1] == two.events_read and progress == sorted(progress) and len(progress) == len(data) + 1
    assert "Process Memory Dump Via Comsvcs.DLL" in {m.rule.title for m in two.matches}


def test_default_workers(shared_dir: Path, tmp_path: Path) -> None:
    corpus = list(iter_data_files(shared_dir / "security-datasets" / "data"))
    assert default_workers(corpus) == min(cores_available(), len(corpus))  # every core the process may use
    assert cores_available() == len(os.sched_getaffinity(0))
    assert default_workers(corpus[:1]) == 1
    small = [tmp_path / "a.json", tmp_path / "b.json"]
    for f in small:
        f.write_bytes(b'{"Channel": "Security"}\n')
    assert default_workers(small) == 1  # forking costs more than two tiny files


def _poisoned(action: str) -> Any:
    real = iter_file_records
    parent = os.getpid()

    def records(path: Path, report: BatchReport, *, max_member_bytes: int) -> Iterator[dict[str, Any]]:
        if path.name.startswith("poison"):
            if action == "raise":
                raise RuntimeError("reader bug")
            if os.getpid() != parent:
                os._exit(3)  # the worker process dies without a word
        yield from real(path, report, max_member_bytes=max_member_bytes)
    return records


@pytest.mark.parametrize("action", ["raise", "die"])
def test_a_bad_file_in_a_worker_is_reported(shared_dir: Path, ruleset: RuleSet, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    good = [shared_dir / DATA / f for f in FILES[:3]]
    poison = tmp_path / "poison.json"
    poison.write_bytes(b'{"Channel": "Security", "EventID": 4688}\n')
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    expected = hunt_compiled(ruleset, good, workers=1)
    monkeypatch.setattr(local_hunt, "iter_file_records", _poisoned(action))
    outcome = hunt_compiled(ruleset, [good[0], poison, corrupt, *good[1:]], workers=2)
    assert outcome.events_read == expected.events_read
    assert [(m.rule.rule_id, m.count) for m in outcome.matches] == [(m.rule.rule_id, m.count) for m in expected.matches]
    reports = {Path(r.source).name: r for r in outcome.reports}
    assert len(reports) == 5
    reason = reports["poison.json"].bad[0].reason
    wanted = ["hunt failed", "reader bug"] if action == "raise" else ["worker process died"]
    assert all(w in reason for w in wanted), reason
    assert "not a readable zip archive" in reports["corrupt.zip"].bad[0].reason


def test_lines_split_across_chunks_and_oversized_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "_CHUNK", 7)
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 40)
    good = b'{"Channel": "Security", "EventID": 1}'
    f = tmp_path / "e.json"
    f.write_bytes(good + b"\r\n\n" + b'{"x": "' + b"y" * 100 + b'"}\n' + good + b"\n" + good)
    report = BatchReport(source=str(f))
    events = list(iter_file_records(f, report, max_member_bytes=2**31))
    assert events == [{"Channel": "Security", "EventID": 1}] * 3
    assert report.read == 4 and report.kept == 3
    assert [(b.location, b.reason) for b in report.bad] == [(f"{f}:3", "line longer than 40 bytes")]
    z = tmp_path / "e.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("e.json", (good + b"\n") * 50)
    assert len(list(iter_file_records(z, BatchReport(source=str(z)), max_member_bytes=2**31))) == 50


def test_match_view_is_the_lowered_normalised_event(shared_dir: Path) -> None:
    raws: list[dict[str, Any]] = [
        {"Channel": "security", "ProcessId": "1", "ProcessID": "2", "Image": "x"},  # collision keeps both
        {"channel": "MICROSOFT-WINDOWS-SYSMON/OPERATIONAL", "Nested": {"A": 1, "B": {"C": 2}}},
        {"Channel": "Unknown/Channel", "processguid": "{g}", "Flag": True},
    ]
    for f in FILES[:2]:
        path = shared_dir / DATA / f
        raws += list(iter_file_records(path, BatchReport(source=str(path)), max_member_bytes=2**31))
    for _ in range(2):  # the second pass reads every key layout from the cache
        for raw in raws:
            assert match_view(raw) == {k.lower(): v for k, v in normalise_event(raw).items()}
    assert match_view(raws[0])["processid_variant"] == "2"
    assert match_view(raws[1])["channel"] == "Microsoft-Windows-Sysmon/Operational"


def test_cli_workers_option_gives_the_same_result(shared_dir: Path) -> None:
    import json

    from typer.testing import CliRunner

    from dcoflow.flows.cli.hunt import app

    args = ["--rules", str(shared_dir / "sigma" / "rules" / "windows" / "process_creation"),
            *(a for f in FILES for a in ("--data", str(shared_dir / DATA / f))), "--json"]
    runner = CliRunner()
    docs = [runner.invoke(app, [*args, "--workers", n]) for n in ("1", "2")]
    assert all(d.exit_code == 0 for d in docs), docs[0].output
    one, two = (json.loads(d.stdout) for d in docs)
    assert one["events_read"] == two["events_read"] > 4000 and one["rules"] == two["rules"]
    bad = runner.invoke(app, [*args, "--workers", "0"])
    assert bad.exit_code == 2 and "--workers" in bad.output
