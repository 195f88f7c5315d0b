"""Field-name and value normalisation shared by every telemetry reader.

Sources spell the same Windows fields differently: Security-Datasets (NXLog) JSON has both
``ProcessId`` and ``ProcessID``, ``TargetProcessGUID``/``TargetProcessGuid``, and channels
``Security`` and ``security``; EVTX nests the same data under ``Event.System`` /
``Event.EventData``. :func:`normalise_event` gives every field its canonical spelling (the
Sigma/Sysmon taxonomy) and every well-known channel its canonical case, so that rules and
downstream code see one vocabulary; :func:`match_view` is the same event as the Sigma matcher
reads it (lower-case keys), built in one pass for the common flat record.
"""

from __future__ import annotations

from typing import Any

# Canonical spellings whose variants differ only by case. A variant is renamed only when the
# canonical key is absent from the event, so no value is ever overwritten.
CANONICAL_FIELDS: tuple[str, ...] = (
    "EventID", "Channel", "Computer", "Provider_Name", "ProcessId", "ProcessGuid", "ParentProcessId",
    "ParentProcessGuid", "SourceProcessGuid", "SourceProcessId", "TargetProcessGuid", "TargetProcessId",
    "Image", "ParentImage", "CommandLine", "ParentCommandLine", "OriginalFileName", "TargetFilename",
    "TargetObject", "Details", "ImageLoaded", "SourceImage", "TargetImage", "GrantedAccess", "CallTrace",
    "User", "LogonId", "IntegrityLevel", "Hashes", "DestinationIp", "DestinationPort", "DestinationHostname",
    "SourceIp", "SourcePort", "PipeName", "QueryName", "ScriptBlockText", "ServiceName", "ServiceFileName",
    "ImagePath", "TaskName", "Hostname", "ThreadId",
)
_CANONICAL_BY_LOWER = {name.lower(): name for name in CANONICAL_FIELDS}

# Windows event log channels, canonical case (the names the pySigma windows pipeline emits).
CANONICAL_CHANNELS: tuple[str, ...] = (
    "Security", "System", "Application", "Windows PowerShell", "Microsoft-Windows-PowerShell/Operational",
    "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-WMI-Activity/Operational",
    "Microsoft-Windows-TaskScheduler/Operational", "Microsoft-Windows-Windows Defender/Operational",
    "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",
    "Microsoft-Windows-Bits-Client/Operational", "Microsoft-Windows-DNS-Client/Operational",
)
_CHANNEL_BY_LOWER = {name.lower(): name for name in CANONICAL_CHANNELS}


def canonical_channel(channel: str) -> str:
    return _CHANNEL_BY_LOWER.get(channel.lower(), channel)


def normalise_event(raw: dict[str, Any]) -> dict[str, Any]:
    """Canonical field names and channel case; nested mappings are flattened with ``_`` joins."""
    out: dict[str, Any] = {}
    pending: list[tuple[str, Any]] = []
    for key, value in raw.items():
        if isinstance(value, dict):
            for sub_key, sub_value in _flatten(key, value):
                out.setdefault(sub_key, sub_value)
            continue
        canon = _CANONICAL_BY_LOWER.get(key.lower())
        if canon is not None and canon != key:
            pending.append((canon, value))
        else:
            out[key] = value
    for canon, value in pending:  # variants last: an explicit canonical key always wins
        if canon in out:
            out[f"{canon}_variant"] = value
        else:
            out[canon] = value
    channel = out.get("Channel")
    if isinstance(channel, str):
        out["Channel"] = canonical_channel(channel)
    return out


# Records of one source repeat a few hundred key layouts: the lowered keys of each layout (or
# ``()`` when two keys collide once lowered) are computed once. Bounded: emptied when full.
_LOWERED_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}
_LOWERED_KEYS_MAX = 4096
_VIEW_CHANNEL: dict[str, str] = {}  # channel as read → canonical case (few distinct values)


def match_view(raw: dict[str, Any]) -> dict[str, Any]:
    """The event as the Sigma matcher reads it: ``normalise_event(raw)`` with lower-case keys.

    Lower-casing already merges the case variants that ``normalise_event`` renames, so a flat record
    whose keys stay distinct when lower-cased is its values zipped with the lowered keys of its key
    layout (cached per layout); records with nested mappings or colliding keys (``ProcessId`` and
    ``ProcessID``) take the full normalisation, which keeps both values. The hunt normalises an event
    fully only when it keeps it as a sample.
    """
    keys = tuple(raw)
    lowered = _LOWERED_KEYS.get(keys)
    if lowered is None:
        if len(_LOWERED_KEYS) >= _LOWERED_KEYS_MAX:
            _LOWERED_KEYS.clear()
        low = tuple(k.lower() for k in keys)
        lowered = _LOWERED_KEYS[keys] = low if len(set(low)) == len(low) else ()
    values = raw.values()
    if not lowered or dict in set(map(type, values)):
        return {k.lower(): v for k, v in normalise_event(raw).items()}
    view = dict(zip(lowered, values, strict=True))
    channel = view.get("channel")
    if channel.__class__ is str:
        canon = _VIEW_CHANNEL.get(channel)
        if canon is None:
            if len(_VIEW_CHANNEL) >= _LOWERED_KEYS_MAX:
                _VIEW_CHANNEL.clear()
            canon = _VIEW_CHANNEL[channel] = _CHANNEL_BY_LOWER.get(channel.lower(), channel)
        view["channel"] = canon
    return view


def _flatten(prefix: str, value: dict[str, Any]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for k, v in value.items():
        key = f"{prefix}_{k}"
        if isinstance(v, dict):
            items.extend(_flatten(key, v))
        else:
            items.append((key, v))
    return items
