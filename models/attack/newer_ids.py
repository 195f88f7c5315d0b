"""Technique ids of newer ATT&CK releases, mapped back onto the release dcoflow ships (v18.1).

SigmaHQ and Atomic Red Team (in ``../shared``) already tag with ATT&CK v19 ids: v19 split Defense
Evasion into *Stealth* and *Defense Impairment* and moved the T1562 (Impair Defenses) family and
T1070.001/.002 to new ids. A newer release records such moves itself, as ``revoked-by``
relationships from the old id to the new one; dcoflow's bundle predates them, so the table below
inverts them (new id → the v18.1 id it replaced). The v18.1 bundle's own 140 ``revoked-by``
relationships only move ids *into* v18.1 and are followed by ``Catalog.resolve`` directly.

| v19 id | v19 name | v18.1 id | relation | source |
|---|---|---|---|---|
| T1685 | Disable or Modify Tools | T1562.001 | revoked-by | v19: T1562.001 (and T1562, T1562.006) revoked-by T1685 |
| T1685.001 | Disable or Modify Windows Event Log | T1562.002 | revoked-by | v19: T1562.002 revoked-by T1685.001 |
| T1685.002 | Disable or Modify Cloud Log | T1562.008 | revoked-by | v19: T1562.008 revoked-by T1685.002 |
| T1685.003 | Modify or Spoof Tool UI | T1562.011 | revoked-by | v19: T1562.011 revoked-by T1685.003 |
| T1685.004 | Disable or Modify Linux Audit System Log | T1562.012 | revoked-by | v19: T1562.012 revoked-by T1685.004 |
| T1685.005 | Clear Windows Event Logs | T1070.001 | revoked-by | v19: T1070.001 revoked-by T1685.005 |
| T1685.006 | Clear Linux or Mac System Logs | T1070.002 | revoked-by | v19: T1070.002 revoked-by T1685.006 |
| T1686 | Disable or Modify System Firewall | T1562.004 | revoked-by | v19: T1562.004 revoked-by T1686 |
| T1686.001 | Cloud Firewall | T1562.007 | revoked-by | v19: T1562.007 revoked-by T1686.001 |
| T1686.002 | Network Device Firewall | T1562.013 | revoked-by | v19: T1562.013 revoked-by T1686.002 |
| T1686.003 | Windows Host Firewall | T1562.004 | curated | new in v19; v18.1 covers host firewalls in T1562.004 |
| T1688 | Safe Mode Boot | T1562.009 | revoked-by | v19: T1562.009 revoked-by T1688 |
| T1689 | Downgrade Attack | T1562.010 | revoked-by | v19: T1562.010 revoked-by T1689 |
| T1690 | Prevent Command History Logging | T1562.003 | revoked-by | v19: T1562.003 revoked-by T1690 |
| T1684.001 | Impersonation | T1656 | revoked-by | v19: T1656 revoked-by T1684.001 |
| T1684.002 | Email Spoofing | T1672 | revoked-by | v19: T1672 revoked-by T1684.002 |
| T1027.018 | Invisible Unicode | T1027 | parent | new in v19; a sub-technique's activity is its parent's |

"v19: A revoked-by B" means the ATT&CK v19 enterprise bundle (mitre-attack/attack-stix-data,
enterprise-attack-19.x.json) holds a ``revoked-by`` relationship from A to B; names and the two
curated rows were checked against the v19 technique pages and the Atomic Red Team
``display_name`` of each id. Where several v18.1 ids merged into one v19 id (T1562, T1562.001 and
T1562.006 into T1685), the row maps to the one with the same name and meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Relation = Literal["revoked-by", "curated", "parent"]


@dataclass(slots=True, frozen=True)
class NewerId:
    """One technique id of a newer release and the id that means the same in v18.1."""

    newer_id: str
    release: str
    name: str
    attack_id: str
    relation: Relation
    source: str


def _row(newer: str, name: str, old: str, relation: Relation = "revoked-by", source: str = "") -> NewerId:
    return NewerId(newer, "19", name, old, relation, source or f"ATT&CK v19 bundle: {old} revoked-by {newer}")


_CURATED_HOST_FW = "new in v19 without revoked-by; v18.1 covers host firewalls in T1562.004"
_PARENT = "new in v19 without revoked-by; its parent exists in v18.1"

NEWER_IDS: dict[str, NewerId] = {r.newer_id: r for r in (
    _row("T1685", "Disable or Modify Tools", "T1562.001"),
    _row("T1685.001", "Disable or Modify Windows Event Log", "T1562.002"),
    _row("T1685.002", "Disable or Modify Cloud Log", "T1562.008"),
    _row("T1685.003", "Modify or Spoof Tool UI", "T1562.011"),
    _row("T1685.004", "Disable or Modify Linux Audit System Log", "T1562.012"),
    _row("T1685.005", "Clear Windows Event Logs", "T1070.001"),
    _row("T1685.006", "Clear Linux or Mac System Logs", "T1070.002"),
    _row("T1686", "Disable or Modify System Firewall", "T1562.004"),
    _row("T1686.001", "Cloud Firewall", "T1562.007"),
    _row("T1686.002", "Network Device Firewall", "T1562.013"),
    _row("T1686.003", "Windows Host Firewall", "T1562.004", "curated", _CURATED_HOST_FW),
    _row("T1688", "Safe Mode Boot", "T1562.009"),
    _row("T1689", "Downgrade Attack", "T1562.010"),
    _row("T1690", "Prevent Command History Logging", "T1562.003"),
    _row("T1684.001", "Impersonation", "T1656"),
    _row("T1684.002", "Email Spoofing", "T1672"),
    _row("T1027.018", "Invisible Unicode", "T1027", "parent", _PARENT),
)}


def newer_ids_for(attack_id: str, *, include_subtechniques: bool = True) -> tuple[str, ...]:
    """Newer-release ids that map onto ``attack_id`` — and, for a parent id with
    ``include_subtechniques``, onto any of its sub-techniques (so content tagged T1685 counts for
    T1562.001 and for T1562)."""
    tid = attack_id.strip().upper()
    subs = include_subtechniques and "." not in tid
    return tuple(sorted(n for n, row in NEWER_IDS.items()
                        if row.attack_id == tid or (subs and row.attack_id.startswith(tid + "."))))
