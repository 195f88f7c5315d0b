"""Emulation evidence as stored: what each defensive tool did about each step (outcome rows,
one row per version so a corrected outcome never erases the earlier one), what ran (execution
records), and who was told before a step ran (deconfliction).

``OutcomeInput`` is the validated edge for operator input (CLI, Prefect form, VECTR import):
an invalid value raises ``dcoflow.core.errors.ValidationError`` naming the step and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel

from dcoflow.core.errors import ValidationError
from dcoflow.models.operation import as_utc, utcnow

if TYPE_CHECKING:
    from dcoflow.models.attack.catalog import Catalog
    from dcoflow.models.attack.objects import Technique


class Outcome(StrEnum):
    """What one defensive tool did about one emulation step (best first)."""

    PREVENTED = "prevented"
    ALERTED = "alerted"
    LOGGED = "logged"
    NONE = "none"  # not detected

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Outcome.PREVENTED: 3, Outcome.ALERTED: 2, Outcome.LOGGED: 1, Outcome.NONE: 0}

# Spellings people and other tools use (VECTR: Blocked/Detected/NotDetected; Caldera-minded
# operators: blocked/detected) mapped onto ours.
OUTCOME_ALIASES: dict[str, Outcome] = {
    "prevented": Outcome.PREVENTED,
    "blocked": Outcome.PREVENTED,
    "alerted": Outcome.ALERTED,
    "alert": Outcome.ALERTED,
    "detected": Outcome.ALERTED,
    "logged": Outcome.LOGGED,
    "log": Outcome.LOGGED,
    "none": Outcome.NONE,
    "not detected": Outcome.NONE,
    "not-detected": Outcome.NONE,
    "not_detected": Outcome.NONE,
    "notdetected": Outcome.NONE,
    "missed": Outcome.NONE,
}


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ALIASES: dict[str, Severity] = {
    **{s.value: s for s in Severity},
    "informational": Severity.INFO,
    "med": Severity.MEDIUM,
    "crit": Severity.CRITICAL,
}


class OutcomeSource(StrEnum):
    MANUAL = "manual"
    VECTR = "vectr"
    CALDERA = "caldera"
    EXECUTOR = "executor"


def aware(value: datetime | None) -> datetime | None:
    """``as_utc`` for an optional datetime (naive ones, as SQLite returns them, are UTC)."""
    return None if value is None else as_utc(value)


class OutcomeInput(BaseModel):
    """One operator's verdict for one step and one defensive tool."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    tool: str = Field(min_length=1, max_length=120, description="Defensive tool, e.g. 'Sysmon+SIEM', 'EDR'.")
    outcome: Outcome = Field(description="prevented, alerted, logged or none (not detected).")
    severity: Severity | None = Field(None, description="Alert severity when the tool alerted.")
    attack_start: datetime | None = Field(None, description="When the step's activity started.")
    attack_stop: datetime | None = Field(None, description="When the step's activity stopped.")
    detected_at: datetime | None = Field(None, description="When the tool alerted/blocked/logged it.")
    operator: str = Field("operator", min_length=1, max_length=120)
    target_host: str | None = Field(None, max_length=255)
    notes: str | None = None
    telemetry: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Observed objects (STIX SCO shapes, e.g. {'type': 'process', 'command_line': …}).",
    )
    compromise: bool = Field(
        False, description="The step ran into real adversary activity (not the exercise's own): escalate it."
    )

    @field_validator("outcome", mode="before")
    @classmethod
    def _outcome(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in OUTCOME_ALIASES:
            return OUTCOME_ALIASES[v.strip().lower()]
        return v

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: Any) -> Any:
        if isinstance(v, str):
            key = v.strip().lower()
            if key in ("", "tbd", "n/a"):
                return None
            return SEVERITY_ALIASES.get(key, v)
        return v

    @field_validator("attack_start", "attack_stop", "detected_at", mode="after")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return aware(v)

    @field_validator("telemetry", mode="after")
    @classmethod
    def _typed(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, item in enumerate(v):
            if not isinstance(item.get("type"), str):
                raise ValueError(f"telemetry[{i}] has no STIX 'type'")
        return v

    @model_validator(mode="after")
    def _times(self) -> OutcomeInput:
        if self.attack_start and self.attack_stop and self.attack_stop < self.attack_start:
            raise ValueError("attack_stop is before attack_start")
        if self.detected_at and self.attack_start and self.detected_at < self.attack_start:
            raise ValueError("detected_at is before attack_start")
        return self

    @classmethod
    def parse(cls, step: str, data: dict[str, Any]) -> OutcomeInput:
        """Validate ``data`` for ``step``; raise core ValidationError naming the step and the field."""
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as exc:
            raise outcome_error(step, exc) from exc


def outcome_error(step: str, exc: pydantic.ValidationError) -> ValidationError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "outcome"
    suggestions: list[str] = []
    if field == "outcome":
        suggestions = [o.value for o in Outcome]
    elif field == "severity":
        suggestions = [s.value for s in Severity]
    given = first.get("input")
    shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
    return ValidationError(
        f"invalid outcome input: {first['msg']}{shown}",
        system="emulation",
        object=f"step {step}",
        field=field,
        suggestions=suggestions,
    )


class EmulationOutcome(SQLModel, table=True):
    """One version of the outcome of (step, tool). The highest version is current; older ones stay."""

    __tablename__ = "emulation_outcome"
    __table_args__ = (UniqueConstraint("dco_id", "step_id", "tool", "version", name="uq_outcome_version"),)

    id: int | None = SqlField(default=None, primary_key=True)
    dco_id: str = SqlField(index=True, max_length=64)
    step_id: str = SqlField(index=True, max_length=80)
    technique_id: str = SqlField(index=True, max_length=16)
    tool: str = SqlField(sa_type=Text, index=True)
    version: int = 1
    outcome: Outcome
    # Its own PostgreSQL type: followup's Severity shares the class name, so the default name `severity`
    # would be one type for two label sets (see migration 0002).
    severity: Severity | None = SqlField(default=None,
                                         sa_column=Column(SAEnum(Severity, name="outcome_severity"), nullable=True))
    attack_start: datetime | None = None
    attack_stop: datetime | None = None
    detected_at: datetime | None = None
    operator: str = SqlField(sa_type=Text)
    target_host: str | None = SqlField(default=None, sa_type=Text)
    notes: str | None = None
    source: OutcomeSource = OutcomeSource.MANUAL
    telemetry: list[dict[str, Any]] = SqlField(default_factory=list, sa_column=Column(JSON, nullable=False))
    compromise: bool = False  # the step exposed real compromise: follow-up opens an incident
    sighting_id: str | None = SqlField(default=None, max_length=120)
    recorded_at: datetime = SqlField(default_factory=utcnow)

    def same_as(self, other: OutcomeInput) -> bool:
        """True when ``other`` says nothing new (a re-submitted or re-imported outcome)."""
        return (
            self.outcome == other.outcome
            and self.severity == other.severity
            and aware(self.attack_start) == other.attack_start
            and aware(self.attack_stop) == other.attack_stop
            and aware(self.detected_at) == other.detected_at
            and self.operator == other.operator
            and self.target_host == other.target_host
            and (self.notes or None) == (other.notes or None)
            and self.telemetry == other.telemetry
            and self.compromise == other.compromise
        )


class ExecutionStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    DRY_RUN = "dry-run"
    REFUSED = "refused"


class EmulationExecution(SQLModel, table=True):
    """What an executor ran for a step (or would have run, for a dry run), with its result."""

    __tablename__ = "emulation_execution"

    id: int | None = SqlField(default=None, primary_key=True)
    dco_id: str = SqlField(index=True, max_length=64)
    step_id: str = SqlField(index=True, max_length=80)
    connector: str = SqlField(max_length=32)
    status: ExecutionStatus
    marker: str = SqlField(max_length=80)
    host: str | None = SqlField(default=None, sa_type=Text)
    command: str | None = None
    cleanup_command: str | None = None
    exit_code: int | None = None
    cleanup_exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    started_at: datetime = SqlField(default_factory=utcnow)
    finished_at: datetime | None = None
    details: dict[str, Any] = SqlField(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Deconfliction(SQLModel, table=True):
    """Who was told that a step is about to run, how, when, and whether they acknowledged it."""

    __tablename__ = "deconfliction"

    id: str = SqlField(primary_key=True, max_length=80)  # uuid5(dco, step, contact)
    dco_id: str = SqlField(index=True, max_length=64)
    step_id: str = SqlField(index=True, max_length=80)
    notified: str = SqlField(sa_type=Text, description="Contact told (person, team or address).")
    channel: str = SqlField(max_length=32, description="webhook or record (noted without sending).")
    notified_at: datetime = SqlField(default_factory=utcnow)
    marker: str = SqlField(max_length=80, description="DCO marker the exercise activity carries.")
    receipt: str | None = SqlField(default=None, description="The receiving system's answer or id.")
    status: str = SqlField(default="sent", max_length=16, description="sent, recorded or failed.")
    error: str | None = None


def dco_marker(dco_id: str) -> str:
    """The marker every exercise action carries, so hunts can tell it from real activity."""
    return f"DCO-{dco_id}"


def current_technique(catalog: Catalog, technique_id: str) -> Technique | None:
    """The catalog's technique for an id of any release (revoked ids follow their replacement)."""
    res = catalog.resolve(technique_id, warn=False)
    return catalog.get_technique(res.attack_id) if res.attack_id else None


def attack_pattern_ref(catalog: Catalog | None, technique_id: str) -> str | None:
    """The ATT&CK STIX id of a technique (revoked ids follow their replacement); None when unknown."""
    tech = current_technique(catalog, technique_id) if catalog is not None else None
    return tech.stix_id if tech is not None else None


@dataclass(slots=True)
class ImportSummary:
    """What an import into a DCO's plan or outcomes did; warnings name each record left out or kept as is."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "warnings": self.warnings}
