"""TLP 2.0 markings (the OASIS extension-based marking-definitions), a statement
marking for classification and releasability, and the release policy that decides, from every
marking an object carries, whether a recipient may receive it."""

from __future__ import annotations

from dataclasses import dataclass
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


# TLP 1.0 marking-definitions (STIX 2.1 §7.2.1.4): objects shared from elsewhere still carry them.
TLP1_IDS: dict[str, Tlp] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,  # TLP:WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,
}
TLP_BY_ID: dict[str, Tlp] = {**{v: k for k, v in TLP2_IDS.items()}, **TLP1_IDS}
TLP_RANK: dict[Tlp, int] = {level: n for n, level in enumerate(Tlp)}  # CLEAR < GREEN < AMBER < AMBER+STRICT < RED
# MITRE's copyright statement on every ATT&CK object: public content, releasable anywhere.
ATTACK_MARKING = "marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168"
PUBLIC_MARKINGS = frozenset({ATTACK_MARKING})


def markings_of(obj: dict[str, Any]) -> set[str]:
    """Every marking-definition an object carries, object-level and granular."""
    refs = set(obj.get("object_marking_refs") or ())
    refs.update(g.get("marking_ref") for g in obj.get("granular_markings") or () if isinstance(g, dict))
    return {r for r in refs if isinstance(r, str)}


@dataclass(frozen=True, slots=True)
class ReleasePolicy:
    """What one recipient (a TAXII collection, a partner) may receive: TLP up to ``max_tlp`` and only the
    classification/releasability statements in ``statements``. An object carrying anything else — a higher TLP,
    a statement the recipient is not cleared for, a marking-definition we cannot read — is never sent."""

    max_tlp: Tlp = Tlp.AMBER
    statements: frozenset[str] = frozenset()

    def refusal(self, obj: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> str | None:
        """Why ``obj`` may not go to this recipient (None: it may); ``definitions`` maps marking ids to
        their marking-definitions (the statement markings the object's bundle holds)."""
        reasons: list[str] = []
        for ref in sorted(markings_of(obj)):
            level = TLP_BY_ID.get(ref)
            if level is not None:
                if TLP_RANK[level] > TLP_RANK[self.max_tlp]:
                    reasons.append(f"TLP:{level.value.upper()} is above the recipient's "
                                   f"TLP:{self.max_tlp.value.upper()}")
                continue
            if ref in PUBLIC_MARKINGS:
                continue
            definition = definitions.get(ref)
            statement = _statement(definition)
            if statement is None:
                reasons.append(f"marking {ref} is not a TLP or statement marking we can read")
            elif statement not in self.statements:
                reasons.append(f"statement {statement!r} is not releasable to the recipient "
                               f"(cleared for: {', '.join(sorted(self.statements)) or 'none'})")
        return "; ".join(reasons) or None


def _statement(definition: dict[str, Any] | None) -> str | None:
    if not definition or definition.get("definition_type") != "statement":
        return None
    body = definition.get("definition")
    value = body.get("statement") if isinstance(body, dict) else None
    return str(value) if value else None
