"""The assessment flow: score a DCO's (or every DCO's) techniques from the evidence, log the
scores, publish the coverage table, charts, Navigator layers and Prefect artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.models.assessment import DEFAULT_HALF_LIFE_DAYS
from dcoflow.tasks.assess.run import assess_task
from dcoflow.tasks.assess.scoring import configured_targets


@flow(name="assess-dco")
@described
def assess_dco(
    dco: Annotated[str, Field(description="DCO id or name (ignored when all_dcos).")],
    all_dcos: Annotated[bool, Field(description="Assess every DCO, for the trend across DCOs.")] = False,
    output_dir: Annotated[str | None, Field(description="Where files go; DCO_OUTPUT_DIR when empty.")] = None,
    half_life_days: Annotated[float, Field(gt=0, description="Evidence half-life: older evidence counts less.")] = (
        DEFAULT_HALF_LIFE_DAYS),
    attack_source: Annotated[str | None, Field(description="ATT&CK bundle; the configured one when empty.")] = None,
) -> dict[str, Any]:
    """Visibility/detection per technique, ranked gaps, and the files that show them."""
    log = get_run_logger()
    settings = get_settings()
    results = assess_task(None if all_dcos else dco, all_dcos=all_dcos, half_life_days=half_life_days,
                          default_targets=configured_targets(settings),
                          output_dir=Path(output_dir) if output_dir else settings.output_dir,
                          attack_source=attack_source)
    for dco_id, summary in results.items():
        log.info("%s: %d techniques, %d gaps, %d ids reported", dco_id, summary["techniques"], summary["gaps"],
                 summary["ids_reported"])
        for line in summary.get("id_lines", []):
            log.info("%s ids: %s", dco_id, line)
    return results
