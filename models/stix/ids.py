"""Deterministic STIX identifiers.

SDOs/SROs: ``uuid5(DCOFLOW_NAMESPACE, natural key)`` so a retried or resumed task
produces the same id and the store keeps one object. SCOs follow STIX 2.1 §2.9: uuid5
under the OASIS namespace over the canonical JSON of their id-contributing properties.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

DCOFLOW_NAMESPACE = uuid.UUID("7b3f5a59-5f06-4f0c-9a8f-6a7d1c0f2d1e")
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")  # STIX 2.1 §2.9

# STIX 2.1 id-contributing properties per SCO type (§6).
SCO_ID_PROPERTIES: dict[str, tuple[str, ...]] = {
    "process": (),  # no id-contributing properties: random per spec; we key it ourselves
    "file": ("hashes", "name", "extensions", "parent_directory_ref"),
    "user-account": ("account_type", "user_id", "account_login"),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "domain-name": ("value",),
    "url": ("value",),
    "network-traffic": ("start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"),
    "windows-registry-key": ("key", "values"),
    "directory": ("path",),
    "software": ("name", "cpe", "swid", "vendor", "version"),
}


def natural_uuid(kind: str, *natural_key: object) -> uuid.UUID:
    """uuid5 under dcoflow's namespace over ``kind|key…``: the root of every deterministic id."""
    key = "|".join(str(k) for k in natural_key)
    return uuid.uuid5(DCOFLOW_NAMESPACE, f"{kind}|{key}")


def stix_id(stix_type: str, *natural_key: object) -> str:
    """The id of an SDO/SRO from its natural key, e.g. ``stix_id("sighting", dco, rule, event)``."""
    return f"{stix_type}--{natural_uuid(stix_type, *natural_key)}"


def row_id(kind: str, *natural_key: object) -> str:
    """A table row's id from its natural key: the uuid of ``stix_id(kind, …)`` without the type."""
    return str(natural_uuid(kind, *natural_key))


def sco_id(stix_type: str, properties: dict[str, Any], *fallback_key: object) -> str:
    """STIX 2.1 deterministic SCO id; types without contributing properties use ``fallback_key``."""
    wanted = SCO_ID_PROPERTIES.get(stix_type, ())
    contributing = {k: properties[k] for k in wanted if properties.get(k) not in (None, "", [], {})}
    if not contributing:
        return stix_id(stix_type, *(fallback_key or (orjson.dumps(properties, option=orjson.OPT_SORT_KEYS),)))
    canonical = orjson.dumps(contributing, option=orjson.OPT_SORT_KEYS).decode()
    return f"{stix_type}--{uuid.uuid5(SCO_NAMESPACE, canonical)}"
