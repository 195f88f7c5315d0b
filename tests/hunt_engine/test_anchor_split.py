"""Large dispatch groups split by anchor (base names of images): same matches as one function, less built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.content.sigma_rules import load_rule_index
from dcoflow.connectors.telemetry import iter_data_files, iter_file_records, match_view
from dcoflow.core.errors import BatchReport
from dcoflow.models.hunting import RuleInfo
from dcoflow.models.sigma import compiler, group
from dcoflow.models.sigma.compiler import RuleSet, anchors, compile_rule

SYSMON = "Microsoft-Windows-Sysmon/Operational"
NEVER = 10**9  # split_min that keeps every group one function


def _rule(n: int, detection: str) -> RuleInfo:
    text = (f"title: t{n}\nid: 9a8b7c6d-0000-4000-8000-{n:012d}\n"
            f"logsource: {{product: windows, category: process_creation}}\ndetection:\n{detection}\n")
    return RuleInfo(rule_id=f"r{n}", title=f"t{n}", path=f"t{n}.yml", yaml=text,
                    logsource={"product": "windows", "category": "process_creation"})


DETECTIONS = [
    "  s: {Image|endswith: '\\\\cmd.exe'}\n  condition: s",
    "  s: {Image|endswith: ['\\\\cmd.exe', '\\\\pwsh.exe']}\n  o: {OriginalFileName: 'Cmd.Exe'}\n  condition: s or o",
    "  s: {Image|endswith: '\\\\cmd.exe', CommandLine|contains: '/c'}\n  condition: s",
    "  s: {Image|endswith: 'cmd.exe'}\n  condition: s",  # no backslash: any image ending so, not anchored
    "  s: {Image: 'C:\\\\Windows\\\\System32\\\\whoami.exe'}\n  condition: s",
    "  s: {Image|endswith: 'tem32\\\\net.exe'}\n  f: {CommandLine|contains: user}\n  condition: s and not f",
    "  s: {ParentImage|endswith: '\\\\cmd.exe'}\n  condition: s",
    "  s: {CommandLine|contains: whoami}\n  condition: s",  # unanchored
    "  s: {Image|endswith: '\\\\cmd.exe'}\n  condition: not s",  # NOT: unanchored
    "  s: {Image: ''}\n  condition: s",
    "  s: {Image|endswith|cased: '\\\\CMD.exe'}\n  condition: s",
    "  s: {IntegrityLevel: 5}\n  condition: s",
]
EVENTS: list[dict[str, Any]] = [
    {"Image": "C:\\Windows\\System32\\cmd.exe", "OriginalFileName": "Cmd.Exe", "CommandLine": "cmd /c whoami",
     "ParentImage": "C:\\x\\cmd.exe"},
    {"Image": "C:\\Windows\\System32\\CMD.exe", "CommandLine": "x"},
    {"Image": "C:\\tools\\mycmd.exe"},
    {"Image": "C:\\Windows\\System32\\whoami.exe", "OriginalFileName": "whoami.exe"},
    {"Image": "c:\\windows\\system32\\net.exe", "CommandLine": "net user"},
    {"Image": "c:\\windows\\system32\\net.exe", "CommandLine": "net group"},
    {"Image": "", "OriginalFileName": "pwsh.exe"},
    {"Image": 5, "IntegrityLevel": 5},
    {"Image": "cmd.exe\\", "ParentImage": "pwsh.exe"},
    {"CommandLine": "whoami"},
]


@pytest.fixture(scope="module")
def rules() -> list[compiler.CompiledRule]:
    return [compile_rule(_rule(n, d)) for n, d in enumerate(DETECTIONS)]


def _matches(ruleset: RuleSet, events: list[dict[str, Any]]) -> list[list[int]]:
    return [ruleset.match({"Channel": ch, "EventID": eid, **ev})
            for ev in events for ch, eid in ((SYSMON, 1), ("Security", 4688))]


def test_anchors_are_necessary_base_names(rules: list[compiler.CompiledRule]) -> None:
    by_variant = [{v.name: None if code.anchors is None else set(code.anchors)
                   for (v, _, _), code in zip(cr.codes, cr.emitted, strict=True)} for cr in rules]
    assert by_variant[0] == {"sysmon": {("image", "cmd.exe")}, "security-audit": {("newprocessname", "cmd.exe")}}
    assert by_variant[1]["sysmon"] == {("image", "cmd.exe"), ("image", "pwsh.exe"), ("originalfilename", "cmd.exe")}
    assert by_variant[2]["sysmon"] == {("image", "cmd.exe")}  # AND: the anchored argument
    assert by_variant[4]["sysmon"] == {("image", "whoami.exe")}
    assert by_variant[5]["sysmon"] == {("image", "net.exe")}
    assert by_variant[6]["security-audit"] == {("parentprocessname", "cmd.exe")}
    assert by_variant[9]["sysmon"] == {("image", "")}
    for unanchored in (3, 7, 8, 10, 11):
        assert set(by_variant[unanchored].values()) == {None}
    tree = compiler.condition_tree(compiler.parse_rule(rules[0].info.yaml))
    assert anchors(tree, rules[0].codes[0][0]) == frozenset({("image", "cmd.exe")})


def test_split_group_matches_like_one_function(rules: list[compiler.CompiledRule]) -> None:
    expected = _matches(RuleSet(rules, split_min=NEVER), EVENTS)
    assert len({tuple(m) for m in expected}) > 5
    assert _matches(RuleSet(rules, split_min=0), EVENTS) == expected
    # names are built lazily: another order of first sightings gives the same matches
    rev = list(reversed(EVENTS))
    assert _matches(RuleSet(rules, split_min=0), rev) == _matches(RuleSet(rules, split_min=NEVER), rev)


def test_split_group_builds_only_the_names_it_sees(rules: list[compiler.CompiledRule],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    generated: list[int] = []
    real = group._generate

    def spy(entries: Any) -> compiler.GroupFn:
        generated.append(len(entries))
        return real(entries)

    monkeypatch.setattr(group, "_generate", spy)
    ruleset = RuleSet(rules, split_min=0)
    assert ruleset.match({"Channel": SYSMON, "EventID": 1, "Image": "C:\\Windows\\System32\\whoami.exe"}) == [4, 8]
    assert sum(generated) < len(rules)  # the unanchored rules and the whoami.exe ones only
    before = sum(generated)
    assert ruleset.match({"Channel": SYSMON, "EventID": 1, "Image": "C:\\y\\WHOAMI.EXE"}) == [8]
    assert sum(generated) == before  # the name's function is kept


def test_corpus_matches_are_the_same_split_or_not(shared_dir: Path) -> None:
    compiled = [compile_rule(info) for info in load_rule_index(shared_dir / "sigma" / "rules" / "windows").rules]
    views = []
    for path in iter_data_files(shared_dir / "security-datasets" / "data"):
        views += [match_view(raw) for raw in iter_file_records(path, BatchReport(source=str(path)),
                                                                max_member_bytes=2**31)]
    whole = RuleSet(compiled, split_min=NEVER)
    expected = [whole.match_view(v) for v in views]
    assert sum(map(len, expected)) > 400
    for split_min in (0, compiler.SPLIT_MIN):
        ruleset = RuleSet(compiled, split_min=split_min)
        assert [ruleset.match_view(v) for v in views] == expected
