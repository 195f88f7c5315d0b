"""The demo DCO's window follows the day the demo first runs, so its approval gate never closes on a date
baked into the package; a re-run in the same folder keeps the window (the approved spec cannot change)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.flows.demo import DEMO_OPERATION, write_demo_operation
from dcoflow.models.gates import conduct_verdict
from dcoflow.models.operation import DcoState


def test_demo_window_starts_the_day_the_demo_first_runs(tmp_path: Path) -> None:
    first_day = datetime(2031, 3, 9, 14, 30, tzinfo=UTC)
    path = write_demo_operation(tmp_path, now=first_day)
    spec = load_operation_file(path)
    assert spec.window is not None
    assert spec.window.start == datetime(2031, 3, 9, tzinfo=UTC)
    assert spec.window.end == datetime(2031, 3, 20, 18, tzinfo=UTC)
    assert conduct_verdict(DcoState.APPROVED, spec.window, first_day).allowed
    assert not conduct_verdict(DcoState.APPROVED, spec.window, first_day + timedelta(days=30)).allowed

    again = write_demo_operation(tmp_path, now=first_day + timedelta(days=5))  # a resumed demo: same window
    assert load_operation_file(again).window == spec.window
    packaged = load_operation_file(DEMO_OPERATION)
    assert packaged.window is None and packaged.model_dump(exclude={"window"}) == spec.model_dump(exclude={"window"})
