"""Stored assessments: one row per technique per assessment (dated score log, never overwritten)
and one row per assessment run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class TechniqueScore(SQLModel, table=True):
    """A technique's scores as one assessment found them. Re-assessing adds rows: the history of
    scores is the log a trend or a before/after comparison reads."""

    __tablename__ = "technique_score"

    id: str = Field(primary_key=True, max_length=80)  # uuid5 over (dco, technique, assessed_at)
    dco_id: str = Field(index=True, max_length=64)
    run_id: str = Field(index=True, max_length=80)
    technique_id: str = Field(index=True, max_length=16)
    visibility: float
    detection: float
    priority: float = 0.0
    relevance: float = 0.0
    evidence_count: int = 0
    assessed_at: datetime = Field(index=True)
    explanation: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AssessmentRun(SQLModel, table=True):
    __tablename__ = "assessment_run"

    id: str = Field(primary_key=True, max_length=80)  # uuid5 over (dco, assessed_at)
    dco_id: str = Field(index=True, max_length=64)
    assessed_at: datetime = Field(index=True)
    attack_version: str
    half_life_days: float
    techniques: int = 0
    evidence: int = 0
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    id_report: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class ImportedEvidence(SQLModel, table=True):
    """Evidence brought in from outside the DCO's own STIX record (DeTT&CT administration files).

    Keyed by (source, technique, kind, date, detail), so re-importing the same file adds nothing and a
    newer logbook entry adds a row beside the older ones.
    """

    __tablename__ = "imported_evidence"

    id: str = Field(primary_key=True, max_length=80)
    dco_id: str = Field(index=True, max_length=64)
    technique_id: str = Field(index=True, max_length=16)
    kind: str = Field(max_length=32)
    observed_at: datetime
    source_ref: str
    value: float | None = None
    weight: float = 1.0
    detail: str = ""
