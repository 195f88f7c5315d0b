"""Pure builders of the STIX 2.1 objects a hunt produces (docs/STIX.md), as plain dicts.

- ``indicator`` per Sigma rule (pattern_type ``sigma``, pattern = rule YAML), id from the rule id;
- ``relationship`` ``indicates`` → the ATT&CK attack-pattern of each tagged technique the catalog knows
  (ids it does not know stay in ``x_dco_technique_ids`` and are reported by the caller);
- ``observed-data`` per matching event with its SCOs (process, file, directory, user-account,
  ipv4/ipv6-addr, domain-name) read from Sysmon/Windows field names or their ECS equivalents;
- ``sighting`` per (DCO, rule, event) of the indicator, where_sighted = the data source identity;
- ``grouping`` per hunt run; ``opinion`` per triage verdict.

Everything is deterministic: ids from natural keys (``dcoflow.models.stix.ids``) and, apart from
``ctx.now``, no clock reads, so building the same hunt twice gives identical objects.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from dcoflow.models.hunting import RuleInfo
from dcoflow.models.stix.common import DcoContext, common_properties, system_identity
from dcoflow.models.stix.ids import sco, stix_id
from dcoflow.models.stix.rows import stix_time


@dataclass(frozen=True, slots=True)
class StixContext(DcoContext):
    """A hunt recording's context: the DCO's (id, markings) plus the data source and 'now'."""

    source_identity_id: str
    now: str


def data_source_identity(name: str, ctx_dco: str | None = None) -> dict[str, Any]:
    """The system the events came from (a telemetry file set, a SIEM index), as an identity."""
    return system_identity(name, **({"x_dco_id": ctx_dco} if ctx_dco else {}))


# -- rules ------------------------------------------------------------------------------------------
def indicator_id(rule_id: str) -> str:
    return stix_id("indicator", rule_id)


def indicator(rule: RuleInfo, ctx: StixContext) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1", "id": indicator_id(rule.rule_id),
        "created": ctx.now, "modified": ctx.now, "valid_from": ctx.now,
        "name": rule.title or rule.rule_id,
        "indicator_types": ["malicious-activity"],
        "pattern_type": "sigma", "pattern": rule.yaml or f"# Sigma rule {rule.rule_id} ({rule.path})",
        "external_references": [{"source_name": "sigma", "external_id": rule.rule_id}],
        "x_dco_rule_id": rule.rule_id,
        "x_dco_technique_ids": [t.upper() for t in rule.technique_ids],
        **ctx.properties(),
    }
    if rule.level:
        obj["x_dco_level"] = rule.level
    return obj


def indicates(rule: RuleInfo, technique_refs: Mapping[str, str], ctx: StixContext) -> list[dict[str, Any]]:
    """``indicates`` relationships to the attack-patterns of the rule's techniques the catalog knows."""
    source = indicator_id(rule.rule_id)
    out = []
    for target in dict.fromkeys(technique_refs[t.upper()] for t in rule.technique_ids if t.upper() in technique_refs):
        out.append({
            "type": "relationship", "spec_version": "2.1", "id": stix_id("relationship", "indicates", source, target),
            "created": ctx.now, "modified": ctx.now, "relationship_type": "indicates",
            "source_ref": source, "target_ref": target, **ctx.properties(),
        })
    return out


# -- events -----------------------------------------------------------------------------------------
_ALIASES: dict[str, tuple[str, ...]] = {
    "image": ("image", "process.executable", "newprocessname"),
    "command_line": ("commandline", "process.command_line", "process_command_line"),
    "pid": ("processid", "process.pid", "newprocessid"),
    "process_guid": ("processguid", "process.entity_id"),
    "parent_image": ("parentimage", "process.parent.executable", "parentprocessname"),
    "parent_command_line": ("parentcommandline", "process.parent.command_line"),
    "parent_pid": ("parentprocessid", "process.parent.pid"),
    "parent_guid": ("parentprocessguid", "process.parent.entity_id"),
    "user": ("user", "user.name", "subjectusername"),
    "user_domain": ("subjectdomainname", "user.domain"),
    "target_filename": ("targetfilename", "file.path", "objectname"),
    "source_ip": ("sourceip", "source.ip", "ipaddress", "src_ip"),
    "dest_ip": ("destinationip", "destination.ip", "dest_ip"),
    "dest_host": ("destinationhostname", "destination.domain"),
    "query": ("queryname", "dns.question.name"),
    "host": ("computer", "hostname", "host.name", "computername", "host"),
    "record": ("eventrecordid", "recordnumber", "record_id", "event.sequence", "_cd", "_id"),
    "time": ("utctime", "@timestamp", "timecreated", "eventtime", "timestamp", "_time", "systemtime"),
    "hashes": ("hashes",),
    "channel": ("channel", "winlog.channel", "log.channel"),
}
_HASH_NAMES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256"}
_HASH_LENGTHS = {"MD5": 32, "SHA-1": 40, "SHA-256": 64}


def _flatten(event: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {} if out is None else out
    for key, value in event.items():
        name = f"{prefix}{key}".lower()
        if isinstance(value, Mapping):
            _flatten(value, name + ".", out)
        else:
            out.setdefault(name, value)
    return out


@dataclass(slots=True)
class EventView:
    """Case-insensitive, alias-aware access to the fields of one event (Sysmon/Windows or ECS names)."""

    flat: dict[str, Any]

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> EventView:
        return cls(_flatten(event))

    def get(self, what: str) -> str | None:
        for name in _ALIASES.get(what, (what,)):
            value = self.flat.get(name)
            if isinstance(value, list):
                value = value[0] if value else None
            if value not in (None, "", "-"):
                return str(value)
        return None


def event_host(event: Mapping[str, Any] | EventView) -> str | None:
    view = event if isinstance(event, EventView) else EventView.of(event)
    host = view.get("host")
    return host.lower() if host else None


def parse_time(text: str) -> datetime | None:
    """Sysmon ``2020-09-21 19:04:12.123``, ISO 8601 with ``Z``/offset, or epoch seconds (Splunk ``_time``)."""
    value = text.strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
        return datetime.fromtimestamp(float(value), UTC)
    value = value.replace("Z", "+00:00")
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)  # .NET 7-digit fractions
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def event_time(event: Mapping[str, Any] | EventView) -> datetime | None:
    view = event if isinstance(event, EventView) else EventView.of(event)
    text = view.get("time")
    return parse_time(text) if text else None


def event_key(event: Mapping[str, Any], view: EventView | None = None) -> str:
    """host + record id when the event has them, else a hash of the whole event (``view``: of ``event``)."""
    view = view or EventView.of(event)
    host, record = view.get("host"), view.get("record")
    if host and record:
        return f"{host.lower()}#{record}"
    return "sha256:" + hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def _split_path(path: str) -> tuple[str | None, str]:
    cut = max(path.rfind("\\"), path.rfind("/"))
    return (path[:cut] or None, path[cut + 1:]) if cut >= 0 else (None, path)


def _hashes(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        name, _, value = part.partition("=")
        stix_name = _HASH_NAMES.get(name.strip().lower())
        digest = value.strip().lower()
        # only well-formed digests: a malformed one would make the whole bundle invalid on export
        if stix_name and len(digest) == _HASH_LENGTHS[stix_name] and re.fullmatch(r"[0-9a-f]+", digest):
            out[stix_name] = digest
    return out


class _Scos:
    """Collects the SCOs of one event, deduplicated by id."""

    def __init__(self, ctx: StixContext) -> None:
        self.ctx = ctx
        self.objects: dict[str, dict[str, Any]] = {}

    def add(self, stix_type: str, props: dict[str, Any], *fallback: object) -> str:
        props = {k: v for k, v in props.items() if v not in (None, "", [], {})}
        obj = sco(stix_type, props, *fallback)
        if obj["id"] not in self.objects:
            obj.update({"object_marking_refs": list(self.ctx.marking_refs), "x_dco_id": self.ctx.dco_id})
            self.objects[obj["id"]] = obj
        return str(obj["id"])

    def file(self, path: str, hashes: dict[str, str] | None = None) -> str:
        directory, name = _split_path(path)
        dir_ref = self.add("directory", {"path": directory}) if directory else None
        return self.add("file", {"name": name, "parent_directory_ref": dir_ref, "hashes": hashes or None})

    def ip(self, value: str) -> str:
        return self.add("ipv6-addr" if ":" in value else "ipv4-addr", {"value": value})


def _pid(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def observables(event: Mapping[str, Any], ctx: StixContext) -> list[dict[str, Any]]:
    """The SCOs an event names: process (+ image file, parent, creator user), files, addresses, domains."""
    view = EventView.of(event)
    scos = _Scos(ctx)
    host = view.get("host") or ""
    user = view.get("user")
    user_ref = None
    if user:
        domain = view.get("user_domain")
        full = f"{domain}\\{user}" if domain and "\\" not in user else user
        login = full.rsplit("\\", 1)[-1]
        user_ref = scos.add("user-account", {"user_id": full, "account_login": login})
    parent_ref = None
    parent_image = view.get("parent_image")
    if parent_image or view.get("parent_pid"):
        parent_props = {
            "pid": _pid(view.get("parent_pid")),
            "command_line": view.get("parent_command_line"),
            "image_ref": scos.file(parent_image) if parent_image else None,
        }
        parent_ref = scos.add("process", parent_props, host, view.get("parent_guid") or view.get("parent_pid"),
                              parent_image)
    image = view.get("image")
    if image or view.get("command_line"):
        props = {
            "pid": _pid(view.get("pid")),
            "command_line": view.get("command_line"),
            "image_ref": scos.file(image, _hashes(view.get("hashes"))) if image else None,
            "parent_ref": parent_ref,
            "creator_user_ref": user_ref,
        }
        scos.add("process", props, host, view.get("process_guid") or view.get("pid"), image, view.get("command_line"))
    target = view.get("target_filename")
    if target:
        scos.file(target)
    for key in ("source_ip", "dest_ip"):
        value = view.get(key)
        if value and re.fullmatch(r"[0-9a-fA-F:.]+", value) and value not in ("::", "0.0.0.0"):
            scos.ip(value)
    for key in ("dest_host", "query"):
        value = view.get(key)
        if value and "." in value:
            scos.add("domain-name", {"value": value.lower().rstrip(".")})
    return list(scos.objects.values())


def observed_data(event: Mapping[str, Any], scos: Sequence[Mapping[str, Any]], ctx: StixContext) -> dict[str, Any]:
    view = EventView.of(event)
    seen = event_time(view)
    when = stix_time(seen) if seen else ctx.now
    oid = stix_id("observed-data", ctx.dco_id, event_key(event, view))
    return {
        "type": "observed-data", "spec_version": "2.1", "id": oid,
        "created": ctx.now, "modified": ctx.now, "first_observed": when, "last_observed": when,
        "number_observed": 1, "object_refs": [s["id"] for s in scos], **ctx.properties(),
    }


def sighting_id(dco_id: str, rule_id: str, key: str) -> str:
    return stix_id("sighting", dco_id, rule_id, key)


def sighting(
    rule: RuleInfo,
    event: Mapping[str, Any],
    observed_data_id: str | None,
    ctx: StixContext,
    *,
    hunt_run_id: str,
    exercise: bool,
) -> dict[str, Any]:
    view = EventView.of(event)
    seen = event_time(view)
    obj: dict[str, Any] = {
        "type": "sighting", "spec_version": "2.1", "id": sighting_id(ctx.dco_id, rule.rule_id, event_key(event, view)),
        "created": ctx.now, "modified": ctx.now, "sighting_of_ref": indicator_id(rule.rule_id),
        "where_sighted_refs": [ctx.source_identity_id], "count": 1,
        "x_dco_rule_id": rule.rule_id, "x_dco_technique_ids": [t.upper() for t in rule.technique_ids],
        "x_dco_hunt_run": hunt_run_id, "x_dco_exercise": exercise, "x_dco_host": event_host(view),
        **ctx.properties(),
    }
    if observed_data_id:
        obj["observed_data_refs"] = [observed_data_id]
    if seen:
        obj["first_seen"] = obj["last_seen"] = stix_time(seen)
    return obj


def hunt_grouping(
    run_id: str,
    ctx: StixContext,
    *,
    name: str,
    object_refs: Iterable[str],
    rules: Sequence[Mapping[str, Any]],
    channels: Mapping[str, int],
    source: str,
) -> dict[str, Any]:
    """One hunt run: its indicators, sightings and observed-data, with per-rule hits and inputs read."""
    refs = sorted(set(object_refs)) or [ctx.source_identity_id]  # a grouping needs at least one ref
    return {
        "type": "grouping", "spec_version": "2.1", "id": stix_id("grouping", ctx.dco_id, run_id),
        "created": ctx.now, "modified": ctx.now, "name": name, "context": "suspicious-activity",
        "object_refs": refs, "x_dco_hunt_run": run_id, "x_dco_rules": [dict(r) for r in rules],
        "x_dco_channels": dict(channels), "x_dco_source": source, **ctx.properties(),
    }


OPINION_FOR_VERDICT = {"true-positive": "agree", "false-positive": "disagree", "benign": "neutral"}


def opinion(
    sighting_obj: Mapping[str, Any], verdict: str, analyst: str, note: str | None, *, created: str, modified: str
) -> dict[str, Any]:
    """The analyst's verdict on a sighting; same id per (sighting, analyst), a re-triage is a new ``modified``."""
    return {
        "type": "opinion", "spec_version": "2.1", "id": stix_id("opinion", sighting_obj["id"], analyst),
        "created": created, "modified": modified, "opinion": OPINION_FOR_VERDICT[verdict],
        "explanation": note or f"{verdict} ({analyst})", "authors": [analyst],
        "object_refs": [sighting_obj["id"]], "x_dco_verdict": verdict,
        **common_properties(sighting_obj["x_dco_id"], sighting_obj.get("object_marking_refs", [])),
    }
