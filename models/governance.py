"""Governance as data: the organisations of the coordination cell, the bodies that decide on risks
(with their authority thresholds, review periods and longest acceptance), the action SLAs, the
default coverage targets, and the RACI — which organisation does which kind of work, per enclave,
asset group or mitigation.

The shipped default is ``governance.yaml`` beside this module (package data); a deployment points
``DCO_GOVERNANCE_FILE`` at its own (``dcoflow.connectors.content.governance_file`` reads and validates
it). Everything here is pure: the follow-up rules take a ``Governance`` (or its ``DecisionPolicy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dcoflow.core.errors import ValidationError
from dcoflow.models.operation import AssetGroup

_Strict = ConfigDict(extra="forbid")


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class WorkArea(StrEnum):
    """The kinds of work the RACI assigns (``risk``: owning a risk until it is treated)."""

    RISK = "risk"
    REMEDIATION = "remediation"  # applying an ATT&CK mitigation
    DETECTION_ENGINEERING = "detection-engineering"  # writing and tuning detection rules
    DATA_SOURCE_ONBOARDING = "data-source-onboarding"  # collecting the telemetry a technique needs


class Organisation(BaseModel):
    model_config = _Strict
    id: str = Field(min_length=1, max_length=60, description="Short name used everywhere else, e.g. NCIA")
    name: str = Field("", description="Full name")
    description: str = ""


class DecisionBody(BaseModel):
    """A body that decides on risks from ``min_score`` upwards (a higher body may decide for a lower)."""

    model_config = _Strict
    name: str = Field(min_length=1, max_length=60, description="e.g. owner, CRMG, BCISOA")
    min_score: int = Field(ge=1, le=25, description="Lowest risk score (likelihood × impact) this body decides")
    review_days: int = Field(gt=0, description="A risk at this level must be decided (and is reviewed) within this")
    max_acceptance_days: int = Field(gt=0, description="The longest acceptance this body may grant")
    chair: str | None = Field(None, description="The organisation that chairs it")
    members: list[str] = Field(default_factory=list, description="Organisations that sit on it")


class DecisionPolicy(BaseModel):
    """Which body decides on a risk of a given score: bodies from the lowest authority to the highest."""

    model_config = _Strict
    bodies: list[DecisionBody] = Field(min_length=1)
    decision_from: int = Field(8, ge=1, le=25, description="From this score every risk needs a recorded decision")

    @field_validator("bodies", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        """``(min score, name)`` pairs are accepted as shorthand (review 30 days, acceptance 365)."""
        if isinstance(value, list):
            return [{"name": v[1], "min_score": v[0], "review_days": 30, "max_acceptance_days": 365}
                    if isinstance(v, (tuple, list)) else v for v in value]
        return value

    @model_validator(mode="after")
    def _ascending(self) -> DecisionPolicy:
        scores = [b.min_score for b in self.bodies]
        if scores != sorted(scores) or len(set(scores)) != len(scores):
            raise ValueError("decision bodies must be listed from the lowest authority to the highest, "
                             "each with a higher min_score than the one before")
        names = [b.name.lower() for b in self.bodies]
        if len(set(names)) != len(names):
            raise ValueError("decision body names must be unique")
        return self

    def body(self, name: str) -> DecisionBody | None:
        return next((b for b in self.bodies if b.name.lower() == name.lower()), None)

    def required(self, score: int) -> DecisionBody:
        chosen = self.bodies[0]
        for b in self.bodies:
            if score >= b.min_score:
                chosen = b
        return chosen

    def body_for(self, score: int) -> str:
        return self.required(score).name

    def rank(self, body: str) -> int:
        names = [b.name.lower() for b in self.bodies]
        return names.index(body.lower()) if body.lower() in names else -1

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.bodies]

    @property
    def max_acceptance_days(self) -> int:
        return max(b.max_acceptance_days for b in self.bodies)


class RaciEntry(BaseModel):
    """Who does one kind of work, optionally only in some enclaves, asset groups or for some mitigations
    (an empty list matches everything). The most specific matching entry wins; on a tie, the first."""

    model_config = _Strict
    area: WorkArea
    responsible: str = Field(description="The organisation that owns (does) the work")
    accountable: str | None = Field(None, description="The organisation answerable for it, when not the same")
    consulted: list[str] = Field(default_factory=list)
    informed: list[str] = Field(default_factory=list)
    enclaves: list[str] = Field(default_factory=list)
    asset_groups: list[str] = Field(default_factory=list)
    mitigations: list[str] = Field(default_factory=list, description="ATT&CK mitigation ids (remediation only)")

    @property
    def specificity(self) -> int:
        return sum(1 for x in (self.enclaves, self.asset_groups, self.mitigations) if x)

    def matches(self, area: WorkArea, enclave: str | None, asset_group: str | None, mitigation: str | None) -> bool:
        def ok(values: list[str], value: str | None) -> bool:
            return not values or (value is not None and value.lower() in {v.lower() for v in values})

        return (self.area == area and ok(self.enclaves, enclave) and ok(self.asset_groups, asset_group)
                and ok(self.mitigations, mitigation))


def _default_sla() -> dict[Priority, int]:
    return {Priority.CRITICAL: 7, Priority.HIGH: 30, Priority.MEDIUM: 60, Priority.LOW: 90}


@dataclass(frozen=True, slots=True)
class Place:
    """Where a piece of work happens: an asset group (and its enclave) of a DCO's scope."""

    enclave: str | None = None
    asset_group: str | None = None


def places(asset_groups: Sequence[AssetGroup], enclaves: Sequence[str]) -> list[Place]:
    """The places of a piece of work, most important first: each asset group (in the given order) in its own
    enclave or, when it names none, in each of the scope's enclaves; then the enclaves themselves."""
    out: list[Place] = []
    for g in asset_groups:
        where: list[str | None] = [g.enclave] if g.enclave else [*enclaves] or [None]
        for enclave in where:
            out.append(Place(enclave, g.name))
    out += [Place(e, None) for e in enclaves]
    return list(dict.fromkeys(out))


class Governance(BaseModel):
    """The whole governance file."""

    model_config = _Strict
    organisations: list[Organisation] = Field(min_length=1)
    decision_bodies: list[DecisionBody] = Field(min_length=1, description="From the lowest authority to the highest")
    decision_from: int = Field(8, ge=1, le=25, description="From this score every risk needs a recorded decision")
    sla_days: dict[Priority, int] = Field(default_factory=_default_sla, description="Days to complete, by priority")
    raci: list[RaciEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Governance:
        DecisionPolicy(bodies=self.decision_bodies, decision_from=self.decision_from)  # same ordering rules
        known = {o.id.lower() for o in self.organisations}
        for i, body in enumerate(self.decision_bodies):
            for org in [body.chair, *body.members]:
                if org is not None and org.lower() not in known:
                    raise ValueError(f"decision_bodies[{i}] ({body.name}) names unknown organisation {org!r}; "
                                     f"declare it under organisations")
        for i, entry in enumerate(self.raci):
            for org in [entry.responsible, entry.accountable, *entry.consulted, *entry.informed]:
                if org is not None and org.lower() not in known:
                    raise ValueError(f"raci[{i}] ({entry.area}) names unknown organisation {org!r}; "
                                     f"declare it under organisations")
        missing = [a.value for a in WorkArea if not any(e.area == a and e.specificity == 0 for e in self.raci)]
        if missing:
            raise ValueError(f"raci needs an entry without enclaves/asset_groups/mitigations for {', '.join(missing)} "
                             f"(the owner when nothing more specific matches)")
        absent = [p.value for p in Priority if p not in self.sla_days]
        if absent:
            raise ValueError(f"sla_days misses {', '.join(absent)}")
        return self

    @property
    def policy(self) -> DecisionPolicy:
        return DecisionPolicy(bodies=self.decision_bodies, decision_from=self.decision_from)

    def entry(self, area: WorkArea, places: Sequence[Place] = (), mitigation: str | None = None) -> RaciEntry:
        """The RACI entry for ``area``: the most specific one at the first of ``places`` (most important
        first) that has a specific entry, else the most specific place-free one (a mitigation's, the catch-all)."""
        for place in places:
            found = [e for e in self.raci if e.specificity and e.matches(area, place.enclave, place.asset_group,
                                                                         mitigation)]
            if found:
                return _most_specific(found)
        return _most_specific([e for e in self.raci if e.matches(area, None, None, mitigation)])

    def organisation(self, name: str, obj: str | None = None) -> str:
        """The governance's spelling of organisation ``name``; unknown → a ValidationError listing the known ones."""
        for o in self.organisations:
            if o.id.lower() == name.strip().lower():
                return o.id
        raise ValidationError(f"unknown organisation {name!r}", field="owner", object=obj,
                              suggestions=[o.id for o in self.organisations])

    def owner(self, area: WorkArea, places: Sequence[Place] = (), mitigation: str | None = None) -> str:
        return self.entry(area, places, mitigation).responsible


def _most_specific(entries: Sequence[RaciEntry]) -> RaciEntry:
    """The first of the most specific entries (the validator guarantees a catch-all, so never empty)."""
    best = max(e.specificity for e in entries)
    return next(e for e in entries if e.specificity == best)
