"""Sigma semantics of the compiled evaluators, one modifier or condition form at a time."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from dcoflow.models.hunting import RuleInfo
from dcoflow.models.sigma.compiler import RuleCompileError, RuleSet, compile_rule

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def _rule(detection: str, logsource: str = "{product: windows, category: process_creation}") -> RuleInfo:
    text = (f"title: t\nid: 9a8b7c6d-0000-4000-8000-000000000000\nlogsource: {logsource}\n"
            f"detection:\n{detection}\n")
    return RuleInfo(rule_id="r", title="t", path="t.yml", yaml=text,
                    logsource=dict(item.split(": ") for item in logsource.strip("{}").split(", ")))


def matches(detection: str, event: dict[str, Any], **kw: str) -> bool:
    ev = {"Channel": SYSMON, "EventID": 1, **event}
    return bool(RuleSet([compile_rule(_rule(detection, **kw))]).match(ev))


@pytest.mark.parametrize(("detection", "event", "expected"), [
    ("  s: {CommandLine|contains: 'COMSVCS'}\n  condition: s", {"CommandLine": "x comsvcs y"}, True),
    ("  s: {CommandLine|contains|all: [a1, b2]}\n  condition: s", {"CommandLine": "A1 only"}, False),
    ("  s: {CommandLine|contains|all: [a1, b2]}\n  condition: s", {"CommandLine": "b2 A1"}, True),
    ("  s: {Image|endswith: ['\\\\a.exe', '\\\\B.EXE']}\n  condition: s", {"Image": "C:\\x\\b.exe"}, True),
    ("  s: {Image|startswith: 'C:\\\\Win'}\n  condition: s", {"Image": "c:\\windows\\x"}, True),
    ("  s: {Image: 'c:\\\\w?n\\\\*.exe'}\n  condition: s", {"Image": "C:\\WIN\\a.exe"}, True),
    ("  s: {Image: 'c:\\\\w?n\\\\*.exe'}\n  condition: s", {"Image": "C:\\WIIN\\a.exe"}, False),
    ("  s: {Image: 'a\\*b'}\n  condition: s", {"Image": "a*b"}, True),  # escaped wildcard is literal
    ("  s: {Image: 'a\\*b'}\n  condition: s", {"Image": "axxb"}, False),
    ("  s: {Image: 'a_b'}\n  condition: s", {"Image": "aXb"}, False),  # '_' is not a wildcard
    ("  s: {CommandLine|re: '-e(nc)? [A-Z]+'}\n  condition: s", {"CommandLine": "-enc ABC"}, True),
    ("  s: {CommandLine|re: '-e(nc)? [A-Z]+'}\n  condition: s", {"CommandLine": "-enc abc"}, False),
    ("  s: {CommandLine|re|i: '-e(nc)? [A-Z]+'}\n  condition: s", {"CommandLine": "-enc abc"}, True),
    ("  s: {CommandLine|re: 'x(abc|def)yyyy+z'}\n  condition: s", {"CommandLine": "-xdefyyyyz"}, True),
    ("  s: {CommandLine|re: 'x(abc|def)yyyy+z'}\n  condition: s", {"CommandLine": "-xdefyyyz"}, False),
    ("  s: {CommandLine|re: '(?i)IEX\\('}\n  condition: s", {"CommandLine": "iex(x)"}, True),
    ("  s: {CommandLine|re|m: '^b$'}\n  condition: s", {"CommandLine": "a\nb\nc"}, True),
    ("  s: {CommandLine|re|s: 'a.c'}\n  condition: s", {"CommandLine": "a\nc"}, True),
    ("  s: {CommandLine|re: 'a.c'}\n  condition: s", {"CommandLine": "a\nc"}, False),
    ("  s: {DestinationIp|cidr: '10.0.0.0/8'}\n  condition: s", {"DestinationIp": "10.1.2.3"}, True),
    ("  s: {DestinationIp|cidr: '10.0.0.0/8'}\n  condition: s", {"DestinationIp": "11.1.2.3"}, False),
    ("  s: {DestinationIp|cidr: 'fe80::/10'}\n  condition: s", {"DestinationIp": "fe80::1"}, True),
    ("  s: {CommandLine|base64offset|contains: 'whoami'}\n  condition: s",
     {"CommandLine": "x " + base64.b64encode(b"zzwhoami").decode()}, True),
    ("  s: {CommandLine|wide|base64offset|contains: 'ping'}\n  condition: s",
     {"CommandLine": base64.b64encode("a ping".encode("utf-16le")).decode()}, True),
    ("  s: {CommandLine|utf16le|base64offset|contains: 'ping'}\n  condition: s",
     {"CommandLine": base64.b64encode("a ping".encode("utf-16le")).decode()}, True),
    ("  s: {CommandLine|base64: 'abc'}\n  condition: s", {"CommandLine": "YWJj"}, True),
    ("  s: {CommandLine|windash|contains: ' -f '}\n  condition: s", {"CommandLine": "x /f y"}, True),
    ("  s: {CommandLine|windash|contains: ' -f '}\n  condition: s", {"CommandLine": "x \u2013f y"}, True),
    ("  s: {User|exists: true}\n  condition: s", {"User": ""}, True),
    ("  s: {User|exists: false}\n  condition: s", {}, True),
    ("  s: {User: null}\n  condition: s", {}, True),
    ("  s: {User: null}\n  condition: s", {"User": "x"}, False),
    ("  s: {User: ''}\n  condition: s", {}, False),
    ("  s: {ParentImage|fieldref: Image}\n  condition: s", {"Image": "A.exe", "ParentImage": "a.EXE"}, True),
    ("  s: {ParentImage|fieldref: Image}\n  condition: s", {"Image": "A.exe"}, False),
    ("  s: {TerminalSessionId|gt: 1}\n  condition: s", {"TerminalSessionId": "2"}, True),
    ("  s: {TerminalSessionId|gte: 2}\n  condition: s", {"TerminalSessionId": 2}, True),
    ("  s: {TerminalSessionId|lt: 2}\n  condition: s", {"TerminalSessionId": "10"}, False),
    ("  s: {TerminalSessionId|lte: 2}\n  condition: s", {"TerminalSessionId": "x"}, False),
    ("  s: {Image|cased: 'A.exe'}\n  condition: s", {"Image": "a.exe"}, False),
    ("  s: {Image|cased: 'A.exe'}\n  condition: s", {"Image": "A.exe"}, True),
    ("  s: {ProcessId: 42}\n  condition: s", {"ProcessId": "42"}, True),
    ("  s: {ProcessId: 42}\n  condition: s", {"ProcessId": 42}, True),
    ("  s: {ProcessId: 42}\n  condition: s", {"ProcessId": 420}, False),
    ("  kw: ['mimikatz', 'sekurlsa::*']\n  condition: kw", {"CommandLine": "run SEKURLSA::logonpasswords"}, True),
    ("  kw: ['mimikatz']\n  condition: kw", {"Image": "C:\\x\\MimiKatz.exe"}, True),
    ("  kw: ['mimikatz']\n  condition: kw", {"Image": "C:\\x\\cmd.exe"}, False),
    # long texts are scanned line by line with a per-line cache: same answers as a whole-text scan
    ("  s: {CommandLine|contains: 'bee'}\n  condition: s", {"CommandLine": "x" * 300 + "\nA BEE\n"}, True),
    ("  s: {CommandLine|contains: 'bee'}\n  condition: s", {"CommandLine": "x" * 300 + "\nbe\ne\n"}, False),
    ("  s: {CommandLine|contains: \"be\\ne\"}\n  condition: s", {"CommandLine": "x" * 300 + "\nbe\ne"}, True),
    ("  s: {CommandLine|contains|all: [aa, bb]}\n  condition: s", {"CommandLine": "aa\n" + "x" * 300 + "\nbb"}, True),
])
def test_value_semantics(detection: str, event: dict[str, Any], expected: bool) -> None:
    assert matches(detection, event) is expected


CONDITIONS = """  sel_a: {Image|endswith: '\\\\a.exe'}
  sel_b: {CommandLine|contains: 'bee'}
  filter: {User|contains: 'SYSTEM'}
  condition: """


@pytest.mark.parametrize(("condition", "event", "expected"), [
    ("1 of sel_* and not filter", {"Image": "x\\a.exe"}, True),
    ("1 of sel_* and not filter", {"Image": "x\\a.exe", "User": "NT AUTHORITY\\SYSTEM"}, False),
    ("all of sel_*", {"Image": "x\\a.exe", "CommandLine": "a bee"}, True),
    ("all of sel_*", {"Image": "x\\a.exe"}, False),
    ("1 of them", {"User": "system"}, True),
    ("all of them", {"Image": "x\\a.exe", "CommandLine": "bee", "User": "system"}, True),
    ("sel_a or (sel_b and not filter)", {"CommandLine": "bee", "User": "bob"}, True),
    ("not (sel_a or sel_b)", {"CommandLine": "cat"}, True),
])
def test_condition_semantics(condition: str, event: dict[str, Any], expected: bool) -> None:
    assert matches(CONDITIONS + condition, event) is expected


def test_security_4688_variant_maps_fields() -> None:
    rs = RuleSet([compile_rule(_rule("  s: {Image|endswith: '\\\\whoami.exe'}\n  condition: s"))])
    assert rs.match({"Channel": "security", "EventID": "4688", "NewProcessName": "C:\\W\\whoami.exe"}) == [0]
    assert rs.match({"Channel": "Security", "EventID": 4689, "NewProcessName": "C:\\W\\whoami.exe"}) == []
    assert rs.match({"Channel": SYSMON, "EventID": 3, "Image": "C:\\W\\whoami.exe"}) == []


def test_service_rule_uses_eventid_from_condition() -> None:
    info = _rule("  s: {EventID: 4624, LogonType: 10}\n  condition: s",
                 logsource="{product: windows, service: security}")
    compiled = compile_rule(info)
    assert compiled.codes[0][2] == frozenset({"4624"})
    rs = RuleSet([compiled])
    assert rs.match({"Channel": "Security", "EventID": 4624, "LogonType": "10"}) == [0]
    assert rs.match({"Channel": "Security", "EventID": 4625, "LogonType": "10"}) == []


@pytest.mark.parametrize(("detection", "reason"), [
    ("  s: {Image|expand: '%admins%'}\n  condition: s", "unexpanded placeholder %admins%"),
    ("  s: {Image|frobnicate: x}\n  condition: s", "frobnicate"),
    ("  s: {Image|re: '(unclosed'}\n  condition: s", "(?i)regular expression"),
    ("  s: {Image: x}\n  condition: s and missing", "missing"),
])
def test_unsupported_rules_say_why(detection: str, reason: str) -> None:
    with pytest.raises(RuleCompileError, match=reason):
        compile_rule(_rule(detection))
