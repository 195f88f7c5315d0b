"""Hunt runs and triage verdicts as stored rows.

A hunt run's id is deterministic per (DCO, hunt key): re-running the same hunt (same key)
updates the same row, so a resumed or retried hunt never appears twice. The hunt key is
the caller's (a schedule slot, a flow run) or derived from the rules, data and window.
Evidence (indicators, sightings …) lives in the STIX store; these rows say what ran and how it went.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from dcoflow.models.operation import utcnow
from dcoflow.models.stix.ids import row_id


class HuntStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Verdict(StrEnum):
    TRUE_POSITIVE = "true-positive"
    FALSE_POSITIVE = "false-positive"
    BENIGN = "benign"


def derive_hunt_key(
    rule_ids: Iterable[str], source: str, start: datetime | None = None, end: datetime | None = None
) -> str:
    """A stable key for "these rules over this data in this window" (order of rules does not matter)."""
    window = [start.isoformat() if start else "", end.isoformat() if end else ""]
    parts = ["|".join(sorted(set(rule_ids))), source, *window]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def hunt_run_id(dco_id: str, hunt_key: str) -> str:
    return f"hunt-{row_id('hunt-run', dco_id, hunt_key)}"


class HuntRun(SQLModel, table=True):
    """One hunt over one data source. ``rule_stats`` is keyed by rule id so that recording a
    batch twice overwrites instead of adding; ``recorded_rules`` lets a re-run skip finished rules."""

    __tablename__ = "hunt_run"

    id: str = Field(primary_key=True, max_length=80)
    dco_id: str = Field(index=True, max_length=64)
    hunt_key: str = Field(sa_type=Text)
    source: str
    rule_count: int = 0
    rule_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    window_start: datetime | None = None
    window_end: datetime | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration_s: float = 0.0
    status: HuntStatus = HuntStatus.RUNNING
    hits: int = 0
    exercise_hits: int = 0
    events_read: int = 0
    bad_records: int = 0
    skipped: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    no_logsource: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rule_stats: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    recorded_rules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    unknown_techniques: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    inputs: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = None
    version: int = 1


class TriageVerdict(SQLModel, table=True):
    """An analyst's verdict on a sighting; a re-triage adds a row with the next version (history kept)."""

    __tablename__ = "triage_verdict"

    sighting_id: str = Field(primary_key=True, max_length=120)
    analyst: str = Field(sa_type=Text, primary_key=True)
    version: int = Field(primary_key=True)
    dco_id: str = Field(index=True, max_length=64)
    verdict: Verdict
    note: str | None = None
    at: datetime = Field(default_factory=utcnow)
    opinion_id: str = Field(max_length=120)
