"""The STIX cyber-observables one telemetry event shows, read from the event as the Sigma matcher reads it
(``connectors.telemetry.match_view``: Sysmon/Windows field names, lower-case keys).

Each candidate object is ``{path: [values]}`` with paths as ``compile`` writes them (``image_ref.name``,
``hashes.SHA256``, ``values[*].data``). ``SUPPORTED`` lists every path some field feeds, so a pattern on any
other path is "not evaluable on this data" rather than silently unmatched, and ``present_paths`` says which of
them a data set actually carried.
"""

from __future__ import annotations

import re
from typing import Any

Candidate = dict[str, list[str]]

SUPPORTED: dict[str, frozenset[str]] = {
    "file": frozenset({"name", "parent_directory_ref.path", "hashes.MD5", "hashes.SHA1", "hashes.SHA256",
                       "hashes.SHA384", "hashes.SHA512", "hashes.IMPHASH"}),
    "directory": frozenset({"path"}),
    "process": frozenset({"pid", "command_line", "image_ref.name", "image_ref.parent_directory_ref.path",
                          "image_ref.hashes.MD5", "image_ref.hashes.SHA1", "image_ref.hashes.SHA256",
                          "image_ref.hashes.IMPHASH", "parent_ref.pid", "parent_ref.command_line",
                          "parent_ref.image_ref.name", "parent_ref.image_ref.parent_directory_ref.path",
                          "child_refs[*].pid", "child_refs[*].command_line", "child_refs[*].image_ref.name",
                          "creator_user_ref.user_id", "creator_user_ref.account_login"}),
    "network-traffic": frozenset({"src_ref.value", "dst_ref.value", "src_port", "dst_port", "protocols[*]"}),
    "ipv4-addr": frozenset({"value"}),
    "ipv6-addr": frozenset({"value"}),
    "domain-name": frozenset({"value"}),
    "windows-registry-key": frozenset({"key", "values[*].name", "values[*].data"}),
    "user-account": frozenset({"user_id", "account_login"}),
}
_HIVES = {"hklm": "HKEY_LOCAL_MACHINE", "hku": "HKEY_USERS", "hkcu": "HKEY_CURRENT_USER",
          "hkcr": "HKEY_CLASSES_ROOT", "hkcc": "HKEY_CURRENT_CONFIG"}


def _get(view: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = view.get(name)
        if value not in (None, "", "-"):
            return str(value)
    return None


def _split(path: str) -> tuple[str, str]:
    cut = max(path.rfind("\\"), path.rfind("/"))
    return (path[:cut], path[cut + 1:]) if cut >= 0 else ("", path)


def sysmon_hashes(text: str | None) -> dict[str, str]:
    """Sysmon ``Hashes`` (``SHA1=…,MD5=…,SHA256=…,IMPHASH=…``), every algorithm it names, keys as ``compile``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        name, sep, value = part.partition("=")
        if sep and value.strip():
            out[re.sub(r"[^A-Z0-9]", "", name.upper())] = value.strip().lower()
    return out


def _pid(text: str | None) -> str | None:
    """Process ids as decimal text (Windows Security events write ``0x12d8``)."""
    if not text:
        return None
    try:
        return str(int(text, 16) if text.lower().startswith("0x") else int(text))
    except ValueError:
        return None


def registry_key(text: str) -> str:
    """``HKLM\\…`` → ``HKEY_LOCAL_MACHINE\\…`` (Sysmon abbreviates hives; STIX writes them out)."""
    hive, sep, rest = text.partition("\\")
    return _HIVES.get(hive.lower(), hive) + sep + rest


def _file(path: str, hashes: dict[str, str] | None = None, prefix: str = "") -> Candidate:
    directory, name = _split(path)
    out: Candidate = {f"{prefix}name": [name]}
    if directory:
        out[f"{prefix}parent_directory_ref.path"] = [directory]
    for algo, digest in (hashes or {}).items():
        out[f"{prefix}hashes.{algo}"] = [digest]
    return out


def observed_objects(view: dict[str, Any]) -> dict[str, list[Candidate]]:
    """Every candidate object of each STIX type the event shows."""
    found: dict[str, list[Candidate]] = {}
    hashes = sysmon_hashes(_get(view, "hashes"))
    image = _get(view, "image", "newprocessname")
    loaded = _get(view, "imageloaded")
    target = _get(view, "targetfilename")
    # the Hashes of an event belong to the loaded image (7, 6), else the written file (15, 23, 26), else the image (1)
    hashed = "loaded" if loaded else "target" if target else "image"
    files = [_file(p, hashes if hashed == k else None) for k, p in (("image", image), ("loaded", loaded),
                                                                    ("target", target)) if p]
    if files:
        found["file"] = files
        found["directory"] = [{"path": [c["parent_directory_ref.path"][0]]} for c in files
                              if "parent_directory_ref.path" in c]
    cmd = _get(view, "commandline")
    new_pid = _get(view, "newprocessid")  # Security 4688: ProcessId there is the creator's
    pid = _pid(new_pid or _get(view, "processid"))
    p_image, p_cmd = _get(view, "parentimage", "parentprocessname"), _get(view, "parentcommandline")
    p_pid = _pid(_get(view, "parentprocessid") or (_get(view, "processid") if new_pid else None))
    user = _get(view, "user")
    procs: list[Candidate] = []
    if image or cmd:
        proc: Candidate = {}
        if cmd:
            proc["command_line"] = [cmd]
        if pid:
            proc["pid"] = [pid]
        if image:
            proc.update(_file(image, hashes if hashed == "image" else None, "image_ref."))
        if p_cmd:
            proc["parent_ref.command_line"] = [p_cmd]
        if p_pid:
            proc["parent_ref.pid"] = [p_pid]
        if p_image:
            proc.update(_file(p_image, None, "parent_ref.image_ref."))
        if user:
            proc["creator_user_ref.user_id"] = [user]
            proc["creator_user_ref.account_login"] = [user.rsplit("\\", 1)[-1]]
        procs.append(proc)
    if p_image or p_cmd:
        parent: Candidate = {}
        if p_cmd:
            parent["command_line"] = [p_cmd]
        if p_pid:
            parent["pid"] = [p_pid]
        if p_image:
            parent.update(_file(p_image, None, "image_ref."))
        if cmd:
            parent["child_refs[*].command_line"] = [cmd]
        if pid:
            parent["child_refs[*].pid"] = [pid]
        if image:
            parent["child_refs[*].image_ref.name"] = [_split(image)[1]]
        procs.append(parent)
    for other in ("sourceimage", "targetimage"):  # process access (Sysmon 10), remote threads (8)
        value = _get(view, other)
        if value:
            procs.append(_file(value, None, "image_ref."))
    if procs:
        found["process"] = procs
    src, dst = _get(view, "sourceip"), _get(view, "destinationip")
    addresses = [a for a in (src, dst, _get(view, "ipaddress")) if a and a not in ("::", "0.0.0.0")]
    if src or dst:
        net: Candidate = {}
        for key, value in (("src_ref.value", src), ("dst_ref.value", dst), ("src_port", _get(view, "sourceport")),
                           ("dst_port", _get(view, "destinationport")), ("protocols[*]", _get(view, "protocol"))):
            if value:
                net[key] = [value]
        found["network-traffic"] = [net]
    for address in addresses:
        found.setdefault("ipv6-addr" if ":" in address else "ipv4-addr", []).append({"value": [address]})
    domains = [d.lower().rstrip(".") for d in (_get(view, "queryname"), _get(view, "destinationhostname")) if d]
    if domains:
        found["domain-name"] = [{"value": [d]} for d in domains]
    reg = _get(view, "targetobject")
    if reg:
        full = registry_key(reg)
        keys: list[Candidate] = [{"key": [full]}]
        details = _get(view, "details")
        if details is not None or str(view.get("eventid")) in ("13", "14"):
            parent_key, value_name = _split(full)
            entry: Candidate = {"key": [parent_key], "values[*].name": [value_name]}
            if details is not None:
                entry["values[*].data"] = [details]
            keys.append(entry)
        found["windows-registry-key"] = keys
    accounts: list[Candidate] = []
    for name, domain in (("user", None), ("targetusername", "targetdomainname"),
                         ("subjectusername", "subjectdomainname")):
        value = _get(view, name)
        if value:
            dom = _get(view, domain) if domain else None
            full = f"{dom}\\{value}" if dom and "\\" not in value else value
            accounts.append({"user_id": [full], "account_login": [full.rsplit("\\", 1)[-1]]})
    if accounts:
        found["user-account"] = accounts
    return found
