"""Linux auditd logs: one event per record line, decoded values, ``service: auditd`` rules applied."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.connectors.telemetry import iter_events
from dcoflow.connectors.telemetry.auditd import AUDITD_CHANNEL, AuditLineError, parse_audit_line
from dcoflow.core.errors import BatchReport
from dcoflow.models.hunting import HuntSelection, RuleInfo
from dcoflow.models.sigma.compiler import RuleSet, compile_rule
from dcoflow.models.sigma.logsource import variants_for
from dcoflow.tasks.conduct.local_hunt import run_local_hunt

ARP = "security-datasets/data/atomic/linux/discovery/host/sh_arp_cache.zip"
AUDITD_RULES = "sigma/rules/linux/auditd"

ARP_RULE = """title: ARP cache listed (auditd)
id: 5d6c1e2a-0000-4000-8000-00000000a1d1
status: test
tags: [attack.discovery, attack.t1018]
logsource: {product: linux, service: auditd}
detection:
  sel: {type: EXECVE, a0: arp, a1: '-a'}
  condition: sel
level: low
"""


def _events(path: Path) -> tuple[list[dict[str, Any]], list[BatchReport]]:
    reports: list[BatchReport] = []
    return list(iter_events(path, max_member_bytes=2**31, reports=reports)), reports


def _rule(text: str) -> RuleInfo:
    return RuleInfo(rule_id="r", title="t", path="t.yml", yaml=text,
                    logsource={"product": "linux", "service": "auditd"})


def test_arp_cache_dataset_yields_one_event_per_record(shared_dir: Path) -> None:
    events, reports = _events(shared_dir / ARP)
    assert reports[0].read == reports[0].kept == 12 and not reports[0].bad
    assert [e["type"] for e in events] == ["SYSCALL", "EXECVE", "CWD", "PATH", "PATH", "PROCTITLE"] * 2
    assert {e["Channel"] for e in events} == {AUDITD_CHANNEL}
    first, second = events[:6], events[6:]
    assert {e["audit_id"] for e in first} == {"1604994496.155:92733"}
    assert {e["audit_id"] for e in second} == {"1604994496.155:92734"}
    assert first[0]["timestamp"] == "2020-11-10T07:48:16.155Z"
    syscall = first[0]
    assert (syscall["comm"], syscall["exe"], syscall["pid"]) == ("arp", "/usr/sbin/arp", "1631")
    assert syscall["key"] == "(null)"  # no audit rule key: kept as logged
    assert syscall["a0"] == "558e251634a0"  # SYSCALL arguments are numbers in hex: never decoded
    assert (syscall["SYSCALL"], syscall["syscall_nr"]) == ("execve", "59") and "syscall" not in syscall
    assert (first[1]["argc"], first[1]["a0"], first[1]["a1"]) == ("2", "arp", "-a")
    assert first[2]["cwd"] == "/home/wardog"
    assert [e["name"] for e in first[3:5]] == ["/usr/sbin/arp", "/lib64/ld-linux-x86-64.so.2"]
    assert first[3]["nametype"] == "NORMAL"
    assert first[5]["proctitle"] == "arp -a" and second[5]["proctitle"] == "grep -v ^?"  # hex, NUL-separated
    assert (second[0]["comm"], second[1]["a2"]) == ("grep", "^?")


def test_handwritten_auditd_rule_fires_through_the_hunt(shared_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "arp.yml").write_text(ARP_RULE)
    outcome = run_local_hunt(rules, shared_dir / ARP, HuntSelection(techniques=["T1018"]))
    assert outcome.events_read == 12 and not outcome.no_logsource and not outcome.skipped
    [match] = outcome.matches
    assert match.rule.title == "ARP cache listed (auditd)" and match.count == 1
    assert match.events[0]["type"] == "EXECVE" and match.events[0]["audit_id"] == "1604994496.155:92733"


def test_sigmahq_auditd_rules_apply_and_none_is_tagged_t1018(shared_dir: Path) -> None:
    index = load_rule_index(shared_dir / AUDITD_RULES)
    assert len(index.rules) > 40
    assert not [r for r in index.rules if any(t.startswith("T1018") for t in r.technique_ids)]
    outcome = run_local_hunt(shared_dir / AUDITD_RULES, shared_dir / ARP)
    # every auditd rule compiles and saw events of its logsource (no visibility gap), none fires on "arp -a"
    assert len(outcome.rules_run) == len(index.rules) and not outcome.skipped and not outcome.no_logsource
    assert outcome.matches == []


def _sigmahq(shared_dir: Path, name: str) -> RuleSet:
    [path] = (shared_dir / AUDITD_RULES).rglob(name)
    index = load_rule_index(path)
    return RuleSet([compile_rule(r) for r in index.rules])


RAW_WEB_EXEC = (b'type=SYSCALL msg=audit(1700000000.001:7): arch=c000003e syscall=59 success=yes exit=0 a0=5600 '
                b'a1=5601 a2=5602 a3=0 items=2 ppid=10 pid=11 auid=4294967295 uid=33 gid=33 euid=33 suid=33 '
                b'fsuid=33 egid=33 sgid=33 fsgid=33 tty=(none) ses=4294967295 comm="sh" exe="/usr/bin/dash" '
                b'key="detect_execve_www"')
ENRICHED_WEB_EXEC = (RAW_WEB_EXEC.replace(b"arch=c000003e syscall=59", b"arch=c00000b7 syscall=221")
                     + b'\x1dARCH=aarch64 SYSCALL=execve AUID="unset" UID="www-data" EUID="www-data"')


@pytest.mark.parametrize("line", [RAW_WEB_EXEC, ENRICHED_WEB_EXEC], ids=["raw-x86_64", "enriched-aarch64"])
def test_sigmahq_syscall_rule_fires_on_raw_and_enriched_records(shared_dir: Path, line: bytes) -> None:
    # "SYSCALL: execve" (interpreted name) and "euid: 33" (raw value) in one selection
    ruleset = _sigmahq(shared_dir, "lnx_auditd_web_rce.yml")
    event = parse_audit_line(line)
    assert event["SYSCALL"] == "execve" and event["euid"] == "33" and "syscall" not in event
    assert ruleset.match(event) == [0]
    assert ruleset.match(parse_audit_line(line.replace(b"euid=33", b"euid=0"))) == []


def test_sigmahq_execve_rule_fires_on_uname(shared_dir: Path) -> None:
    ruleset = _sigmahq(shared_dir, "lnx_auditd_system_info_discovery.yml")
    hit = parse_audit_line(b'type=EXECVE msg=audit(1700000000.002:8): argc=2 a0="uname" a1="-a"')
    miss = parse_audit_line(b'type=EXECVE msg=audit(1700000000.002:9): argc=2 a0="arp" a1="-a"')
    assert ruleset.match(hit) == [0] and ruleset.match(miss) == []


def test_value_encodings() -> None:
    # hex-encoded argument (it holds a space) and a long argument logged in chunks
    ev = parse_audit_line(b'type=EXECVE msg=audit(1.5:1): argc=3 a0="sh" a1="-c" a2_len=12 a2[0]=6563686F20 '
                          b'a2[1]=68692074686572 a3=2F746D702F612062')
    assert (ev["a1"], ev["a2"], ev["a3"], ev["a2_len"]) == ("-c", "echo hi ther", "/tmp/a b", "12")
    assert "a2[0]" not in ev
    # PATH name hex-encoded; numbers that look like hex stay as logged
    ev = parse_audit_line(b'type=PATH msg=audit(1.5:2): item=0 name=2F746D702F6D792066696C65 inode=1234 '
                          b'mode=0100644 nametype=CREATE')
    assert (ev["name"], ev["inode"], ev["mode"], ev["nametype"]) == ("/tmp/my file", "1234", "0100644", "CREATE")
    # several keys are hex-encoded with \x01 separators; a single key is quoted
    ev = parse_audit_line(b"type=SYSCALL msg=audit(1.5:3): arch=40000003 syscall=11 key=6F6E650174776F")
    assert ev["key"] == "one,two" and ev["syscall"] == "11" and "SYSCALL" not in ev  # i386: not interpreted
    # node= prefix and a syslog header before the record
    ev = parse_audit_line(b'Nov 10 07:48:16 web1 audispd: node=web1 type=CWD msg=audit(1604994496.155:9): cwd="/"')
    assert (ev["node"], ev["type"], ev["cwd"], ev["audit_id"]) == ("web1", "CWD", "/", "1604994496.155:9")
    # user-space record: the single-quoted msg is kept and its pairs are fields (acct hex-encoded)
    ev = parse_audit_line(b"type=ADD_USER msg=audit(1700000000.000:10): pid=5 uid=0 auid=1000 ses=3 "
                          b"msg='op=adding user id=1001 exe=\"/usr/sbin/useradd\" acct=6A6F686E20646F65 res=success'")
    assert (ev["pid"], ev["exe"], ev["acct"], ev["res"], ev["id"]) == ("5", "/usr/sbin/useradd", "john doe",
                                                                        "success", "1001")
    assert ev["msg"].startswith("op=adding user")
    # AVC prose between the pairs is left out
    ev = parse_audit_line(b'type=AVC msg=audit(1.5:4): avc:  denied  { read } for  pid=7 comm="cat" name="shadow"')
    assert (ev["pid"], ev["comm"], ev["name"]) == ("7", "cat", "shadow")
    # ENRICHED interpretations of raw fields keep the raw value under the field's own name
    ev = parse_audit_line(b'type=SYSCALL msg=audit(1.5:5): arch=c000003e syscall=59 auid=1000 uid=0 '
                          b'comm="id"\x1dARCH=x86_64 SYSCALL=execve AUID="alice" UID="root"')
    assert (ev["auid"], ev["auid_name"], ev["uid_name"], ev["arch_name"]) == ("1000", "alice", "root", "x86_64")


@pytest.mark.parametrize(("line", "reason"), [
    (b'type=SYSCALL msg=audit(1604994496.155:92733): arch=c000003e syscall=59 comm="ar', "unterminated"),
    (b"type=SYSCALL msg=audit(16049944", "no auditd record header"),
    (b'type=CWD msg=audit(1.5:1): cwd="/home/caf\xe9"', "not UTF-8"),
])
def test_malformed_lines_raise(line: bytes, reason: str) -> None:
    with pytest.raises(AuditLineError, match=reason):
        parse_audit_line(line)


def test_malformed_auditd_lines_are_counted_not_fatal(shared_dir: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(shared_dir / ARP) as z:
        good = z.read(z.namelist()[0]).splitlines()
    lines = [good[0], good[1][:58], b"\x00\xff junk", good[5], b'type=CWD msg=audit(1.5:1): cwd="/caf\xe9"', good[6]]
    (tmp_path / "audit.log").write_bytes(b"\n".join(lines) + b"\n")
    with zipfile.ZipFile(tmp_path / "audit.zip", "w") as z:
        z.writestr("audit.log", b"\n".join(lines))
    events, reports = _events(tmp_path)
    assert len(reports) == 2
    for report in reports:
        assert report.read == 6 and report.kept == 3 and report.skipped == 3
        assert [b.location.rsplit(":", 1)[1] for b in report.bad] == ["2", "3", "5"]
        assert all(b.reason.startswith("not an auditd record") for b in report.bad)
    assert [e["type"] for e in events] == ["SYSCALL", "PROCTITLE", "SYSCALL"] * 2


def test_auditd_logsource_maps_to_the_readers_channel() -> None:
    [variant] = variants_for({"product": "linux", "service": "auditd"})
    assert variant.channels == {AUDITD_CHANNEL.lower()} and not variant.field_map
    assert variants_for({"product": "linux", "category": "process_creation"}) == []
    rule = compile_rule(_rule(ARP_RULE))
    assert RuleSet([rule]).match(parse_audit_line(b'type=EXECVE msg=audit(1.5:1): argc=2 a0="arp" a1="-a"')) == [0]
    # a Windows event with the same fields is not an auditd record
    assert RuleSet([rule]).match({"Channel": "Security", "type": "EXECVE", "a0": "arp", "a1": "-a"}) == []
