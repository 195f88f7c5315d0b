"""ATT&CK objects exactly as MITRE published them, read from the catalog's bundle file.

A DCO's bundle carries the attack-patterns its evidence points at as published (with MITRE's identity and
marking-definition), never a rebuilt copy: a copy with ATT&CK's id but other timestamps or properties would be
a different object under the same version. The catalog itself keeps no full objects (it must load in
milliseconds), so the file is read once per process, on the first export. For a URL or TAXII source nothing is
read and the bundle points at ATT&CK by reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from dcoflow.connectors.attack.source import parse_source, read_file

# What an exported bundle may need from ATT&CK: the techniques and what they reference.
_KEPT = frozenset({"attack-pattern", "identity", "marking-definition"})
_memo: dict[tuple[str, int, int], dict[str, dict[str, Any]]] = {}


def published_objects(source: str) -> dict[str, dict[str, Any]]:
    """STIX id → the newest published version of each attack-pattern, identity and marking-definition of the
    ATT&CK bundle file ``source`` (a catalog's ``source``); empty for remote sources or a vanished file."""
    if not source:
        return {}
    spec = parse_source(source)
    if spec.kind != "file":
        return {}
    path = Path(spec.location)
    try:
        st = path.stat()
    except OSError:
        return {}
    key = (str(path), st.st_size, st.st_mtime_ns)
    found = _memo.get(key)
    if found is None:
        found = {}
        for obj in orjson.loads(read_file(path)).get("objects", []):
            if obj.get("type") in _KEPT:
                old = found.get(obj["id"])
                if old is None or str(obj.get("modified", "")) >= str(old.get("modified", "")):
                    found[obj["id"]] = obj
        _memo.clear()  # one ATT&CK file per process is the normal case; don't hoard old releases
        _memo[key] = found
    return found
