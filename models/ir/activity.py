"""The IR activity of an incident-response-support DCO, for the incident manager: hosts swept and when,
indicators found where, first and last seen, a dwell-time estimate and the containment actions — read from the
DCO's STIX evidence (sweep groupings, sweep sightings, course-of-action objects). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dcoflow.models.operation import IncidentLink
from dcoflow.models.stix.hunt_objects import parse_time

OPEN_STATUSES = frozenset({"open", "in-progress", "planned", "new"})


@dataclass(slots=True)
class IrActivity:
    dco_id: str
    incident: IncidentLink | None
    sweeps: list[dict[str, Any]] = field(default_factory=list)  # {at, source, hosts, events, counts}
    hosts_swept: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)  # {indicator, name, hosts, count, first, last}
    hosts_with_findings: list[str] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    detected_at: datetime | None = None
    containment: list[dict[str, Any]] = field(default_factory=list)  # {title, owner, status, source}

    @property
    def dwell_days(self) -> float | None:
        """Detection minus the earliest malicious activity known (sweep hits or the incident's own record)."""
        starts = [t for t in (self.first_seen, self.incident.first_activity if self.incident else None) if t]
        if not starts or self.detected_at is None:
            return None
        return max(0.0, (self.detected_at - min(starts)).total_seconds() / 86400)

    @property
    def title(self) -> str:
        return (self.incident.name or self.incident.ref) if self.incident else self.dco_id

    @property
    def open_actions(self) -> int:
        return sum(1 for c in self.containment if c["status"] in OPEN_STATUSES)

    @property
    def last_swept(self) -> str | None:
        return str(self.sweeps[-1]["at"]) if self.sweeps else None

    @property
    def dwell_text(self) -> str:
        return f"{self.dwell_days:.1f} days" if self.dwell_days is not None else "unknown (no activity time)"

    def status_line(self) -> str:
        """The executive one-liner (the IR brief and the meeting pack both print this)."""
        dwell = f"; dwell ≈ {self.dwell_days:.1f} days" if self.dwell_days is not None else ""
        return (f"{self.title}: indicators on {len(self.hosts_with_findings)} of {len(self.hosts_swept)} hosts "
                f"swept ({len(self.sweeps)} sweeps){dwell}; containment {len(self.containment) - self.open_actions} "
                f"done, {self.open_actions} open")

    def as_dict(self) -> dict[str, Any]:
        return {"dco": self.dco_id, "incident": self.incident.model_dump(mode="json") if self.incident else None,
                "sweeps": self.sweeps, "hosts_swept": self.hosts_swept, "findings": self.findings,
                "hosts_with_findings": self.hosts_with_findings,
                "first_seen": self.first_seen.isoformat() if self.first_seen else None,
                "last_seen": self.last_seen.isoformat() if self.last_seen else None,
                "detected_at": self.detected_at.isoformat() if self.detected_at else None,
                "dwell_days": self.dwell_days, "containment": self.containment, "status_line": self.status_line()}


def _time(value: Any) -> datetime | None:
    return parse_time(str(value)) if value else None


def ir_activity(dco_id: str, incident: IncidentLink | None, objects: Sequence[Mapping[str, Any]],
                detected_at: datetime | None) -> IrActivity:
    out = IrActivity(dco_id, incident, detected_at=detected_at)
    names = {o["id"]: str(o.get("name") or o["id"]) for o in objects if o.get("type") == "indicator"}
    hosts: set[str] = set()
    for obj in objects:
        kind = obj.get("type")
        if kind == "grouping" and isinstance(obj.get("x_dco_sweep"), Mapping):
            sweep = obj["x_dco_sweep"]
            out.sweeps.append({"at": obj.get("x_dco_swept_at"), "source": sweep.get("source"),
                               "hosts": sorted(sweep.get("hosts") or {}), "events": sweep.get("events"),
                               "counts": sweep.get("counts")})
            hosts.update(h for h in sweep.get("hosts") or {} if h != "(unknown)")
        elif kind == "sighting" and obj.get("x_dco_sweep"):
            first, last = _time(obj.get("first_seen")), _time(obj.get("last_seen"))
            out.findings.append({"indicator": obj.get("sighting_of_ref"),
                                 "name": names.get(str(obj.get("sighting_of_ref")), obj.get("sighting_of_ref")),
                                 "hosts": list(obj.get("x_dco_hosts") or []), "count": obj.get("count"),
                                 "first_seen": obj.get("first_seen"), "last_seen": obj.get("last_seen")})
            if first and (out.first_seen is None or first < out.first_seen):
                out.first_seen = first
            if last and (out.last_seen is None or last > out.last_seen):
                out.last_seen = last
        elif kind == "course-of-action":
            out.containment.append({"title": obj.get("name"), "owner": obj.get("x_dco_owner"),
                                    "status": str(obj.get("x_dco_status") or "open"),
                                    "source": "by hand" if obj.get("x_dco_containment") else "incident"})
    out.sweeps.sort(key=lambda s: str(s["at"]))
    out.hosts_with_findings = sorted({h for f in out.findings for h in f["hosts"]})
    # a SIEM sweep counts on the server and names no hosts but those of its hits, which were swept too
    out.hosts_swept = sorted(hosts | {h for h in out.hosts_with_findings if h != "(unknown)"})
    out.findings.sort(key=lambda f: str(f["first_seen"] or ""))
    return out


def ir_brief_markdown(activity: IrActivity) -> str:
    """The short technical IR-support brief, with the executive status line on top."""
    inc = activity.incident
    lines = [f"# IR support — {activity.title}", "",
             f"**Status:** {activity.status_line()}", ""]
    if inc is not None:
        lines += [f"Incident `{inc.ref}` ({inc.source}); affected hosts named: {', '.join(inc.hosts) or 'none'}.", ""]
    lines += ["## Sweeps", "", "| when | source | hosts | events | found |", "|---|---|---|---|---|"]
    lines += [f"| {s['at']} | {s['source']} | {len(s['hosts'])} | {s['events']} | "
              f"{(s['counts'] or {}).get('found', 0)} |" for s in activity.sweeps] or ["| — | no sweep yet | | | |"]
    lines += ["", "## Indicators found", "", "| indicator | hosts | matches | first seen | last seen |",
              "|---|---|---|---|---|"]
    lines += [f"| {f['name']} | {', '.join(f['hosts'])} | {f['count']} | {f['first_seen']} | {f['last_seen']} |"
              for f in activity.findings] or ["| none found | | | | |"]
    lines += ["", "## Timeline", "",
              f"- first malicious activity seen: {activity.first_seen.isoformat() if activity.first_seen else '—'}",
              f"- last seen: {activity.last_seen.isoformat() if activity.last_seen else '—'}",
              f"- detected: {activity.detected_at.isoformat() if activity.detected_at else '—'}",
              f"- dwell-time estimate: {activity.dwell_text}", "", "## Containment", "",
              "| action | owner | status | from |", "|---|---|---|---|"]
    lines += [f"| {c['title']} | {c['owner'] or '—'} | {c['status']} | {c['source']} |" for c in activity.containment] \
        or ["| none recorded | | | |"]
    return "\n".join(lines) + "\n"
