"""An incident as the start of an incident-response-support DCO: from a STIX incident (with the incident core
extension) and the objects around it, or from a TheHive case with its observables and procedures. Pure.

What the DCO takes from the incident: the link (``IncidentLink``: source, id, name), the ATT&CK techniques (the
threat profile), the affected hosts and the time window around the first activity (the scope), and the
indicators to sweep for. Objects are related to the incident by relationship (either direction), by the
incident's own ``*_ref(s)``, by a report/grouping holding it, or by being in the same bundle when it holds one
incident only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dcoflow.core.errors import ContentError
from dcoflow.models.operation import DcoSpec, DcoType, IncidentLink, Marking, Scope, ThreatProfile, Window
from dcoflow.models.stix.bundle import referenced_ids
from dcoflow.models.stix.followup_objects import INCIDENT_EXTENSION
from dcoflow.models.stix.hunt_objects import parse_time
from dcoflow.models.stix.markings import TLP_BY_ID, Tlp

# How far the examined time reaches around the incident's known activity (dwell time before first detection).
LOOKBACK = timedelta(days=14)
LOOKAHEAD = timedelta(days=1)
# How long the DCO may conduct (its own window, which the conduct gate checks) from when IR support starts.
SUPPORT_PERIOD = timedelta(days=30)
_TIME_PROPERTIES = ("first_seen", "last_seen", "first_observed", "last_observed", "start_time", "end_time")


@dataclass(slots=True)
class IncidentImport:
    """What one incident gives an IR-support DCO, and what it held that the DCO cannot use."""

    link: IncidentLink
    techniques: list[str] = field(default_factory=list)
    indicators: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)  # the incident's STIX objects, kept with the DCO
    tlp: Tlp = Tlp.AMBER
    warnings: list[str] = field(default_factory=list)

    def spec(self, name: str | None = None, *, now: datetime) -> DcoSpec:
        """The DCO spec: type incident-response-support, scope = affected hosts and the activity window around
        the first activity (``incident.activity_window``); the DCO's own window — when it may conduct — runs
        from ``now`` for ``SUPPORT_PERIOD``."""
        first = self.link.first_activity or now
        last = max(self.link.last_activity or first, first)
        link = self.link.model_copy(update={"activity_window": Window(
            start=first - LOOKBACK, end=max(last + LOOKAHEAD, first + LOOKAHEAD))})
        window = Window(start=now, end=now + SUPPORT_PERIOD)
        title = name or f"IR support: {self.link.name or self.link.ref}"
        return DcoSpec(
            name=title[:120], type=DcoType.INCIDENT_RESPONSE_SUPPORT,
            objective=f"Support the response to incident {self.link.name or self.link.ref}: sweep the affected "
                      "hosts for its indicators and hunt for its techniques around its first activity.",
            scope=Scope(hosts=self.link.hosts), window=window, marking=Marking(tlp=self.tlp),
            threat_profile=_profile(self.techniques),
            incident=link,
        )


def _profile(techniques: Sequence[str]) -> ThreatProfile:
    if not techniques:
        raise ContentError("the incident names no ATT&CK technique: an IR-support DCO needs at least one to hunt",
                           object="threat_profile",
                           hint="add attack-patterns (STIX) or procedures (TheHive) to the incident first")
    return ThreatProfile(techniques=list(techniques))


def _attack_id(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("external_references") or ():
        if ref.get("source_name") == "mitre-attack" and str(ref.get("external_id", "")).upper().startswith("T"):
            return str(ref["external_id"]).upper()
    return None


def _times(objects: Sequence[Mapping[str, Any]]) -> list[datetime]:
    found = []
    for obj in objects:
        for key in _TIME_PROPERTIES:
            value = obj.get(key)
            moment = parse_time(str(value)) if value else None
            if moment is not None:
                found.append(moment)
    return found


def from_stix(objects: Sequence[dict[str, Any]], where: str, incident_id: str | None = None) -> IncidentImport:
    """The incident of a bundle or TAXII collection (``incident_id`` when it holds several)."""
    by_id = {o["id"]: o for o in objects if isinstance(o, dict) and "id" in o}
    incidents = [o for o in by_id.values() if o.get("type") == "incident"]
    if incident_id:
        incidents = [o for o in incidents if o["id"] == incident_id]
    if not incidents:
        raise ContentError(f"{where} holds no incident" + (f" {incident_id}" if incident_id else ""),
                           object=where, hint="give a bundle or collection holding a STIX 2.1 incident")
    if len(incidents) > 1:
        raise ContentError(f"{where} holds {len(incidents)} incidents", object=where,
                           hint="name one: " + ", ".join(sorted(o["id"] for o in incidents)[:5]))
    incident = incidents[0]
    ext = (incident.get("extensions") or {}).get(INCIDENT_EXTENSION)
    warnings = [] if isinstance(ext, dict) else [
        f"{incident['id']} lacks the incident core extension ({INCIDENT_EXTENSION}): no status or impacts read"]
    related = _related(incident, by_id, single=len([o for o in objects if o.get("type") == "incident"]) == 1)
    techniques = sorted({t for o in related if o.get("type") == "attack-pattern" and (t := _attack_id(o))})
    indicators = [o for o in related if o.get("type") == "indicator"]
    hosts = sorted({str(h).lower() for o in related for h in _hosts(o)})
    times = _times([*related, *(ext.get("events", []) if isinstance(ext, dict) else [])])
    tlp_levels = [TLP_BY_ID[r] for r in incident.get("object_marking_refs") or () if r in TLP_BY_ID]
    link = IncidentLink(source="stix", ref=incident["id"], name=incident.get("name"),
                        first_activity=min(times) if times else None, last_activity=max(times) if times else None,
                        hosts=hosts, indicators=sorted(o["id"] for o in indicators))
    if not times:
        warnings.append(f"{incident['id']}: no first activity found (first_seen/first_observed/start_time); "
                        "the window is centred on now")
    return IncidentImport(link=link, techniques=techniques, indicators=indicators, objects=[incident, *related],
                          tlp=max(tlp_levels, key=list(Tlp).index) if tlp_levels else Tlp.AMBER,
                          warnings=warnings)


def _related(incident: dict[str, Any], by_id: Mapping[str, dict[str, Any]], *, single: bool) -> list[dict[str, Any]]:
    """The objects around the incident, one and two hops out (indicator → observed SCOs, sighting → observed)."""
    wanted = referenced_ids([incident])
    for obj in by_id.values():
        if obj.get("type") == "relationship" and incident["id"] in (obj.get("source_ref"), obj.get("target_ref")):
            wanted |= {obj["source_ref"], obj["target_ref"], obj["id"]}
        elif obj.get("type") in ("report", "grouping") and incident["id"] in (obj.get("object_refs") or ()):
            wanted |= set(obj["object_refs"])
        elif obj.get("type") == "sighting" and incident["id"] in (obj.get("x_dco_incident_ref"),):
            wanted.add(obj["id"])
    if single:  # a bundle about one incident: everything in it is its evidence
        wanted |= {i for i, o in by_id.items() if o.get("type") not in ("marking-definition", "identity")}
    second = referenced_ids([by_id[i] for i in wanted if i in by_id])
    wanted |= second
    wanted.discard(incident["id"])
    return [by_id[i] for i in sorted(wanted) if i in by_id]


def _hosts(obj: Mapping[str, Any]) -> list[str]:
    kind = obj.get("type")
    if kind == "infrastructure" and obj.get("name"):
        return [str(obj["name"])]
    if kind == "identity" and obj.get("identity_class") == "system" and obj.get("x_dco_host"):
        return [str(obj["x_dco_host"])]
    if kind == "sighting" and obj.get("x_dco_host"):
        return [str(obj["x_dco_host"])]
    return [str(h) for h in obj.get("x_dco_hosts") or ()]


def from_thehive(case: Mapping[str, Any], observables: Sequence[Mapping[str, Any]],
                 procedures: Sequence[Mapping[str, Any]]) -> IncidentImport:
    """A TheHive 5 case: procedures (patternId T…, occurDate) give the techniques, ``hostname`` observables the
    hosts, the case's startDate and the procedures' occurDate the window; IOC observables become indicators."""
    from dcoflow.models.ir.observables import thehive_indicator

    case_id = str(case.get("_id") or case.get("id") or "")
    if not case_id:
        raise ContentError("TheHive case without _id", object="thehive")
    name = str(case.get("title") or f"case {case.get('number', case_id)}")
    techniques = sorted({str(p["patternId"]).upper() for p in procedures if p.get("patternId")})
    hosts = sorted({str(o["data"]).lower() for o in observables if o.get("dataType") == "hostname" and o.get("data")})
    stamps = [int(v) for v in (case.get("startDate"), *(p.get("occurDate") for p in procedures))
              if isinstance(v, int | float)]
    times = [datetime.fromtimestamp(v / 1000, UTC) for v in stamps]
    warnings: list[str] = []
    indicators = []
    for obs in observables:
        if obs.get("dataType") == "hostname":
            continue
        ind = thehive_indicator(case_id, obs)
        if ind is None:
            warnings.append(f"observable {obs.get('_id')} ({obs.get('dataType')}) has no STIX pattern equivalent")
        else:
            indicators.append(ind)
    tlp = {0: Tlp.CLEAR, 1: Tlp.GREEN, 2: Tlp.AMBER, 3: Tlp.AMBER_STRICT, 4: Tlp.RED}.get(int(case.get("tlp", 2)),
                                                                                         Tlp.AMBER)
    link = IncidentLink(source="thehive", ref=case_id, name=name, first_activity=min(times) if times else None,
                        last_activity=max(times) if times else None, hosts=hosts,
                        indicators=[i["id"] for i in indicators])
    return IncidentImport(link=link, techniques=techniques, indicators=indicators, objects=list(indicators), tlp=tlp,
                          warnings=warnings)
