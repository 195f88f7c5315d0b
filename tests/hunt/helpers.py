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


_TIMES = {"created", "modified", "valid_from"}
_RUN_TIMES = {"started_at", "finished_at", "duration_s"}


def stored_state(dco_id: str) -> dict[str, Any]:
    """What the database holds for a DCO, without the moments things were written: its hunt runs, triage
    verdicts, newest STIX objects and audit trail. Two ways of doing one action must leave equal states.

    A process SCO's id is a UUIDv4 drawn once per database (STIX 2.1 §2.9): it is shown as its natural key's hash.
    """
    import json

    from sqlmodel import select

    from dcoflow.core.db import session_scope
    from dcoflow.models.repository.hunt import list_hunt_runs, triage_history
    from dcoflow.models.repository.operation import audit_trail
    from dcoflow.models.repository.stix_store import latest_objects
    from dcoflow.models.stix.rows import RandomScoIdRow

    with session_scope() as s:
        objects = sorted(({k: v for k, v in o.items() if k not in _TIMES} for o in latest_objects(s, dco_id)),
                         key=lambda o: str(o["id"]))
        verdicts = [v.model_dump(exclude={"at"}) for o in objects if o["type"] == "sighting"
                    for v in triage_history(s, str(o["id"]))]
        random_ids = {r.stix_id: f"random-id:{r.key_hash}" for r in s.exec(select(RandomScoIdRow)
                                                                           .where(RandomScoIdRow.dco_id == dco_id))}
        state = {
            "hunt_runs": [r.model_dump(exclude=_RUN_TIMES) for r in list_hunt_runs(s, dco_id)],
            "verdicts": verdicts,
            "objects": objects,
            "audit": [[e.action, e.actor, e.from_state, e.to_state, e.details] for e in audit_trail(s, dco_id)],
        }
    text = json.dumps(state, sort_keys=True, default=str)
    for stix_id, stable in random_ids.items():
        text = text.replace(stix_id, stable)
    out = dict(json.loads(text))
    out["objects"].sort(key=lambda o: str(o["id"]))
    return out
