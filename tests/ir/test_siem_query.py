"""STIX patterns as SIEM queries (EQL for Elasticsearch, SPL for Splunk): the query text per object type, the
ECS field mapping the Sigma path uses, what is refused by name, and — independent of the text — that the
predicate each observation becomes selects exactly the events our engine counts for it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dcoflow.connectors.telemetry import match_view
from dcoflow.models.patterns.compile import compile_pattern
from dcoflow.models.patterns.engine import PatternSweep
from dcoflow.models.patterns.siem_query import (
    ANY,
    ONE,
    All,
    Cidr,
    Either,
    Match,
    Not,
    NotExpressibleError,
    Number,
    Pred,
    Present,
    Regex,
    lucene_regex,
    observation_predicate,
    translate,
)

IND = "indicator--0b0f2a8e-8f4c-4a57-9a49-d7b1d1d0f001"
SHA256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"


def queries(pattern: str, dialect: str, mapping: str = "sysmon") -> list[str]:
    plan = translate(compile_pattern(pattern, IND), IND, dialect, mapping)  # type: ignore[arg-type]
    return [q.query for q in plan.queries()]


def test_file_hash_is_one_entry_of_sysmon_hashes() -> None:
    (eql,) = queries(f"[file:hashes.'SHA-256' = '{SHA256}']", "eql")
    entry = f"SHA256={SHA256.lower()}"
    # bounded by the start, a comma or the end: a longer digest or another algorithm never matches
    assert f'Hashes : ("{entry}", "{entry},*", "*,{entry}", "*,{entry},*")' in eql
    assert eql.startswith("any where Hashes : (")  # whichever file of the event they belong to
    # with the name, they must be that file's: the image's in a process-creation event, the loaded image's in an
    # image-load event, the written file's otherwise
    (eql,) = queries(f"[file:name = 'rundll32.exe' AND file:hashes.'SHA-256' = '{SHA256}']", "eql")
    assert '(Image : ("*\\\\rundll32.exe", "*/rundll32.exe", "rundll32.exe") and (ImageLoaded == null and ' \
           'TargetFilename == null and Hashes : (' in eql
    assert '(ImageLoaded : ("*\\\\rundll32.exe", "*/rundll32.exe", "rundll32.exe") and Hashes : (' in eql
    (spl,) = queries(f"[file:hashes.MD5 = '{'A' * 32}']", "spl")
    assert f'Hashes="*,MD5={"a" * 32},*"' in spl


def test_file_names_and_like() -> None:
    (eql,) = queries("[file:name = 'Invoke-Mimikatz.PS1']", "eql")
    assert 'Image : ("*\\\\invoke-mimikatz.ps1", "*/invoke-mimikatz.ps1", "invoke-mimikatz.ps1")' in eql
    assert 'TargetFilename : ("*\\\\invoke-mimikatz.ps1"' in eql and 'ImageLoaded : ("*\\\\invoke' in eql
    (spl,) = queries("[file:name LIKE '%.hta']", "spl")
    assert spl == '(Image="*.hta" OR ImageLoaded="*.hta" OR TargetFilename="*.hta")'
    # a wildcard in the middle of a name the telemetry keeps inside a path would also match directories
    with pytest.raises(NotExpressibleError, match="wildcard inside a name"):
        queries("[file:name LIKE 'mimi%.exe']", "eql")


def test_command_line_like_and_matches() -> None:
    (eql,) = queries("[process:command_line LIKE '%comsvcs.dll%MiniDump%']", "eql")
    assert 'CommandLine : "*comsvcs.dll*MiniDump*"' in eql and 'ParentCommandLine : "*comsvcs.dll*MiniDump*"' in eql
    (spl,) = queries("[process:command_line LIKE '%comsvcs.dll%MiniDump%']", "spl")
    assert 'CommandLine="*comsvcs.dll*MiniDump*"' in spl and "| where" not in spl
    # LIKE's one-character wildcard: EQL like~, SPL through | where (the search command has no such wildcard)
    (eql,) = queries("[process:command_line LIKE 'cmd.exe /_ whoami']", "eql")
    assert 'CommandLine regex~ "cmd\\\\.exe /. whoami"' in eql
    (spl,) = queries("[process:command_line LIKE 'cmd.exe /_ whoami']", "spl")
    assert spl.startswith("* | where ") and 'match(CommandLine, "(?is)^cmd\\\\.exe\\\\ /.\\\\ whoami$")' in spl
    (eql,) = queries(r"[process:command_line MATCHES 'comsvcs\\.dll[, ]+#?MiniDump']", "eql")
    assert 'CommandLine regex~ ".*(comsvcs\\\\.dll[, ]+\\\\#?MiniDump).*"' in eql  # Lucene's # escaped
    (spl,) = queries(r"[process:command_line MATCHES '-e(nc|ncodedcommand)\\s']", "spl")
    assert 'match(CommandLine, "(?i)-e(nc|ncodedcommand)\\\\s")' in spl
    with pytest.raises(NotExpressibleError, match=r"MATCHES '-e\(nc\|ncodedcommand\)\\\\s' uses regular-expression "
                                                  "syntax Elasticsearch lacks") as info:
        queries(r"[process:command_line MATCHES '-e(nc|ncodedcommand)\\s']", "eql")
    assert info.value.object == IND and IND in info.value.message


def test_parent_and_child_processes() -> None:
    (eql,) = queries("[process:parent_ref.image_ref.name = 'winword.exe' AND "
                     "process:image_ref.name = 'powershell.exe']", "eql")
    assert '(ParentImage : ("*\\\\winword.exe", "*/winword.exe", "winword.exe") and ' \
           'Image : ("*\\\\powershell.exe"' in eql
    (eql,) = queries("[process:image_ref.name = 'winword.exe' AND process:child_refs[*].image_ref.name = 'cmd.exe']",
                     "eql")
    assert '(ParentImage : ("*\\\\winword.exe", "*/winword.exe", "winword.exe") and Image : ("*\\\\cmd.exe"' in eql


def test_network_ports_and_addresses_sysmon_and_ecs() -> None:
    pattern = "[network-traffic:dst_port IN (4444, 8443) AND network-traffic:dst_ref.value = '203.0.113.7']"
    (sysmon,) = queries(pattern, "eql")
    assert 'DestinationPort : ("4444", "8443") and DestinationIp : "203.0.113.7"' in sysmon  # Sysmon keeps text
    (ecs,) = queries(pattern, "eql", "ecs")
    assert "destination.port in (4444, 8443) and destination.ip : \"203.0.113.7\"" in ecs
    assert "(source.ip != null or destination.ip != null)" in ecs
    (spl,) = queries("[network-traffic:dst_port > 1024]", "spl")
    assert "DestinationPort>1024" in spl
    with pytest.raises(NotExpressibleError, match="order comparison on DestinationPort"):
        queries("[network-traffic:dst_port > 1024]", "eql")  # text in a Sysmon index: "900" > "1024"
    assert queries("[network-traffic:dst_port > 1024]", "eql", "ecs")[0].endswith(" and destination.port > 1024)")
    (spl,) = queries("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "spl")
    assert spl == '(SourceIp="198.51.100.0/24" OR DestinationIp="198.51.100.0/24" OR IpAddress="198.51.100.0/24")'
    (ecs,) = queries("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "eql", "ecs")
    assert 'cidrMatch(destination.ip, "198.51.100.0/24")' in ecs


def test_domain_registry_and_user() -> None:
    (ecs,) = queries("[domain-name:value = 'Update-Check.example.net']", "eql", "ecs")
    assert ecs == ('any where (dns.question.name : ("update-check.example.net", "update-check.example.net.") or '
                   'destination.domain : ("update-check.example.net", "update-check.example.net."))')
    run = r"HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"
    (eql,) = queries(f"[windows-registry-key:key = '{run}']", "eql")
    key = "software\\\\microsoft\\\\windows\\\\currentversion\\\\run"
    assert f'TargetObject : ("hkey_local_machine\\\\{key}", "HKLM\\\\{key}")' in eql  # Sysmon abbreviates hives
    # a value set under the key: one segment below it, not deeper
    assert f'not TargetObject : ("hkey_local_machine\\\\{key}\\\\*\\\\*", "HKLM\\\\{key}\\\\*\\\\*")' in eql
    (ecs,) = queries(f"[windows-registry-key:key = '{run}' AND windows-registry-key:values[*].data LIKE '%.exe']",
                     "eql", "ecs")
    assert "registry.path : " in ecs and 'winlog.event_data.Details : "*.exe"' in ecs
    (spl,) = queries(r"[user-account:user_id = 'CORP\\svc-backup']", "spl")
    assert 'User="corp\\\\svc-backup"' in spl
    assert '(TargetUserName="svc-backup" TargetDomainName="corp")' in spl  # Security events keep them apart
    (ecs,) = queries("[user-account:account_login = 'svc-backup']", "eql", "ecs")
    assert 'user.name : ("*\\\\svc-backup", "*/svc-backup", "svc-backup")' in ecs


def test_observation_or_adds_counts_and_and_needs_every_side() -> None:
    plan = translate(compile_pattern("[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']", IND),
                     IND, "spl")
    a, b = (q.query for q in plan.queries())
    assert plan.count({a: 2, b: 3}) == 5 and plan.count({a: 0, b: 3}) == 3
    plan = translate(compile_pattern("[domain-name:value = 'a.example'] AND [file:name = 'b.exe']", IND), IND, "eql")
    a, b = (q.query for q in plan.queries())
    assert plan.count({a: 2, b: 3}) == 5 and plan.count({a: 2, b: 0}) == 0
    assert plan.queries()[0].fields == frozenset({"QueryName", "DestinationHostname"})


@pytest.mark.parametrize(("pattern", "why"), [
    ("[domain-name:value = 'a.example'] WITHIN 300 SECONDS", "qualifier WITHIN is not pushed down"),
    ("[domain-name:value = 'a.example'] REPEATS 3 TIMES", "qualifier REPEATS is not pushed down"),
    ("[domain-name:value = 'a.example'] START t'2026-11-18T00:00:00Z' STOP t'2026-11-19T00:00:00Z'",
     "qualifier START/STOP is not pushed down"),
    ("[domain-name:value = 'a.example'] FOLLOWEDBY [file:name = 'b.exe']", "FOLLOWEDBY between observations"),
    ("([domain-name:value = 'a.example'] AND [file:name = 'b.exe']) WITHIN 60 SECONDS", "qualifier WITHIN"),
    ("[process:pid = 4242]", "no SIEM field holds process:pid"),
    ("[file:parent_directory_ref.path = 'C:\\\\Temp'] OR [file:name = 'x.exe']", "file:parent_directory_ref.path"),
    (r"[windows-registry-key:key MATCHES 'Run$']", "regular expression on a value"),
])
def test_refused_by_name(pattern: str, why: str) -> None:
    for dialect in ("eql", "spl"):
        with pytest.raises(NotExpressibleError, match=re.escape(why)) as info:
            queries(pattern, dialect)
        assert info.value.object == IND and "not expressible as a SIEM query" in info.value.message


def test_ecs_is_for_elastic_only() -> None:
    with pytest.raises(NotExpressibleError, match="ECS field mapping is for Elastic"):
        queries("[domain-name:value = 'a.example']", "spl", "ecs")


def test_lucene_regex_rewrite() -> None:
    assert lucene_regex("^powershell") == "(powershell).*"
    assert lucene_regex("a|b") == ".*(a|b).*"
    assert lucene_regex("x@y<z>") == ".*(x\\@y\\<z\\>).*"
    assert lucene_regex("[^a-z]+$") == ".*([^a-z]+)"
    for unsupported in ("^a|b$", r"\d", "(?i)x", "a+?", r"(a)\1", "a^b"):
        assert lucene_regex(unsupported) is None, unsupported


# -- the predicates select what the engine counts --------------------------------------------------------------
def _glob(glob: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("".join(".*" if t == ANY else "." if t == ONE else re.escape(t) for t in glob),
                      re.IGNORECASE | re.DOTALL)


def holds(pred: Pred, event: dict[str, Any]) -> bool:
    """What the SIEM computes for a predicate over one event (fields as the index keeps Sysmon's)."""
    if isinstance(pred, Present):
        return (event.get(pred.field) not in (None, "")) == pred.present
    if isinstance(pred, Not):
        return not holds(pred.operand, event)
    if isinstance(pred, All):
        return all(holds(o, event) for o in pred.operands)
    if isinstance(pred, Either):
        return any(holds(o, event) for o in pred.operands)
    value = event.get(pred.field)
    if value in (None, ""):
        return False
    text = str(value)
    if isinstance(pred, Match):
        return any(_glob(g).fullmatch(text) for g in pred.globs)
    if isinstance(pred, Regex):
        return re.search(pred.pcre, text, re.IGNORECASE) is not None
    if isinstance(pred, Number):
        return any({"==": int(text) == v, "<": int(text) < v, ">": int(text) > v, "<=": int(text) <= v,
                    ">=": int(text) >= v}[pred.op] for v in pred.values)
    assert isinstance(pred, Cidr)
    import ipaddress

    try:
        return ipaddress.ip_address(text) in ipaddress.ip_network(pred.network)
    except ValueError:  # Windows writes "-" for no address
        return False


SYSMON = "Microsoft-Windows-Sysmon/Operational"
EVENTS: list[dict[str, Any]] = [
    {"EventID": 1, "Image": "C:\\Windows\\System32\\rundll32.exe", "ParentImage": "C:\\Windows\\explorer.exe",
     "CommandLine": "rundll32.exe C:\\windows\\System32\\comsvcs.dll, MiniDump 624 C:\\t\\l.dmp full",
     "Hashes": f"SHA1=AA,MD5=BB,SHA256={SHA256},IMPHASH=CC", "User": "CORP\\svc-backup"},
    {"EventID": 7, "Image": "C:\\Windows\\System32\\rundll32.exe", "ImageLoaded": "C:\\Windows\\System32\\comsvcs.dll",
     "Hashes": "SHA256=1111,MD5=22"},
    {"EventID": 11, "Image": "C:\\Users\\Public\\b.exe", "TargetFilename": "C:\\Users\\Public\\Invoke-Mimikatz.ps1"},
    {"EventID": 3, "Image": "C:\\Users\\Public\\b.exe", "SourceIp": "10.0.0.5", "SourcePort": "49711",
     "DestinationIp": "203.0.113.7", "DestinationPort": "4444", "Protocol": "tcp"},
    {"EventID": 22, "Image": "C:\\Users\\Public\\b.exe", "QueryName": "update-check.example.net."},
    {"EventID": 13, "Image": "C:\\Users\\Public\\b.exe", "Details": "C:\\Users\\Public\\b.exe",
     "TargetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"},
    {"EventID": 13, "Image": "C:\\x.exe", "Details": "1",
     "TargetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Deeper\\Key"},
    {"Channel": "Security", "EventID": 4624, "TargetUserName": "svc-backup", "TargetDomainName": "CORP",
     "IpAddress": "198.51.100.9"},
    {"Channel": "Security", "EventID": 4624, "TargetUserName": "svc-backup", "IpAddress": "-"},
]
AGREE = [
    f"[file:hashes.'SHA-256' = '{SHA256.lower()}']",
    f"[file:name = 'rundll32.exe' AND file:hashes.'SHA-256' = '{SHA256.lower()}']",
    "[file:name = 'rundll32.exe' AND file:hashes.SHA256 = '1111']",  # the loaded DLL's hash, not the image's: 0
    "[file:name = 'comsvcs.dll' AND file:hashes.SHA256 = '1111']",
    "[file:hashes.SHA256 = '1111']",
    "[file:name = 'comsvcs.dll']",
    "[file:name = 'rundll32.exe']",
    "[file:name LIKE '%.ps1']",
    "[process:command_line LIKE '%comsvcs.dll%MiniDump%']",
    "[process:command_line MATCHES 'comsvcs\\\\.dll, *minidump']",
    "[process:command_line != 'notepad.exe']",
    "[process:image_ref.name = 'rundll32.exe' AND process:parent_ref.image_ref.name = 'explorer.exe']",
    "[process:image_ref.name = 'explorer.exe' AND process:child_refs[*].image_ref.name = 'rundll32.exe']",
    "[process:creator_user_ref.account_login = 'svc-backup']",
    "[network-traffic:dst_port = 4444 AND network-traffic:dst_ref.value = '203.0.113.7']",
    "[network-traffic:dst_port > 1024]",
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24'] OR [ipv4-addr:value = '10.0.0.5']",
    "[domain-name:value = 'update-check.example.net']",
    "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run']",
    "[windows-registry-key:values[*].name = 'Updater' AND windows-registry-key:values[*].data LIKE '%b.exe']",
    "[user-account:user_id = 'CORP\\\\svc-backup']",
    "[user-account:user_id = 'svc-backup']",
    "[user-account:account_login IN ('svc-backup', 'nobody')]",
    "[domain-name:value = 'update-check.example.net'] AND [file:name = 'nothing.exe']",
]


@pytest.mark.parametrize("pattern", AGREE)
def test_pushed_down_predicate_counts_what_the_engine_counts(pattern: str) -> None:
    events = [{"Channel": SYSMON, **e} for e in EVENTS]
    compiled = compile_pattern(pattern, IND)
    engine = PatternSweep([compiled])
    for e in events:
        engine.feed(match_view(e), lambda e=e: e)  # type: ignore[misc]
    (hits,) = engine.results()
    plan = translate(compiled, IND, "spl")  # SPL: every pattern here is expressible
    counts = {}
    for obs, query in zip(compiled.observations, plan.queries(), strict=True):
        pred = observation_predicate(obs, IND)
        counts[query.query] = sum(1 for e in events if holds(pred, e))
    assert plan.count(counts) == hits.count, pattern
    if "nothing" not in pattern and "'rundll32.exe' AND file:hashes.SHA256 = '1111'" not in pattern:
        assert hits.count > 0, pattern  # each pattern here finds something: the comparison is not vacuous
