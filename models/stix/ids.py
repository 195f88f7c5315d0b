"""Deterministic STIX identifiers.

SDOs/SROs: ``uuid5(DCOFLOW_NAMESPACE, natural key)`` so a retried or resumed task
produces the same id and the store keeps one object.

SCOs follow STIX 2.1 §2.9: uuid5 under the OASIS namespace over the canonical JSON of their
id-contributing properties (of ``hashes`` only one, chosen in the spec's order MD5, SHA-1, SHA-256,
SHA-512, so a file gets one id whichever hashes a sensor reported). An SCO with no contributing
property present — always a ``process``, which has none — must get a UUIDv4. Builders stay pure:
they give such an SCO a provisional id with its natural key under ``NATURAL_KEY``, and the store
(``dcoflow.models.repository.stix_store.resolve_random_ids``) swaps it for the UUIDv4 generated once for that
(DCO, natural key) and kept in the database, so a retried task still writes the same object.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

DCOFLOW_NAMESPACE = uuid.UUID("7b3f5a59-5f06-4f0c-9a8f-6a7d1c0f2d1e")
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")  # STIX 2.1 §2.9

# STIX 2.1 id-contributing properties per SCO type (§6); process has none.
SCO_ID_PROPERTIES: dict[str, tuple[str, ...]] = {
    "process": (),
    "artifact": ("hashes", "payload_bin"),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("from_ref", "subject", "body"),
    "file": ("hashes", "name", "extensions", "parent_directory_ref"),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": ("start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"),
    "software": ("name", "cpe", "swid", "vendor", "version"),
    "url": ("value",),
    "user-account": ("account_type", "user_id", "account_login"),
    "windows-registry-key": ("key", "values"),
    "x509-certificate": ("hashes", "serial_number"),
}
SCO_TYPES = frozenset(SCO_ID_PROPERTIES)
# §2.9: "only one hash", the first of these present (else the first given).
HASH_PREFERENCE = ("MD5", "SHA-1", "SHA-256", "SHA-512")
# Where a builder leaves the natural key of an SCO that needs a stored UUIDv4; never stored or exported.
NATURAL_KEY = "__dco_natural_key"


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


def one_hash(hashes: dict[str, Any]) -> dict[str, Any]:
    """The single hash §2.9 lets contribute to a file's (or artifact's, certificate's) id."""
    for name in HASH_PREFERENCE:
        if name in hashes:
            return {name: hashes[name]}
    first = next(iter(hashes), None)
    return {first: hashes[first]} if first is not None else {}


def contributing(stix_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The id-contributing properties ``properties`` holds, ``hashes`` cut to one."""
    out: dict[str, Any] = {}
    for key in SCO_ID_PROPERTIES.get(stix_type, ()):
        value = properties.get(key)
        if value in (None, "", [], {}):
            continue
        out[key] = one_hash(value) if key == "hashes" and isinstance(value, dict) else value
    return out


def deterministic_sco_id(stix_type: str, properties: dict[str, Any]) -> str | None:
    """The §2.9 uuid5 id, or None when no contributing property is present (then a UUIDv4 is due)."""
    parts = contributing(stix_type, properties)
    if not parts:
        return None
    canonical = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS).decode()
    return f"{stix_type}--{uuid.uuid5(SCO_NAMESPACE, canonical)}"


def natural_key_text(stix_type: str, natural_key: tuple[object, ...], properties: dict[str, Any]) -> str:
    """The natural key that names an SCO without contributing properties (its properties when none given)."""
    if natural_key:
        return "|".join((stix_type, *(str(k) for k in natural_key)))
    return stix_type + "|" + orjson.dumps(properties, option=orjson.OPT_SORT_KEYS, default=str).decode()


def sco_id(stix_type: str, properties: dict[str, Any], *natural_key: object) -> str:
    """An SCO's id: §2.9 uuid5 when it has contributing properties, else a *provisional* id from
    ``natural_key`` that ``resolve_random_ids`` replaces (use ``sco`` to build the object with its key)."""
    found = deterministic_sco_id(stix_type, properties)
    if found is not None:
        return found
    return stix_id(stix_type, natural_key_text(stix_type, natural_key, properties))


def sco(stix_type: str, properties: dict[str, Any], *natural_key: object) -> dict[str, Any]:
    """An SCO dict with its id; one needing a stored UUIDv4 carries its natural key under ``NATURAL_KEY``."""
    obj: dict[str, Any] = {"type": stix_type, "spec_version": "2.1", "id": sco_id(stix_type, properties, *natural_key),
                           **properties}
    if deterministic_sco_id(stix_type, properties) is None:
        obj[NATURAL_KEY] = natural_key_text(stix_type, natural_key, properties)
    return obj
