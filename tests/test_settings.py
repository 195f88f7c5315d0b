"""Settings are read from the environment and ``.env`` exactly as pydantic-settings read them before
dcoflow dropped it from the CLI's start (core/settings.py says why): the same values for the same inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from dcoflow.core.errors import ConfigError
from dcoflow.core.settings import Settings


class _Reference(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DCO_", env_file=".env", extra="ignore", env_ignore_empty=True)


Reference: Any = create_model(  # the same fields, read by pydantic-settings
    "Reference", __base__=_Reference, **{name: (f.annotation, f) for name, f in Settings.model_fields.items()})


@pytest.fixture()
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.upper().startswith("DCO_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _same(**kwargs: Any) -> Settings:
    ours, theirs = Settings(**kwargs), Reference(**kwargs)
    assert ours.model_dump() == theirs.model_dump()
    return ours


def test_defaults_agree(clean: pytest.MonkeyPatch) -> None:
    _same()


def test_environment_and_env_file_agree(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DCO_HTTP_RETRIES=9\nDCO_SPLUNK_INDEX=from-file\nOTHER=1\nDCO_NOT_A_SETTING=2\n"
        "dco_thehive_url=http://hive.test\nDCO_TARGET_DETECTION=\n", encoding="utf-8")
    clean.setenv("dco_http_retries", "5")  # the environment wins over .env; names are case-insensitive
    clean.setenv("DCO_CONTENT_DIR", "/srv/content")
    clean.setenv("DCO_SIEM_CONCURRENCY", "")  # empty is unset (a Prefect deployment's unset "{{ $DCO_X }}")
    clean.setenv("DCO_ELASTIC_INDEX_MAPPINGS", '{"winlogbeat-*": "ecs"}')  # a dict is JSON
    clean.setenv("DCO_CALDERA_API_KEY", "s3cret")
    clean.setenv("DCO_WEBHOOK_ALLOW_UNSIGNED", "true")
    settings = _same()
    assert (settings.http_retries, settings.splunk_index, settings.thehive_url) == (5, "from-file", "http://hive.test")
    assert settings.content_dir == Path("/srv/content") and settings.siem_concurrency == 4
    assert settings.elastic_index_mappings == {"winlogbeat-*": "ecs"} and settings.webhook_allow_unsigned
    assert settings.caldera_api_key is not None and settings.caldera_api_key.get_secret_value() == "s3cret"
    # keyword arguments win over both; _env_file=None skips the file
    assert _same(http_retries=1, splunk_index="kw").splunk_index == "kw"
    assert _same(_env_file=None).splunk_index == "main"


def test_bad_values_are_refused(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("DCO_HTTP_RETRIES", "many")
    with pytest.raises(ValidationError):
        Settings()
    clean.delenv("DCO_HTTP_RETRIES")
    clean.setenv("DCO_ELASTIC_INDEX_MAPPINGS", "winlogbeat-*=ecs")
    with pytest.raises(ConfigError, match="DCO_ELASTIC_INDEX_MAPPINGS is not JSON"):
        Settings()
