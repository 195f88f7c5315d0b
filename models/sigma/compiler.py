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

The steps live in their own modules: ``parse`` (YAML → pySigma rule and condition tree), ``match`` (how one
value matches), ``codegen`` (a rule variant → an expression, its anchors and event ids) and ``group`` (expressions
→ one generated function per dispatch group). This module compiles rules and dispatches events to groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dcoflow.models.hunting import RuleInfo
from dcoflow.models.sigma.codegen import Emitted, RuleCode, anchors, base_name, emit, required_event_ids
from dcoflow.models.sigma.group import SPLIT_MIN, GroupFn, build_group, dispatch_key
from dcoflow.models.sigma.logsource import Variant, variants_for
from dcoflow.models.sigma.match import linear_regex, required_literal
from dcoflow.models.sigma.parse import RuleCompileError, condition_tree, parse_rule


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
        self._by_channel: dict[str, dict[str | None, list[RuleCode]]] = {}
        for i, cr in enumerate(self.rules):
            for (variant, _, ids), code in zip(cr.codes, cr.emitted, strict=True):
                for ch in variant.channels:
                    slots = self._by_channel.setdefault(ch, {})
                    for eid in (ids if ids is not None else [None]):
                        slots.setdefault(eid, []).append(RuleCode(i, code))
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


__all__ = ["SPLIT_MIN", "CompiledRule", "Emitted", "GroupFn", "RuleCompileError", "RuleSet", "anchors", "base_name",
           "build_group", "compile_rule", "condition_tree", "dispatch_key", "emit", "linear_regex", "parse_rule",
           "required_event_ids", "required_literal"]
