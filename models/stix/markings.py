"""TLP 2.0 markings (the OASIS extension-based marking-definitions) and a statement
marking for classification and releasability."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from dcoflow.models.stix.ids import stix_id

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP2_AUTHOR = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"


class Tlp(StrEnum):
    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"


# The fixed ids OASIS published for the TLP 2.0 marking-definitions.
TLP2_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}


def tlp_marking(level: Tlp) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[level],
        "created": TLP2_CREATED,
        "created_by_ref": TLP2_AUTHOR,
        "name": f"TLP:{level.value.upper()}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level.value}},
    }


def statement_marking(statement: str, created: str = TLP2_CREATED) -> dict[str, Any]:
    """A classification/releasability statement, e.g. 'NATO RESTRICTED — REL TO ...'."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": stix_id("marking-definition", "statement", statement),
        "created": created,
        "definition_type": "statement",
        "definition": {"statement": statement},
    }
