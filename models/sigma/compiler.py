"""Compile Sigma rules (parsed by pySigma) into Python source, and evaluate them per event.

Why generated Python, measured on this machine (2 cores) over the Security-Datasets corpus
(28,335 events) and the 2,400 Windows rules of SigmaHQ — see ``bench/bench_hunt.py``:

* SQLite (the Zircolite approach, pySigma's sqlite backend over an in-memory table): every
  rule is one full-table scan, so cost is rules × events; LIKE per value per row. A few
  thousand events/s end to end.
* DuckDB: columnar scans are fast, but 2,400 separate queries each pay planning and a scan,
  the duckdb backend does not escape ``_`` in LIKE patterns, and keywords/fieldref need
  rewriting; it only wins for one rule over millions of rows.
* Compiled Python with logsource dispatch (this module): an event is only tested by the rules
  whose logsource can apply to it (grouped by channel and event id, and the event id a rule's
  own condition requires), all rules of a group share one generated function that lowers each
  referenced field once, and value lists become C-level tests (``str.endswith(tuple)``,
  frozenset membership, one compiled regex alternation for long ``contains`` lists). This is
  the one that reaches tens of thousands of events/s with every Sigma modifier intact.

Each rule variant is emitted once, when the rule is compiled (``emit``), with names that do not
depend on the group (field variables named from the hex of the field name, constants prefixed per
emission), so building a group is concatenation and one ``compile``; the two ~1,180-rule
process-creation groups are further split by the image base names a rule requires (``anchors``),
each part compiled the first time an event carries its name. Long texts are scanned by
Aho-Corasick line by line with a per-line cache (their lines repeat from event to event), and a
case-sensitive regex first checks the literal every match must contain (``required_literal``).

Semantics: string matching is case-insensitive (``cased`` makes it sensitive), ``re`` is
case-sensitive unless ``i``; a missing field makes every test false except ``null`` and
``exists: false`` (two-valued logic, like the SIEM back ends — unlike SQL's three-valued
NOT). Keywords match when any field value matches the keyword pattern as a substring.
Rules that pySigma cannot parse, or that use constructs this compiler does not evaluate
(unexpanded placeholders, query expressions, time-part modifiers), raise
:class:`RuleCompileError` with the reason; the caller reports them as skipped.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import count
from operator import itemgetter
from typing import Any

import ahocorasick  # type: ignore[import-not-found]  # pyahocorasick ships no type stubs
import re2  # type: ignore[import-untyped]  # google-re2 ships no type stubs
import yaml
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from dcoflow.models.hunting import RuleInfo
from dcoflow.models.sigma.logsource import Variant, variants_for
from dcoflow.models.strict_yaml import load_yaml, yaml_problem

# Modifier spellings of the Sigma specification that pySigma 1.5 names differently.
_MODIFIER_ALIASES = {"utf16le": "wide"}


class RuleCompileError(ValueError):
    """A rule cannot be evaluated locally; the message is the reason shown to the analyst."""


# -- parsing -----------------------------------------------------------------------------------


def _alias_modifiers(detection: Any) -> Any:
    if isinstance(detection, dict):
        out: dict[Any, Any] = {}
        for key, value in detection.items():
            new_key = key
            if isinstance(key, str) and "|" in key:
                name, *mods = key.split("|")
                new_key = "|".join([name, *(_MODIFIER_ALIASES.get(m, m) for m in mods)])
            out[new_key] = _alias_modifiers(value)
        return out
    if isinstance(detection, list):
        return [_alias_modifiers(v) for v in detection]
    return detection


def parse_rule(text: str) -> SigmaRule:
    """A fresh pySigma rule from YAML text (pySigma mutates rules when converting: never share them)."""
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise RuleCompileError(f"invalid YAML: {yaml_problem(exc)}") from exc
    if not isinstance(doc, dict) or "detection" not in doc:
        raise RuleCompileError("not a Sigma rule (no detection section)")
    doc = dict(doc)
    doc["detection"] = _alias_modifiers(doc["detection"])
    try:
        return SigmaRule.from_dict(doc)
    except SigmaError as exc:
        raise RuleCompileError(f"pySigma: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RuleCompileError(f"pySigma could not parse the rule: {type(exc).__name__}: {exc}") from exc


def condition_tree(rule: SigmaRule) -> Any:
    """The rule's conditions as one pySigma condition tree (several conditions are OR-ed)."""
    try:
        trees = [cond.parse() for cond in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise RuleCompileError(f"condition: {exc}") from exc
    if not trees:
        raise RuleCompileError("rule has no condition")
    return trees[0] if len(trees) == 1 else ConditionOR(trees)


# -- value tests ------------------------------------------------------------------------------------


def _pattern_parts(value: SigmaString) -> list[str | SpecialChars]:
    if value.contains_placeholder():
        names = sorted({getattr(p, "name", "?") for p in value.s if not isinstance(p, str | SpecialChars)})
        raise RuleCompileError("unexpanded placeholder " + ", ".join(f"%{n}%" for n in names)
                               + " (expand it with a pipeline or pass an expanded rule)")
    parts: list[str | SpecialChars] = []
    for p in value.s:
        if isinstance(p, str) and parts and isinstance(parts[-1], str):
            parts[-1] = parts[-1] + p
        elif isinstance(p, str | SpecialChars):
            parts.append(p)
    return parts


def _classify(parts: list[str | SpecialChars]) -> tuple[str, str] | None:
    """Fast-path kind of a wildcard pattern: eq / contains / startswith / endswith / any, else None."""
    star = SpecialChars.WILDCARD_MULTI
    if not parts:
        return ("eq", "")
    if all(isinstance(p, str) for p in parts):
        return ("eq", "".join(p for p in parts if isinstance(p, str)))
    if parts == [star]:
        return ("any", "")
    first, last = parts[0], parts[-1]
    if len(parts) == 3 and first == star and last == star and isinstance(parts[1], str):
        return ("contains", parts[1])
    if len(parts) == 2 and isinstance(first, str) and last == star:
        return ("startswith", first)
    if len(parts) == 2 and first == star and isinstance(last, str):
        return ("endswith", last)
    return None


def _wildcard_regex(parts: list[str | SpecialChars], *, lower: bool) -> str:
    out = []
    for p in parts:
        if p == SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif p == SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        elif isinstance(p, str):
            out.append(re.escape(p.lower() if lower else p))
    return "".join(out)


# RE2 (linear time, no backtracking) runs every pattern a rule brings: a ``|re`` such as ``(a+)+$``
# would otherwise hold Python's backtracking engine for hours on one 40k-character field.
_RE2_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))


def linear_regex(pattern: str, flags: int = 0) -> Any:
    """``pattern`` compiled by RE2 (``search``/``fullmatch`` like ``re``); RuleCompileError when RE2
    cannot take it — a backreference or lookaround, which only a backtracking engine can run."""
    inline = "".join(c for f, c in _RE2_FLAGS if flags & f)
    try:
        return re2.compile(f"(?{inline}){pattern}" if inline else pattern)
    except re2.error as exc:
        try:
            re.compile(pattern, flags)
        except re.error as bad:
            raise RuleCompileError(f"regular expression {pattern!r} does not compile: {bad}") from bad
        raise RuleCompileError(
            f"regular expression {pattern!r} needs backtracking (backreference or lookaround), which can take "
            f"exponential time on long fields; not run ({exc})") from exc


def required_literal(rx: re.Pattern[str]) -> str | None:
    """A text every match of a case-sensitive pattern contains: its longest run of plain characters at
    the top level (a concatenation, so each of its items is matched once). ``'lit' in text`` then
    rejects most events before the regex engine runs (ContextInfo texts are kilobytes long)."""
    if rx.flags & re.IGNORECASE:
        return None
    try:  # the private parser is the only exact reading of a pattern; any surprise means no prefilter
        items = list(importlib.import_module("re._parser").parse(rx.pattern, rx.flags))
    except Exception:
        return None
    best, run = "", []
    for op, arg in [*items, (None, None)]:
        if str(op) == "LITERAL":
            run.append(chr(arg))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best or None


@lru_cache(maxsize=65536)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def _cidr_test(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Callable[[str], bool]:
    def test(value: str) -> bool:
        addr = _ip(value)
        return addr is not None and addr.version == network.version and addr in network
    return test


def _number(text: str) -> float | None:
    try:
        return float(int(text, 0)) if text[:2].lower() == "0x" else float(text)
    except ValueError:
        return None


def _compare_test(op: CompareOperators, bound: float) -> Callable[[str], bool]:
    ops: dict[CompareOperators, Callable[[float], bool]] = {
        CompareOperators.LT: lambda x: x < bound,
        CompareOperators.LTE: lambda x: x <= bound,
        CompareOperators.GT: lambda x: x > bound,
        CompareOperators.GTE: lambda x: x >= bound,
    }
    cmp = ops[op]

    def test(value: str) -> bool:
        n = _number(value)
        return n is not None and cmp(n)
    return test


# -- code generation --------------------------------------------------------------------------------


_EMISSIONS = count()  # numbers each emission so constants of many rules can share one namespace


def _var(name: str) -> str:
    """Variable suffix of a lower-case field name: injective, a valid identifier, the same in every group."""
    return "_" + name.encode().hex()


@dataclass
class _Gen:
    """State while emitting one rule variant: the fields it reads, its constants and ``contains`` words.

    Nothing here depends on the group the variant ends up in, so a variant is emitted once (when the
    rule is compiled) and a group function is only the concatenation of its variants' expressions.
    """

    prefix: str = field(default_factory=lambda: f"k{next(_EMISSIONS)}_")
    consts: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # lower-case event key → variable suffix
    uses_keywords: bool = False
    # suffix → ``contains`` literals: every rule of a group shares one Aho-Corasick automaton per
    # field, so a long text is scanned once per event, not once per rule
    ac_words: dict[str, set[str]] = field(default_factory=dict)

    def slot(self, name: str) -> str:
        key = name.lower()
        suffix = self.fields.get(key)
        if suffix is None:
            suffix = self.fields[key] = _var(key)
        return suffix

    def const(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.consts)}"
        self.consts[name] = value
        return name


@dataclass(frozen=True, slots=True)
class Emitted:
    """One rule variant as a Python expression over the group function's field variables."""

    expr: str
    consts: dict[str, Any]
    fields: dict[str, str]
    ac_words: dict[str, frozenset[str]]
    uses_keywords: bool
    # (lower-case event key, base name) pairs one of which the event must have for the test to hold
    # (see ``anchors``); None when the condition names none (e.g. only ``contains`` or NOT tests)
    anchors: frozenset[tuple[str, str]] | None = None


def emit(variant: Variant, tree: Any) -> Emitted:
    """The variant's test (its extra field conditions AND the rule's condition); raises ``RuleCompileError``."""
    gen = _Gen()
    expr = _Emitter(gen, variant).node(tree)
    for fname, allowed in variant.conditions:
        s = gen.slot(fname)
        expr = f"(l{s} in {gen.const(frozenset(a.lower() for a in allowed))} and {expr})"
    return Emitted(expr, gen.consts, gen.fields, {k: frozenset(v) for k, v in gen.ac_words.items()},
                   gen.uses_keywords, anchors(tree, variant))


def base_name(lowered: str) -> str:
    """The part of a lower-case field value after its last backslash (all of it without one)."""
    return lowered.rpartition("\\")[2]


def anchors(tree: Any, variant: Variant) -> frozenset[tuple[str, str]] | None:
    """A necessary condition of ``tree`` as (lower-case event key, base name) pairs, else None.

    The test can only hold for an event whose lower-cased value of some listed key has the listed
    ``base_name``: ``Image|endswith: '\\cmd.exe'`` and ``OriginalFileName: 'Cmd.Exe'`` both give
    ``cmd.exe`` (a value ending in a text that holds a backslash has that text's base name; a value
    equal to a text has its base name). AND keeps the smallest set of its arguments, OR the union
    of all of them (None if one has none); NOT, keywords and every other test give None. Large
    groups dispatch on these pairs, so an event is only tested by the rules its names can match.
    """
    if isinstance(tree, ConditionAND):
        best: frozenset[tuple[str, str]] | None = None
        for arg in tree.args:
            found = anchors(arg, variant)
            if found is not None and (best is None or len(found) < len(best)):
                best = found
        return best
    if isinstance(tree, ConditionOR):
        union: set[tuple[str, str]] = set()
        for arg in tree.args:
            found = anchors(arg, variant)
            if found is None:
                return None
            union |= found
        return frozenset(union)
    if isinstance(tree, ConditionFieldEqualsValueExpression) and tree.field is not None:
        key = variant.field_map.get(tree.field, tree.field).lower()
        values = tree.value.values if isinstance(tree.value, SigmaExpansion) else [tree.value]
        out: set[tuple[str, str]] = set()
        for value in values:
            if type(value) is not SigmaString:  # cased strings, numbers, regexes, null, …
                return None
            kind = _classify(_pattern_parts(value))
            if kind is None:
                return None
            lit = kind[1].lower()
            if kind[0] == "eq" or (kind[0] == "endswith" and "\\" in lit):
                out.add((key, base_name(lit)))
            else:
                return None
        return frozenset(out)
    return None


@dataclass
class _RuleCode:
    """One emitted variant of one rule, ready to be placed into a group function."""

    rule_index: int
    code: Emitted


class _Emitter:
    def __init__(self, gen: _Gen, variant: Variant) -> None:
        self.g = gen
        self.v = variant

    def field(self, name: str) -> str:
        if name in self.v.unsupported_fields:
            raise RuleCompileError(f"field {name} has no equivalent in {self.v.name} events")
        return self.g.slot(self.v.field_map.get(name, name))

    # expressions -----------------------------------------------------------------------
    def node(self, n: Any) -> str:
        if isinstance(n, ConditionAND):
            return "(" + " and ".join(self.node(a) for a in n.args) + ")"
        if isinstance(n, ConditionOR):
            return self.or_node(list(n.args))
        if isinstance(n, ConditionNOT):
            return f"(not {self.node(n.args[0])})"
        if isinstance(n, ConditionFieldEqualsValueExpression):
            return self.leaf(n.field, n.value)
        if isinstance(n, ConditionValueExpression):
            return self.keyword(n.value)
        raise RuleCompileError(f"unsupported condition element {type(n).__name__}")

    def or_node(self, args: list[Any]) -> str:
        # Flatten nested ORs and value expansions (windash, base64offset) into (field, value) leaves,
        # then merge simple same-field string tests into one C-level test each.
        leaves: list[tuple[str, Any]] = []
        others: list[str] = []
        stack = list(args)
        while stack:
            a = stack.pop(0)
            if isinstance(a, ConditionOR):
                stack[:0] = list(a.args)
            elif isinstance(a, ConditionFieldEqualsValueExpression) and isinstance(a.value, SigmaExpansion):
                stack[:0] = [ConditionFieldEqualsValueExpression(a.field, v) for v in a.value.values]
            elif isinstance(a, ConditionFieldEqualsValueExpression) and type(a.value) is SigmaString:
                leaves.append((a.field, a.value))
            else:
                others.append(self.node(a))
        groups: dict[tuple[str, str], list[str]] = {}
        for fname, value in leaves:
            found = _classify(_pattern_parts(value))
            if found is None or found[0] == "any" or not found[1]:
                others.append(self.leaf(fname, value))
            else:
                groups.setdefault((fname, found[0]), []).append(found[1].lower())
        for (fname, kind), lits in groups.items():
            others.append(self.merged(fname, kind, lits))
        return others[0] if len(others) == 1 else "(" + " or ".join(others) + ")"

    def merged(self, fname: str, kind: str, lits: list[str]) -> str:
        s = self.field(fname)
        lits = list(dict.fromkeys(lits))
        if kind == "eq":
            return f"l{s} == {lits[0]!r}" if len(lits) == 1 else f"l{s} in {self.g.const(frozenset(lits))}"
        if kind in ("startswith", "endswith"):
            arg = repr(lits[0]) if len(lits) == 1 else repr(tuple(lits))
            return f"l{s}.{kind}({arg})"
        self.g.ac_words.setdefault(s, set()).update(lits)
        if len(lits) == 1:
            return f"{lits[0]!r} in h{s}"
        return f"not {self.g.const(frozenset(lits))}.isdisjoint(h{s})"

    def leaf(self, fname: str | None, value: Any) -> str:
        if fname is None:
            return self.keyword(value)
        if isinstance(value, SigmaExpansion):
            return self.or_node([ConditionFieldEqualsValueExpression(fname, v) for v in value.values])
        s = self.field(fname)
        if isinstance(value, SigmaCasedString):
            parts = _pattern_parts(value)
            rx = linear_regex(_wildcard_regex(parts, lower=False), re.DOTALL)
            return f"(p{s} and {self.g.const(rx.fullmatch)}(o{s}) is not None)"
        if isinstance(value, SigmaString):
            parts = _pattern_parts(value)
            kind = _classify(parts)
            if kind is None:
                rx = linear_regex(_wildcard_regex(parts, lower=True), re.DOTALL)
                return f"(p{s} and {self.g.const(rx.fullmatch)}(l{s}) is not None)"
            k, lit = kind[0], kind[1].lower()
            if k == "any" or not lit:
                return f"p{s}" if k != "eq" else f"(p{s} and l{s} == '')"
            return self.merged(fname, k, [lit])
        if isinstance(value, SigmaBool):  # a boolean matches a boolean, never the number 1 or 0
            return f"l{s} == {'true' if value.boolean else 'false'!r}"
        if isinstance(value, SigmaNumber):
            return f"l{s} == {str(value.number).lower()!r}"
        if isinstance(value, SigmaNull):
            return f"(not p{s})"
        if isinstance(value, SigmaExists):
            return f"p{s}" if value.exists else f"(not p{s})"
        if isinstance(value, SigmaRegularExpression):
            flags = 0
            for f in value.flags:
                flags |= {SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
                          SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
                          SigmaRegularExpressionFlag.DOTALL: re.DOTALL}[f]
            pattern = value.regexp.original if isinstance(value.regexp, SigmaString) else str(value.regexp)
            rx = linear_regex(pattern, flags)
            try:  # Python's parser only reads the pattern for the prefilter; RE2 matches
                needed = required_literal(re.compile(pattern, flags))
            except re.error:
                needed = None
            pre = "" if needed is None else f" and {needed!r} in o{s}"
            return f"(p{s}{pre} and {self.g.const(rx.search)}(o{s}) is not None)"
        if isinstance(value, SigmaCIDRExpression):
            return f"(p{s} and {self.g.const(_cidr_test(value.network))}(o{s}))"
        if isinstance(value, SigmaCompareExpression):
            return f"(p{s} and {self.g.const(_compare_test(value.op, float(value.number.number)))}(o{s}))"
        if isinstance(value, SigmaFieldReference):
            r = self.field(value.field)
            if value.starts_with and value.ends_with:
                test = f"l{r} in l{s}"
            elif value.starts_with:
                test = f"l{s}.startswith(l{r})"
            elif value.ends_with:
                test = f"l{s}.endswith(l{r})"
            else:
                test = f"l{s} == l{r}"
            return f"(p{s} and p{r} and {test})"
        raise RuleCompileError(f"unsupported value type {type(value).__name__} for field {fname}")

    def keyword(self, value: Any) -> str:
        self.g.uses_keywords = True
        if isinstance(value, SigmaExpansion):
            return "(" + " or ".join(self.keyword(v) for v in value.values) + ")"
        if isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString):
            parts = _pattern_parts(value)
            kind = _classify(parts)
            if kind is not None and kind[0] in ("eq", "contains") and kind[1]:
                lit = kind[1].lower()
                return f"any({lit!r} in x for x in KW)"
            rx = linear_regex(_wildcard_regex(parts, lower=True), re.DOTALL)
            return f"any({self.g.const(rx.search)}(x) is not None for x in KW)"
        if isinstance(value, SigmaNumber):
            return f"any({str(value.number)!r} in x for x in KW)"
        raise RuleCompileError(f"unsupported keyword value {type(value).__name__}")


def required_event_ids(tree: Any, field_map: dict[str, str] | None = None) -> frozenset[str] | None:
    """Event ids a condition tree can only match (from an AND-ed ``EventID`` test), else None."""
    if isinstance(tree, ConditionFieldEqualsValueExpression):
        if tree.field is not None and tree.field.lower() == "eventid":
            vals = tree.value.values if isinstance(tree.value, SigmaExpansion) else [tree.value]
            out = set()
            for v in vals:
                if isinstance(v, SigmaNumber):
                    out.add(str(v.number))
                elif type(v) is SigmaString and not v.contains_special() and not v.contains_placeholder():
                    out.add(str(v).lower())
                else:
                    return None
            return frozenset(out)
        return None
    if isinstance(tree, ConditionAND):
        found = [r for r in (required_event_ids(a) for a in tree.args) if r is not None]
        if not found:
            return None
        acc = found[0]
        for r in found[1:]:
            acc = acc & r
        return acc
    if isinstance(tree, ConditionOR):
        subs = [required_event_ids(a) for a in tree.args]
        if any(s is None for s in subs):
            return None
        return frozenset().union(*[s for s in subs if s is not None])
    return None


# -- rules and rule sets ------------------------------------------------------------------------------


@dataclass(slots=True)
class CompiledRule:
    """A rule checked for local evaluation: its variants with their condition trees, emitted once."""

    info: RuleInfo
    codes: list[tuple[Variant, Any, frozenset[str] | None]]
    dropped_variants: list[str] = field(default_factory=list)
    emitted: list[Emitted] = field(default_factory=list)  # aligned with ``codes``

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(c for v, _, _ in self.codes for c in v.channels)


def compile_rule(info: RuleInfo) -> CompiledRule:
    """Parse, check and emit one rule; raises ``RuleCompileError`` with the reason it cannot run locally.

    Rules whose logsource has no Windows event mapping compile to no variants (they can never
    see an event here: the hunt reports them as visibility gaps).
    """
    rule = parse_rule(info.yaml)
    tree = condition_tree(rule)
    codes: list[tuple[Variant, Any, frozenset[str] | None]] = []
    emitted: list[Emitted] = []
    dropped: list[str] = []
    last_error: RuleCompileError | None = None
    for variant in variants_for(info.logsource):
        try:
            code = emit(variant, tree)  # every construct is checked now, not at the first event
        except RuleCompileError as exc:
            dropped.append(f"{variant.name}: {exc}")
            last_error = exc
            continue
        ids = required_event_ids(tree)
        if variant.event_ids is not None:
            ids = variant.event_ids if ids is None else ids & variant.event_ids
        codes.append((variant, tree, ids))
        emitted.append(code)
    if not codes and last_error is not None:
        raise last_error
    if not codes:
        # still validate semantics so unsupported constructs are reported, not silently ignored
        emit(Variant("none", frozenset()), tree)
    return CompiledRule(info, codes, dropped, emitted)


GroupFn = Callable[[dict[str, Any]], list[int]]


def _tostr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import orjson
        return orjson.dumps(value).decode()
    return str(value)


_LINE_SCAN_MIN = 256  # shorter texts are scanned whole
_LINE_CACHE_CHARS = 4 << 20  # per field of a group; the cache is emptied when it holds more


def _scanner(words: Iterable[str]) -> Callable[[str], set[str]]:
    """The set of ``words`` occurring in a (lower-case) text, by one Aho-Corasick pass.

    Long texts (PowerShell ContextInfo, Payload, script blocks) repeat most of their lines from
    event to event, so when no word spans a line break the text is scanned line by line with
    each line's result cached: the union over the lines is exactly the whole-text result.
    """
    automaton = ahocorasick.Automaton()
    ws = sorted(set(words))
    for word in ws:
        automaton.add_word(word, word)
    automaton.make_automaton()
    scan_iter = automaton.iter
    second = itemgetter(1)

    def scan(text: str) -> set[str]:
        return set(map(second, scan_iter(text)))

    if any("\n" in w for w in ws):
        return scan
    cache: dict[str, frozenset[str]] = {}
    held = 0

    def scan_lines(text: str) -> set[str]:
        nonlocal held
        if len(text) < _LINE_SCAN_MIN:
            return set(map(second, scan_iter(text)))
        found: set[str] = set()
        for line in text.split("\n"):
            hit = cache.get(line)
            if hit is None:
                if held > _LINE_CACHE_CHARS:
                    cache.clear()
                    held = 0
                hit = cache[line] = frozenset(map(second, scan_iter(line)))
                held += len(line) + 64
            if hit:
                found.update(hit)
        return found

    return scan_lines


# Groups of at least this many rules dispatch on ``anchors`` (the two process-creation groups hold
# ~1,180 rules each, two thirds of them anchored on an image or original file name).
SPLIT_MIN = 200


def build_group(entries: Sequence[_RuleCode], split_min: int = SPLIT_MIN) -> GroupFn:
    """The function testing every entry against a lower-case-keyed event dict (rule indices, maybe repeated).

    A group of ``split_min`` entries or more is split by ``anchors``: one generated function for the
    entries without anchors, and per base name one for the entries anchored on it (whatever the
    field), generated the first time an event has that name in one of the anchor fields. An event
    runs the first and the ones of its names, so building costs what the data uses and an event is
    tested by fewer rules (a rule may run on a name it anchors in another field: anchors only
    filter, the test decides). A rule anchored on two names an event has comes back twice.
    Smaller groups are one function.
    """
    if len(entries) < split_min:
        return _generate(entries)
    base: list[_RuleCode] = []
    by_name: dict[str, dict[int, _RuleCode]] = {}  # name → entries by position, so each is in once
    fields: set[str] = set()
    for pos, e in enumerate(entries):
        if e.code.anchors is None:
            base.append(e)
            continue
        for key, name in e.code.anchors:
            fields.add(key)
            by_name.setdefault(name, {})[pos] = e
    if not by_name:
        return _generate(entries)
    anchored = {name: [got[p] for p in sorted(got)] for name, got in by_name.items()}
    first = _generate(base)
    keys = tuple(sorted(fields))
    built: dict[str, GroupFn] = {}

    def group(ev: dict[str, Any]) -> list[int]:
        r = first(ev)
        ran: list[str] = []
        for key in keys:
            o = ev.get(key)
            if o is None:
                continue
            name = (o if o.__class__ is str else _tostr(o)).lower().rpartition("\\")[2]
            fn = built.get(name)
            if fn is None:
                todo = anchored.get(name)
                if todo is None:
                    continue
                fn = built[name] = _generate(todo)
            if name in ran:
                continue
            ran.append(name)
            hits = fn(ev)
            if hits:
                r = r + hits if r else hits
        return r

    return group


def _generate(entries: Sequence[_RuleCode]) -> GroupFn:
    """One generated function testing every entry, in order."""
    namespace: dict[str, Any] = {"_tostr": _tostr, "_EMPTY": frozenset()}
    fields: dict[str, str] = {}
    words: dict[str, set[str]] = {}
    uses_keywords = False
    body: list[str] = []
    for e in entries:
        namespace.update(e.code.consts)
        fields.update(e.code.fields)
        for s, lits in e.code.ac_words.items():
            words.setdefault(s, set()).update(lits)
        uses_keywords = uses_keywords or e.code.uses_keywords
        body.append(f"    if {e.code.expr}: r.append({e.rule_index})")
    head = ["def _group(ev):"]
    for name, s in fields.items():
        head += [
            f"    o{s} = ev.get({name!r})",
            f"    if o{s} is None: p{s} = False; l{s} = ''",
            "    else:",
            f"        if o{s}.__class__ is not str: o{s} = _tostr(o{s})",
            f"        p{s} = True; l{s} = o{s}.lower()",
        ]
    for s, ws in words.items():
        namespace[f"_ac{s}"] = _scanner(ws)
        head.append(f"    h{s} = _ac{s}(l{s}) if p{s} else _EMPTY")
    if uses_keywords:
        head.append("    KW = [(v if v.__class__ is str else _tostr(v)).lower() for v in ev.values() if v is not None]")
    head.append("    r = []")
    source = "\n".join([*head, *body, "    return r"])
    exec(compile(source, "<sigma-group>", "exec"), namespace)
    fn: GroupFn = namespace["_group"]
    return fn


def dispatch_key(view: dict[str, Any]) -> tuple[str, str] | None:
    """(lower-case channel, lower-case event id) of a lower-case-keyed event, None without a channel."""
    channel = view.get("channel")
    if channel is None:
        return None
    eid = view.get("eventid")
    return str(channel).lower(), "" if eid is None else _tostr(eid).lower()


class RuleSet:
    """Compiled rules dispatched by (channel, event id); ``match`` returns indices into ``rules``.

    Group functions are built on first use and kept for the life of the rule set (a rule set reused
    across hunts, or inherited by forked hunt workers, builds each group once); groups of
    ``split_min`` rules or more are split by anchor (``build_group``).
    """

    def __init__(self, rules: Iterable[CompiledRule], *, split_min: int = SPLIT_MIN) -> None:
        self.rules: list[CompiledRule] = list(rules)
        self.split_min = split_min
        # channel → event id (None = any) → entries
        self._by_channel: dict[str, dict[str | None, list[_RuleCode]]] = {}
        for i, cr in enumerate(self.rules):
            for (variant, _, ids), code in zip(cr.codes, cr.emitted, strict=True):
                for ch in variant.channels:
                    slots = self._by_channel.setdefault(ch, {})
                    for eid in (ids if ids is not None else [None]):
                        slots.setdefault(eid, []).append(_RuleCode(i, code))
        # keyed by (channel, event id or None when no rule names that id): bounded by the rules
        self._groups: dict[tuple[str, str | None], GroupFn | None] = {}

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self._by_channel)

    def group_for(self, channel: str, event_id: str) -> GroupFn | None:
        """The group function for a lower-case channel and event id (None: no rule can match)."""
        slots = self._by_channel.get(channel)
        if slots is None:
            return None
        key = (channel, event_id if event_id in slots else None)
        if key not in self._groups:
            entries = [*slots.get(key[1], []), *slots.get(None, [])] if key[1] is not None else slots.get(None, [])
            ordered = sorted(entries, key=lambda e: e.rule_index)
            self._groups[key] = build_group(ordered, self.split_min) if entries else None
        return self._groups[key]

    def match_view(self, view: dict[str, Any]) -> list[int]:
        """Indices of the rules that match one event given with lower-case keys (see ``match_view``)."""
        key = dispatch_key(view)
        fn = None if key is None else self.group_for(*key)
        if fn is None:
            return []
        hits = fn(view)
        return sorted(set(hits)) if len(hits) > 1 else hits

    def match(self, event: dict[str, Any]) -> list[int]:
        """Indices of the rules that match one (normalised) event."""
        return self.match_view({k.lower(): v for k, v in event.items()})
