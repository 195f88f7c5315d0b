"""Streaming telemetry readers (JSON lines, zipped JSON lines, EVTX, CSV) with field normalisation."""

from dcoflow.connectors.telemetry.fields import canonical_channel, match_view, normalise_event
from dcoflow.connectors.telemetry.readers import (
    TELEMETRY_SUFFIXES,
    iter_data_files,
    iter_events,
    iter_file_events,
    iter_file_records,
)

__all__ = ["TELEMETRY_SUFFIXES", "canonical_channel", "iter_data_files", "iter_events", "iter_file_events",
           "iter_file_records", "match_view", "normalise_event"]
