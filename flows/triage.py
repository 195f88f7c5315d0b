"""The ``triage_hunt`` flow: an analyst's verdicts on a hunt's real hits, as a human step in Prefect.

It lists the untriaged, non-exercise hits of the DCO's latest (or given) hunt run, applies verdicts
given as a parameter (automation, the demo), and pauses for the rest with a typed form (one verdict
and note per hit; resume in the UI or with ``prefect.flow_runs.resume_flow_run(id, run_input=…)``).
Listing and recording are ``dcoflow.tasks.conduct.triage``'s ``hits_to_triage`` and ``triage``, which
``dco hunt hits/triage`` call too. Every new true positive emits ``dco.finding.true-positive``, which the
escalate deployment's trigger turns into an incident.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field

from dcoflow.flows.forms import described
from dcoflow.models.hunt_run import Verdict
from dcoflow.tasks.conduct.triage import SKIP, TriageAnswer, hit_rows, hits_to_triage, triage_task, verdicts_for


class TriageChoice(StrEnum):
    TRUE_POSITIVE = Verdict.TRUE_POSITIVE.value
    FALSE_POSITIVE = Verdict.FALSE_POSITIVE.value
    BENIGN = Verdict.BENIGN.value
    SKIP = SKIP


class HitVerdict(BaseModel):
    sighting_id: str = Field(description="The hit (STIX sighting id).")
    hit: str = Field("", description="What was seen: rule, techniques, host, time (for reading; not recorded).")
    verdict: TriageChoice = Field(TriageChoice.SKIP, description="skip leaves the hit untriaged.")
    note: str | None = Field(None, description="Why (kept as the opinion's explanation).")


class TriageForm(RunInput):
    """What the analyst fills in when the flow pauses."""

    analyst: str = Field(description="Who gives the verdicts.")
    hits: list[HitVerdict] = Field(description="One verdict per hit.")


@flow(name="triage-hunt", log_prints=True)
@described
def triage_hunt(
    dco: Annotated[str, Field(description="DCO id or name.")],
    hunt_run: Annotated[str | None, Field(description="Hunt run id; the DCO's latest when empty.")] = None,
    verdicts: Annotated[dict[str, str] | None, Field(
        description="Verdicts agreed in advance, by sighting id or Sigma rule id "
        "(true-positive, false-positive, benign).")] = None,
    pause_for_input: Annotated[bool, Field(description="Pause for the analyst's verdicts on the rest.")] = True,
    analyst: Annotated[str, Field(description="Who triages (recorded with each verdict).")] = "prefect",
    pause_timeout_s: Annotated[int, Field(description="How long to wait for the analyst, in seconds.")] = 3600,
) -> dict[str, Any]:
    """Triage the untriaged real hits of DCO ``dco``'s hunt run ``hunt_run`` (default: its latest).

    verdicts: by sighting id or Sigma rule id (all of the rule's hits) → true-positive, false-positive,
    benign or skip. Hits without one pause for the analyst's form when ``pause_for_input``; otherwise
    they stay untriaged (``dco hunt triage``).
    """
    log = get_run_logger()
    dco_id, run, hits = hits_to_triage(dco, hunt_run)
    result: dict[str, Any] = {"dco": dco_id, "hunt_run": run.id if run else None, "hits": len(hits),
                              "recorded": {}, "untriaged": len(hits), "unmatched": [], "escalation_events": 0}
    if run is None or not hits:
        log.info("%s: nothing to triage", dco_id)
        return result
    chosen, unmatched = verdicts_for(hits, verdicts or {})
    answers = [TriageAnswer(sid, verdict, analyst) for sid, verdict in chosen.items()]
    pending = [h for h in hits if h.sighting_id not in chosen]
    if pending and pause_for_input:
        create_table_artifact(hit_rows(pending), key=f"triage-{dco_id}".lower(),
                              description=f"Hunt hits of {run.id} awaiting triage")
        form = pause_flow_run(
            wait_for_input=TriageForm.with_initial_data(
                description=f"Triage {len(pending)} hunt hit(s) of DCO {dco_id} (hunt run {run.id})",
                analyst=analyst,
                hits=[HitVerdict(sighting_id=h.sighting_id, hit=h.summary) for h in pending],
            ),
            timeout=pause_timeout_s,
            key=f"triage-{run.id}",
        )
        waiting = {h.sighting_id for h in pending}
        for item in form.hits:
            if item.sighting_id in waiting:
                answers.append(TriageAnswer(item.sighting_id, item.verdict.value, form.analyst, item.note))
                waiting.discard(item.sighting_id)
            else:
                unmatched.append(item.sighting_id)
    if unmatched:
        log.warning("%s: verdicts for %s match no untriaged hit of %s", dco_id, ", ".join(unmatched), run.id)
    done = triage_task(answers)
    result.update(recorded=done.counts, untriaged=len(hits) - len(done.rows), unmatched=unmatched,
                  escalation_events=done.announced)
    return result
