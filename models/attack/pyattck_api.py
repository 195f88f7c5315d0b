"""A pyattck-style facade over the catalog, for code written against pyattck.

``Attck(catalog).enterprise.techniques`` etc. The wrappers are thin views over catalog
objects: ``.id`` is the ATT&CK id (as in pyattck), ``.stix_id`` the STIX id, and the
relation attributes return wrapped objects. See ``models/attack/README.md`` for the mapping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.attack.objects import AttackObject, Campaign, Group, Mitigation, Software, Tactic, Technique

if TYPE_CHECKING:
    from collections.abc import Iterable


class _View:
    """Common attributes; anything else falls through to the catalog object."""

    __slots__ = ("_obj",)

    def __init__(self, obj: AttackObject) -> None:
        self._obj = obj

    @property
    def id(self) -> str:
        return self._obj.attack_id

    @property
    def external_id(self) -> str:
        return self._obj.attack_id

    @property
    def stix_id(self) -> str:
        return self._obj.stix_id

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
    def deprecated(self) -> bool:
        return self._obj.deprecated

    @property
    def obj(self) -> AttackObject:
        """The catalog object behind the view."""
        return self._obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _View) and other._obj == self._obj

    def __hash__(self) -> int:
        return hash(self._obj)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.name}>"


def _malwares(items: Iterable[Software]) -> list[AttckMalware]:
    return [AttckMalware(s) for s in items if s.software_type == "malware"]


def _tools(items: Iterable[Software]) -> list[AttckTool]:
    return [AttckTool(s) for s in items if s.software_type == "tool"]


class AttckTactic(_View):
    __slots__ = ()

    @property
    def shortname(self) -> str:
        return self._tac.shortname

    @property
    def _tac(self) -> Tactic:
        assert isinstance(self._obj, Tactic)
        return self._obj

    @property
    def techniques(self) -> list[AttckTechnique]:
        return [AttckTechnique(t) for t in self._tac.techniques]


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
    def platforms(self) -> list[str]:
        return self._tech.platforms

    @property
    def tactics(self) -> list[AttckTactic]:
        return [AttckTactic(t) for t in self._tech.tactic_objects]

    @property
    def mitigations(self) -> list[AttckMitigation]:
        return [AttckMitigation(m) for m in self._tech.mitigations]

    @property
    def subtechniques(self) -> list[AttckTechnique]:
        return [AttckTechnique(t) for t in self._tech.subtechniques]

    # pyattck 3–6 named sub-techniques ``techniques``
    techniques = subtechniques

    @property
    def actors(self) -> list[AttckActor]:
        return [AttckActor(g) for g in self._tech.groups]

    @property
    def malwares(self) -> list[AttckMalware]:
        return _malwares(self._tech.softwares)

    @property
    def tools(self) -> list[AttckTool]:
        return _tools(self._tech.softwares)

    @property
    def campaigns(self) -> list[AttckCampaign]:
        return [AttckCampaign(c) for c in self._tech.campaigns]

    @property
    def data_components(self) -> list[str]:
        return [d.name for d in self._tech.data_components]


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
        return [AttckTechnique(t) for t in self._group.techniques]

    @property
    def malwares(self) -> list[AttckMalware]:
        return _malwares(self._group.softwares)

    @property
    def tools(self) -> list[AttckTool]:
        return _tools(self._group.softwares)

    @property
    def campaigns(self) -> list[AttckCampaign]:
        return [AttckCampaign(c) for c in self._group.campaigns]


class _SoftwareView(_View):
    __slots__ = ()

    @property
    def _sw(self) -> Software:
        assert isinstance(self._obj, Software)
        return self._obj

    @property
    def aliases(self) -> list[str]:
        return self._sw.aliases

    @property
    def platforms(self) -> list[str]:
        return self._sw.platforms

    @property
    def techniques(self) -> list[AttckTechnique]:
        return [AttckTechnique(t) for t in self._sw.techniques]

    @property
    def actors(self) -> list[AttckActor]:
        return [AttckActor(g) for g in self._sw.groups]


class AttckMalware(_SoftwareView):
    __slots__ = ()


class AttckTool(_SoftwareView):
    __slots__ = ()


class AttckMitigation(_View):
    __slots__ = ()

    @property
    def techniques(self) -> list[AttckTechnique]:
        assert isinstance(self._obj, Mitigation)
        return [AttckTechnique(t) for t in self._obj.techniques]


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
    def techniques(self) -> list[AttckTechnique]:
        return [AttckTechnique(t) for t in self._camp.techniques]

    @property
    def actors(self) -> list[AttckActor]:
        return [AttckActor(g) for g in self._camp.groups]

    @property
    def malwares(self) -> list[AttckMalware]:
        return _malwares(self._camp.softwares)

    @property
    def tools(self) -> list[AttckTool]:
        return _tools(self._camp.softwares)


class AttckDomain:
    """One domain's listings, as ``Attck().enterprise`` in pyattck."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @property
    def techniques(self) -> list[AttckTechnique]:
        """Techniques and sub-techniques (current only)."""
        return [AttckTechnique(t) for t in self.catalog.techniques]

    @property
    def tactics(self) -> list[AttckTactic]:
        return [AttckTactic(t) for t in self.catalog.tactics]

    @property
    def actors(self) -> list[AttckActor]:
        return [AttckActor(g) for g in self.catalog.groups]

    @property
    def malwares(self) -> list[AttckMalware]:
        return _malwares(self.catalog.softwares)

    @property
    def tools(self) -> list[AttckTool]:
        return _tools(self.catalog.softwares)

    @property
    def mitigations(self) -> list[AttckMitigation]:
        return [AttckMitigation(m) for m in self.catalog.mitigations]

    @property
    def campaigns(self) -> list[AttckCampaign]:
        return [AttckCampaign(c) for c in self.catalog.campaigns]


class Attck:
    """``Attck(catalog)`` or ``Attck.load()``; the catalog's domain is the attribute that is set.

    Pass one catalog per domain (``Attck(enterprise_cat, mobile_cat)``) to get several.
    """

    def __init__(self, *catalogs: Catalog) -> None:
        if not catalogs:
            raise TypeError("Attck needs at least one catalog (or use Attck.load())")
        self._domains = {c.domain: AttckDomain(c) for c in catalogs}

    @classmethod
    def load(cls, source: str | None = None, domain: str | None = None) -> Attck:
        """Load through ``dcoflow.connectors.attack.load_catalog`` (the default source and the cache)."""
        from dcoflow.connectors.attack import load_catalog

        return cls(load_catalog(source, domain))

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
