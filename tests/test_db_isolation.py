"""Each test's ``settings`` fixture gives it a private database: engines follow the resolved URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from dcoflow.core.db import get_engine, session_scope
from dcoflow.core.settings import Settings, get_settings
from dcoflow.models.operation import DcoSpec
from dcoflow.models.repository.operation import create_operation
from dcoflow.models.tables import Operation


def test_engine_follows_the_settings_database(settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DcoSpec.model_validate({"name": "Isolation", "objective": "check isolation", "type": "threat-hunt",
                                 "threat_profile": {"techniques": ["T1003.001"]}})
    with session_scope() as s:
        create_operation(s, spec, "tester")
    first = get_engine()
    monkeypatch.setenv("DCO_DATA_DIR", str(tmp_path / "other"))
    get_settings.cache_clear()
    assert get_engine() is not first and str(tmp_path / "other") in str(get_engine().url)
    with session_scope() as s:
        assert s.exec(select(Operation)).all() == []
