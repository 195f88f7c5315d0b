"""The brief flow: a DCO's technical and/or executive brief (Markdown + HTML) and, when a body is
named, its meeting and meeting pack; the executive brief is published as a Prefect artifact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from dcoflow.core.db import session_scope
from dcoflow.core.settings import get_settings
from dcoflow.flows.forms import described
from dcoflow.models.repository.operation import get_operation
from dcoflow.tasks.reporting.briefing import write_briefs_task
from dcoflow.tasks.retry import retry_when_retryable


def _meeting_pack(dco_id: str, body: str, output_dir: str, attack_source: str | None) -> dict[str, Any]:
    """Build (or refresh) the body's meeting about the DCO now and write its pack."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.tasks.reporting.meetings import build_pack, create_meeting, write_pack

    catalog = load_catalog(attack_source)
    with session_scope() as session:
        meeting = create_meeting(session, dco_id, body, datetime.now(UTC).replace(second=0, microsecond=0),
                                 actor="brief-flow")
        files = write_pack(build_pack(session, meeting.id, catalog), Path(output_dir))
        return {"meeting": meeting.id, "files": {k: str(v) for k, v in files.items()}}


meeting_pack_task = task(name="meeting-pack",
                         retry_condition_fn=retry_when_retryable, retries=1, cache_policy=NO_CACHE)(_meeting_pack)


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
    with session_scope() as session:
        dco_id = get_operation(session, dco).id
    out = output_dir or str(get_settings().output_dir / dco_id)
    result = write_briefs_task(dco_id, out, audience, attack_source)
    executive_md = result.pop("executive_md")
    create_markdown_artifact(key=f"brief-{dco_id}", markdown=executive_md,
                             description=f"Executive brief of DCO {dco_id}")
    if meeting_body:
        result["meeting"] = meeting_pack_task(dco_id, meeting_body, out, attack_source)
    log.info("%s: status %s, %d decisions needed, %d actions overdue; files in %s", dco_id, result["rag"],
             result["decisions"], result["overdue_actions"], out)
    return result
