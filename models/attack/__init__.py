"""The ATT&CK catalog: objects, the index built from a bundle, and queries (pure, no I/O)."""

from dcoflow.models.attack.catalog import (
    ALL_VIA,
    DOMAINS,
    PROFILE_VIA,
    Catalog,
    Resolution,
    SearchHit,
    UnknownAttackIdWarning,
    Via,
)
from dcoflow.models.attack.objects import (
    Analytic,
    AttackObject,
    Campaign,
    DataComponent,
    DetectionStrategy,
    Group,
    Kind,
    LogSource,
    Mitigation,
    Software,
    Tactic,
    Technique,
)

__all__ = [
    "ALL_VIA", "DOMAINS", "PROFILE_VIA", "Analytic", "AttackObject", "Campaign", "Catalog", "DataComponent",
    "DetectionStrategy", "Group", "Kind", "LogSource", "Mitigation", "Resolution", "SearchHit",
    "Software", "Tactic", "Technique", "UnknownAttackIdWarning", "Via",
]
