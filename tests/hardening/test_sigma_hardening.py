"""Sigma: regexes cannot hang the hunt, booleans are not numbers, shared rule ids are reported (issue 14)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.models.hunting import RuleInfo
from dcoflow.models.sigma.compiler import RuleCompileError, RuleSet, compile_rule

SYSMON = "Microsoft-Windows-Sysmon/Operational"
LOGSOURCE = {"product": "windows", "category": "process_creation"}


def _rule(detection: str) -> RuleInfo:
    text = ("title: t\nid: 9a8b7c6d-0000-4000-8000-000000000000\n"
            "logsource: {product: windows, category: process_creation}\n"
            f"detection:\n{detection}\n")
    return RuleInfo(rule_id="r", title="t", path="t.yml", yaml=text, logsource=dict(LOGSOURCE))


def _matches(detection: str, event: dict[str, Any]) -> bool:
    return bool(RuleSet([compile_rule(_rule(detection))]).match({"Channel": SYSMON, "EventID": 1, **event}))


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|a)*$", "(a|aa)+$", "(.*a){12}$", "^(\\w+\\s?)*$"])
def test_catastrophic_patterns_finish_quickly(pattern: str) -> None:
    text = "a" * 40_000 + "!"
    started = time.perf_counter()
    _matches(f"  s: {{CommandLine|re: '{pattern}'}}\n  condition: s", {"CommandLine": text})
    assert time.perf_counter() - started < 5  # Python's re takes hours on the first of these


@pytest.mark.parametrize("pattern", ["(a)\\1", "foo(?=bar)", "(?<!x)y", "(?P<n>a)(?P=n)"])
def test_patterns_needing_backtracking_are_reported(pattern: str) -> None:
    with pytest.raises(RuleCompileError, match="backtracking"):
        compile_rule(_rule(f"  s: {{CommandLine|re: '{pattern}'}}\n  condition: s"))


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "[z-a]"])
def test_invalid_patterns_are_reported(pattern: str) -> None:
    with pytest.raises(RuleCompileError, match=r"does not compile|is invalid"):
        compile_rule(_rule(f"  s: {{CommandLine|re: '{pattern}'}}\n  condition: s"))


@pytest.mark.parametrize(("rule_value", "event_value", "expected"), [
    ("true", 1, False), ("true", "1", False), ("false", 0, False), ("true", True, True), ("true", "True", True),
    ("1", True, False), ("0", False, False), ("1", 1, True),
])
def test_booleans_are_not_numbers(rule_value: str, event_value: Any, expected: bool) -> None:
    assert _matches(f"  s: {{Flag: {rule_value}}}\n  condition: s", {"Flag": event_value}) is expected


@pytest.mark.parametrize("eid", [True, 1.0, "1.0"])
def test_event_id_true_or_float_is_not_event_1(tmp_path: Path, eid: Any) -> None:
    """The hunt's dispatch cache must not send EventID true (== 1 in a dict) to EventID 1's rules."""
    import orjson

    from dcoflow.tasks.conduct.local_hunt import hunt_file

    rule = compile_rule(_rule("  s: {EventID: 1, Image|endswith: '\\\\x.exe'}\n  condition: s"))
    log = tmp_path / "events.jsonl"
    events = [{"Channel": SYSMON, "EventID": 1, "Image": "c:\\x.exe"},
              {"Channel": SYSMON, "EventID": eid, "Image": "c:\\x.exe"}]
    log.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    result = hunt_file(RuleSet([rule]), log, sample=5, max_member_bytes=1 << 20)
    assert sum(result.counts.values()) == 1


def test_rules_sharing_an_id_are_reported_not_merged(tmp_path: Path) -> None:
    body = ("title: {t}\nid: 11111111-2222-4333-8444-555555555555\nlogsource: {{product: windows}}\n"
            "detection:\n  s: {{Image: '{t}'}}\n  condition: s\n")
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.yml").write_text(body.format(t=name), encoding="utf-8")
    index = load_rule_index(tmp_path)
    assert [r.title for r in index.rules] == ["a"]
    assert index.report.skipped == 2
    assert all("duplicate rule id" in b.reason and "a.yml" in b.reason for b in index.report.bad)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=st.text(alphabet="ab()|*+?{}[]^$.\\0123,-", max_size=12),
       text=st.text(alphabet="ab\n!", max_size=2000))
def test_fuzz_regex_rules_compile_or_are_reported(pattern: str, text: str) -> None:
    """Any pattern either compiles (and then matches in bounded time) or is a RuleCompileError."""
    detection = f"  s: {{CommandLine|re: '{pattern.replace(chr(39), '')}'}}\n  condition: s"
    try:
        rules = RuleSet([compile_rule(_rule(detection))])
    except RuleCompileError:
        return
    rules.match({"Channel": SYSMON, "EventID": 1, "CommandLine": text * 10})
