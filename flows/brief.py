"""The brief flow: a DCO's technical and/or executive brief (Markdown + HTML) and, when a body is
named, its meeting and meeting pack; the executive brief is published as a Prefect artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.tasks.reporting.run import brief_task, prepare_meeting_task


@flow(name="brief")
@described
def brief(
    dco: Annotated[str, Field(description="DCO id or name.")],
    audience: Annotated[
        Literal["technical", "executive", "both"], Field(description="Which briefs to write.")
    ] = "both",
    meeting_body: Annotated[
        str | None, Field(description="Also prepare this body's meeting and pack (e.g. CRMG, BCISOA).")
    ] = None,
    output_dir: Annotated[str | None, Field(description="Where files go; DCO_OUTPUT_DIR when empty.")] = None,
    attack_source: Annotated[str | None, Field(description="ATT&CK bundle; the configured one when empty.")] = None,
) -> dict[str, Any]:
    """Brief a DCO for technical and non-technical audiences, and prepare a meeting pack."""
    log = get_run_logger()
    result = brief_task(dco, output_root=get_settings().output_dir, output_dir=Path(output_dir) if output_dir else None,
                        audience=audience, attack_source=attack_source)
    dco_id = result["dco"]
    executive_md = result.pop("executive_md")
    for shown_by_the_cli in ("reasons", "label", "marking"):
        result.pop(shown_by_the_cli)
    create_markdown_artifact(key=f"brief-{dco_id}", markdown=executive_md,
                             description=f"Executive brief of DCO {dco_id}")
    out = Path(output_dir) if output_dir else get_settings().output_dir / dco_id
    if meeting_body:
        result["meeting"] = prepare_meeting_task(dco_id, meeting_body, out, attack_source=attack_source)
    log.info("%s: status %s, %d decisions needed, %d actions overdue; files in %s", dco_id, result["rag"],
             result["decisions"], result["overdue_actions"], out)
    return result
