"""Prefect task retries follow the error's `retryable` flag: rejected credentials fail at once."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

import dcoflow.flows
import dcoflow.tasks
from dcoflow.core.errors import AuthError, ConnectorError, ValidationError
from dcoflow.tasks.retry import retry_when_retryable


@pytest.mark.parametrize(("error", "retry"), [
    (AuthError("HTTP 401", system="thehive", status=401), False),
    (ValidationError("bad file", field="x"), False),
    (ConnectorError("timed out", system="caldera", retryable=True), True),
    (ConnectorError("HTTP 400", system="caldera", status=400), False),
    (OSError("connection reset"), True),  # not ours to classify: Prefect's default
])
def test_condition_reads_the_flag(error: Exception, retry: bool) -> None:
    assert retry_when_retryable(None, None, Failed(data=error)) is retry  # type: ignore[arg-type]


def test_every_retrying_task_asks_the_error() -> None:
    """A task wrapper with retries= and no retry_condition_fn would retry a rejected credential."""
    missing, checked = [], 0
    for package in (dcoflow.tasks, dcoflow.flows):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".cli" in info.name or ".demo" in info.name:
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if isinstance(value, Task) and value.__module__ == module.__name__ and value.retries:
                    checked += 1
                    if value.retry_condition_fn is not retry_when_retryable:
                        missing.append(f"{info.name}.{name}")
    assert checked >= 10
    assert not missing, f"add retry_condition_fn=retry_when_retryable to {missing}"


def test_prefect_stops_retrying_on_rejected_credentials(prefect_harness: None) -> None:
    calls: list[str] = []

    def deliver(error: Any) -> None:
        calls.append(type(error).__name__)
        raise error

    deliver_task = task(name="deliver", retries=2, retry_delay_seconds=0, cache_policy=NO_CACHE,
                        retry_condition_fn=retry_when_retryable)(deliver)
    with pytest.raises(AuthError):
        deliver_task(AuthError("HTTP 403", system="thehive", status=403))
    assert calls == ["AuthError"]
    calls.clear()
    with pytest.raises(ConnectorError):
        deliver_task(ConnectorError("HTTP 503", system="thehive", status=503, retryable=True))
    assert calls == ["ConnectorError"] * 3
