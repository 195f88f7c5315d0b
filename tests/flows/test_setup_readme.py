"""The README's Prefect UI setup works as written (issue 8, item 7): every variable the deployments read is
passed to them (prefect.yaml job_variables) and set by the README's export line, and an unset telemetry
location stops the hourly hunt sweep with a clear error instead of hunting the worker's current folder."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest
import yaml

from dcoflow.core.errors import ConfigError
from dcoflow.core.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = (ROOT / "prefect.yaml").read_text()
README = (ROOT / "README.md").read_text()


def _readme_exports() -> set[str]:
    section = README.split("## Prefect UI", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    exported = block.split("export ", 1)[1].split("\nprefect", 1)[0]
    return set(re.findall(r"\b(DCO_[A-Z_]+)=", exported))


def test_every_variable_the_deployments_read_is_passed_and_exported() -> None:
    referenced = set(re.findall(r"\{\{\s*\$(DCO_[A-Z_]+)\s*\}\}", PREFECT_YAML))
    env = yaml.safe_load(PREFECT_YAML)["definitions"]["work_pool"]["job_variables"]["env"]
    assert {"DCO_CONTENT_DIR", "DCO_DATABASE_URL", "DCO_TELEMETRY_DIR"} <= set(env)
    assert referenced - {"DCO_PROJECT_DIR"} == set(env)  # the working folder is the pull step's, at deploy time
    assert referenced <= _readme_exports()
    for name in env:  # each is a real setting (a typo would be ignored silently)
        assert name.removeprefix("DCO_").lower() in Settings.model_fields


@pytest.mark.parametrize("value", [None, ""])
def test_unset_telemetry_location_is_an_error(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("DCO_TELEMETRY_DIR", raising=False)
    else:  # what the deployment's "{{ $DCO_TELEMETRY_DIR }}" becomes when the variable was not set
        monkeypatch.setenv("DCO_TELEMETRY_DIR", value)
    with pytest.raises(ConfigError, match="DCO_TELEMETRY_DIR is not set"):
        Settings().telemetry_paths()


def test_a_blank_telemetry_path_is_refused() -> None:
    from dcoflow.flows.hunt import HuntParameters, SweepParameters

    with pytest.raises(pydantic.ValidationError, match="empty telemetry path would read the current folder"):
        SweepParameters(data=[""])
    with pytest.raises(pydantic.ValidationError, match="empty telemetry path"):
        HuntParameters(data=["  "])


@pytest.mark.prefect
def test_hunt_sweep_without_telemetry_fails_and_hunts_nothing(settings: Settings, prefect_harness: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from dcoflow.flows.hunt import SweepParameters, hunt_sweep

    monkeypatch.setenv("DCO_TELEMETRY_DIR", "")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="no telemetry location"):
        hunt_sweep(SweepParameters())


def _readme_commands() -> list[list[str]]:
    """Every `dco …` command the README names (``ops create/approve`` is two), as argv lists."""
    found: list[list[str]] = []
    for words in sorted(set(re.findall(r"`dco ([a-z][a-z-]*(?: [a-z][a-z/-]*)?)", README))):
        head, _, tail = words.partition(" ")
        found += [[head, sub] for sub in tail.split("/")] if tail else [[head]]
    return found


@pytest.mark.parametrize("argv", _readme_commands(), ids=" ".join)
def test_every_command_the_readme_names_exists(argv: list[str]) -> None:
    from typer.testing import CliRunner

    from dcoflow.flows.cli import app

    got = CliRunner().invoke(app, [*argv, "--help"])
    assert got.exit_code == 0 and "Usage:" in got.output, got.output
