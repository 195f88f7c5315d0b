"""Event builders shared by the hunt tests."""

from __future__ import annotations

from typing import Any


def sysmon_event(record: int, *, host: str = "WKS01.corp.local", image: str = r"C:\Tools\procdump64.exe",
                 cmd: str = r"procdump64.exe -ma lsass.exe out.dmp", when: str = "2024-05-01 10:00:00.000",
                 **extra: Any) -> dict[str, Any]:
    """A Sysmon EventID 1 as the telemetry readers normalise it (Sysmon field names)."""
    return {
        "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Computer": host,
        "EventRecordID": record, "UtcTime": when, "Image": image, "CommandLine": cmd,
        "ProcessId": 4242 + record, "ProcessGuid": f"{{guid-{record}}}",
        "ParentImage": r"C:\Windows\System32\cmd.exe", "ParentProcessId": 1000,
        "User": r"CORP\alice", "Hashes": f"SHA1={'a' * 40},MD5={'B' * 32},SHA256={'c' * 64},IMPHASH=DD", **extra,
    }
