"""What every STIX object dcoflow creates shares (docs/STIX.md): the dcoflow identity as
``created_by_ref``, the DCO's markings as ``object_marking_refs`` and ``x_dco_id``.

The hunt, emulation and follow-up builders all take these from here, so an object's author and
markings are decided in one place. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from dcoflow.models.operation import Marking, Operation
from dcoflow.models.stix.ids import stix_id
from dcoflow.models.stix.markings import TLP2_IDS, statement_marking
from dcoflow.models.stix.rows import stix_time

DCOFLOW_IDENTITY_ID = stix_id("identity", "dcoflow")
# Identities never change, so they carry a fixed timestamp and are written once.
FIXED_CREATED = "2024-01-01T00:00:00.000Z"


def dcoflow_identity() -> dict[str, Any]:
    """dcoflow itself, the author (``created_by_ref``) of every object it creates."""
    return {"type": "identity", "spec_version": "2.1", "id": DCOFLOW_IDENTITY_ID, "created": FIXED_CREATED,
            "modified": FIXED_CREATED, "name": "dcoflow", "identity_class": "system"}


def marking_refs(marking: Marking) -> tuple[list[str], list[dict[str, Any]]]:
    """The DCO's marking refs (TLP 2.0 + statement) and the definitions we own (the statement one)."""
    refs = [TLP2_IDS[marking.tlp]]
    definitions: list[dict[str, Any]] = []
    if marking.statement:
        stmt = statement_marking(marking.statement)
        refs.append(stmt["id"])
        definitions.append(stmt)
    return refs, definitions


def common_properties(dco_id: str, refs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``created_by_ref``, ``object_marking_refs`` and ``x_dco_id``: what every SDO/SRO we create carries."""
    return {"created_by_ref": DCOFLOW_IDENTITY_ID, "object_marking_refs": list(refs), "x_dco_id": dco_id}


def system_identity_id(name: str) -> str:
    return stix_id("identity", name)


def system_identity(name: str, *, created: str = FIXED_CREATED, **properties: Any) -> dict[str, Any]:
    """A data source or defensive tool (identity_class ``system``), keyed by its name, authored by dcoflow.

    ``properties`` adds e.g. the DCO's ``common_properties`` or ``x_dco_id``.
    """
    return {"type": "identity", "spec_version": "2.1", "id": system_identity_id(name), "created": created,
            "modified": created, "name": name, "identity_class": "system", "created_by_ref": DCOFLOW_IDENTITY_ID,
            **properties}


@dataclass(frozen=True, slots=True)
class DcoContext:
    """What every object of one DCO carries: its id and markings."""

    dco_id: str
    marking_refs: tuple[str, ...]

    @classmethod
    def for_operation(cls, op: Operation) -> Self:
        return cls(dco_id=op.id, marking_refs=tuple(marking_refs(op.dco.marking)[0]))

    def properties(self) -> dict[str, Any]:
        return common_properties(self.dco_id, self.marking_refs)

    def sdo(
        self, stix_type: str, object_id: str, created: datetime, modified: datetime | None = None
    ) -> dict[str, Any]:
        """The common head of an SDO/SRO; ``modified`` never precedes ``created``."""
        return {
            "type": stix_type,
            "spec_version": "2.1",
            "id": object_id,
            "created": stix_time(created),
            "modified": stix_time(created if modified is None else max(created, modified)),
            **self.properties(),
        }
