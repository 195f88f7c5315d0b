"""A Defensive Cyberspace Operation: the spec a coordinator writes (pydantic, validated at
the edge: operation file, flow parameters, CLI) and the stored row with its state."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel
from text_unidecode import unidecode  # type: ignore[import-untyped]

from dcoflow.models.attack.catalog import PROFILE_VIA, TECHNIQUE_ID, Via
from dcoflow.models.stix.markings import Tlp

# Re-exported: many callers take the time helpers from here.
from dcoflow.models.timestamps import as_utc as as_utc  # noqa: PLC0414
from dcoflow.models.timestamps import utcnow as utcnow  # noqa: PLC0414


class DcoType(StrEnum):
    THREAT_HUNT = "threat-hunt"
    ADVERSARY_EMULATION = "adversary-emulation"
    PURPLE_TEAM = "purple-team"
    INCIDENT_RESPONSE_SUPPORT = "incident-response-support"

    @property
    def hunts(self) -> bool:
        return self in (DcoType.THREAT_HUNT, DcoType.PURPLE_TEAM, DcoType.INCIDENT_RESPONSE_SUPPORT)

    @property
    def emulates(self) -> bool:
        return self in (DcoType.ADVERSARY_EMULATION, DcoType.PURPLE_TEAM)


class DcoState(StrEnum):
    DRAFT = "draft"
    PLANNED = "planned"
    APPROVED = "approved"
    CONDUCTING = "conducting"
    ASSESSING = "assessing"
    FOLLOW_UP = "follow-up"
    CLOSED = "closed"


class Role(StrEnum):
    LEAD = "lead"
    CONDUCT = "conduct"
    SUPPORT = "support"
    INFORMED = "informed"


class Platform(StrEnum):
    """ATT&CK platform names (as in x_mitre_platforms), lower-cased for matching."""

    WINDOWS = "windows"
    LINUX = "linux"
    MACOS = "macos"
    NETWORK = "network devices"
    CONTAINERS = "containers"
    IAAS = "iaas"
    SAAS = "saas"
    OFFICE = "office suite"
    IDENTITY = "identity provider"
    ESXI = "esxi"


_Strict = ConfigDict(extra="forbid", use_enum_values=False)


class Criticality(StrEnum):
    """How much the organisation depends on an asset group: the impact side of a risk."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AssetGroup(BaseModel):
    """An asset group in scope. In an operation file a bare name stands for ``{name: …}`` (criticality medium)."""

    model_config = _Strict
    name: str = Field(min_length=1, description="e.g. domain-controllers")
    criticality: Criticality = Field(Criticality.MEDIUM, description="low, medium, high or critical.")
    enclave: str | None = Field(None, description="The enclave it sits in, when the scope spans several.")
    platforms: list[Platform] = Field(default_factory=list, description="Its ATT&CK platforms; empty: any in scope.")

    @field_validator("platforms", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return [p.lower() if isinstance(p, str) else p for p in v] if isinstance(v, list) else v


class Scope(BaseModel):
    model_config = _Strict
    enclaves: list[str] = Field(default_factory=list, description="Networks/enclaves in scope.")
    asset_groups: list[AssetGroup] = Field(
        default_factory=list, description="Asset groups in scope: names, or {name, criticality, enclave, platforms}.")

    platforms: list[Platform] = Field(default_factory=lambda: [Platform.WINDOWS], description="ATT&CK platforms.")
    hosts: list[str] = Field(default_factory=list, description="Named hosts in scope (lab hosts for emulation).")

    @field_validator("asset_groups", mode="before")
    @classmethod
    def _named(cls, v: Any) -> Any:
        return [{"name": g} if isinstance(g, str) else g for g in v] if isinstance(v, list) else v

    @field_validator("platforms", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return [p.lower() if isinstance(p, str) else p for p in v] if isinstance(v, list) else v


class Targets(BaseModel):
    """The DeTT&CT levels every in-scope technique should reach; below either is a gap. Unset: the
    settings' defaults (``DCO_TARGET_DETECTION`` 3, ``DCO_TARGET_VISIBILITY`` 2)."""

    model_config = _Strict
    detection: int | None = Field(None, ge=0, le=5, description="Detection target −1..5 (DeTT&CT), e.g. 3 good.")
    visibility: int | None = Field(None, ge=1, le=4, description="Visibility target 0–4 (DeTT&CT), e.g. 2 medium.")


def technique_ids(value: Any) -> Any:
    """Technique ids as written (T1059, t1059.001 → T1059.001); anything else is refused by name."""
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        tid = item.strip().upper() if isinstance(item, str) else item
        if not isinstance(tid, str) or not TECHNIQUE_ID.match(tid):
            raise ValueError(f"{item!r} is not an ATT&CK technique id (T1234 or T1234.001)")
        out.append(tid)
    return out


class ThreatProfile(BaseModel):
    model_config = _Strict
    groups: list[str] = Field(default_factory=list, description="ATT&CK groups: id (G0016), name or alias.")
    campaigns: list[str] = Field(default_factory=list, description="ATT&CK campaigns: id (C0024) or name.")
    software: list[str] = Field(default_factory=list, description="ATT&CK software: id (S0154) or name.")
    techniques: list[str] = Field(default_factory=list, description="Extra technique ids (T1059.001).")
    emulation_plan: str | None = Field(None, description="Path to a CTID emulation plan YAML (format 1.0).")
    via: list[Via] = Field(
        default_factory=lambda: list(PROFILE_VIA),
        description="Which group attributions count: direct, campaigns, software.",
    )

    _techniques = field_validator("techniques", mode="before")(technique_ids)

    @model_validator(mode="after")
    def _not_empty(self) -> ThreatProfile:
        if not (self.groups or self.campaigns or self.software or self.techniques or self.emulation_plan):
            raise ValueError("name at least one group, campaign, software, technique or emulation_plan")
        return self


class Participant(BaseModel):
    model_config = _Strict
    organisation: str = Field(description="e.g. CyOC, JISD, NCIA, OCIO")
    role: Role
    contact: str | None = None


class Window(BaseModel):
    model_config = _Strict
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Marking(BaseModel):
    model_config = _Strict
    tlp: Tlp = Tlp.AMBER
    classification: str | None = Field(None, description="e.g. NATO RESTRICTED")
    releasability: str | None = Field(None, description="e.g. REL TO NATO")

    @property
    def statement(self) -> str | None:
        parts = [p for p in (self.classification, self.releasability) if p]
        return " — ".join(parts) or None


class RulesOfEngagement(BaseModel):
    model_config = _Strict
    allowed_hosts: list[str] = Field(default_factory=list, description="Hosts emulation may run on.")
    allowed_platforms: list[Platform] = Field(default_factory=list, description="Empty: the scope's platforms.")
    allowed_executors: list[str] = Field(
        default_factory=lambda: ["manual", "caldera", "sh", "bash"],
        description="Executors emulation may use (manual, caldera, sh, bash, powershell, command_prompt).",
    )
    forbidden_techniques: list[str] = Field(default_factory=list)
    _forbidden = field_validator("forbidden_techniques", mode="before")(technique_ids)
    destructive_allowed: bool = False
    requires_elevation_allowed: bool = False
    max_step_seconds: int = Field(300, gt=0)
    deconfliction_contacts: list[str] = Field(default_factory=list, description="Who is told before a step.")
    deconfliction_ack_required: bool = Field(
        False, description="Live steps wait until the monitoring side acknowledges the deconfliction notice.")
    notes: str | None = None


class EmulationOptions(BaseModel):
    """Plan-time choices for emulation: which connector runs a technique, which atomic implements it."""

    model_config = _Strict
    connectors: dict[str, Literal["manual", "local", "caldera"]] = Field(
        default_factory=dict,
        description="Technique id → connector (manual by default; local runs the atomic on an allowed lab host).",
    )
    procedures: dict[str, str] = Field(
        default_factory=dict, description="Technique id → Atomic Red Team test GUID to use instead of the best match."
    )


class IncidentLink(BaseModel):
    """The incident an incident-response-support DCO supports: where it came from and what scopes the DCO."""

    model_config = _Strict
    source: Literal["stix", "thehive"] = Field(description="A STIX incident (bundle/TAXII) or a TheHive case.")
    ref: str = Field(min_length=1, description="The STIX incident id (incident--…) or the TheHive case id.")
    name: str | None = None
    first_activity: datetime | None = Field(None, description="Earliest activity known for the incident.")
    last_activity: datetime | None = Field(None, description="Latest activity known for the incident.")
    activity_window: Window | None = Field(
        None, description="The time the DCO examines: from before the first activity to after the last. "
                          "(The DCO's own window is when it may conduct.)")
    hosts: list[str] = Field(default_factory=list, description="Affected hosts.")
    indicators: list[str] = Field(default_factory=list, description="STIX ids of the incident's indicators.")


class DcoSpec(BaseModel):
    """What a coordinator writes in an operation file or fills in the planning form."""

    model_config = _Strict
    name: str = Field(min_length=3, max_length=120)
    objective: str = Field(min_length=3)
    type: DcoType
    scope: Scope = Field(default_factory=Scope)
    threat_profile: ThreatProfile
    participants: list[Participant] = Field(default_factory=list)
    window: Window | None = None
    marking: Marking = Field(default_factory=Marking)
    rules_of_engagement: RulesOfEngagement = Field(default_factory=RulesOfEngagement)
    emulation: EmulationOptions = Field(default_factory=EmulationOptions)
    incident: IncidentLink | None = Field(None, description="The incident an incident-response-support DCO supports.")
    targets: Targets = Field(default_factory=Targets, description="Detection/visibility each technique should reach.")

    @model_validator(mode="after")
    def _incident_only_for_ir(self) -> DcoSpec:
        if self.incident is not None and self.type != DcoType.INCIDENT_RESPONSE_SUPPORT:
            raise ValueError(f"incident: is for incident-response-support DCOs, not {self.type.value}")
        return self

    @property
    def slug(self) -> str:
        """The DCO id this name asks for (the repository adds a suffix when another name holds it)."""
        return slugify(self.name)


def slugify(name: str) -> str:
    """ASCII id from any name: transliterated (Cyrillic, accents, CJK), never empty.

    Names with nothing transliterable (emoji only) get ``dco-`` and a digest of the name, so two
    such names still differ.
    """
    ascii_name = unidecode(unicodedata.normalize("NFKC", name))
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    return slug or "dco-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]


class Operation(SQLModel, table=True):
    """A stored DCO. ``version`` increases on every write (optimistic locking)."""

    __tablename__ = "operation"

    id: str = SqlField(primary_key=True, max_length=64)
    name: str = SqlField(index=True, unique=True, max_length=120)
    type: DcoType
    state: DcoState = DcoState.DRAFT
    spec: dict[str, Any] = SqlField(sa_column=Column(JSON, nullable=False))
    created_at: datetime = SqlField(default_factory=utcnow)
    updated_at: datetime = SqlField(default_factory=utcnow)
    approved_by: str | None = None
    approved_at: datetime | None = None
    version: int = 1

    @property
    def dco(self) -> DcoSpec:
        return DcoSpec.model_validate(self.spec)
