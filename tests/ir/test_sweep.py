"""`dco ir sweep`: STIX-pattern and Sigma indicators over real telemetry (the Security-Datasets comsvcs LSASS
dump recording) and a small recorded-style JSON-lines file for DNS, network and the time qualifiers. Counts
are checked against a plain scan of the same events; bad input (syntax errors, unknown types and properties,
unsupported qualifiers and pattern types, revoked and expired indicators, data without the needed fields) is
reported per indicator, never as "not found"."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcoflow.connectors.telemetry import iter_file_records, match_view
from dcoflow.core.db import session_scope
from dcoflow.core.errors import BatchReport
from dcoflow.core.settings import Settings
from dcoflow.models.repository.stix_store import count_objects, latest_objects, object_history
from dcoflow.models.stix.ids import stix_id
from dcoflow.tasks.conduct.ir_sweep import SweepResult, run_sweep, sweep
from dcoflow.tasks.plan.ir_incident import create_ir_dco, load_incident

from .incident_bundle import INCIDENT, approve, incident_bundle

LSASS_ZIP = "security-datasets/data/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"
SIGMA_RULE = "sigma/rules/windows/process_creation/proc_creation_win_rundll32_process_dump_via_comsvcs.yml"
VERIFIER_SHA256 = "4206F04FAD8000FA1CD66549A87EC2829011B7CD929DD8E59F75FFB677366AE9"
VERIFIER_MD5 = "75A0B672A1333FDF07984447CB4DA048"
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def ind(key: str, pattern: str, pattern_type: str = "stix", **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": stix_id("indicator", key), "name": key,
            "created": "2026-11-20T00:00:00.000Z", "modified": "2026-11-20T00:00:00.000Z",
            "valid_from": "2026-11-20T00:00:00.000Z", "pattern": pattern, "pattern_type": pattern_type, **extra}


def _plain_count(path: Path, test: Any) -> int:
    """The independent judge: a plain scan of the same events with a hand-written condition."""
    return sum(1 for raw in iter_file_records(path, BatchReport(source=str(path)), max_member_bytes=10**9)
               if test(match_view(raw)))


def _by_name(result: SweepResult) -> dict[str, Any]:
    return {r.name: r for r in result.indicators}


@pytest.fixture(scope="module")
def lsass(shared_dir: Path) -> Path:
    return shared_dir / LSASS_ZIP


def test_sweep_over_real_telemetry(lsass: Path, shared_dir: Path) -> None:
    sigma_text = (shared_dir / SIGMA_RULE).read_text(encoding="utf-8")
    indicators = [
        ind("like", "[process:command_line LIKE '%comsvcs.dll%MiniDump%']"),
        ind("matches", "[process:command_line MATCHES 'comsvcs\\\\.dll\\\\s+MiniDump\\\\s+[0-9]+']"),
        ind("sha256", f"[file:hashes.'SHA-256' = '{VERIFIER_SHA256}']"),
        ind("md5-or-domain", f"[file:hashes.MD5 = '{VERIFIER_MD5.lower()}' OR domain-name:value = 'x.example']"),
        ind("parent-child", "[process:parent_ref.image_ref.name = 'powershell.exe' AND "
                            "process:image_ref.name = 'rundll32.exe']"),
        ind("child-of", "[process:image_ref.name = 'powershell.exe' AND "
                        "process:child_refs[*].image_ref.name = 'rundll32.exe']"),
        ind("registry", "[windows-registry-key:key LIKE '%\\\\UserAssist\\\\%']"),
        ind("user", "[user-account:account_login = 'wardog']"),
        ind("absent-hash", "[file:hashes.'SHA-256' = '" + "0" * 64 + "']"),
        ind("sigma", sigma_text, "sigma"),
    ]
    result = sweep(indicators, lsass, now=NOW)
    got = _by_name(result)
    comsvcs = _plain_count(lsass, lambda v: re.search(r"comsvcs\.dll.*minidump", str(v.get("commandline", "")), re.I))
    assert comsvcs > 0
    assert got["like"].status == "found" and got["like"].matches == comsvcs
    assert got["matches"].matches == comsvcs and got["like"].hosts == {"workstation5": comsvcs}
    hashed = _plain_count(lsass, lambda v: VERIFIER_SHA256 in str(v.get("hashes", "")))
    assert got["sha256"].matches == hashed > 0 and got["md5-or-domain"].matches == hashed
    pairs = _plain_count(lsass, lambda v: str(v.get("parentprocessname", v.get("parentimage", ""))).lower()
                         .endswith("\\powershell.exe") and str(v.get("newprocessname", v.get("image", ""))).lower()
                         .endswith("\\rundll32.exe"))
    assert got["parent-child"].matches == pairs == got["child-of"].matches > 0
    assert got["registry"].matches == _plain_count(lsass, lambda v: "\\userassist\\" in str(
        v.get("targetobject", "")).lower()) > 0
    assert got["user"].status == "found"
    assert got["absent-hash"].status == "not-found"  # the data has hashes: a real "not found"
    assert got["sigma"].status == "found" and got["sigma"].matches >= 1
    first = got["like"]
    assert first.first_seen and first.first_seen.startswith("2020-10-18") and first.samples
    assert "comsvcs" in json.dumps(first.samples[0]).lower()


def test_bad_indicators_are_named_not_silently_unmatched(lsass: Path) -> None:
    indicators = [
        ind("syntax", "[file:name = "),
        ind("unknown-type", "[malware-sample:name = 'x']"),
        ind("unknown-property", "[process:image_name = 'x.exe']"),
        ind("list-index", "[windows-registry-key:values[0].name = 'x']"),
        ind("repeats-compound", "([file:name = 'a'] AND [file:name = 'b']) REPEATS 2 TIMES"),
        ind("snort", "alert tcp any any -> any 80", "snort"),
        ind("revoked", "[file:name = 'rundll32.exe']", revoked=True),
        ind("expired", "[file:name = 'rundll32.exe']", valid_until="2026-01-01T00:00:00Z"),
        ind("dns", "[domain-name:value = 'update-check.example.net']"),
        ind("net-and-file", "[network-traffic:dst_port = 4444] AND [file:name = 'rundll32.exe']"),
        ind("cwd", "[process:cwd = 'C:\\\\Temp']"),
        ind("bad-sigma", "title: x\nid: 1\n", "sigma"),
    ]
    got = _by_name(sweep(indicators, lsass, now=NOW))
    assert got["syntax"].status == "invalid" and got["syntax"].reason and "indicator--" in got["syntax"].reason
    assert got["unknown-type"].status == "invalid" and "unknown object type 'malware-sample'" in (
        got["unknown-type"].reason or "")
    assert got["unknown-property"].status == "invalid" and "'image_name'" in (got["unknown-property"].reason or "")
    assert got["list-index"].status == "refused" and "[0]" in (got["list-index"].reason or "")
    assert got["repeats-compound"].status == "refused" and "REPEATS" in (got["repeats-compound"].reason or "")
    assert got["snort"].status == "refused" and "snort" in (got["snort"].reason or "")
    assert got["revoked"].status == "skipped" and got["revoked"].reason == "revoked"
    assert got["expired"].status == "skipped" and "expired" in (got["expired"].reason or "")
    for name in ("dns", "net-and-file", "cwd"):  # the recording has no DNS, no network, no working directory
        assert got[name].status == "not-evaluable", name
        assert "not evaluable on this data" in (got[name].reason or "")
    assert "domain-name:value" in (got["dns"].reason or "")
    assert "no telemetry field" in (got["cwd"].reason or "")
    assert got["bad-sigma"].status == "invalid" and "Sigma" in (got["bad-sigma"].reason or "")


def _telemetry(tmp_path: Path) -> Path:
    """Sysmon-style JSON lines: a DNS query, beacon.exe's connection 5 s later, three beacons 10 s apart."""
    t0 = datetime(2026, 11, 18, 21, 14, 3, tzinfo=UTC)

    def at(s: int) -> str:
        return (t0 + timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S.000")

    host = {"Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "WKST-01"}
    events = [
        {**host, "EventID": 22, "UtcTime": at(0), "QueryName": "update-check.example.net", "Image": "C:\\b.exe"},
        {**host, "EventID": 3, "UtcTime": at(5), "SourceIp": "10.0.0.5", "DestinationIp": "10.1.2.3",
         "DestinationPort": "4444", "Protocol": "tcp", "Image": "C:\\Users\\Public\\beacon.exe"},
        *({**host, "EventID": 1, "UtcTime": at(10 + 10 * i), "Image": "C:\\Users\\Public\\beacon.exe",
           "CommandLine": f"beacon.exe --tick {i}", "ProcessId": str(100 + i)} for i in range(3)),
    ]
    path = tmp_path / "sysmon.json"
    path.write_text("\n".join(json.dumps(e) for e in events), encoding="utf-8")
    return path


def test_observation_operators_and_qualifiers(tmp_path: Path) -> None:
    data = _telemetry(tmp_path)
    dns = "[domain-name:value = 'UPDATE-CHECK.example.net']"
    net = "[network-traffic:dst_ref.value ISSUBSET '10.1.0.0/16' AND network-traffic:dst_port = 4444]"
    beacon = "[process:image_ref.name = 'beacon.exe']"
    cases = {
        "and-within": (f"({dns} AND {net}) WITHIN 10 SECONDS", 2),
        "and-too-far": (f"({dns} AND {net}) WITHIN 2 SECONDS", 0),
        "followed": (f"{dns} FOLLOWEDBY {net}", 2),
        "reversed": (f"{net} FOLLOWEDBY {dns}", 0),
        # beacon.exe also made the connection (Sysmon 3 names its Image): four events
        "repeats": (f"{beacon} REPEATS 4 TIMES WITHIN 25 SECONDS", 4),
        "repeats-too-fast": (f"{beacon} REPEATS 4 TIMES WITHIN 20 SECONDS", 0),
        "repeats-5": (f"{beacon} REPEATS 5 TIMES", 0),
        "start-stop": (f"{beacon} START t'2026-11-18T21:14:10Z' STOP t'2026-11-18T21:14:31Z'", 2),
        "before": (f"{beacon} START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'", 0),
        "or": (f"{dns} OR [ipv4-addr:value = '10.0.0.5']", 2),
        "not": ("[process:image_ref.name = 'beacon.exe' AND process:command_line NOT LIKE '%tick 0%']", 2),
        "in": ("[network-traffic:dst_port IN (80, 443, 4444)]", 1),
        "range": ("[process:pid >= 101]", 2),
    }
    got = _by_name(sweep([ind(k, p) for k, (p, _) in cases.items()], data, now=NOW))
    for name, (_, expected) in cases.items():
        assert got[name].matches == expected, (name, got[name])
        assert got[name].status == ("found" if expected else "not-found"), name


def test_hits_become_sightings_linked_to_the_incident(settings: Settings, tmp_path: Path, lsass: Path) -> None:
    bundle = tmp_path / "incident.json"
    bundle.write_text(json.dumps(incident_bundle()), encoding="utf-8")
    with session_scope() as s:
        dco = create_ir_dco(s, load_incident(str(bundle))).dco_id
        approve(s, dco)
    with session_scope() as s:
        result = run_sweep(s, str(bundle), lsass, dco=dco)
    assert result.sightings == 1 and result.counts() == {"found": 1, "not-evaluable": 1}
    with session_scope() as s:
        sightings = latest_objects(s, dco, ["sighting"])
        counts = count_objects(s, dco)
    assert len(sightings) == 1
    sighting = sightings[0]
    assert sighting["sighting_of_ref"] == stix_id("indicator", "lsass")
    assert sighting["x_dco_incident_ref"] == INCIDENT and sighting["count"] == result.indicators[0].matches
    assert sighting["x_dco_hosts"] == ["workstation5"] and sighting["observed_data_refs"]
    with session_scope() as s:  # the same sweep again: nothing new, no new version
        run_sweep(s, str(bundle), lsass, dco=dco)
    with session_scope() as s:
        assert count_objects(s, dco) == counts and len(object_history(s, sighting["id"], dco)) == 1


def test_cli_sweep_json(settings: Settings, tmp_path: Path, lsass: Path) -> None:
    from dcoflow.flows.cli import app

    bundle = tmp_path / "iocs.json"
    iocs = [ind("like", "[process:command_line LIKE '%comsvcs.dll%MiniDump%']"), ind("syntax", "[file:name = ")]
    bundle.write_text(json.dumps({"type": "bundle", "id": "bundle--" + "1" * 8 + "-1111-4111-8111-" + "1" * 12,
                                  "objects": iocs}), encoding="utf-8")
    out = CliRunner().invoke(app, ["ir", "sweep", "--indicators", str(bundle), "--data", str(lsass), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    first = {i["id"]: i for i in doc["indicators"]}[iocs[0]["id"]]
    assert first["pattern"] == iocs[0]["pattern"] and first["matches"] > 0 and first["samples"]
    assert doc["counts"] == {"found": 1, "invalid": 1}


def test_recording_a_sweep_needs_an_approved_dco(settings: Settings, tmp_path: Path, lsass: Path) -> None:
    from dcoflow.core.errors import GateError

    bundle = tmp_path / "incident.json"
    bundle.write_text(json.dumps(incident_bundle()), encoding="utf-8")
    with session_scope() as s:
        dco = create_ir_dco(s, load_incident(str(bundle))).dco_id
    with session_scope() as s, pytest.raises(GateError, match="ir sweep refused"):
        run_sweep(s, str(bundle), lsass, dco=dco)
    with session_scope() as s:
        assert count_objects(s, dco).get("sighting", 0) == 0
