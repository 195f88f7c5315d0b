"""A STIX pattern as our own small tree, parsed with the OASIS ``stix2-patterns`` grammar.

``compile_pattern(text, indicator)`` returns a :class:`Pattern` or raises :class:`PatternError` naming the
indicator: syntax errors (the grammar's own message), unknown object types or properties, list indexes other
than ``[*]``, and the one qualifier use we refuse (``REPEATS`` on a compound observation, whose instances have
no single meaning). Supported: every comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET,
ISSUPERSET, NOT), AND/OR inside an observation, AND/OR/FOLLOWEDBY between observations, and the qualifiers
WITHIN, REPEATS and START/STOP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import stix2.patterns as sp
from stix2.pattern_visitor import STIXPatternVisitorForSTIX21
from stix2.registry import STIX2_OBJ_MAPS
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser
from stix2patterns.v21.pattern import Pattern as GrammarPattern

from dcoflow.core.errors import ContentError
from dcoflow.models.stix.hunt_objects import parse_time

_OBSERVABLES: dict[str, Any] = STIX2_OBJ_MAPS["2.1"]["observables"]


class PatternError(ContentError):
    """An indicator whose pattern cannot be evaluated as written; ``object`` names the indicator."""


@dataclass(frozen=True, slots=True)
class Cmp:
    """One comparison: ``type:path op value`` (path like ``hashes.SHA256`` or ``values[*].name``)."""

    type: str
    path: str
    op: str
    value: Any  # str, int, float, bool or a tuple of them (IN)
    negated: bool = False
    regex: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # AND / OR
    operands: tuple[Node, ...]


Node = Cmp | BoolOp


@dataclass(frozen=True, slots=True)
class Observation:
    """One bracketed observation expression."""

    expr: Node

    @property
    def types(self) -> frozenset[str]:
        return frozenset(c.type for c in comparisons(self.expr))


@dataclass(frozen=True, slots=True)
class ObsOp:
    op: str  # AND / OR / FOLLOWEDBY
    operands: tuple[ObsNode, ...]


@dataclass(frozen=True, slots=True)
class Qualified:
    expr: ObsNode
    within_s: float | None = None
    repeats: int | None = None
    start: datetime | None = None
    stop: datetime | None = None


ObsNode = Observation | ObsOp | Qualified


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    root: ObsNode
    observations: tuple[Observation, ...] = field(default=())


def comparisons(node: Node) -> list[Cmp]:
    if isinstance(node, Cmp):
        return [node]
    return [c for o in node.operands for c in comparisons(o)]


def _hash_key(name: str) -> str:
    """``SHA-256``, ``sha256``, ``'SHA256'`` → ``SHA256``: one spelling for STIX names and Sysmon's."""
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def _path(obj_path: sp.ObjectPath, indicator: str) -> tuple[str, str]:
    kind = obj_path.object_type_name
    cls = _OBSERVABLES.get(kind)
    if cls is None:
        raise PatternError(f"indicator {indicator}: unknown object type {kind!r}", object=indicator,
                           hint="STIX 2.1 cyber-observable types: " + ", ".join(sorted(_OBSERVABLES)))
    parts: list[str] = []
    for n, comp in enumerate(obj_path.property_path):
        name = str(comp.property_name)
        if n == 0 and name not in cls._properties and not name.startswith("x_"):
            raise PatternError(f"indicator {indicator}: {kind} has no property {name!r}", object=indicator,
                               hint=f"{kind} properties: " + ", ".join(sorted(cls._properties)))
        if isinstance(comp, sp.ListObjectPathComponent):
            if comp.index != "*":
                raise PatternError(f"indicator {indicator}: list index [{comp.index}] in {kind}:{name} is not "
                                   "supported (only [*])", object=indicator)
            parts.append(f"{name}[*]")
        elif parts and parts[-1] == "hashes":
            parts.append(_hash_key(name))
        else:
            parts.append(name)
    return kind, ".".join(parts)


def _constant(value: Any) -> Any:
    if isinstance(value, sp.ListConstant):
        return tuple(_constant(v) for v in value.value)
    raw = value.value
    if isinstance(value, sp.TimestampConstant):
        return parse_time(str(raw))
    if isinstance(value, sp.StringConstant):
        return _UNESCAPE.sub(r"\1", str(raw))  # stix2 keeps the literal's \\ and \' escapes
    return raw


_UNESCAPE = re.compile(r"\\(.)")
_LIKE_SPECIAL = re.compile(r"([%_])|([^%_]+)")


def like_regex(pattern: str) -> re.Pattern[str]:
    """SQL LIKE (``%`` any run, ``_`` one character) as an anchored case-insensitive regex."""
    body = "".join(".*" if m.group(1) == "%" else "." if m.group(1) else re.escape(m.group(2))
                   for m in _LIKE_SPECIAL.finditer(pattern))
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL)


def _node(expr: Any, indicator: str) -> Node:
    if isinstance(expr, sp.ParentheticalExpression):
        return _node(expr.expression, indicator)
    if isinstance(expr, sp.AndBooleanExpression | sp.OrBooleanExpression):
        return BoolOp(expr.operator, tuple(_node(o, indicator) for o in expr.operands))
    kind, path = _path(expr.lhs, indicator)
    value = _constant(expr.rhs)
    # Windows names, paths, hashes, domains and accounts compare case-insensitively (as the Sigma engine does)
    if expr.operator in ("=", "IN"):
        value = tuple(str(v).lower() for v in value) if isinstance(value, tuple) else \
            value.lower() if isinstance(value, str) else value
    regex = None
    if expr.operator == "MATCHES":
        try:
            regex = re.compile(str(value), re.IGNORECASE)
        except re.error as exc:
            raise PatternError(f"indicator {indicator}: MATCHES {value!r} is not a valid regular expression: "
                               f"{exc}", object=indicator) from exc
    elif expr.operator == "LIKE":
        regex = like_regex(str(value))
    return Cmp(kind, path, expr.operator, value, bool(expr.negated), regex)


def _obs(expr: Any, indicator: str, found: list[Observation]) -> ObsNode:
    if isinstance(expr, sp.ParentheticalExpression):
        return _obs(expr.expression, indicator, found)
    if isinstance(expr, sp.ObservationExpression):
        obs = Observation(_node(expr.operand, indicator))
        found.append(obs)
        return obs
    if isinstance(expr, sp.AndObservationExpression | sp.OrObservationExpression | sp.FollowedByObservationExpression):
        return ObsOp(expr.operator, tuple(_obs(o, indicator, found) for o in expr.operands))
    if isinstance(expr, sp.QualifiedObservationExpression):
        inner = _obs(expr.observation_expression, indicator, found)
        q = expr.qualifier
        if isinstance(q, sp.WithinQualifier):
            return Qualified(inner, within_s=float(q.number_of_seconds.value))
        if isinstance(q, sp.RepeatQualifier):
            if not _single(inner):
                raise PatternError(f"indicator {indicator}: REPEATS on a compound observation expression is not "
                                   "supported (only on one [ … ] observation)", object=indicator,
                                   hint="repeat each observation, e.g. [a] REPEATS 3 TIMES AND [b]")
            return Qualified(inner, repeats=int(q.times_to_repeat.value))
        if isinstance(q, sp.StartStopQualifier):
            return Qualified(inner, start=parse_time(str(q.start_time.value)), stop=parse_time(str(q.stop_time.value)))
    raise PatternError(f"indicator {indicator}: unsupported pattern element {type(expr).__name__}", object=indicator)


def _single(node: ObsNode) -> bool:
    return isinstance(node, Observation) or (isinstance(node, Qualified) and _single(node.expr))


class _Builder(STIXPatternVisitorForSTIX21):  # type: ignore[misc]
    """stix2's AST builder with ``NOT`` kept: stix2 3.0 drops it for IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET and
    fails on ``NOT >``; every comparison here is ``path [NOT] op value``."""

    _ORDER: ClassVar[dict[int, str]] = {STIXPatternParser.GT: "GreaterThanComparisonExpression",
              STIXPatternParser.LT: "LessThanComparisonExpression",
              STIXPatternParser.GE: "GreaterThanEqualComparisonExpression",
              STIXPatternParser.LE: "LessThanEqualComparisonExpression"}

    def _parts(self, ctx: Any) -> tuple[list[Any], bool, Any]:
        children = self.visitChildren(ctx)
        has_not = len(children) > 3
        return children, has_not, children[2 if has_not else 1]

    def visitPropTestEqual(self, ctx: Any) -> Any:  # noqa: N802  (ANTLR's visitor names)
        children, has_not, op = self._parts(ctx)
        negated = (op.symbol.type != STIXPatternParser.EQ) != has_not
        return self.instantiate("EqualityComparisonExpression", children[0], children[-1], negated)

    def visitPropTestOrder(self, ctx: Any) -> Any:  # noqa: N802  (ANTLR's visitor names)
        children, has_not, op = self._parts(ctx)
        return self.instantiate(self._ORDER[op.symbol.type], children[0], children[-1], has_not)

    def _simple(self, ctx: Any, kind: str) -> Any:
        children, has_not, _ = self._parts(ctx)
        return self.instantiate(kind, children[0], children[-1], has_not)

    def visitPropTestSet(self, ctx: Any) -> Any:  # noqa: N802  (ANTLR's visitor names)
        return self._simple(ctx, "InComparisonExpression")

    def visitPropTestLike(self, ctx: Any) -> Any:  # noqa: N802  (ANTLR's visitor names)
        return self._simple(ctx, "LikeComparisonExpression")

    def visitPropTestRegex(self, ctx: Any) -> Any:  # noqa: N802  (ANTLR's visitor names)
        return self._simple(ctx, "MatchesComparisonExpression")

    def visitPropTestIsSubset(self, ctx: Any) -> Any:  # noqa: N802  (ANTLR's visitor names)
        return self._simple(ctx, "IsSubsetComparisonExpression")

    def visitPropTestIsSuperset(self, ctx: Any) -> Any:  # noqa: N802  (ANTLR's visitor names)
        return self._simple(ctx, "IsSupersetComparisonExpression")


def compile_pattern(text: str, indicator: str) -> Pattern:
    try:
        tree = GrammarPattern(text).visit(_Builder(STIXPatternParser, "", ""))
    except PatternError:
        raise
    except Exception as exc:  # the grammar raises ParseException; the AST builder ValueError
        message = str(exc).strip() or type(exc).__name__
        raise PatternError(f"indicator {indicator}: invalid STIX pattern: {message}", object=indicator,
                           hint=f"pattern: {text[:200]}") from exc
    found: list[Observation] = []
    root = _obs(tree, indicator, found)
    return Pattern(text, root, tuple(found))
