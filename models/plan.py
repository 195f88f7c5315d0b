"""A DCO's plan as stored: emulation steps, hunt hypotheses, and the plan record
(which catalog it was made against, its summary and the warnings it raised).

Ids are deterministic (dco + natural key), so re-planning upserts instead of duplicating.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from dcoflow.models.operation import utcnow


class ProcedureSource(StrEnum):
    ATOMIC = "atomic"
    CTID = "ctid"
    CALDERA = "caldera"
    MANUAL = "manual"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class EmulationStep(SQLModel, table=True):
    __tablename__ = "emulation_step"

    id: str = Field(primary_key=True, max_length=80)
    dco_id: str = Field(index=True, max_length=64)
    order: int
    tactic: str
    technique_id: str = Field(index=True)
    technique_name: str
    source: ProcedureSource
    procedure_ref: str | None = Field(None, description="atomic guid, CTID step id, Caldera ability id")
    procedure_name: str
    platform: str | None = None
    executor: str | None = None
    command: str | None = None
    cleanup_command: str | None = None
    input_arguments: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    depends_on: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    connector: str = "manual"
    status: StepStatus = StepStatus.PENDING
    candidates: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False),
        description="Other procedures that could implement this technique.",
    )
    version: int = 1


class HuntHypothesis(SQLModel, table=True):
    __tablename__ = "hunt_hypothesis"

    id: str = Field(primary_key=True, max_length=80)
    dco_id: str = Field(index=True, max_length=64)
    technique_id: str = Field(index=True)
    technique_name: str
    tactics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    statement: str
    data_components: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    analytics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sigma_rules: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    telemetry: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = "open"
    version: int = 1


class PlanRecord(SQLModel, table=True):
    __tablename__ = "plan_record"

    dco_id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    attack_domain: str
    attack_version: str
    attack_hash: str
    techniques: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
