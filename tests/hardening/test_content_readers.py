"""Content readers (Caldera reports, DeTT&CT files, CTID plans, TAXII status) name the input on any bad
shape: deep nesting, other encodings, duplicate keys, wrong types (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dcoflow.connectors.content.caldera_report import load_caldera_report
from dcoflow.connectors.content.ctid import load_ctid_plan
from dcoflow.connectors.content.dettect import read_dettect
from dcoflow.connectors.taxii import TaxiiStatus
from dcoflow.core.errors import ConnectorError, DcoError

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_YAML = b"a: " + b"[" * 100_000 + b"]" * 100_000
READERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "caldera": (load_caldera_report, ".json"),
    "dettect": (read_dettect, ".yaml"),
    "ctid": (load_ctid_plan, ".yaml"),
}
BAD: dict[str, bytes] = {
    "deep": DEEP_YAML,
    "latin1": "name: caf\xe9\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "dup-keys": b"name: a\nname: b\n",
    "empty": b"",
}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("reader", list(READERS))
def test_readers_raise_one_named_error(tmp_path: Path, reader: str, bad: str) -> None:
    read, suffix = READERS[reader]
    content = DEEP_JSON if (bad == "deep" and suffix == ".json") else BAD[bad]
    path = tmp_path / f"{bad}{suffix}"
    path.write_bytes(content)
    with pytest.raises(DcoError) as info:
        read(path)
    assert str(path) in info.value.message


@pytest.mark.parametrize("count", ["many", "1.5", -1, True, [1], {"n": 1}])
def test_taxii_status_counts_must_be_counts(count: Any) -> None:
    with pytest.raises(ConnectorError, match="not a count"):
        TaxiiStatus.from_resource({"id": "s1", "status": "complete", "total_count": count}, "taxii collection x")


def test_taxii_status_numeric_strings_are_fine() -> None:
    status = TaxiiStatus.from_resource({"id": "s1", "status": "complete", "total_count": "3", "success_count": 3},
                                       "taxii collection x")
    assert status.total_count == 3 and status.success_count == 3
