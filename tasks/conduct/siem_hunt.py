"""Hunting in a SIEM: each Sigma rule converted with pySigma and run through a SIEM client.

Back ends: ``elastic-lucene`` (``sigma.backends.elasticsearch.LuceneBackend``, run with
``query_string``), ``elastic-eql`` (``EqlBackend``, run through ``_eql/search``) and ``splunk``
(``SplunkBackend``, run as a search job). Windows rules get the Sysmon + Windows log-source
pipelines, which add the channel/EventID conditions the generic rule leaves implicit.

Each rule is parsed fresh from its YAML for every conversion: pySigma's processing pipelines
mutate the rule objects in place, so converting one parsed rule twice duplicates conditions.
A rule that cannot be converted, or whose query the SIEM rejects (4xx), becomes a ``SkippedRule``
with the reason; rejected credentials and exhausted retries stop the hunt (they would fail every rule).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from dcoflow.connectors.siem import SiemClient
from dcoflow.core.errors import AuthError, ConnectorError, ContentError
from dcoflow.models.hunting import HuntOutcome, RuleInfo, RuleMatch, SkippedRule

SiemBackend = Literal["elastic-lucene", "elastic-eql", "splunk"]
LANGUAGE: dict[str, str] = {"elastic-lucene": "lucene", "elastic-eql": "eql", "splunk": "spl"}


def _backend(name: SiemBackend, windows: bool) -> Any:
    from sigma.backends.elasticsearch.elasticsearch_eql import EqlBackend
    from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
    from sigma.backends.splunk.splunk import SplunkBackend

    pipeline = None
    if windows:
        from sigma.pipelines.sysmon.sysmon import sysmon_pipeline
        from sigma.pipelines.windows.windows import windows_logsource_pipeline

        pipeline = sysmon_pipeline() + windows_logsource_pipeline()
    cls = {"elastic-lucene": LuceneBackend, "elastic-eql": EqlBackend, "splunk": SplunkBackend}[name]
    return cls(pipeline) if pipeline is not None else cls()


def convert_rule(rule: RuleInfo, backend: SiemBackend) -> list[str]:
    """The rule as queries for ``backend`` (usually one); raises ContentError saying why it cannot be."""
    from sigma.collection import SigmaCollection

    if not rule.yaml:
        raise ContentError("rule text not loaded", object=rule.path)
    windows = rule.logsource.get("product", "").lower() == "windows"
    try:
        collection = SigmaCollection.from_yaml(rule.yaml)  # fresh parse: pipelines mutate rules in place
        queries = _backend(backend, windows).convert(collection)
    except Exception as exc:  # pySigma raises many unrelated types for unsupported constructs
        raise ContentError(f"cannot convert to {backend}: {type(exc).__name__}: {exc}", object=rule.path) from exc
    out = [str(q) for q in queries if str(q).strip()]
    if not out:
        raise ContentError(f"conversion to {backend} produced no query", object=rule.path)
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
) -> HuntOutcome:
    """Run every rule in ``[start, end)``; ``events_read`` counts the events the SIEM returned."""
    began = time.perf_counter()
    outcome = HuntOutcome(source=f"{client.system}:{client.base_url}/{index}")
    language = LANGUAGE[backend]
    for rule in rules:
        try:
            queries = convert_rule(rule, backend)
        except ContentError as exc:
            outcome.skipped.append(SkippedRule(rule.path, rule.rule_id, exc.reason))
            continue
        count = 0
        events: list[dict[str, Any]] = []
        try:
            for query in queries:
                for event in client.search(index, query, language=language, start=start, end=end):
                    count += 1
                    if len(events) < sample:
                        events.append(event)
        except AuthError:
            raise
        except ConnectorError as exc:
            if exc.retryable:
                raise
            outcome.skipped.append(SkippedRule(rule.path, rule.rule_id, f"{client.system} refused the query: "
                                               f"{exc.reason}"))
            continue
        outcome.rules_run.append(rule)
        outcome.events_read += count
        if count:
            outcome.matches.append(RuleMatch(rule, count, events))
        if progress is not None:
            progress(rule)
    outcome.duration_s = time.perf_counter() - began
    return outcome


run_siem_hunt_task = task(name="siem-hunt", cache_policy=NO_CACHE)(run_siem_hunt)
