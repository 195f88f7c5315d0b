"""TheHive observables as STIX 2.1 indicators (pattern_type stix), so a case's IOCs sweep like any indicator.

TheHive 5 dataTypes (https://docs.strangebee.com/thehive/user-guides/analyst-corner/cases/observables/): hash,
ip, domain, fqdn, filename, url, registry, mail, hostname… Pure; ids from (case, observable id).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dcoflow.models.stix.common import DCOFLOW_IDENTITY_ID, FIXED_CREATED
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.rows import stix_time

_HASH_BY_LENGTH = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}


def quote(value: str) -> str:
    """A STIX pattern string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pattern_for(data_type: str, value: str) -> str | None:
    """The STIX pattern for one TheHive observable, or None when STIX has no equivalent."""
    value = value.strip()
    if not value:
        return None
    kind = data_type.lower()
    if kind == "hash":
        algorithm = _HASH_BY_LENGTH.get(len(value))
        return f"[file:hashes.'{algorithm}' = {quote(value.lower())}]" if algorithm else None
    if kind == "ip":
        try:
            version = ipaddress.ip_network(value, strict=False).version
        except ValueError:
            return None
        op = "ISSUBSET" if "/" in value else "="
        return f"[ipv{version}-addr:value {op} {quote(value)}]"
    if kind in ("domain", "fqdn"):
        return f"[domain-name:value = {quote(value.lower().rstrip('.'))}]"
    if kind == "filename":
        return f"[file:name = {quote(value)}]"
    if kind == "url":
        return f"[url:value = {quote(value)}]"
    if kind == "registry":
        return f"[windows-registry-key:key = {quote(value)}]"
    if kind == "mail":
        return f"[email-addr:value = {quote(value)}]"
    if kind in ("user", "user-account", "username"):
        return f"[user-account:account_login = {quote(value)}]"
    return None


def thehive_indicator(case_id: str, observable: Mapping[str, Any]) -> dict[str, Any] | None:
    pattern = pattern_for(str(observable.get("dataType", "")), str(observable.get("data", "")))
    if pattern is None:
        return None
    created_ms = observable.get("_createdAt")
    created = (stix_time(datetime.fromtimestamp(created_ms / 1000, UTC)) if isinstance(created_ms, int | float)
               else FIXED_CREATED)
    obs_id = str(observable.get("_id") or observable.get("data"))
    return {
        "type": "indicator", "spec_version": "2.1", "id": stix_id("indicator", "thehive", case_id, obs_id),
        "created": created, "modified": created, "valid_from": created, "created_by_ref": DCOFLOW_IDENTITY_ID,
        "name": f"TheHive {observable.get('dataType')} {str(observable.get('data'))[:80]}",
        "indicator_types": ["malicious-activity"], "pattern_type": "stix", "pattern": pattern,
        "external_references": [{"source_name": "thehive", "external_id": f"{case_id}/{obs_id}"}],
    }
