"""Incident-response support as user actions (``dco ir sweep / contain / status``): each opens its session and
calls the sweep (``ir_sweep`` locally, ``ir_siem_sweep`` in a SIEM) or the IR activity and containment records
(``tasks.reporting.ir_brief``).
Creating the IR DCO is planning: ``dcoflow.tasks.plan.ir_incident.create_ir_support_dco``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Literal

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.db import session_scope
from dcoflow.core.errors import ValidationError
from dcoflow.models.ir.activity import IrActivity
from dcoflow.tasks.conduct.ir_siem_sweep import run_siem_sweep
from dcoflow.tasks.conduct.ir_sweep import SweepResult, run_sweep
from dcoflow.tasks.reporting.ir_brief import add_containment, write_ir_brief

SweepSource = Literal["local", "elastic", "splunk"]


def sweep_indicators(indicators: str, data: Sequence[Path] = (), *, source: SweepSource = "local",
                     index: str | None = None, start: datetime | None = None, end: datetime | None = None,
                     dco: str | None = None, sample: int = 5,
                     registry: ConnectorRegistry | None = None) -> SweepResult:
    """Sweep local telemetry (``data``), or a SIEM from the registry over ``start``–``end`` (default the
    incident's activity window), for the indicators of a bundle file or TAXII collection; with a DCO, record
    the hits as its sightings (the DCO must be in its conduct period)."""
    if source == "local" and not data:
        raise ValidationError("a local sweep needs --data", field="data", hint="or --source elastic|splunk")
    registry = registry or ConnectorRegistry.from_settings()
    with session_scope() if dco is not None else nullcontext() as s:
        if source == "local":
            return run_sweep(s, indicators, list(data), dco=dco, sample=sample,
                             max_member_bytes=registry.settings.max_archive_member_bytes)
        return run_siem_sweep(s, indicators, source, registry=registry, index=index, start=start, end=end, dco=dco,
                              sample=sample)


def record_containment(dco: str, title: str, *, owner: str, status: str = "open") -> dict[str, object]:
    """A containment action of the DCO's incident, or a new status of it (a new version when it changed)."""
    with session_scope() as s:
        return add_containment(s, dco, title, owner=owner, status=status)


def ir_status(dco: str, out_dir: Path) -> tuple[IrActivity, Path]:
    """The IR activity of the DCO (hosts swept, indicators found, dwell time, containment) and its brief,
    written to ``out_dir``."""
    with session_scope() as s:
        return write_ir_brief(s, dco, out_dir)
