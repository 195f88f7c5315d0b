"""SIEM search clients (Elasticsearch/OpenSearch, Splunk) over the shared HTTP base.

Every client has the same ``search`` shape so a hunt can run against any of them; the query
language is fixed per call (``lucene``/``eql`` for Elastic, ``spl`` for Splunk).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol


class SiemClient(Protocol):
    """What ``dcoflow.tasks.conduct.siem_hunt`` needs from a SIEM: events matching a query in a time window."""

    system: str
    base_url: str

    def search(
        self, index: str, query: str, *, language: Any, start: datetime, end: datetime, page_size: int = ...
    ) -> Iterator[dict[str, Any]]: ...


def iso(moment: datetime) -> str:
    """An unambiguous UTC timestamp for range filters (naive datetimes are taken as UTC)."""
    from datetime import UTC

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
