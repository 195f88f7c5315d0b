"""A pyattck 7 style facade over the catalog, for code written against pyattck.

Names follow pyattck 7 (its models live in pyattck-data): ``.id`` and ``.stix`` are the STIX id,
``technique_id`` / ``mitigation_id`` the ATT&CK id; objects carry ``type``, ``external_references``,
``kill_chain_phases`` and ``x_mitre_*`` attributes; a domain lists ``techniques``, ``tactics``, ``actors``,
``malwares``, ``tools``, ``mitigations``, ``campaigns``, ``data_components``, ``data_sources``, ``controls``
and ``relationships``. The catalog holds an index, not whole STIX objects: pass the bundle's objects
(``Attck(catalog, stix_objects=…)``, or ``load_attck(full_stix=True)``) for every other STIX property and
the relationship objects themselves. Deliberate differences from pyattck: ``models/attack/README.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.attack.objects import (
    AttackObject,
    Campaign,
    DataComponent,
    Group,
    Mitigation,
    Software,
    Tactic,
    Technique,
)
from dcoflow.models.timestamps import parse_utc

# ATT&CK's external_references source_name and kill_chain_name per domain.
ATTACK_SOURCE = {"enterprise": "mitre-attack", "mobile": "mitre-mobile-attack", "ics": "mitre-ics-attack"}


@dataclass(frozen=True, slots=True)
class ExternalReference:
    """pyattck-data's ``ExternalReferences``."""

    source_name: str
    url: str = ""
    external_id: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class KillChainPhase:
    """pyattck-data's ``KillChainPhases``."""

    kill_chain_name: str
    phase_name: str


def _when(value: Any) -> datetime | None:
    return parse_utc(str(value)) if value else None


class _Context:
    """What every view of one domain shares: the catalog, the bundle's objects by id (optional), controls."""

    def __init__(self, catalog: Catalog, stix: Mapping[str, Mapping[str, Any]] | None,
                 controls: list[Mapping[str, Any]], control_links: Mapping[str, list[str]]) -> None:
        self.catalog = catalog
        self.stix = stix
        self.controls = controls
        self.control_links = control_links  # technique STIX id → control STIX ids (mitigates)


_V = TypeVar("_V", bound="_View")


class _View:
    """Common attributes; STIX properties the catalog does not index come from the bundle when given."""

    __slots__ = ("_ctx", "_obj")

    def __init__(self, obj: AttackObject, ctx: _Context) -> None:
        self._obj = obj
        self._ctx = ctx

    def _wrap(self, cls: type[_V], objs: Iterable[AttackObject]) -> list[_V]:
        return [cls(o, self._ctx) for o in objs]

    @property
    def id(self) -> str:
        """The STIX id, as in pyattck 7 (pyattck ≤ 6 gave the ATT&CK id; that is ``external_id`` here)."""
        return self._obj.stix_id

    @property
    def stix(self) -> str:
        return self._obj.stix_id

    @property
    def type(self) -> str:
        return self._obj.stix_id.split("--", 1)[0]

    @property
    def external_id(self) -> str:
        """The ATT&CK id (T1059.001, G0016, …)."""
        return self._obj.attack_id

    @property
    def name(self) -> str:
        return self._obj.name

    @property
    def description(self) -> str:
        return self._obj.description

    @property
    def url(self) -> str:
        return self._obj.url

    @property
    def revoked(self) -> bool:
        return self._obj.revoked

    @property
    def x_mitre_deprecated(self) -> bool:
        return self._obj.deprecated

    @property
    def x_mitre_version(self) -> str:
        return self._obj.version

    @property
    def x_mitre_domains(self) -> list[str]:
        raw = self._raw_or_none()
        return list(raw.get("x_mitre_domains", [])) if raw else [f"{self._ctx.catalog.domain}-attack"]

    @property
    def modified(self) -> datetime | None:
        return _when(self._obj.modified)

    @property
    def created(self) -> datetime | None:
        return _when(self._raw().get("created"))

    @property
    def external_references(self) -> list[ExternalReference]:
        """All references with the bundle; without it, the ATT&CK one (id and URL) the catalog keeps."""
        raw = self._raw_or_none()
        if raw is not None:
            return [ExternalReference(**{k: str(r.get(k) or "") for k in ExternalReference.__slots__})
                    for r in raw.get("external_references", [])]
        return [ExternalReference(ATTACK_SOURCE.get(self._ctx.catalog.domain, "mitre-attack"), self._obj.url,
                                  self._obj.attack_id)]

    @property
    def obj(self) -> AttackObject:
        """The catalog object behind the view."""
        return self._obj

    def _raw_or_none(self) -> Mapping[str, Any] | None:
        return self._ctx.stix.get(self._obj.stix_id) if self._ctx.stix is not None else None

    def _raw(self) -> Mapping[str, Any]:
        raw = self._raw_or_none()
        if raw is None:
            raise AttributeError(
                f"{self._obj.attack_id}: the catalog indexes no such STIX property; pass the bundle's objects "
                "(Attck(catalog, stix_objects=bundle['objects']) or load_attck(full_stix=True))")
        return raw

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return getattr(self._obj, name)  # the catalog's own fields (attack_id, platforms, …)
        except AttributeError:
            pass
        raw = self._raw()
        if name in raw:
            return raw[name]
        if name.startswith("x_mitre_"):
            return None  # an optional property this object does not carry
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _View) and other._obj == self._obj

    def __hash__(self) -> int:
        return hash(self._obj)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._obj.attack_id} {self.name}>"


def _malwares(view: _View, items: Iterable[Software]) -> list[AttckMalware]:
    return view._wrap(AttckMalware, (s for s in items if s.software_type == "malware"))


def _tools(view: _View, items: Iterable[Software]) -> list[AttckTool]:
    return view._wrap(AttckTool, (s for s in items if s.software_type == "tool"))


class AttckTactic(_View):
    __slots__ = ()

    @property
    def _tac(self) -> Tactic:
        assert isinstance(self._obj, Tactic)
        return self._obj

    @property
    def x_mitre_shortname(self) -> str:
        return self._tac.shortname

    @property
    def shortname(self) -> str:
        return self._tac.shortname

    @property
    def techniques(self) -> list[AttckTechnique]:
        return self._wrap(AttckTechnique, self._tac.techniques)


class AttckTechnique(_View):
    __slots__ = ()

    @property
    def _tech(self) -> Technique:
        assert isinstance(self._obj, Technique)
        return self._obj

    @property
    def technique_id(self) -> str:
        return self._obj.attack_id

    @property
    def x_mitre_platforms(self) -> list[str]:
        return self._tech.platforms

    @property
    def x_mitre_is_subtechnique(self) -> bool:
        return self._tech.is_subtechnique

    @property
    def kill_chain_phases(self) -> list[KillChainPhase]:
        chain = ATTACK_SOURCE.get(self._ctx.catalog.domain, "mitre-attack")
        return [KillChainPhase(chain, shortname) for shortname in self._tech.tactics]

    @property
    def tactics(self) -> list[AttckTactic]:
        return self._wrap(AttckTactic, self._tech.tactic_objects)

    @property
    def mitigations(self) -> list[AttckMitigation]:
        return self._wrap(AttckMitigation, self._tech.mitigations)

    @property
    def techniques(self) -> list[AttckTechnique]:
        """pyattck 7: the techniques related by ``subtechnique-of`` — a technique's sub-techniques, or a
        sub-technique's parent."""
        parent = self._tech.parent
        return self._wrap(AttckTechnique, [parent] if parent is not None else self._tech.subtechniques)

    @property
    def subtechniques(self) -> list[AttckTechnique]:
        return self._wrap(AttckTechnique, self._tech.subtechniques)

    @property
    def actors(self) -> list[AttckActor]:
        return self._wrap(AttckActor, self._tech.groups)

    @property
    def malwares(self) -> list[AttckMalware]:
        return _malwares(self, self._tech.softwares)

    @property
    def tools(self) -> list[AttckTool]:
        return _tools(self, self._tech.softwares)

    @property
    def campaigns(self) -> list[AttckCampaign]:
        return self._wrap(AttckCampaign, self._tech.campaigns)

    @property
    def data_components(self) -> list[AttckDataComponent]:
        """The data components of the technique's detection strategies' analytics (ATT&CK v18's chain)."""
        return self._wrap(AttckDataComponent, self._tech.data_components)

    @property
    def data_sources(self) -> list[AttckDataSource]:
        names = {d.data_source for d in self._tech.data_components if d.data_source}
        return [s for s in _data_sources(self._ctx) if s.name in names]

    @property
    def controls(self) -> list[AttckControl]:
        ids = set(self._ctx.control_links.get(self._obj.stix_id, ()))
        return [AttckControl(c, self._ctx) for c in self._ctx.controls if c.get("id") in ids]


class AttckActor(_View):
    __slots__ = ()

    @property
    def _group(self) -> Group:
        assert isinstance(self._obj, Group)
        return self._obj

    @property
    def aliases(self) -> list[str]:
        return self._group.aliases

    @property
    def techniques(self) -> list[AttckTechnique]:
        """Techniques the group uses directly (pyattck's meaning)."""
        return self._wrap(AttckTechnique, self._group.techniques)

    @property
    def malwares(self) -> list[AttckMalware]:
        return _malwares(self, self._group.softwares)

    @property
    def tools(self) -> list[AttckTool]:
        return _tools(self, self._group.softwares)

    @property
    def campaigns(self) -> list[AttckCampaign]:
        return self._wrap(AttckCampaign, self._group.campaigns)


class _SoftwareView(_View):
    __slots__ = ()

    @property
    def _sw(self) -> Software:
        assert isinstance(self._obj, Software)
        return self._obj

    @property
    def x_mitre_aliases(self) -> list[str]:
        return self._sw.aliases

    @property
    def aliases(self) -> list[str]:
        return self._sw.aliases

    @property
    def x_mitre_platforms(self) -> list[str]:
        return self._sw.platforms

    @property
    def techniques(self) -> list[AttckTechnique]:
        return self._wrap(AttckTechnique, self._sw.techniques)

    @property
    def actors(self) -> list[AttckActor]:
        return self._wrap(AttckActor, self._sw.groups)

    @property
    def campaigns(self) -> list[AttckCampaign]:
        return self._wrap(AttckCampaign, (self._ctx.catalog.campaign(c) for c in self._sw.campaign_ids))


class AttckMalware(_SoftwareView):
    __slots__ = ()


class AttckTool(_SoftwareView):
    __slots__ = ()


class AttckMitigation(_View):
    __slots__ = ()

    @property
    def mitigation_id(self) -> str:
        return self._obj.attack_id

    @property
    def techniques(self) -> list[AttckTechnique]:
        assert isinstance(self._obj, Mitigation)
        return self._wrap(AttckTechnique, self._obj.techniques)


class AttckCampaign(_View):
    __slots__ = ()

    @property
    def _camp(self) -> Campaign:
        assert isinstance(self._obj, Campaign)
        return self._obj

    @property
    def aliases(self) -> list[str]:
        return self._camp.aliases

    @property
    def first_seen(self) -> datetime | None:
        return _when(self._camp.first_seen)

    @property
    def last_seen(self) -> datetime | None:
        return _when(self._camp.last_seen)

    @property
    def techniques(self) -> list[AttckTechnique]:
        return self._wrap(AttckTechnique, self._camp.techniques)

    @property
    def actors(self) -> list[AttckActor]:
        return self._wrap(AttckActor, self._camp.groups)

    @property
    def malwares(self) -> list[AttckMalware]:
        return _malwares(self, self._camp.softwares)

    @property
    def tools(self) -> list[AttckTool]:
        return _tools(self, self._camp.softwares)


class AttckDataComponent(_View):
    __slots__ = ()

    @property
    def _dc(self) -> DataComponent:
        assert isinstance(self._obj, DataComponent)
        return self._obj

    @property
    def techniques(self) -> list[AttckTechnique]:
        return self._wrap(AttckTechnique, self._dc.techniques)


class _Stix:
    """A STIX object from a bundle given to Attck (data sources, relationships, controls), as pyattck shows it."""

    __slots__ = ("_ctx", "_raw")

    def __init__(self, raw: Mapping[str, Any], ctx: _Context) -> None:
        self._raw = raw
        self._ctx = ctx

    @property
    def id(self) -> str:
        return str(self._raw.get("id", ""))

    @property
    def stix(self) -> str:
        return self.id

    @property
    def external_references(self) -> list[ExternalReference]:
        return [ExternalReference(**{k: str(r.get(k) or "") for k in ExternalReference.__slots__})
                for r in self._raw.get("external_references", [])]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._raw:
            return self._raw[name]
        if name.startswith("x_mitre_"):
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self._raw.get('name', '')}>"


class AttckDataSource(_Stix):
    """An ``x-mitre-data-source`` from the bundle (ATT&CK v18 deprecated them all)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return str(self._raw.get("name", ""))

    @property
    def data_components(self) -> list[AttckDataComponent]:
        return [AttckDataComponent(d, self._ctx) for d in self._ctx.catalog.data_components
                if d.data_source == self.name]

    @property
    def techniques(self) -> list[AttckTechnique]:
        seen: dict[str, Technique] = {}
        for d in self._ctx.catalog.data_components:
            if d.data_source == self.name:
                seen.update((t.stix_id, t) for t in d.techniques)
        return [AttckTechnique(t, self._ctx) for t in seen.values()]


class AttckRelationship(_Stix):
    __slots__ = ()


class AttckControl(_Stix):
    """A control (``course-of-action``) of a control-framework mapping bundle, e.g. NIST 800-53 → ATT&CK."""

    __slots__ = ()

    @property
    def techniques(self) -> list[AttckTechnique]:
        ids = {t for t, controls in self._ctx.control_links.items() if self.id in controls}
        found = (self._ctx.catalog.by_stix_id(i) for i in ids)
        return [AttckTechnique(t, self._ctx) for t in found if isinstance(t, Technique)]


def _data_sources(ctx: _Context) -> list[AttckDataSource]:
    if ctx.stix is None:
        return []
    return [AttckDataSource(o, ctx) for o in ctx.stix.values() if o.get("type") == "x-mitre-data-source"
            and f"{ctx.catalog.domain}-attack" in o.get("x_mitre_domains", [f"{ctx.catalog.domain}-attack"])]


class AttckDomain:
    """One domain's listings, as ``Attck().enterprise`` in pyattck (current objects only)."""

    def __init__(self, ctx: _Context) -> None:
        self._ctx = ctx
        self.catalog = ctx.catalog

    def _wrap(self, cls: type[_V], objs: Iterable[AttackObject]) -> list[_V]:
        return [cls(o, self._ctx) for o in objs]

    @property
    def techniques(self) -> list[AttckTechnique]:
        """Techniques and sub-techniques."""
        return self._wrap(AttckTechnique, self.catalog.techniques)

    @property
    def tactics(self) -> list[AttckTactic]:
        return self._wrap(AttckTactic, self.catalog.tactics)

    @property
    def actors(self) -> list[AttckActor]:
        return self._wrap(AttckActor, self.catalog.groups)

    @property
    def malwares(self) -> list[AttckMalware]:
        return self._wrap(AttckMalware, (s for s in self.catalog.softwares if s.software_type == "malware"))

    @property
    def tools(self) -> list[AttckTool]:
        return self._wrap(AttckTool, (s for s in self.catalog.softwares if s.software_type == "tool"))

    @property
    def mitigations(self) -> list[AttckMitigation]:
        return self._wrap(AttckMitigation, self.catalog.mitigations)

    @property
    def campaigns(self) -> list[AttckCampaign]:
        return self._wrap(AttckCampaign, self.catalog.campaigns)

    @property
    def data_components(self) -> list[AttckDataComponent]:
        return self._wrap(AttckDataComponent, self.catalog.data_components)

    @property
    def data_sources(self) -> list[AttckDataSource]:
        """The bundle's ``x-mitre-data-source`` objects (needs ``stix_objects``; none are current in v18)."""
        return _data_sources(self._ctx)

    @property
    def controls(self) -> list[AttckControl]:
        """The controls of the mapping bundle given as ``controls=`` (empty without one)."""
        return [AttckControl(c, self._ctx) for c in self._ctx.controls]

    @property
    def relationships(self) -> list[AttckRelationship]:
        """pyattck's ``uses`` relationships between current objects of this domain (needs ``stix_objects``)."""
        if self._ctx.stix is None:
            raise AttributeError("relationships are STIX objects the catalog does not keep; pass the bundle's "
                                 "objects (Attck(catalog, stix_objects=…) or load_attck(full_stix=True))")
        current = self.catalog.by_stix_id
        return [AttckRelationship(o, self._ctx) for o in self._ctx.stix.values()
                if o.get("type") == "relationship" and o.get("relationship_type") == "uses"
                and current(str(o.get("source_ref"))) is not None and current(str(o.get("target_ref"))) is not None]


class Attck:
    """``Attck(catalog)``, or ``dcoflow.connectors.attack.load_attck()`` (which loads the catalog first); the
    catalog's domain is the attribute that is set.

    Pass one catalog per domain (``Attck(enterprise_cat, mobile_cat)``) to get several. ``stix_objects``: the
    objects of the bundle(s) the catalogs were built from, for the STIX properties and objects the catalog
    does not index. ``controls``: the objects of a control-framework mapping bundle (``course-of-action``
    controls and ``mitigates`` relationships to techniques), e.g. CTID's NIST 800-53 mappings.
    """

    def __init__(self, *catalogs: Catalog, stix_objects: Iterable[Mapping[str, Any]] | None = None,
                 controls: Iterable[Mapping[str, Any]] = ()) -> None:
        if not catalogs:
            raise TypeError("Attck needs at least one catalog (or use dcoflow.connectors.attack.load_attck())")
        stix = {str(o["id"]): o for o in stix_objects if "id" in o} if stix_objects is not None else None
        control_objects = list(controls)
        links: dict[str, list[str]] = {}
        for o in control_objects:
            if o.get("type") == "relationship" and o.get("relationship_type") == "mitigates":
                links.setdefault(str(o.get("target_ref")), []).append(str(o.get("source_ref")))
        listed = [o for o in control_objects if o.get("type") == "course-of-action"]
        self._domains = {c.domain: AttckDomain(_Context(c, stix, listed, links)) for c in catalogs}

    def _domain(self, name: str) -> AttckDomain:
        try:
            return self._domains[name]
        except KeyError:
            raise AttributeError(f"no {name} catalog loaded; loaded: {', '.join(self._domains)}") from None

    @property
    def enterprise(self) -> AttckDomain:
        return self._domain("enterprise")

    @property
    def mobile(self) -> AttckDomain:
        return self._domain("mobile")

    @property
    def ics(self) -> AttckDomain:
        return self._domain("ics")
