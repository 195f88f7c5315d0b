"""The ATT&CK catalog: lookups, relations and identifier resolution over one release of one domain.

Built by ``dcoflow.models.attack.build.build_catalog`` from a parsed bundle, cached and loaded by
``dcoflow.connectors.attack``. Every query is a dict lookup or a scan of a prebuilt string, so
queries stay well under a millisecond.
"""

from __future__ import annotations

import difflib
import re
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

from dcoflow.core.errors import NotFoundError, ValidationError
from dcoflow.models.attack.newer_ids import NEWER_IDS
from dcoflow.models.attack.objects import (
    Analytic,
    AttackObject,
    Campaign,
    DataComponent,
    DetectionStrategy,
    Group,
    Kind,
    Mitigation,
    Software,
    Tactic,
    Technique,
)

DOMAINS = ("enterprise", "mobile", "ics")

class Via(StrEnum):
    """How a technique is attributed to a group: its own use, an attributed campaign, its software."""

    DIRECT = "direct"
    CAMPAIGNS = "campaigns"
    SOFTWARE = "software"


ALL_VIA: tuple[Via, ...] = tuple(Via)
PROFILE_VIA: tuple[Via, ...] = (Via.DIRECT, Via.CAMPAIGNS)  # what a threat profile counts unless it says otherwise
ResolutionStatus = Literal["current", "revoked", "deprecated", "newer-release", "unknown"]

# The ATT&CK technique id syntax (Tnnnn, Tnnnn.nnn), upper case as ``normalize_technique_id`` gives it.
TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
_O = TypeVar("_O", bound=AttackObject)


class UnknownAttackIdWarning(UserWarning):
    """Content names an ATT&CK technique or tactic the loaded release does not know."""


@dataclass(slots=True, frozen=True)
class Resolution:
    """What an identifier from any ATT&CK release means in the loaded one.

    ``attack_id`` is the id to use here (the replacement when ``requested`` was revoked),
    or ``None`` when the loaded release has nothing for it.
    """

    requested: str
    attack_id: str | None
    status: ResolutionStatus
    note: str = ""


@dataclass(slots=True, frozen=True)
class SearchHit:
    type: Kind
    attack_id: str
    name: str


def normalize_technique_id(text: str) -> str:
    """``attack.t1059.001`` / `` t1059.001 `` → ``T1059.001`` (Sigma tags and hand-typed ids)."""
    value = text.strip()
    if value.lower().startswith("attack."):
        value = value[len("attack."):]
    return value.upper()


def normalize_tactic(text: str) -> str:
    """``attack.defense_evasion`` / ``Defense Evasion`` → ``defense-evasion``."""
    value = text.strip().lower()
    if value.startswith("attack."):
        value = value[len("attack."):]
    return re.sub(r"[\s_]+", "-", value)


class Catalog:
    """One ATT&CK release of one domain, indexed."""

    def __init__(
        self,
        *,
        domain: str,
        version: str,
        name: str,
        modified: str,
        content_hash: str,
        tactics: list[Tactic],
        objects: Iterable[AttackObject],
        descriptions: dict[str, str] | None,
        report: str = "",
    ) -> None:
        self.domain = domain
        self.version = version
        self.name = name
        self.modified = modified
        self.content_hash = content_hash
        self.report = report
        self.source = ""
        self._tactics = tactics
        self._by_kind: dict[Kind, dict[str, AttackObject]] = {k: {} for k in Kind}
        for obj in objects:
            table = self._by_kind[obj.kind]
            old = table.get(obj.attack_id)
            if old is None or (not old.is_current and obj.is_current):
                table[obj.attack_id] = obj
        self._descriptions = descriptions
        self._description_loader: Callable[[], dict[str, str]] | None = None
        self._init_derived()

    # -- pickling: the object graph only; descriptions and derived indexes are rebuilt -----------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "domain": self.domain, "version": self.version, "name": self.name,
            "modified": self.modified, "content_hash": self.content_hash, "report": self.report,
            "tactics": self._tactics, "by_kind": self._by_kind,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.domain = state["domain"]
        self.version = state["version"]
        self.name = state["name"]
        self.modified = state["modified"]
        self.content_hash = state["content_hash"]
        self.report = state["report"]
        self.source = ""
        self._tactics = state["tactics"]
        self._by_kind = state["by_kind"]
        self._descriptions = None
        self._description_loader = None
        self._init_derived()

    def _init_derived(self) -> None:
        for table in self._by_kind.values():
            for obj in table.values():
                obj._cat = self
        self._rank = {t.shortname: n for n, t in enumerate(self._tactics)}
        self._current: dict[Kind, list[Any]] = {}
        self._names: dict[Kind, dict[str, str]] = {}
        self._stix: dict[str, AttackObject] | None = None
        self._search_text: str | None = None
        self._search_starts: list[int] = []
        self._search_entries: list[tuple[Kind, str, str]] = []

    @property
    def descriptions(self) -> dict[str, str]:
        """STIX id → description; loaded on first use when the catalog came from a cache."""
        if self._descriptions is None:
            self._descriptions = self._description_loader() if self._description_loader else {}
        return self._descriptions

    def set_description_loader(self, loader: Callable[[], dict[str, str]]) -> None:
        self._description_loader = loader

    def description_of(self, stix_id: str) -> str:
        return self.descriptions.get(stix_id, "")

    def __repr__(self) -> str:
        return f"<Catalog {self.name or self.domain} v{self.version} {self.content_hash[:12]}>"

    # -- listings (current objects, sorted by ATT&CK id) -------------------------------------
    def _listing(self, kind: Kind) -> list[Any]:
        cached = self._current.get(kind)
        if cached is None:
            cached = sorted((o for o in self._by_kind[kind].values() if o.is_current),
                            key=lambda o: o.attack_id)
            self._current[kind] = cached
        return cached

    @property
    def tactics(self) -> list[Tactic]:
        """Tactics in kill-chain order (the matrix's ``tactic_refs``)."""
        return list(self._tactics)

    @property
    def techniques(self) -> list[Technique]:
        return list(self._listing(Kind.TECHNIQUE))

    @property
    def groups(self) -> list[Group]:
        return list(self._listing(Kind.GROUP))

    @property
    def campaigns(self) -> list[Campaign]:
        return list(self._listing(Kind.CAMPAIGN))

    @property
    def softwares(self) -> list[Software]:
        return list(self._listing(Kind.SOFTWARE))

    @property
    def mitigations(self) -> list[Mitigation]:
        return list(self._listing(Kind.MITIGATION))

    @property
    def detection_strategies(self) -> list[DetectionStrategy]:
        return list(self._listing(Kind.DETECTION_STRATEGY))

    @property
    def analytics(self) -> list[Analytic]:
        return list(self._listing(Kind.ANALYTIC))

    @property
    def data_components(self) -> list[DataComponent]:
        return list(self._listing(Kind.DATA_COMPONENT))

    def all_objects(self, kind: Kind) -> list[AttackObject]:
        """Every object of a kind, revoked and deprecated ones included."""
        return list(self._by_kind[kind].values())

    def counts(self) -> dict[str, int]:
        return {str(k): len(self._listing(k)) for k in Kind}

    # -- lookups -------------------------------------------------------------------------------
    def _name_index(self, kind: Kind) -> dict[str, str]:
        index = self._names.get(kind)
        if index is None:
            index = {}
            # current objects last so that they win a name shared with a revoked one
            for obj in sorted(self._by_kind[kind].values(), key=lambda o: o.is_current):
                for name in (obj.name, *getattr(obj, "aliases", ())):
                    index[name.casefold()] = obj.attack_id
                if isinstance(obj, Tactic):
                    index[obj.shortname] = obj.attack_id
            self._names[kind] = index
        return index

    def _find(self, kind: Kind, key: str) -> AttackObject | None:
        table = self._by_kind[kind]
        text = key.strip()
        obj = table.get(text) or table.get(text.upper())
        if obj is None and kind is Kind.TECHNIQUE:
            obj = table.get(normalize_technique_id(text))
        if obj is None:
            aid = self._name_index(kind).get(text.casefold())
            obj = table.get(aid) if aid else None
        return obj

    def _suggest(self, kind: Kind, text: str, n: int = 5) -> list[str]:
        """Close matches as ``"Name (ID)"`` strings, for hints."""
        key = text.strip().casefold()
        index = self._name_index(kind)
        table = self._by_kind[kind]
        hits = difflib.get_close_matches(key, list(index), n=n, cutoff=0.6)
        hits += [name for name in index if key and key in name and name not in hits]
        ids = list(dict.fromkeys(index[h] for h in hits))
        ids += [i for i in difflib.get_close_matches(text.strip().upper(), list(table), n=3, cutoff=0.8)
                if i not in ids]
        return [f"{table[i].name} ({i})" for i in ids[:n]]

    def _get(self, kind: Kind, key: str, cls: type[_O]) -> _O:
        obj = self._find(kind, key)
        if obj is None:
            hint = self._suggest(kind, key)
            raise NotFoundError(
                f"no {kind} {key!r} in {self.name or self.domain} v{self.version}",
                object=key,
                hint=("did you mean: " + ", ".join(hint)) if hint else None,
                details={"suggestions": hint},
            )
        assert isinstance(obj, cls)
        return obj

    def technique(self, attack_id: str) -> Technique:
        """The technique with this id (revoked and deprecated ones too: check ``.is_current``)."""
        return self._get(Kind.TECHNIQUE, attack_id, Technique)

    def get_technique(self, attack_id: str) -> Technique | None:
        obj = self._find(Kind.TECHNIQUE, attack_id)
        return obj if isinstance(obj, Technique) else None

    def techniques_by_ids(self, ids: Sequence[str]) -> list[Technique]:
        table = self._by_kind[Kind.TECHNIQUE]
        return [table[i] for i in ids]  # type: ignore[misc]

    def tactic(self, key: str) -> Tactic:
        """A tactic by ATT&CK id, shortname or name."""
        tac = self.resolve_tactic(key, warn=False)
        if tac is None:
            return self._get(Kind.TACTIC, key, Tactic)
        return tac

    def group(self, key: str) -> Group:
        """A group by ATT&CK id, name or alias (case-insensitive)."""
        return self._get(Kind.GROUP, key, Group)

    def suggest_groups(self, name: str) -> list[str]:
        """Group names close to ``name`` (for "did you mean")."""
        return [s.rsplit(" (", 1)[0] for s in self._suggest(Kind.GROUP, name)]

    def campaign(self, key: str) -> Campaign:
        return self._get(Kind.CAMPAIGN, key, Campaign)

    def software(self, key: str) -> Software:
        return self._get(Kind.SOFTWARE, key, Software)

    def mitigation(self, key: str) -> Mitigation:
        return self._get(Kind.MITIGATION, key, Mitigation)

    def detection_strategy(self, key: str) -> DetectionStrategy:
        return self._get(Kind.DETECTION_STRATEGY, key, DetectionStrategy)

    def analytic(self, key: str) -> Analytic:
        return self._get(Kind.ANALYTIC, key, Analytic)

    def data_component(self, key: str) -> DataComponent:
        return self._get(Kind.DATA_COMPONENT, key, DataComponent)

    def get(self, kind: Kind | str, key: str) -> AttackObject:
        """Any object by kind (``"group"``, ``Kind.GROUP`` …) and id or name."""
        try:
            k = Kind(kind)
        except ValueError:
            raise ValidationError(f"unknown ATT&CK object type {kind!r}", field="type",
                                  suggestions=[str(x) for x in Kind]) from None
        return self._get(k, key, AttackObject)

    def by_stix_id(self, stix_id: str) -> AttackObject | None:
        if self._stix is None:
            self._stix = {o.stix_id: o for t in self._by_kind.values() for o in t.values()}
        return self._stix.get(stix_id)

    # -- relations -------------------------------------------------------------------------------
    def group_techniques(self, group: str, via: Iterable[Via | str] = ALL_VIA) -> dict[str, frozenset[Via]]:
        """Techniques used by a group, each with the paths that count it.

        ``direct``: the group ``uses`` the technique. ``campaigns``: a campaign
        ``attributed-to`` the group uses it. ``software``: software the group uses directly
        uses it. Only current objects and relationships count (as in mitreattack-python).
        """
        wanted = {Via(v) for v in via if v in ALL_VIA}
        bad = [v for v in via if v not in ALL_VIA]
        if bad:
            raise ValidationError(f"unknown via {bad}", field="via", suggestions=list(ALL_VIA))
        g = self.group(group)
        found: dict[str, set[Via]] = {}
        if Via.DIRECT in wanted:
            for tid in g.technique_ids:
                found.setdefault(tid, set()).add(Via.DIRECT)
        if Via.CAMPAIGNS in wanted:
            for cid in g.campaign_ids:
                for tid in self.campaign(cid).technique_ids:
                    found.setdefault(tid, set()).add(Via.CAMPAIGNS)
        if Via.SOFTWARE in wanted:
            for sid in g.software_ids:
                for tid in self.software(sid).technique_ids:
                    found.setdefault(tid, set()).add(Via.SOFTWARE)
        return {tid: frozenset(found[tid]) for tid in sorted(found)}

    def techniques_for_software(self, software: str) -> list[Technique]:
        return self.software(software).techniques

    def campaign_techniques(self, campaign: str) -> list[Technique]:
        return self.campaign(campaign).techniques

    # -- identifiers from other releases -------------------------------------------------------
    def resolve(self, technique_id: str, *, warn: bool = True) -> Resolution:
        """Map a technique id from any ATT&CK release onto this one.

        Revoked ids follow ``revoked-by`` to the current replacement; deprecated ids stay
        (they have no replacement); ids of a newer release that this one lacks map through the
        documented table in ``newer_ids`` (``newer-release``, e.g. v19's T1685 → T1562.001); other
        ids this release never had are ``unknown`` and, unless ``warn=False``, reported with an
        ``UnknownAttackIdWarning``.
        """
        requested = technique_id
        tid = normalize_technique_id(technique_id)
        table = self._by_kind[Kind.TECHNIQUE]
        release = f"ATT&CK {self.domain} v{self.version}"
        tech = table.get(tid)
        newer = NEWER_IDS.get(tid) if tech is None else None
        if newer is not None:
            here = self.resolve(newer.attack_id, warn=False)
            if here.attack_id is not None:
                name = self._by_kind[Kind.TECHNIQUE][here.attack_id].name
                return Resolution(requested, here.attack_id, "newer-release",
                                  f"{tid} ({newer.name}) is ATT&CK v{newer.release}'s id for {here.attack_id} "
                                  f"({name}) in {release} [{newer.source}]")
        if tech is None:
            if not TECHNIQUE_ID.match(tid):
                note = f"{requested!r} is not an ATT&CK technique id (Tnnnn or Tnnnn.nnn)"
            else:
                parent = table.get(tid.split(".")[0]) if "." in tid else None
                note = f"{tid} is unknown in {release}" + (
                    f"; its parent {parent.attack_id} ({parent.name}) exists" if parent else ""
                ) + " (an id from another release?)"
            if warn:
                warnings.warn(note, UnknownAttackIdWarning, stacklevel=2)
            return Resolution(requested, None, "unknown", note)
        if tech.revoked:
            seen = {tid}
            target = tech
            while target.revoked and target.revoked_by and target.revoked_by not in seen:
                seen.add(target.revoked_by)
                nxt = table.get(target.revoked_by)
                if nxt is None:
                    break
                target = nxt
            if target is tech or not target.is_current:
                return Resolution(requested, None, "revoked",
                                  f"{tid} ({tech.name}) was revoked in {release} without a current replacement")
            return Resolution(requested, target.attack_id, "revoked",
                              f"{tid} ({tech.name}) was revoked; use {target.attack_id} ({target.name})")
        if tech.deprecated:
            return Resolution(requested, tid, "deprecated",
                              f"{tid} ({tech.name}) is deprecated in {release} and has no replacement")
        return Resolution(requested, tid, "current", "")

    def resolve_tactic(self, shortname: str, *, warn: bool = True) -> Tactic | None:
        """A tactic by shortname (``defense-evasion``, ``attack.defense_evasion``), name or TA id.

        Tactics of other releases (v19's ``stealth``, ``defense-impairment``) give ``None`` and an
        ``UnknownAttackIdWarning`` naming the known ones.
        """
        key = normalize_tactic(shortname)
        for tac in self._tactics:
            if key in (tac.shortname, tac.attack_id.lower(), normalize_tactic(tac.name)):
                return tac
        if warn:
            warnings.warn(
                f"tactic {shortname!r} is unknown in ATT&CK {self.domain} v{self.version} "
                f"(known: {', '.join(t.shortname for t in self._tactics)})",
                UnknownAttackIdWarning, stacklevel=2,
            )
        return None

    def tactic_rank(self, shortname: str) -> int:
        """Kill-chain position of a tactic; unknown tactics sort after all known ones."""
        rank = self._rank.get(shortname)
        if rank is None:
            tac = self.resolve_tactic(shortname, warn=False)
            rank = self._rank[tac.shortname] if tac else len(self._rank)
        return rank

    # -- search ------------------------------------------------------------------------------
    def _build_search(self) -> None:
        parts: list[str] = []
        pos = 0
        for kind in Kind:
            for obj in self._listing(kind):
                names = [obj.attack_id, obj.name, *getattr(obj, "aliases", ())]
                text = "\x00".join(names).casefold() + "\n"
                self._search_starts.append(pos)
                self._search_entries.append((kind, obj.attack_id, obj.name))
                parts.append(text)
                pos += len(text)
        self._search_text = "".join(parts)

    def search(self, text: str, types: Iterable[Kind | str] | None = None, limit: int = 50) -> list[SearchHit]:
        """Objects whose id, name or alias contains ``text`` (case-insensitive).

        Ranked: exact id or name, then prefix, then anywhere; ties by kind and id.
        """
        if self._search_text is None:
            self._build_search()
        assert self._search_text is not None
        query = text.strip().casefold()
        if not query:
            return []
        kinds = {Kind(t) for t in types} if types is not None else None
        hay = self._search_text
        seen: dict[int, int] = {}
        at = hay.find(query)
        while at != -1:
            entry = bisect_right(self._search_starts, at) - 1
            start = self._search_starts[entry]
            before = hay[at - 1] if at > start else "\x00"
            end = at + len(query)
            after = hay[end] if end < len(hay) else "\n"
            score = 2 if before not in "\x00" else (0 if after in "\x00\n" else 1)
            if score < seen.get(entry, 3):
                seen[entry] = score
            at = hay.find(query, at + 1)
        order = {k: n for n, k in enumerate(Kind)}
        hits = sorted(
            (e for e in seen if kinds is None or self._search_entries[e][0] in kinds),
            key=lambda e: (seen[e], order[self._search_entries[e][0]], self._search_entries[e][1]),
        )
        return [SearchHit(*self._search_entries[e]) for e in hits[:limit]]
