"""Seed a DCO's threat profile from CTI (``dco ops create FILE --from-stix BUNDLE|taxii+https://…``): the
operation file gives the DCO, the report's ATT&CK groups, campaigns, software and techniques are added to its
threat profile (what the file already names stays), and what ATT&CK does not know is reported."""

from __future__ import annotations

from pathlib import Path

from dcoflow.connectors.content.operation_file import read_operation_data, spec_from_data
from dcoflow.connectors.stix_source import read_stix
from dcoflow.core.errors import ValidationError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.ir.cti import CtiProfile, profile_from_cti
from dcoflow.models.operation import DcoSpec


def spec_from_cti(operation_file: Path, source: str, catalog: Catalog) -> tuple[DcoSpec, CtiProfile]:
    data = read_operation_data(operation_file)
    if not isinstance(data, dict):
        raise ValidationError("an operation must be a mapping of fields (name, objective, type, …)",
                              object=str(operation_file))
    profile = profile_from_cti(read_stix(source), catalog)
    threat = dict(data.get("threat_profile") or {})
    for key in ("groups", "campaigns", "software", "techniques"):
        have = [str(v) for v in threat.get(key) or ()]
        threat[key] = have + [v for v in getattr(profile, key) if v not in have]
    data = {**data, "threat_profile": threat}
    return spec_from_data(data, f"{operation_file} + {source}"), profile
