"""What a hunt produces, whatever ran it (the local engine or a SIEM back end).

These plain types are the contract between the engines (``tasks/conduct/hunt_engine``,
``tasks/conduct/siem_hunt``) and the recording side (hunt runs, STIX evidence, triage).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dcoflow.core.errors import BatchReport


@dataclass(slots=True)
class RuleInfo:
    """A Sigma rule's identity and ATT&CK tags, as selected for a hunt."""

    rule_id: str
    title: str
    path: str
    level: str | None = None
    status: str | None = None
    tags: list[str] = field(default_factory=list)
    technique_ids: list[str] = field(default_factory=list)  # upper-case, e.g. T1003.001, as tagged
    logsource: dict[str, str] = field(default_factory=dict)  # product/category/service
    yaml: str = ""  # the rule text, kept for the STIX indicator pattern


@dataclass(slots=True)
class SkippedRule:
    path: str
    rule_id: str | None
    reason: str


@dataclass(slots=True)
class RuleMatch:
    """One rule's hits in one hunt: matching events (normalised field names), capped by ``sample``."""

    rule: RuleInfo
    count: int
    events: list[dict[str, Any]] = field(default_factory=list)
    exact: bool = True  # False: the SIEM could only say "at least ``count``" (reported as ≥ count)


@dataclass(slots=True)
class HuntOutcome:
    """Everything one hunt run found and everything it could not do."""

    source: str  # data source: file path(s), SIEM URL + index
    rules_run: list[RuleInfo] = field(default_factory=list)
    matches: list[RuleMatch] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)
    no_logsource: list[RuleInfo] = field(default_factory=list)  # visibility gaps: no telemetry for the rule
    events_read: int = 0
    reports: list[BatchReport] = field(default_factory=list)  # bad records per input file
    duration_s: float = 0.0
    rate_limited: int = 0  # SIEM answers that asked the hunt to slow down (429, search quota)


@dataclass(slots=True)
class HuntSelection:
    """Which rules a hunt runs. Empty fields select everything; all given fields must match."""

    techniques: list[str] = field(default_factory=list)  # T1003 also selects T1003.001
    tags: list[str] = field(default_factory=list)  # e.g. attack.credential-access, cve.2021-44228
    products: list[str] = field(default_factory=list)  # logsource product
    categories: list[str] = field(default_factory=list)  # logsource category
    services: list[str] = field(default_factory=list)  # logsource service
    statuses: list[str] = field(default_factory=list)  # stable, test, experimental
    levels: list[str] = field(default_factory=list)  # informational … critical
    rule_ids: list[str] = field(default_factory=list)


# ATT&CK platform (DcoSpec scope) → the Sigma logsource product its telemetry carries. Platforms without one
# of their own (network devices, cloud, identity providers) have no entry: their rules name the service.
SIGMA_PRODUCTS = {"windows": "windows", "linux": "linux", "macos": "macos"}


def products_for(platforms: Iterable[str]) -> list[str]:
    """The Sigma products of a DCO's platforms, in order; empty when none maps (then rules are not filtered)."""
    return list(dict.fromkeys(SIGMA_PRODUCTS[p] for p in (str(x).lower() for x in platforms) if p in SIGMA_PRODUCTS))
