"""Linux auditd log lines (``/var/log/audit/audit.log``) → one flat event per record.

A record line is ``[node=N ]type=T msg=audit(SECONDS.MILLIS:SERIAL): key=value …``, optionally
preceded by a syslog header (audisp/rsyslog forwarding) and, in auditd's ENRICHED log format,
followed by ``\\x1d`` and the interpreted values in upper case (``ARCH=x86_64 SYSCALL=execve
AUID="alice"``). Values are bare, ``"double-quoted"`` (a literal) or, for the fields auditd treats
as untrusted strings, hex-encoded when they hold spaces or unusual bytes: ``proctitle``, EXECVE
arguments (``a0`` … ``aN``, and the ``aN[i]`` chunks of a long argument, joined back into ``aN``),
``name``, ``comm``, ``exe``, ``cwd``, ``key`` … (auparse's ``typetab.h`` list). Those are decoded;
every other value is kept as logged (the ``a0``–``a3`` of a SYSCALL record are numbers in hex,
not text). ``proctitle`` has its NUL argument separators turned into spaces; a ``key`` holding
several keys (``\\x01``-separated) becomes one comma-separated text. The single-quoted ``msg='…'``
of user-space records (``USER_CMD``, ``ADD_USER`` …) is kept and its own ``key=value`` pairs are
added beside the outer ones. Tokens that are not ``key=value`` (the prose of an AVC record) are
left out.

Every record becomes one event: SigmaHQ's ``service: auditd`` rules test one record by its
``type`` (``type: EXECVE`` with ``a0``/``a1``, ``type: PATH`` with ``name``, ``type: SYSCALL``
with ``exe``/``comm``/``key``), never fields of two records together, so records of one audit
event are not merged (a merged event would count each match twice). ``audit_id``
(``SECONDS.MILLIS:SERIAL``, the event identity auparse groups by) ties the records of one event
together; ``timestamp`` is its time in ISO 8601 UTC. Each event also carries
``Channel: auditd`` (:data:`AUDITD_CHANNEL`), the dispatch key by which the hunt engine applies
``product: linux, service: auditd`` rules (``dcoflow.models.sigma.logsource``).

The engine reads field names case-insensitively, so one event cannot hold both the raw
``syscall=59`` and the interpreted ``SYSCALL=execve``. Sigma's auditd rules name the syscall by
its interpreted name in upper case (``SYSCALL: execve``) and test every other field by its raw
value (``euid: 33``, ``a0: 40000``). So when the name is known — from the ENRICHED section or, for
x86_64 records, from :data:`X86_64_SYSCALLS` — the event has ``SYSCALL`` (the name) and
``syscall_nr`` (the number); otherwise ``syscall`` keeps the number. Other ENRICHED values that
interpret a raw field are kept as ``<field>_name`` (``auid_name: alice``, ``arch_name: x86_64``);
raw values keep their names.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from dcoflow.models.sigma.logsource import AUDITD_CHANNEL  # one name for the dispatch key, owned by the mapping

# A line is taken for an auditd record when it carries the record header somewhere.
AUDIT_MARK = b"msg=audit("

_HEAD = re.compile(r"(?:node=(?P<node>\S+) +)?type=(?P<type>\S+) +msg=audit\((?P<sec>\d+)(?:\.(?P<frac>\d+))?"
                   r":(?P<serial>\d+)\): ?")
_PAIR = re.compile(r"""([^\s="']+)=(?:"([^"]*)"|'([^']*)'|(\S*))""")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_EXECVE_ARG = re.compile(r"a\d+(?:\[\d+\])?")
_ARG_CHUNK = re.compile(r"(a\d+)\[(\d+)\]")
_ENRICHED_SEP = "\x1d"

# Fields auditd hex-encodes when their value holds spaces, quotes, control or non-ASCII bytes
# (AUPARSE_TYPE_ESCAPED / _ESCAPED_FILE / _ESCAPED_KEY / _PROCTITLE / _TTY_DATA in auparse's typetab.h).
ESCAPED_FIELDS = frozenset({
    "path", "comm", "exe", "file", "name", "watch", "cwd", "cmd", "acct", "dir", "key", "vm", "old-chardev",
    "new-chardev", "old-disk", "new-disk", "old-fs", "new-fs", "old-net", "new-net", "device", "cgroup",
    "old-rng", "new-rng", "ocomm", "proctitle", "grp", "new_group", "invalid_context", "sw", "root_dir", "data",
})

# x86_64 (arch=c000003e) syscall numbers → names, for logs in auditd's RAW format: the syscalls
# SigmaHQ's auditd rules name (``SYSCALL: …``) and the process/file/network ones around them.
# Partial on purpose; a number not listed keeps ``syscall`` as logged.
X86_64_SYSCALLS: dict[str, str] = {
    "0": "read", "1": "write", "2": "open", "3": "close", "41": "socket", "42": "connect", "43": "accept",
    "49": "bind", "50": "listen", "56": "clone", "57": "fork", "58": "vfork", "59": "execve", "62": "kill",
    "82": "rename", "83": "mkdir", "84": "rmdir", "86": "link", "87": "unlink", "88": "symlink", "90": "chmod",
    "92": "chown", "99": "sysinfo", "101": "ptrace", "103": "syslog", "133": "mknod", "135": "personality",
    "175": "init_module", "176": "delete_module", "257": "openat", "259": "mknodat", "263": "unlinkat",
    "288": "accept4", "313": "finit_module", "319": "memfd_create", "322": "execveat",
}
_X86_64 = "c000003e"


class AuditLineError(ValueError):
    """A line that is not a well-formed auditd record; the reader counts it in its ``BatchReport``."""


def looks_like_audit(line: bytes) -> bool:
    """Whether a line that is not JSON should be read as an auditd record."""
    head = line.lstrip()[:5]
    return head in (b"type=", b"node=") or AUDIT_MARK in line


def parse_audit_line(line: bytes) -> dict[str, Any]:
    """One auditd record line → a flat event (see the module docstring); ``AuditLineError`` if malformed."""
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise AuditLineError(f"auditd line is not UTF-8 (byte {exc.start})") from None
    head = _HEAD.search(text)
    if head is None:
        raise AuditLineError("no auditd record header (type=… msg=audit(seconds:serial):)")
    rtype = head["type"]
    sec, frac, serial = head["sec"], head["frac"] or "", head["serial"]
    try:
        stamp = datetime.fromtimestamp(int(sec), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):  # seconds beyond the years a datetime holds
        raise AuditLineError(f"auditd timestamp {sec[:30]} is out of range") from None
    event: dict[str, Any] = {"Channel": AUDITD_CHANNEL, "type": rtype,
                             "audit_id": f"{sec}.{frac}:{serial}" if frac else f"{sec}:{serial}",
                             "timestamp": f"{stamp}.{frac}Z" if frac else f"{stamp}Z"}
    if head["node"] is not None:
        event["node"] = head["node"]
    body, _, enriched = text[head.end():].partition(_ENRICHED_SEP)
    fields = _pairs(body, rtype)
    inner = fields.get("msg")
    if rtype == "EXECVE":
        _join_arg_chunks(fields)
    for key, value in fields.items():
        event.setdefault(key, value)
    if isinstance(inner, str) and "=" in inner:
        for key, value in _pairs(inner, rtype).items():
            event.setdefault(key, value)
    if enriched:
        _add_enriched(event, _pairs(enriched, rtype, decode=False))
    if "syscall" in event and "SYSCALL" not in event and event.get("arch") == _X86_64:
        name = X86_64_SYSCALLS.get(event["syscall"])
        if name is not None:
            event["syscall_nr"] = event.pop("syscall")
            event["SYSCALL"] = name
    return event


def _pairs(text: str, rtype: str, *, decode: bool = True) -> dict[str, str]:
    out: dict[str, str] = {}
    pos, end = 0, len(text)
    match = _PAIR.match
    while pos < end:
        if text[pos].isspace():
            pos += 1
            continue
        m = match(text, pos)
        if m is None:  # prose between pairs (an AVC record's "avc:  denied  { read } for")
            nxt = text.find(" ", pos)
            pos = end if nxt < 0 else nxt
            continue
        key, dq, sq, bare = m.groups()
        if dq is not None:
            value = dq
        elif sq is not None:
            value = sq
        else:
            if bare[:1] in ('"', "'"):
                raise AuditLineError(f"unterminated quoted value of {key!r} (truncated line?)")
            value = _decode(key, bare, rtype) if decode else bare
        out.setdefault(key, value)
        pos = m.end()
    return out


def _decode(key: str, value: str, rtype: str) -> str:
    escaped = key in ESCAPED_FIELDS or (rtype == "EXECVE" and _EXECVE_ARG.fullmatch(key) is not None)
    if not escaped or _HEX.fullmatch(value) is None:
        return value
    raw = bytes.fromhex(value)
    if key == "proctitle":
        raw = raw.rstrip(b"\x00").replace(b"\x00", b" ")
    elif key == "key":
        raw = raw.replace(b"\x01", b",")
    return raw.decode("utf-8", errors="backslashreplace")


def _join_arg_chunks(fields: dict[str, str]) -> None:
    """``a1[0]=… a1[1]=…`` (one long argument logged in chunks) → ``a1``."""
    chunks: dict[str, list[tuple[int, str]]] = {}
    for key in [k for k in fields if "[" in k]:
        m = _ARG_CHUNK.fullmatch(key)
        if m is not None:
            chunks.setdefault(m[1], []).append((int(m[2]), fields.pop(key)))
    for arg, parts in chunks.items():
        fields.setdefault(arg, "".join(v for _, v in sorted(parts)))


def _add_enriched(event: dict[str, Any], interpreted: dict[str, str]) -> None:
    lowered = {k.lower() for k in event}
    for key, value in interpreted.items():
        low = key.lower()
        if low == "syscall" and "syscall" in event:
            event["syscall_nr"] = event.pop("syscall")
            event["SYSCALL"] = value
        elif low in lowered:  # interprets a raw field, which keeps its name and value
            name = f"{low}_name"
            if name not in lowered:
                event[name] = value
                lowered.add(name)
        else:
            event[key] = value
            lowered.add(low)


__all__ = ["AUDITD_CHANNEL", "ESCAPED_FIELDS", "X86_64_SYSCALLS", "AuditLineError", "looks_like_audit",
           "parse_audit_line"]
