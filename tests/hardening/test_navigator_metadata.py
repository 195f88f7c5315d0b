"""A Navigator layer whose metadata is not a list of {name, value} objects is refused, not split up (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from dcoflow.core.errors import ContentError
from dcoflow.models.attack.catalog import Catalog
from dcoflow.models.navigator import import_layer


@pytest.mark.parametrize("metadata", ["moved", {"name": "x", "value": "y"}, [1, 2], ["a"], [{"value": "no name"}]])
def test_bad_metadata_is_refused(catalog: Catalog, metadata: Any) -> None:
    layer = {"techniques": [{"techniqueID": "T1086", "score": 1, "metadata": metadata}]}
    with pytest.raises(ContentError, match="metadata"):
        import_layer(layer, catalog, catalog.version, source="layer.json")


def test_good_metadata_is_kept_and_extended(catalog: Catalog) -> None:
    meta = [{"name": "owner", "value": "soc"}, {"divider": True}]
    result = import_layer({"techniques": [{"techniqueID": "T1086", "metadata": meta}]}, catalog, catalog.version)
    (entry,) = result.layer["techniques"]
    assert entry["metadata"][:2] == meta and entry["metadata"][2] == {"name": "moved from", "value": "T1086"}
