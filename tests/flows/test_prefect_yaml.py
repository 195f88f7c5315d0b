"""Every deployment in prefect.yaml points at a real flow whose parameters it names."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS: list[dict[str, Any]] = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_is_a_flow_with_those_parameters(deployment: dict[str, Any]) -> None:
    path, name = deployment["entrypoint"].split(":")
    module = importlib.import_module("dcoflow." + path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    assert isinstance(flow, Flow)
    accepted = set(inspect.signature(flow.fn).parameters)
    assert set(deployment.get("parameters", {})) <= accepted
    for trigger in deployment.get("triggers", []):
        assert set(trigger.get("parameters", {})) <= accepted


def test_deployment_names_are_unique() -> None:
    names = [d["name"] for d in DEPLOYMENTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_every_form_field_is_described(deployment: dict[str, Any]) -> None:
    """The Prefect UI's run form shows each parameter's description (from the docstring's Args)."""
    path, name = deployment["entrypoint"].split(":")
    flow = getattr(importlib.import_module("dcoflow." + path.removesuffix(".py").replace("/", ".")), name)
    properties = flow.parameters.model_dump()["properties"]
    assert properties and all(p.get("description") for p in properties.values())
