"""DCO ids are unique for any name and lookups are exact (issue 14: silent wrong results)."""

from __future__ import annotations

import pytest

from dcoflow.connectors.content.operation_file import spec_from_data
from dcoflow.core.db import session_scope
from dcoflow.core.errors import NotFoundError
from dcoflow.models.operation import slugify
from dcoflow.models.repository.operation import create_operation, get_operation


def _spec(name: str, objective: str = "find them") -> object:
    return spec_from_data({"name": name, "objective": objective, "type": "threat-hunt",
                           "threat_profile": {"techniques": ["T1059.001"]}}, "test")


@pytest.mark.parametrize("name", ["Охота на APT", "🔥🔥🔥", "🦊🦊🦊", "狩猎行动", "Ünïcödé ops", "---x---",
                                  "A\u200bB\u200bC"])
def test_slug_is_ascii_and_never_empty(name: str) -> None:
    slug = slugify(name)
    assert slug and slug.isascii() and not slug.startswith("-") and not slug.endswith("-")


@pytest.mark.parametrize(("first", "second"), [
    ("Охота на APT", "ОХОТА НА APT!"),  # one transliteration
    ("🔥🔥🔥", "🦊🦊🦊"),
    ("Hunt FIN7", "hunt fin7?"),
])
def test_two_names_one_slug_get_two_dcos(db_url: str, first: str, second: str) -> None:
    a, b = _spec(first, "first objective"), _spec(second, "second objective")
    with session_scope(db_url) as s:
        op_a = create_operation(s, a, "alice")  # type: ignore[arg-type]
        op_b = create_operation(s, b, "bob")  # type: ignore[arg-type]
        ids = (op_a.id, op_b.id)
    assert ids[0] != ids[1] and all(ids)
    with session_scope(db_url) as s:
        assert get_operation(s, ids[0]).spec["objective"] == "first objective"
        assert get_operation(s, ids[1]).spec["objective"] == "second objective"
        # re-submitting the second name finds its own DCO again, never the first's
        again = create_operation(s, _spec(second, "second objective"), "bob")  # type: ignore[arg-type]
        assert again.id == ids[1]


@pytest.mark.parametrize("pattern", ["%", "%tech%", "_unt fin7", "Hunt%"])
def test_lookup_by_name_is_not_a_pattern(db_url: str, pattern: str) -> None:
    with session_scope(db_url) as s:
        create_operation(s, _spec("Hunt FIN7"), "alice")  # type: ignore[arg-type]
    with session_scope(db_url) as s, pytest.raises(NotFoundError):
        get_operation(s, pattern)
    with session_scope(db_url) as s:
        assert get_operation(s, "hunt fin7").id == "hunt-fin7"  # exact name, any case
