"""Sweep a SIEM for indicators (``dco ir sweep --source elastic|splunk``): each STIX pattern translated to the
SIEM's language (``models.patterns.siem_query``: EQL for Elasticsearch, SPL for Splunk), each ``pattern_type:
sigma`` indicator converted by the Sigma path's back ends, and the SIEM asked per query for its *count* and a
bounded sample (``count_and_sample``), never made to stream every hit back.

Per indicator the same statuses as the local sweep: ``found`` with the server's count (hosts and first/last seen
from the sample, said so when the sample is not every hit), ``not-found``, ``not-evaluable`` — the pattern is not
expressible in that language (named), or no event of the index in the window carries any field the query reads
(one presence count per field set) — ``skipped``, ``refused`` (the SIEM rejected the query) or ``invalid``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import yaml
from sqlmodel import Session

from dcoflow.connectors.content.sigma_rules import rule_info_from_mapping
from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.connectors.siem import CountedSample, SiemClient
from dcoflow.connectors.siem.throttle import Throttle
from dcoflow.core.errors import AuthError, ConnectorError, ContentError, ValidationError
from dcoflow.models.patterns.compile import PatternError, compile_pattern
from dcoflow.models.patterns.siem_query import CountPlan, Dialect, NotExpressibleError, presence_query, translate
from dcoflow.models.repository.operation import get_operation
from dcoflow.models.sigma.siem_convert import FieldMapping, SiemBackend, convert_rule
from dcoflow.models.stix.hunt_objects import event_host, event_time
from dcoflow.models.stix.rows import stix_time
from dcoflow.tasks.conduct.ir_sweep import IndicatorResult, SweepResult, load_indicators, skip_reason

SiemKind = Literal["elastic", "splunk"]
DIALECT: dict[str, Dialect] = {"elastic": "eql", "splunk": "spl"}
SIGMA_BACKEND: dict[str, SiemBackend] = {"elastic": "elastic-eql", "splunk": "splunk"}


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
    results: list[IndicatorResult] = []
    pending: list[_Pending] = []
    for ind in indicators:
        ind_id = str(ind.get("id") or "indicator (no id)")
        ptype = str(ind.get("pattern_type") or "")
        res = IndicatorResult(ind_id, str(ind.get("name") or ""), ptype, str(ind.get("pattern") or ""), "not-found")
        results.append(res)
        skip = skip_reason(ind, now)
        if skip:
            res.status, res.reason = "skipped", skip
            continue
        try:
            if ptype == "stix":
                plan = translate(compile_pattern(res.pattern, ind_id), ind_id, dialect, fm)
                obs = plan.queries()
                pending.append(_Pending(res, [q.query for q in obs], plan, frozenset().union(*(q.fields for q in obs))))
            elif ptype == "sigma":
                info = rule_info_from_mapping(yaml.safe_load(res.pattern), ind_id, res.pattern)
                pending.append(_Pending(res, convert_rule(info, SIGMA_BACKEND[kind], fm)))
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
        elif p.fields:
            # Elastic: a Lucene _exists_ count is one request however many events carry the fields
            present = ask(presence_query(sorted(p.fields), dialect), 0, "lucene" if dialect == "eql" else "spl")
            if isinstance(present, CountedSample) and not present.count:
                p.res.status = "not-evaluable"
                p.res.reason = (f"not evaluable on this data: no event in {index} carries "
                                + ", ".join(sorted(p.fields)))
    out.duration_s = time.perf_counter() - began
    return out


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
