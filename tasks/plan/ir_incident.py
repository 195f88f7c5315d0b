"""Create an incident-response-support DCO from an incident: a STIX bundle or TAXII collection holding the
incident, or a TheHive case. The DCO links to the incident (``spec.incident``), its scope is the affected hosts
and the window around the first activity, its threat profile the incident's techniques; the incident's STIX
objects (incident, indicators, observables, attack-patterns) are kept with the DCO, so a sweep finds the
indicators and its sightings link to the incident."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.connectors.stix_source import read_stix
from dcoflow.connectors.thehive import TheHiveClient
from dcoflow.core.db import session_scope
from dcoflow.core.errors import NotFoundError
from dcoflow.models.ir.incident import IncidentImport, from_stix, from_thehive
from dcoflow.models.operation import Operation
from dcoflow.models.repository.operation import create_operation, get_operation
from dcoflow.models.repository.stix_store import put_objects

THEHIVE_PREFIX = "thehive:"


@dataclass(slots=True)
class IrDcoCreated:
    dco_id: str
    incident: dict[str, Any]
    techniques: list[str]
    indicators: int
    objects_kept: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"dco_id": self.dco_id, "incident": self.incident, "techniques": self.techniques,
                "indicators": self.indicators, "objects_kept": self.objects_kept, "warnings": self.warnings}


def load_incident(source: str, *, incident_id: str | None = None,
                  thehive: TheHiveClient | None = None) -> IncidentImport:
    """``thehive:<case id>`` (needs ``thehive``), else a bundle file or ``taxii+https://…/collections/<id>/``."""
    if source.startswith(THEHIVE_PREFIX):
        if thehive is None:
            from dcoflow.core.errors import ConfigError

            raise ConfigError("a TheHive case needs DCO_THEHIVE_URL and DCO_THEHIVE_API_KEY", object=source)
        case_id = source[len(THEHIVE_PREFIX):]
        return from_thehive(thehive.get_case(case_id), thehive.case_observables(case_id),
                            thehive.case_procedures(case_id))
    return from_stix(read_stix(source), source, incident_id)


def create_ir_dco(session: Session, imported: IncidentImport, *, name: str | None = None, actor: str = "cli",
                  now: datetime | None = None) -> IrDcoCreated:
    """Store the DCO (idempotent: the same incident again changes nothing) and keep the incident's objects."""
    spec = imported.spec(name, now=now or datetime.now(UTC))
    try:
        existing: Operation | None = get_operation(session, spec.name)
    except NotFoundError:
        existing = None
    if existing is not None and existing.dco.incident is not None and existing.dco.incident.ref == imported.link.ref:
        op = existing  # the DCO of this incident exists: its conduct window was set when it was created
    else:
        op = create_operation(session, spec, actor)
    kept = [o for o in imported.objects if "id" in o and "type" in o]
    put_objects(session, kept, op.id)
    return IrDcoCreated(dco_id=op.id, incident=imported.link.model_dump(mode="json"), techniques=imported.techniques,
                        indicators=len(imported.indicators), objects_kept=len(kept), warnings=imported.warnings)


def create_ir_support_dco(source: str, *, incident_id: str | None = None, name: str | None = None,
                          actor: str = "cli", registry: ConnectorRegistry | None = None) -> IrDcoCreated:
    """``dco ir create``: read the incident (a TheHive case through the registry's client) and store its DCO."""
    registry = registry or ConnectorRegistry.from_settings()
    if source.startswith(THEHIVE_PREFIX) and registry.thehive_configured:
        with registry.thehive() as hive:
            imported = load_incident(source, incident_id=incident_id, thehive=hive)
    else:
        imported = load_incident(source, incident_id=incident_id)
    with session_scope() as s:
        return create_ir_dco(s, imported, name=name, actor=actor)
