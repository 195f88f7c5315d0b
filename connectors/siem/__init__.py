"""SIEM search clients (Elasticsearch/OpenSearch, Splunk) over the shared HTTP base.

Every client has the same two calls so a hunt can run against any of them; the query language is
fixed per call (``lucene``/``eql`` for Elastic, ``spl`` for Splunk):

- ``count_and_sample``: how many events match (asked of the server, never counted by streaming the
  events back) plus a bounded sample of them for the STIX evidence — what a hunt needs, at a cost
  that does not grow with the number of hits;
- ``search``: every matching event, paged (exports and tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dcoflow.models.timestamps import utc_iso


@dataclass(slots=True)
class CountedSample:
    """The server's count of matching events and the first ``sample`` of them.

    ``exact`` is False when the server could only say "at least ``count``" (an EQL query whose hits
    exceed what slicing the time window could resolve within the request budget); hunts report such
    counts as lower bounds, never as exact figures.
    """

    count: int
    events: list[dict[str, Any]] = field(default_factory=list)
    exact: bool = True
    requests: int = 0  # what the count cost, where the client counts it (0: not counted)

    def merge(self, other: CountedSample, sample: int) -> None:
        self.count += other.count
        self.exact = self.exact and other.exact
        self.requests += other.requests
        self.events.extend(other.events[: max(0, sample - len(self.events))])


class SiemClient(Protocol):
    """What ``dcoflow.tasks.conduct.siem_hunt`` needs from a SIEM."""

    system: str
    base_url: str

    def count_and_sample(
        self, index: str, query: str, *, language: Any, start: datetime, end: datetime, sample: int
    ) -> CountedSample: ...

    def search(
        self, index: str, query: str, *, language: Any, start: datetime, end: datetime, page_size: int = ...
    ) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


def iso(moment: datetime) -> str:
    """An unambiguous UTC timestamp for range filters (naive datetimes are taken as UTC)."""
    return utc_iso(moment)
