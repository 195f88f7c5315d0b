"""Time, one way: aware UTC datetimes inside, ISO 8601 strings ending in ``Z`` at the edges.

SQLite hands datetimes back naive, and they are UTC; so is any naive datetime a caller passes. STIX wants
millisecond timestamps (``ms=True``); TAXII ``added_after``, Splunk and Elasticsearch range filters take
microseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Naive means UTC; aware datetimes are converted to UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset; none means UTC) as an aware UTC datetime.

    Raises ``ValueError`` naming the text when it is not one.
    """
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00")))
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text[:60]!r}") from None


def utc_iso(moment: datetime, *, ms: bool = False) -> str:
    """``2026-12-06T04:22:53.123456Z`` (``.123Z`` with ``ms``)."""
    utc = as_utc(moment)
    fraction = f"{utc.microsecond // 1000:03d}" if ms else f"{utc.microsecond:06d}"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"
