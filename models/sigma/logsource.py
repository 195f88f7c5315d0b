"""Sigma logsource → Windows event coordinates (channel, event ids, field names).

The tables are not typed here: they are read from pySigma's own pipelines, so the local
engine follows exactly what the SIEM conversions (and the SQLite reference) do:

* ``sigma.pipelines.sysmon``: generic categories (``process_creation`` …) → Sysmon event ids
  in ``Microsoft-Windows-Sysmon/Operational``;
* ``sigma.pipelines.windows`` (audit pipeline): ``process_creation`` → Security 4688 and the
  registry categories → Security 4657, with its field renames (``Image`` → ``NewProcessName`` …)
  and the fields 4657 cannot answer;
* ``sigma.pipelines.windows`` (logsource pipeline): PowerShell categories → channel + event id;
* ``sigma.pipelines.common``: service → channel(s) (``security`` → ``Security`` …).

Linux auditd (``product: linux, service: auditd``) is in none of the installed pySigma
pipelines (no channel, no field renames): its rules are written in auditd's own record field
names (``type``, ``a0``, ``exe``, ``key`` …), so they map, without renames, to the ``auditd``
channel that the telemetry reader gives every auditd record
(``dcoflow.connectors.telemetry.auditd.AUDITD_CHANNEL``).

A rule can therefore apply to several *variants* (e.g. Sysmon 1 and Security 4688); it
matches an event if any variant's test does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.pipelines.windows.windows import (
    generic_logsource_to_windows_audit_event_mapping,
    windows_audit_registry_categories,
    windows_audit_registry_fieldmappings,
    windows_audit_registry_unsupported_fields,
    windows_generic_category_channel_mapping,
)

# pySigma annotates this table with ast.Dict (an upstream slip); it is a plain dict.
_AUDIT_EVENTS = cast(dict[str, dict[str, Any]], generic_logsource_to_windows_audit_event_mapping)

# The generic Security-log renames of the windows audit pipeline (its last processing item,
# a FieldMappingTransformation that pySigma does not expose as a module constant).
AUDIT_FIELD_MAP: dict[str, str] = {
    "Image": "NewProcessName",
    "ParentImage": "ParentProcessName",
    "Details": "NewValue",
    "LogonId": "SubjectLogonId",
}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _channels(service: str) -> frozenset[str]:
    source = windows_logsource_mapping[service]
    return frozenset(str(s).lower() for s in _as_list(source))


@dataclass(frozen=True, slots=True)
class Variant:
    """Where and how a rule applies: lower-case channels, event ids (None = any), extra
    field conditions, field renames, and fields the variant cannot answer."""

    name: str
    channels: frozenset[str]
    event_ids: frozenset[str] | None = None
    conditions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    field_map: dict[str, str] = field(default_factory=dict)
    unsupported_fields: frozenset[str] = frozenset()


# The channel of Linux auditd records (the telemetry reader's ``AUDITD_CHANNEL``, lower-case).
AUDITD_CHANNEL = "auditd"


def variants_for(logsource: dict[str, str]) -> list[Variant]:
    """The event coordinates a logsource maps to; empty when no Windows or Linux auditd mapping applies."""
    product = (logsource.get("product") or "").lower()
    category = (logsource.get("category") or "").lower()
    service = (logsource.get("service") or "").lower()
    if product == "linux" and service == "auditd" and not category:
        return [Variant("auditd", frozenset({AUDITD_CHANNEL}))]
    if product != "windows":
        return []
    out: list[Variant] = []
    if category in sysmon_generic_logsource_eventid_mapping:
        ids = frozenset(str(i) for i in _as_list(sysmon_generic_logsource_eventid_mapping[category]))
        out.append(Variant("sysmon", _channels("sysmon"), ids))
    if category in _AUDIT_EVENTS:
        spec = dict(_AUDIT_EVENTS[category])
        ids = frozenset(str(i) for i in _as_list(spec.pop("EventID")))
        conds = tuple((k, tuple(str(v) for v in _as_list(vals))) for k, vals in spec.items())
        registry = category in windows_audit_registry_categories
        fmap = dict(windows_audit_registry_fieldmappings) if registry else {}
        for k, v in AUDIT_FIELD_MAP.items():
            fmap.setdefault(k, v)
        unsupported = frozenset(windows_audit_registry_unsupported_fields) if registry else frozenset()
        out.append(Variant("security-audit", _channels("security"), ids, conds, fmap, unsupported))
    if category in windows_generic_category_channel_mapping:
        info = windows_generic_category_channel_mapping[category]
        out.append(Variant(str(info["service"]), _channels(str(info["service"])), frozenset({str(info["EventID"])})))
    if not category and service in windows_logsource_mapping:
        # native service rules already use the channel's own field names: no renames
        out.append(Variant(service, _channels(service)))
    return out
