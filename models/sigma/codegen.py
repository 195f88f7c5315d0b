"""One rule variant → one Python expression over a group function's field variables (``emit``), with the
facts dispatch needs: the base names a test requires (``anchors``) and the event ids it can match
(``required_event_ids``). Names do not depend on the group, so a group is built by concatenation
(``dcoflow.models.sigma.group``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
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
)

from dcoflow.models.sigma.logsource import Variant
from dcoflow.models.sigma.match import (
    cidr_test,
    classify,
    compare_test,
    linear_regex,
    pattern_parts,
    required_literal,
    wildcard_regex,
)
from dcoflow.models.sigma.parse import RuleCompileError

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
            kind = classify(pattern_parts(value))
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
class RuleCode:
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
            found = classify(pattern_parts(value))
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
            parts = pattern_parts(value)
            rx = linear_regex(wildcard_regex(parts, lower=False), re.DOTALL)
            return f"(p{s} and {self.g.const(rx.fullmatch)}(o{s}) is not None)"
        if isinstance(value, SigmaString):
            parts = pattern_parts(value)
            kind = classify(parts)
            if kind is None:
                rx = linear_regex(wildcard_regex(parts, lower=True), re.DOTALL)
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
            return f"(p{s} and {self.g.const(cidr_test(value.network))}(o{s}))"
        if isinstance(value, SigmaCompareExpression):
            return f"(p{s} and {self.g.const(compare_test(value.op, float(value.number.number)))}(o{s}))"
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
            parts = pattern_parts(value)
            kind = classify(parts)
            if kind is not None and kind[0] in ("eq", "contains") and kind[1]:
                lit = kind[1].lower()
                return f"any({lit!r} in x for x in KW)"
            rx = linear_regex(wildcard_regex(parts, lower=True), re.DOTALL)
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
