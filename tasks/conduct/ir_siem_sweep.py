"""Sweep a SIEM for indicators (``dco ir sweep --source elastic|splunk``): each STIX pattern translated to the
SIEM's language (``models.patterns.siem_query``: EQL for Elasticsearch, SPL for Splunk), each ``pattern_type:
sigma`` indicator converted by the Sigma path's back ends, and the SIEM asked per query for its *count* and a
bounded sample (``count_and_sample``), never made to stream every hit back.

Per indicator the same statuses as the local sweep: ``found`` with the server's count (hosts and first/last seen
from the sample, said so when the sample is not every hit), ``not-found``, ``not-evaluable`` — the pattern is not
expressible in that language (named), or no event of the index in the window carries any field the query reads
(one presence count per field set: a STIX pattern's object paths as translated, a Sigma rule's detection fields
as its pipeline maps them) — ``skipped``, ``refused`` (the SIEM rejected the query) or ``invalid``.

A pattern whose observations translate but whose combination does not (WITHIN, REPEATS, START/STOP, FOLLOWEDBY)
is evaluated here when the index keeps Sysmon's field names: its observations' events are counted, fetched when
no more than ``fetch_limit``, and fed to the engine — bounded, and said so in the indicator's reason.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Literal

import yaml
from sqlmodel import Session

from dcoflow.connectors.content.sigma_rules import rule_info_from_mapping
from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.connectors.siem import CountedSample, SiemClient
from dcoflow.connectors.siem.throttle import Throttle
from dcoflow.connectors.telemetry import match_view, normalise_event
from dcoflow.core.errors import AuthError, ConnectorError, ContentError, ValidationError
from dcoflow.models.patterns.compile import Pattern, PatternError, compile_pattern
from dcoflow.models.patterns.engine import PatternSweep
from dcoflow.models.patterns.siem_query import (
    CountPlan,
    Dialect,
    NotExpressibleError,
    ObservationQuery,
    observation_queries,
    presence_query,
    translate,
)
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.sigma.siem_convert import FieldMapping, SiemBackend, convert_rule_with_fields
from dcoflow.models.stix.hunt_objects import event_host, event_time
from dcoflow.models.stix.rows import stix_time
from dcoflow.tasks.conduct.ir_sweep import IndicatorResult, SweepResult, indicator_results, load_indicators

SiemKind = Literal["elastic", "splunk"]
DIALECT: dict[str, Dialect] = {"elastic": "eql", "splunk": "spl"}
SIGMA_BACKEND: dict[str, SiemBackend] = {"elastic": "elastic-eql", "splunk": "splunk"}
FETCH_LIMIT = 5000  # events fetched, at most, to evaluate a pattern whose qualifiers the SIEM cannot


@dataclass(slots=True)
class _Fetch:
    """A pattern whose combination is not pushed down but whose observations are: their events are fetched (up
    to ``fetch_limit``) and the pattern evaluated here by the engine, qualifiers and FOLLOWEDBY included."""

    res: IndicatorResult
    pattern: Pattern
    queries: list[str]
    why: str
    fields: frozenset[str]


@dataclass(slots=True)
class _Pending:
    res: IndicatorResult
    queries: list[str]
    plan: CountPlan | None = None  # STIX: how the counts combine; Sigma: the queries' counts add up
    fields: frozenset[str] = field(default_factory=frozenset)


def _spl(query: str, index: str) -> str:
    """SPL with its index: the translator writes the filter, a ``| where`` tail included."""
    return f"search index={index} {query}"


def sweep_siem(
    indicators: Sequence[dict[str, Any]],
    client: SiemClient,
    *,
    kind: SiemKind,
    index: str,
    start: datetime,
    end: datetime,
    mapping: FieldMapping | str = FieldMapping.SYSMON,
    sample: int = 5,
    now: datetime | None = None,
    fetch_limit: int = FETCH_LIMIT,
    rate_limit_budget_s: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SweepResult:
    """Sweep ``index`` in ``[start, end)`` for every usable indicator; see the module doc."""
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    fm = FieldMapping(mapping)
    if kind == "splunk" and fm is FieldMapping.ECS:
        raise ValidationError("the ECS field mapping is for Elastic indices, not Splunk", field="field_mapping",
                              suggestions=[FieldMapping.SYSMON.value])
    dialect = DIALECT[kind]
    pending: list[_Pending] = []
    fetch: list[_Fetch] = []
    results, usable = indicator_results(indicators, now)
    for _ind, res in usable:
        ind_id, ptype = res.id, res.pattern_type
        try:
            if ptype == "stix":
                pattern = compile_pattern(res.pattern, ind_id)
                try:
                    plan = translate(pattern, ind_id, dialect, fm)
                except NotExpressibleError as exc:
                    local = _fetchable(pattern, ind_id, dialect, fm, fetch_limit)
                    if local is None:
                        raise
                    fetch.append(_Fetch(res, pattern, [q.query for q in local], exc.reason,
                                        frozenset().union(*(q.fields for q in local))))
                    continue
                obs = plan.queries()
                pending.append(_Pending(res, [q.query for q in obs], plan, frozenset().union(*(q.fields for q in obs))))
            elif ptype == "sigma":
                info = rule_info_from_mapping(yaml.safe_load(res.pattern), ind_id, res.pattern)
                queries, fields = convert_rule_with_fields(info, SIGMA_BACKEND[kind], fm)
                pending.append(_Pending(res, queries, fields=fields))
            else:
                res.status, res.reason = "refused", f"pattern_type {ptype!r} is not evaluated (stix and sigma are)"
        except NotExpressibleError as exc:
            res.status, res.reason = "not-evaluable", f"not evaluable on {client.system}: {exc.reason}"
        except PatternError as exc:
            res.status, res.reason = ("refused" if "not supported" in exc.message else "invalid"), exc.message
        except (yaml.YAMLError, ValueError) as exc:
            res.status, res.reason = "invalid", f"indicator {ind_id}: invalid Sigma rule: {exc}"
        except ContentError as exc:  # a Sigma rule the back end cannot convert
            res.status, res.reason = "not-evaluable", f"not evaluable on {client.system}: {exc.reason}"

    throttle = Throttle(1, budget_s=rate_limit_budget_s, sleep=sleep)
    asked: dict[str, CountedSample | ConnectorError] = {}

    def ask(query: str, want: int, language: str = dialect) -> CountedSample | ConnectorError:
        if query not in asked:  # indicators sharing an observation share its query
            text = _spl(query, index) if dialect == "spl" else query
            try:
                asked[query] = throttle.call(lambda: client.count_and_sample(
                    index, text, language=language, start=start, end=end, sample=want))
            except AuthError:
                raise
            except ConnectorError as exc:
                if exc.retryable:
                    raise
                asked[query] = exc
        return asked[query]

    def absent(fields: frozenset[str]) -> bool:
        """No event in the window carries any of ``fields`` (Elastic: a Lucene _exists_ count, one request)."""
        present = ask(presence_query(sorted(fields), dialect), 0, "lucene" if dialect == "eql" else "spl")
        return isinstance(present, CountedSample) and not present.count

    out = SweepResult(source=f"{client.system}:{client.base_url}/{index}", indicators=results,
                      swept_at=stix_time(now))
    for p in pending:
        answers = [ask(q, sample) for q in p.queries]
        failed = next((a for a in answers if isinstance(a, ConnectorError)), None)
        if failed is not None:
            p.res.status, p.res.reason = "refused", f"{client.system} refused the query: {failed.reason}"
            continue
        counted = {q: a for q, a in zip(p.queries, answers, strict=True) if isinstance(a, CountedSample)}
        total = p.plan.count({q: c.count for q, c in counted.items()}) if p.plan else sum(c.count for c in
                                                                                           counted.values())
        if total:
            _found(p.res, total, [c for c in counted.values() if c.count], sample)
            out.events_read += len(p.res.samples)
        elif p.fields and absent(p.fields):
            p.res.status = "not-evaluable"
            p.res.reason = f"not evaluable on this data: no event in {index} carries " + ", ".join(sorted(p.fields))
    for f in fetch:
        fetched = _evaluate_here(f, ask, lambda q: throttle.call(lambda: list(islice(client.search(
            index, _spl(q, index) if dialect == "spl" else q, language=dialect, start=start, end=end,
            page_size=min(fetch_limit, 10_000)), fetch_limit + 1))), client.system, fetch_limit, sample)
        out.events_read += fetched
        if fetched == 0 and f.res.status == "not-found" and absent(f.fields):
            f.res.status = "not-evaluable"
            f.res.reason = f"not evaluable on this data: no event in {index} carries " + ", ".join(sorted(f.fields))
    out.duration_s = time.perf_counter() - began
    return out


def _fetchable(pattern: Pattern, indicator: str, dialect: Dialect, mapping: FieldMapping,
               fetch_limit: int) -> list[ObservationQuery] | None:
    """The observations' queries, when their events can be evaluated here: the engine reads Sysmon's names, so
    an ECS index's events cannot be (None, as when an observation itself is not expressible)."""
    if fetch_limit <= 0 or mapping is not FieldMapping.SYSMON:
        return None
    try:
        return list({q.query: q for q in observation_queries(pattern, indicator, dialect, mapping)}.values())
    except NotExpressibleError:
        return None


def _event_key(event: dict[str, Any]) -> str:
    """One event fetched by two observations' queries is fed once (Elastic ``_id``, Splunk ``_bkt``/``_cd``)."""
    if event.get("_id"):
        return f"{event.get('_index')}/{event['_id']}"
    if event.get("_cd"):
        return f"{event.get('_bkt')}/{event['_cd']}"
    return json.dumps(event, sort_keys=True, default=str)


def _evaluate_here(f: _Fetch, ask: Callable[[str, int], CountedSample | ConnectorError],
                   search: Callable[[str], list[dict[str, Any]]], system: str, fetch_limit: int, sample: int) -> int:
    """Count the observations' events, fetch them when few enough, evaluate the pattern; the events fetched."""
    res = f.res
    answers = [ask(q, 0) for q in f.queries]
    failed = next((a for a in answers if isinstance(a, ConnectorError)), None)
    if failed is not None:
        res.status, res.reason = "refused", f"{system} refused the query: {failed.reason}"
        return 0
    counts = [a for a in answers if isinstance(a, CountedSample)]
    total = sum(c.count for c in counts)
    if total > fetch_limit or not all(c.exact for c in counts):
        res.status = "not-evaluable"
        res.reason = (f"not evaluable on {system}: {f.why}; its observations match {total} events, more than the "
                      f"{fetch_limit} fetched to evaluate it here")
        return 0
    events: dict[str, dict[str, Any]] = {}
    for q, c in zip(f.queries, counts, strict=True):
        if c.count:
            events.update((_event_key(e), e) for e in search(q))
    engine = PatternSweep([f.pattern], sample=sample)
    for e in events.values():
        engine.feed(match_view(e), lambda e=e: normalise_event(e))  # type: ignore[misc]
    (hits,) = engine.results()
    note = f"evaluated here on the {len(events)} events its observations matched ({f.why.split(': ', 2)[-1]})"
    if hits.matched:
        res.status, res.matches, res.hosts, res.samples = "found", hits.count, hits.hosts, hits.samples
        res.first_seen = stix_time(hits.first_seen) if hits.first_seen else None
        res.last_seen = stix_time(hits.last_seen) if hits.last_seen else None
    res.reason = note
    return len(events)


def _found(res: IndicatorResult, total: int, parts: list[CountedSample], sample: int) -> None:
    events = [e for c in parts for e in c.events][:sample]
    times = [t for t in (event_time(e) for e in events) if t]
    res.status, res.matches, res.samples = "found", total, events
    res.hosts = dict(Counter(event_host(e) or "(unknown)" for e in events))
    res.first_seen = stix_time(min(times)) if times else None
    res.last_seen = stix_time(max(times)) if times else None
    notes = []
    if not all(c.exact for c in parts):
        notes.append(f"{total} is a lower bound (the SIEM could not count every hit)")
    if total > len(events):
        notes.append(f"hosts and first/last seen are those of the {len(events)} sampled of {total} events")
    res.reason = "; ".join(notes) or None


def run_siem_sweep(
    session: Session | None,
    indicators_source: str,
    kind: SiemKind,
    *,
    registry: ConnectorRegistry | None = None,
    index: str | None = None,
    mapping: FieldMapping | str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    dco: str | None = None,
    sample: int = 5,
) -> SweepResult:
    """``dco ir sweep --source elastic|splunk``: load, sweep the SIEM over the incident's activity window (or
    ``start``/``end``), and (with a DCO) record the hits as sightings."""
    from dcoflow.tasks.conduct.ir_sweep import record_sweep

    indicators = load_indicators(indicators_source)
    if not indicators:
        raise ContentError(f"{indicators_source} holds no indicator", object=indicators_source)
    if (start is None or end is None) and dco is not None and session is not None:
        spec = get_operation(session, dco).dco
        window = (spec.incident.activity_window if spec.incident else None) or spec.window
        if window is not None:
            start, end = start or window.start, end or window.end
    if start is None or end is None:
        raise ValidationError("a SIEM sweep needs a time window", field="since",
                              hint="pass --since and --until, or --dco for the incident's activity window")
    registry = registry or ConnectorRegistry.from_settings()
    name = registry.siem_index(kind, index)
    fm = mapping or (registry.settings.elastic_mapping_for(name) if kind == "elastic" else FieldMapping.SYSMON)
    with registry.elastic() if kind == "elastic" else registry.splunk() as client:
        result = sweep_siem(indicators, client, kind=kind, index=name, start=start, end=end, mapping=fm,
                            sample=sample)
    if dco is not None and session is not None:
        record_sweep(session, dco, result, indicators)
    return result
