"""Hunting in a SIEM: each Sigma rule converted with pySigma and pushed down to the SIEM.

Per rule the SIEM is asked for its *count* of matching events and a bounded sample of them (see
``connectors.siem``), never made to stream every hit back: the cost of a rule does not grow with its
hits. Rules are converted in this thread (pySigma back ends are not thread-safe) with one back end
per (language, log source, field mapping), then run concurrently, ``concurrency`` at a time, through a
:class:`~dcoflow.connectors.siem.throttle.Throttle` that slows the hunt down when the SIEM answers
429 or its search quota is full. Long windows can be cut into slices (``slice_s``), each its own query.

A rule that cannot be converted, or whose query the SIEM rejects (4xx), becomes a ``SkippedRule``
with the reason; rejected credentials, exhausted retries and an exhausted rate-limit budget stop the
hunt (they would fail every rule).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from dcoflow.connectors.siem import CountedSample, SiemClient
from dcoflow.connectors.siem.throttle import Throttle
from dcoflow.core.errors import AuthError, ConnectorError, ContentError
from dcoflow.models.hunting import HuntOutcome, RuleInfo, RuleMatch, SkippedRule
from dcoflow.models.sigma.siem_convert import FieldMapping, SiemBackend, convert_rule

__all__ = ["LANGUAGE", "SiemBackend", "convert_rule", "run_siem_hunt", "time_slices"]

LANGUAGE: dict[str, str] = {"elastic-lucene": "lucene", "elastic-eql": "eql", "splunk": "spl"}


def time_slices(start: datetime, end: datetime, slice_s: float | None) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive slices of at most ``slice_s`` seconds (one slice when unset)."""
    if not slice_s or slice_s <= 0 or end <= start:
        return [(start, end)]
    step = timedelta(seconds=slice_s)
    out: list[tuple[datetime, datetime]] = []
    lo = start
    while lo < end:
        out.append((lo, min(lo + step, end)))
        lo += step
    return out


def run_siem_hunt(
    rules: Sequence[RuleInfo],
    client: SiemClient,
    *,
    backend: SiemBackend,
    index: str,
    start: datetime,
    end: datetime,
    sample: int = 20,
    progress: Callable[[RuleInfo], None] | None = None,
    mapping: FieldMapping | str = FieldMapping.SYSMON,
    concurrency: int = 4,
    slice_s: float | None = None,
    rate_limit_budget_s: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> HuntOutcome:
    """Run every rule in ``[start, end)``; ``events_read`` counts the sample events the SIEM returned."""
    began = time.perf_counter()
    outcome = HuntOutcome(source=f"{client.system}:{client.base_url}/{index}")
    language = LANGUAGE[backend]
    slices = time_slices(start, end, slice_s)
    converted: list[tuple[RuleInfo, list[str]]] = []
    for rule in rules:
        try:
            converted.append((rule, convert_rule(rule, backend, FieldMapping(mapping))))
        except ContentError as exc:
            outcome.skipped.append(SkippedRule(rule.path, rule.rule_id, exc.reason))

    throttle = Throttle(concurrency, budget_s=rate_limit_budget_s, sleep=sleep)

    def run(item: tuple[RuleInfo, list[str]]) -> CountedSample | SkippedRule:
        rule, queries = item
        total = CountedSample(0)
        try:
            for query in queries:
                for lo, hi in slices:
                    def ask(q: str = query, a: datetime = lo, b: datetime = hi) -> CountedSample:
                        return client.count_and_sample(index, q, language=language, start=a, end=b,
                                                       sample=sample - len(total.events))

                    total.merge(throttle.call(ask), sample)
        except AuthError:
            raise
        except ConnectorError as exc:
            if exc.retryable:
                raise
            return SkippedRule(rule.path, rule.rule_id, f"{client.system} refused the query: {exc.reason}")
        if progress is not None:
            progress(rule)
        return total

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="siem-rule") as pool:
        results = list(pool.map(run, converted))  # in rule order; the first error raised stops the hunt
    for (rule, _queries), result in zip(converted, results, strict=True):
        if isinstance(result, SkippedRule):
            outcome.skipped.append(result)
            continue
        outcome.rules_run.append(rule)
        outcome.events_read += len(result.events)
        if result.count:
            outcome.matches.append(RuleMatch(rule, result.count, result.events, exact=result.exact))
    outcome.rate_limited = throttle.rate_limited
    outcome.duration_s = time.perf_counter() - began
    return outcome
