"""One set of time helpers: naive means UTC, strings end in Z, STIX gets milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dcoflow.connectors.siem import iso
from dcoflow.connectors.taxii import taxii_timestamp
from dcoflow.models.stix.rows import stix_time
from dcoflow.models.timestamps import as_utc, parse_utc, utc_iso

CET = timezone(timedelta(hours=1))
MOMENT = datetime(2026, 12, 6, 4, 22, 53, 123456, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-12-06T04:22:53.123456Z", "2026-12-06T05:22:53.123456+01:00",
                                  "2026-12-06T04:22:53.123456", " 2026-12-06T04:22:53.123456z "])
def test_parse_utc(text: str) -> None:
    parsed = parse_utc(text)
    assert parsed == MOMENT and parsed.tzinfo == UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z"])
def test_parse_utc_names_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp"):
        parse_utc(text)


def test_formatting_agrees_everywhere() -> None:
    naive = MOMENT.replace(tzinfo=None)
    shifted = MOMENT.astimezone(CET)
    for moment in (MOMENT, naive, shifted):
        assert as_utc(moment) == MOMENT
        assert utc_iso(moment) == iso(moment) == taxii_timestamp(moment) == "2026-12-06T04:22:53.123456Z"
        assert utc_iso(moment, ms=True) == stix_time(moment) == "2026-12-06T04:22:53.123Z"
    assert parse_utc(utc_iso(shifted)) == MOMENT
