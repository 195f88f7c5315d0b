"""The ATT&CK objects of the catalog: small slotted records holding ATT&CK ids.

Relations are stored as lists of ATT&CK ids (``T1059.001``, ``G0016`` …) so that a
pickled catalog stays small and loads fast; the object properties (``technique.parent``,
``group.techniques`` …) resolve those ids through the catalog the object is bound to.
Descriptions are not stored on the objects: ``description`` asks the catalog, which keeps
them apart (and, from a cache, loads them only when first asked).

Lists hold *current* objects only (neither revoked nor deprecated); a revoked object
keeps ``revoked_by``, the ATT&CK id of its replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from dcoflow.models.attack.catalog import Catalog


class Kind(StrEnum):
    """The kinds of catalog object, named as the CLI and ``Catalog.search`` name them."""

    TACTIC = "tactic"
    TECHNIQUE = "technique"
    GROUP = "group"
    CAMPAIGN = "campaign"
    SOFTWARE = "software"
    MITIGATION = "mitigation"
    DETECTION_STRATEGY = "detection-strategy"
    ANALYTIC = "analytic"
    DATA_COMPONENT = "data-component"


@dataclass(slots=True, eq=False)
class AttackObject:
    """Fields every catalog object has. ``_cat`` is bound by the catalog and never pickled."""

    kind: ClassVar[Kind]
    attack_id: str = ""
    stix_id: str = ""
    name: str = ""
    url: str = ""
    revoked: bool = False
    deprecated: bool = False
    revoked_by: str | None = None
    version: str = ""
    modified: str = ""
    _cat: Catalog | None = field(default=None, init=False, repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # Positional constructor call: several times faster to unpickle than slot state.
        return (type(self), tuple(getattr(self, f) for f in _init_fields(type(self))))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.stix_id == self.stix_id

    def __hash__(self) -> int:
        return hash(self.stix_id)

    @property
    def catalog(self) -> Catalog:
        if self._cat is None:
            raise RuntimeError(f"{self.attack_id} is not bound to a catalog")
        return self._cat

    @property
    def description(self) -> str:
        return self.catalog.description_of(self.stix_id)

    @property
    def is_current(self) -> bool:
        return not (self.revoked or self.deprecated)


_FIELDS_CACHE: dict[type, tuple[str, ...]] = {}


def _init_fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS_CACHE.get(cls)
    if names is None:
        names = tuple(f.name for f in fields(cls) if f.init)
        _FIELDS_CACHE[cls] = names
    return names


@dataclass(slots=True, eq=False)
class Tactic(AttackObject):
    kind: ClassVar[Kind] = Kind.TACTIC
    shortname: str = ""
    technique_ids: list[str] = field(default_factory=list)

    @property
    def techniques(self) -> list[Technique]:
        return self.catalog.techniques_by_ids(self.technique_ids)


@dataclass(slots=True, eq=False)
class Technique(AttackObject):
    kind: ClassVar[Kind] = Kind.TECHNIQUE
    tactics: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    is_subtechnique: bool = False
    parent_id: str | None = None
    subtechnique_ids: list[str] = field(default_factory=list)
    mitigation_ids: list[str] = field(default_factory=list)
    detection_strategy_ids: list[str] = field(default_factory=list)
    analytic_ids: list[str] = field(default_factory=list)
    data_component_ids: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    campaign_ids: list[str] = field(default_factory=list)
    software_ids: list[str] = field(default_factory=list)
    use_dates: dict[str, str] = field(default_factory=dict)  # user ATT&CK id → its `uses` relationship's modified

    @property
    def parent(self) -> Technique | None:
        return self.catalog.get_technique(self.parent_id) if self.parent_id else None

    @property
    def subtechniques(self) -> list[Technique]:
        return self.catalog.techniques_by_ids(self.subtechnique_ids)

    @property
    def tactic_objects(self) -> list[Tactic]:
        return [t for t in (self.catalog.resolve_tactic(s, warn=False) for s in self.tactics) if t]

    @property
    def mitigations(self) -> list[Mitigation]:
        return [self.catalog.mitigation(i) for i in self.mitigation_ids]

    @property
    def detection_strategies(self) -> list[DetectionStrategy]:
        return [self.catalog.detection_strategy(i) for i in self.detection_strategy_ids]

    @property
    def analytics(self) -> list[Analytic]:
        return [self.catalog.analytic(i) for i in self.analytic_ids]

    @property
    def data_components(self) -> list[DataComponent]:
        return [self.catalog.data_component(i) for i in self.data_component_ids]

    @property
    def groups(self) -> list[Group]:
        """Groups that use this technique directly (``uses`` group → technique)."""
        return [self.catalog.group(i) for i in self.group_ids]

    @property
    def campaigns(self) -> list[Campaign]:
        return [self.catalog.campaign(i) for i in self.campaign_ids]

    @property
    def softwares(self) -> list[Software]:
        return [self.catalog.software(i) for i in self.software_ids]


@dataclass(slots=True, eq=False)
class Group(AttackObject):
    kind: ClassVar[Kind] = Kind.GROUP
    aliases: list[str] = field(default_factory=list)
    technique_ids: list[str] = field(default_factory=list)
    campaign_ids: list[str] = field(default_factory=list)
    software_ids: list[str] = field(default_factory=list)

    @property
    def techniques(self) -> list[Technique]:
        """Techniques the group uses directly; see ``Catalog.group_techniques`` for the others."""
        return self.catalog.techniques_by_ids(self.technique_ids)

    @property
    def campaigns(self) -> list[Campaign]:
        return [self.catalog.campaign(i) for i in self.campaign_ids]

    @property
    def softwares(self) -> list[Software]:
        return [self.catalog.software(i) for i in self.software_ids]


@dataclass(slots=True, eq=False)
class Campaign(AttackObject):
    kind: ClassVar[Kind] = Kind.CAMPAIGN
    aliases: list[str] = field(default_factory=list)
    first_seen: str | None = None
    last_seen: str | None = None
    group_ids: list[str] = field(default_factory=list)
    technique_ids: list[str] = field(default_factory=list)
    software_ids: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[Group]:
        return [self.catalog.group(i) for i in self.group_ids]

    @property
    def techniques(self) -> list[Technique]:
        return self.catalog.techniques_by_ids(self.technique_ids)

    @property
    def softwares(self) -> list[Software]:
        return [self.catalog.software(i) for i in self.software_ids]


@dataclass(slots=True, eq=False)
class Software(AttackObject):
    kind: ClassVar[Kind] = Kind.SOFTWARE
    software_type: str = "malware"  # malware | tool (the STIX type)
    aliases: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    technique_ids: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    campaign_ids: list[str] = field(default_factory=list)

    @property
    def techniques(self) -> list[Technique]:
        return self.catalog.techniques_by_ids(self.technique_ids)

    @property
    def groups(self) -> list[Group]:
        return [self.catalog.group(i) for i in self.group_ids]


@dataclass(slots=True, eq=False)
class Mitigation(AttackObject):
    kind: ClassVar[Kind] = Kind.MITIGATION
    technique_ids: list[str] = field(default_factory=list)

    @property
    def techniques(self) -> list[Technique]:
        return self.catalog.techniques_by_ids(self.technique_ids)


@dataclass(slots=True, eq=False)
class DetectionStrategy(AttackObject):
    kind: ClassVar[Kind] = Kind.DETECTION_STRATEGY
    technique_ids: list[str] = field(default_factory=list)
    analytic_ids: list[str] = field(default_factory=list)

    @property
    def techniques(self) -> list[Technique]:
        return self.catalog.techniques_by_ids(self.technique_ids)

    @property
    def analytics(self) -> list[Analytic]:
        return [self.catalog.analytic(i) for i in self.analytic_ids]


@dataclass(slots=True, eq=False)
class LogSource:
    """One log source an analytic reads: the data component it belongs to, a name and a channel."""

    data_component_id: str | None
    name: str
    channel: str

    def __reduce__(self) -> tuple[Any, ...]:
        return (LogSource, (self.data_component_id, self.name, self.channel))


@dataclass(slots=True, eq=False)
class Analytic(AttackObject):
    kind: ClassVar[Kind] = Kind.ANALYTIC
    platforms: list[str] = field(default_factory=list)
    detection_strategy_ids: list[str] = field(default_factory=list)
    data_component_ids: list[str] = field(default_factory=list)
    log_sources: list[LogSource] = field(default_factory=list)

    @property
    def detection_strategies(self) -> list[DetectionStrategy]:
        return [self.catalog.detection_strategy(i) for i in self.detection_strategy_ids]

    @property
    def data_components(self) -> list[DataComponent]:
        return [self.catalog.data_component(i) for i in self.data_component_ids]


@dataclass(slots=True, eq=False)
class DataComponent(AttackObject):
    kind: ClassVar[Kind] = Kind.DATA_COMPONENT
    data_source: str | None = None
    log_sources: list[tuple[str, str]] = field(default_factory=list)
    analytic_ids: list[str] = field(default_factory=list)
    technique_ids: list[str] = field(default_factory=list)

    @property
    def analytics(self) -> list[Analytic]:
        return [self.catalog.analytic(i) for i in self.analytic_ids]

    @property
    def techniques(self) -> list[Technique]:
        return self.catalog.techniques_by_ids(self.technique_ids)


OBJECT_CLASSES: dict[Kind, type[AttackObject]] = {
    Kind.TACTIC: Tactic,
    Kind.TECHNIQUE: Technique,
    Kind.GROUP: Group,
    Kind.CAMPAIGN: Campaign,
    Kind.SOFTWARE: Software,
    Kind.MITIGATION: Mitigation,
    Kind.DETECTION_STRATEGY: DetectionStrategy,
    Kind.ANALYTIC: Analytic,
    Kind.DATA_COMPONENT: DataComponent,
}
