"""Evaluate compiled STIX patterns over a stream of telemetry events.

One pass over the events: each event's STIX objects (``telemetry.observed_objects``) are looked up in an index
of the observations' equality anchors (``file:hashes.MD5 = '…'``, ``domain-name:value IN (…)`` …), so ten
thousand IOC indicators cost a few dictionary look-ups per event; observations without an anchor (MATCHES,
LIKE, ranges, NOT) are tried on every event showing one of their object types. Per observation the sweep keeps
the count, every hit's time and host, and a few sample events; ``results`` then combines the observations of
each indicator with AND/OR/FOLLOWEDBY and the WITHIN, REPEATS and START/STOP qualifiers.

Semantics: comparisons joined by AND hold for one object (STIX requires one object type there); string
equality, IN and LIKE are case-insensitive, MATCHES is a case-insensitive Python regex search; ISSUBSET and
ISSUPERSET compare IP networks. Observation AND needs every side seen, FOLLOWEDBY in time order; WITHIN and
START/STOP use the events' timestamps (events without one cannot satisfy them).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ahocorasick  # type: ignore[import-not-found]  # pyahocorasick ships no type stubs

from dcoflow.models.patterns.compile import BoolOp, Cmp, Node, Observation, ObsNode, ObsOp, Pattern, Qualified
from dcoflow.models.patterns.telemetry import SUPPORTED, Candidate, observed_objects
from dcoflow.models.sigma.match import required_literal
from dcoflow.models.stix.hunt_objects import EventView, event_host, event_time

Anchor = tuple[str, str, str]


def anchors(node: Node) -> set[Anchor] | None:
    """Equality values one of which an object must carry for ``node`` to hold (None: no such set)."""
    if isinstance(node, Cmp):
        if node.negated:
            return None
        if node.op == "=" and isinstance(node.value, str | int):
            return {(node.type, node.path, str(node.value).lower())}
        if node.op == "IN" and isinstance(node.value, tuple):
            return {(node.type, node.path, str(v).lower()) for v in node.value}
        return None
    return _combine(node, anchors)


def literals(node: Node) -> set[Anchor] | None:
    """Lower-case texts one of which an object's value must contain for ``node`` to hold (LIKE and MATCHES):
    a prefilter, like the Sigma engine's, so scanning patterns skip events that cannot match."""
    if isinstance(node, Cmp):
        if node.negated or node.regex is None:
            return None
        if node.op == "LIKE":
            runs = [r for r in re.split(r"[%_]", str(node.value)) if r]
            best = max(runs, key=len, default="")
        else:
            best = required_literal(re.compile(str(node.value))) or "" if node.op == "MATCHES" else ""
        return {(node.type, node.path, best.lower())} if len(best) >= 3 else None
    return _combine(node, literals)


def _combine(node: BoolOp, of: Callable[[Node], set[Anchor] | None]) -> set[Anchor] | None:
    """A boolean node's prefilter from its operands': for AND the smallest operand set is enough; for OR
    every operand must have one (else nothing can be ruled out) and any of them may hold."""
    found = [of(o) for o in node.operands]
    if node.op == "AND":
        usable = [a for a in found if a is not None]
        return min(usable, key=len) if usable else None
    if any(a is None for a in found):
        return None
    return set().union(*(a for a in found if a is not None))


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def compare(node: Cmp, value: str) -> bool:
    op, want = node.op, node.value
    if op == "=":
        return value.lower() == (want if isinstance(want, str) else str(want).lower())
    if op == "!=":
        return value.lower() != str(want).lower()
    if op == "IN":
        return value.lower() in want
    if op in ("LIKE", "MATCHES"):
        return node.regex is not None and node.regex.search(value) is not None
    if op in ("<", ">", "<=", ">="):
        a, b = _number(value), _number(want)
        left: Any = a if a is not None and b is not None else value.lower()
        right: Any = b if a is not None and b is not None else str(want).lower()
        return bool({"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op])
    try:
        if op == "ISSUBSET":
            return ipaddress.ip_network(value, strict=False).subnet_of(ipaddress.ip_network(str(want), strict=False))  # type: ignore[arg-type]
        if op == "ISSUPERSET":
            return ipaddress.ip_network(value, strict=False).supernet_of(ipaddress.ip_network(str(want), strict=False))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return False


def holds(node: Node, obj: Candidate, kind: str) -> bool:
    if isinstance(node, Cmp):
        if node.type != kind:
            return False
        values = obj.get(node.path)
        if not values:
            return False  # NOT needs the property present too (STIX 2.1 §9.6)
        return any(compare(node, v) for v in values) != node.negated
    if node.op == "AND":
        return all(holds(o, obj, kind) for o in node.operands)
    return any(holds(o, obj, kind) for o in node.operands)


@dataclass(slots=True)
class ObsHits:
    count: int = 0
    times: list[float | None] = field(default_factory=list)
    hosts: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class IndicatorHits:
    matched: bool
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    hosts: dict[str, int]
    samples: list[dict[str, Any]]
    evaluable: bool
    missing: list[str]


class PatternSweep:
    """The matcher: ``feed`` each event, then ``results`` per pattern (in the order given)."""

    def __init__(self, patterns: Sequence[Pattern], *, sample: int = 5) -> None:
        self.patterns = list(patterns)
        self.sample = sample
        self.observations: list[Observation] = []
        self.obs_types: list[tuple[str, ...]] = []
        self.of_pattern: list[list[int]] = []
        self._obs_index: dict[int, int] = {}  # id(Observation) → position
        self.index: dict[tuple[str, str], dict[str, list[int]]] = {}
        self.indexed_paths: dict[str, set[str]] = {}
        words: dict[tuple[str, str], dict[str, list[int]]] = {}
        self.scan: dict[str, list[int]] = {}
        for pattern in self.patterns:
            mine: list[int] = []
            for obs in pattern.observations:
                i = len(self.observations)
                self.observations.append(obs)
                self.obs_types.append(tuple(sorted(obs.types)))
                self._obs_index[id(obs)] = i
                mine.append(i)
                found = anchors(obs.expr)
                if found is not None:
                    for kind, path, value in found:
                        self.index.setdefault((kind, path), {}).setdefault(value, []).append(i)
                        self.indexed_paths.setdefault(kind, set()).add(path)
                    continue
                texts = literals(obs.expr)
                if texts is not None:
                    for kind, path, text in texts:
                        words.setdefault((kind, path), {}).setdefault(text, []).append(i)
                    continue
                for kind in obs.types:
                    self.scan.setdefault(kind, []).append(i)
            self.of_pattern.append(mine)
        # one Aho-Corasick automaton per (type, path) of the prefiltered observations
        self.automata: dict[str, list[tuple[str, Any]]] = {}
        for (kind, path), table in words.items():
            automaton = ahocorasick.Automaton()
            for text, ids in table.items():
                automaton.add_word(text, ids)
            automaton.make_automaton()
            self.automata.setdefault(kind, []).append((path, automaton))
        self.hits: list[ObsHits] = [ObsHits() for _ in self.observations]
        self.present: set[tuple[str, str]] = set()
        self.events = 0

    def feed(self, view: dict[str, Any], full_event: Callable[[], dict[str, Any]]) -> None:
        """Match one event (``view``: ``match_view`` of the record; ``full_event``: its normalised form)."""
        self.events += 1
        objects = observed_objects(view)
        if not objects:
            return
        present = self.present
        todo: set[int] = set()
        for kind, cands in objects.items():
            for cand in cands:
                for path in cand:
                    present.add((kind, path))
            paths = self.indexed_paths.get(kind)
            if paths:
                for cand in cands:
                    for path in paths.intersection(cand):
                        table = self.index[(kind, path)]
                        for value in cand[path]:
                            hit = table.get(value.lower())
                            if hit:
                                todo.update(hit)
            automata = self.automata.get(kind)
            if automata:
                for cand in cands:
                    for path, automaton in automata:
                        for value in cand.get(path, ()):
                            for _, ids in automaton.iter(value.lower()):
                                todo.update(ids)
            scan = self.scan.get(kind)
            if scan:
                todo.update(scan)
        if not todo:
            return
        moment: float | None = None
        host: str | None = None
        stamped = False
        event: dict[str, Any] | None = None
        for i in todo:
            expr = self.observations[i].expr
            if not any(holds(expr, c, kind) for kind in self.obs_types[i] for c in objects.get(kind, ())):
                continue
            if not stamped:
                ev = EventView(view)
                seen = event_time(ev)
                moment = seen.timestamp() if seen else None
                host = event_host(ev)
                stamped = True
            rec = self.hits[i]
            rec.count += 1
            rec.times.append(moment)
            rec.hosts[host or "(unknown)"] += 1
            if len(rec.samples) < self.sample:
                if event is None:
                    event = full_event()
                rec.samples.append(event)

    # -- combining observations ----------------------------------------------------------------------
    def _times(self, node: ObsNode, start: float | None, stop: float | None) -> list[float | None]:
        if isinstance(node, Observation):
            times = self.hits[self._obs_index[id(node)]].times
            if start is None and stop is None:
                return list(times)
            return [t for t in times if t is not None and (start is None or t >= start) and (stop is None or t < stop)]
        if isinstance(node, Qualified):
            if node.start is not None or node.stop is not None:
                lo = node.start.timestamp() if node.start else None
                hi = node.stop.timestamp() if node.stop else None
                return self._times(node.expr, _bound(max, start, lo), _bound(min, stop, hi))
            if node.repeats is not None:
                times = self._times(node.expr, start, stop)
                return times if len(times) >= node.repeats else []
            return self._within(node, start, stop)
        parts = [self._times(o, start, stop) for o in node.operands]
        if node.op == "OR":
            return [t for p in parts for t in p]
        if not all(parts):
            return []
        if node.op == "FOLLOWEDBY" and _sequence([sorted(t for t in p if t is not None) for p in parts], None) is None:
            return []
        return [t for p in parts for t in p]

    def _within(self, node: Qualified, start: float | None, stop: float | None) -> list[float | None]:
        window = float(node.within_s or 0)
        inner = node.expr
        if isinstance(inner, Qualified) and inner.repeats is not None:  # n times within the window
            times = sorted(t for t in self._times(inner.expr, start, stop) if t is not None)
            n = inner.repeats
            ok = any(times[j + n - 1] - times[j] <= window for j in range(len(times) - n + 1))
            return list[float | None](times) if ok else []
        if isinstance(inner, ObsOp) and inner.op in ("AND", "FOLLOWEDBY"):
            parts = [sorted(t for t in self._times(o, start, stop) if t is not None) for o in inner.operands]
            if not all(parts):
                return []
            if inner.op == "AND":
                ok = any(all(any(s <= t <= s + window for t in p) for p in parts) for p0 in parts for s in p0)
            else:
                ok = _sequence(parts, window) is not None
            return [t for p in parts for t in p] if ok else []
        return [t for t in self._times(inner, start, stop) if t is not None]

    def _evaluable(self, node: ObsNode | Node, missing: list[str]) -> bool:
        if isinstance(node, Cmp):
            ok = node.path in SUPPORTED.get(node.type, frozenset()) and (node.type, node.path) in self.present
            if not ok:
                missing.append(f"{node.type}:{node.path}" + ("" if node.path in SUPPORTED.get(node.type, ())
                                                             else " (no telemetry field feeds it)"))
            return ok
        if isinstance(node, Observation):
            return self._evaluable(node.expr, missing)
        if isinstance(node, Qualified):
            return self._evaluable(node.expr, missing)
        results = [self._evaluable(o, missing) for o in node.operands]
        return any(results) if node.op == "OR" else all(results)

    def results(self) -> list[IndicatorHits]:
        out = []
        for n, pattern in enumerate(self.patterns):
            times = self._times(pattern.root, None, None)
            mine = [self.hits[i] for i in self.of_pattern[n]]
            missing: list[str] = []
            evaluable = self._evaluable(pattern.root, missing)
            stamps = [t for t in times if t is not None]
            hosts: Counter[str] = Counter()
            samples: list[dict[str, Any]] = []
            if times:
                for rec in mine:
                    hosts.update(rec.hosts)
                    samples.extend(rec.samples[: max(0, self.sample - len(samples))])
            out.append(IndicatorHits(
                matched=bool(times), count=len(times),
                first_seen=datetime.fromtimestamp(min(stamps), UTC) if stamps else None,
                last_seen=datetime.fromtimestamp(max(stamps), UTC) if stamps else None,
                hosts=dict(hosts), samples=samples, evaluable=evaluable, missing=sorted(set(missing))))
        return out


def _bound(pick: Callable[[float, float], float], a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else pick(a, b)


def _sequence(parts: list[list[float]], window: float | None) -> list[float] | None:
    """Times t1 ≤ t2 ≤ … one from each part (all within ``window`` of t1), or None."""
    for first in parts[0]:
        chosen = [first]
        ok = True
        for later in parts[1:]:
            nxt = next((t for t in later if t >= chosen[-1]), None)
            if nxt is None or (window is not None and nxt - first > window):
                ok = False
                break
            chosen.append(nxt)
        if ok:
            return chosen
    return None
