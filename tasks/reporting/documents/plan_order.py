"""The DCO plan as a five-paragraph order (Situation, Mission, Execution, Sustainment, Command and
signal) with annexes (A emulation plan, B hunt plan, C rules of engagement, D deconfliction schedule,
E tasking matrix), as DOCX and PDF.

``gather_plan_order`` reads the stored DCO once (spec, plan record, steps, hypotheses, deconfliction
records, audit trail) into a pure ``PlanOrder``; ``plan_document`` turns it into blocks
(tasks/reporting/documents/blocks.py) that both renderers draw. The body stays short whatever the
plan's size — it names the phases, the first steps and hypotheses and the counts — and the annexes
carry every step and hypothesis, paginated with their header rows repeated.

Timings are relative to H-hour (the start of the DCO's window, when it has one): emulation steps run
one after another in kill-chain order, each within the rules of engagement's time box, so step n
starts no earlier than H + (n − 1) × time box. Tasks per organisation follow from the participants'
roles (``ROLE_TASKS``), version and change log from the audit trail (each plan or re-plan is a
version), the approval from the recorded state change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from dcoflow.core.errors import ConfigError
from dcoflow.models.assessment import threat_relevance
from dcoflow.models.attack import Catalog
from dcoflow.models.emulation import Deconfliction, dco_marker
from dcoflow.models.marking import MarkingFacts
from dcoflow.models.operation import DcoSpec, Operation, Role, as_utc
from dcoflow.models.plan import EmulationStep, PlanRecord
from dcoflow.models.repository.operation import audit_trail, get_operation
from dcoflow.models.repository.plan import deconfliction_notices, list_hypotheses, list_steps, plan_record
from dcoflow.tasks.reporting.documents.blocks import Bullets, Document, Heading, Para, Table

#: How many steps and hypotheses the body lists before it refers to the annexes.
BODY_ITEMS = 8

#: The order's tasking matrix: what each role does in each activity (L lead, C conduct, S support,
#: I informed, A approve).
TASKS = ("plan and approve", "deconflict", "hunt", "emulate", "triage hits", "assess", "remediate",
         "receive incidents and briefs")
ROLE_TASKS: dict[Role, dict[str, str]] = {
    Role.LEAD: {"plan and approve": "L/A", "deconflict": "L", "assess": "L", "receive incidents and briefs": "I",
                "hunt": "I", "emulate": "I", "triage hits": "I", "remediate": "A"},
    Role.CONDUCT: {"plan and approve": "S", "deconflict": "C", "hunt": "C", "emulate": "C", "triage hits": "C",
                   "assess": "C", "receive incidents and briefs": "I"},
    Role.SUPPORT: {"plan and approve": "S", "hunt": "S", "emulate": "S", "assess": "S", "remediate": "C",
                   "receive incidents and briefs": "I"},
    Role.INFORMED: {"receive incidents and briefs": "I"},
}
ROLE_DUTIES: dict[Role, str] = {
    Role.LEAD: "leads and coordinates the DCO, approves the plan, chairs the assessment and owns the briefs",
    Role.CONDUCT: "conducts the hunts and the emulation, records outcomes per defensive tool and triages hits",
    Role.SUPPORT: "supports the conduct with access, intelligence and expertise and carries out remediation "
                  "actions assigned to it",
    Role.INFORMED: "receives escalated incidents and the briefs",
}


@dataclass(slots=True, frozen=True)
class ThreatLine:
    technique_id: str
    name: str
    tactics: str
    why: str


@dataclass(slots=True, frozen=True)
class StepLine:
    order: int
    tactic: str
    technique: str
    procedure: str
    how: str  # connector / executor / platform
    starts: str  # H+hh:mm:ss, and the date-time when the window is known
    depends_on: str
    status: str


@dataclass(slots=True, frozen=True)
class HypothesisLine:
    order: int
    technique: str
    statement: str
    data_components: str
    telemetry: str
    rules: int
    rule_titles: str


@dataclass(slots=True, frozen=True)
class Change:
    version: int
    at: datetime
    actor: str
    what: str


@dataclass(slots=True)
class PlanOrder:
    dco_id: str
    spec: DcoSpec
    state: str
    marking: MarkingFacts
    generated_at: datetime
    version: int
    record: PlanRecord | None
    threat_actors: list[tuple[str, str]]  # (label, why it matters)
    threat: list[ThreatLine]
    steps: list[StepLine]
    hypotheses: list[HypothesisLine]
    deconfliction: list[tuple[str, str, str, str]]  # (step, contact, channel and status, when)
    changes: list[Change]
    approved_by: str | None
    approved_at: datetime | None
    time_box: timedelta
    content: dict[str, str] = field(default_factory=dict)

    @property
    def organisations(self) -> list[tuple[str, Role, str]]:
        return [(p.organisation, p.role, p.contact or "—") for p in self.spec.participants]

    @property
    def h_hour(self) -> datetime | None:
        return as_utc(self.spec.window.start) if self.spec.window else None


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"H+{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def gather_plan_order(session: Session, op: Operation, catalog: Catalog, *, now: datetime | None = None) -> PlanOrder:
    """Read one DCO's plan from the store."""
    spec = op.dco
    record = plan_record(session, op.id)
    box = timedelta(seconds=spec.rules_of_engagement.max_step_seconds)
    h_hour = as_utc(spec.window.start) if spec.window else None

    profile = spec.threat_profile
    actors: list[tuple[str, str]] = []
    for ref in profile.groups:
        group = catalog.group(ref)
        also = f"; also known as {', '.join(group.aliases[:4])}" if group.aliases[1:] else ""
        actors.append((f"{group.name} ({group.attack_id})",
                       f"group in the threat profile: {len(group.technique_ids)} techniques attributed directly, "
                       f"{len(group.campaign_ids)} campaigns{also}"))
    for ref in profile.campaigns:
        camp = catalog.campaign(ref)
        actors.append((f"{camp.name} ({camp.attack_id})", f"campaign in the threat profile: "
                                                          f"{len(camp.technique_ids)} techniques"))
    for ref in profile.software:
        soft = catalog.software(ref)
        actors.append((f"{soft.name} ({soft.attack_id})", "software in the threat profile"))
    if profile.emulation_plan:
        actors.append((Path(profile.emulation_plan).name, "CTID adversary emulation plan"))

    planned = list(record.techniques) if record else []
    rel = threat_relevance(catalog, profile.groups, profile.campaigns, profile.via, planned)
    extra = {t.upper() for t in profile.techniques}
    threat: list[ThreatLine] = []
    for tid in planned:
        tech = catalog.get_technique(tid)
        r = rel.get(tid)
        reasons = [f"used by {', '.join(r.users)}"] if r is not None and r.users else []
        if tid.upper() in extra:
            reasons.append("added by the cell from recent reporting")
        threat.append(ThreatLine(tid, tech.name if tech else tid, ", ".join(tech.tactics) if tech else "—",
                                 "; ".join(reasons) or "in the emulation plan"))
    threat.sort(key=lambda t: (min((catalog.tactic_rank(x) for x in t.tactics.split(", ")), default=99),
                               t.technique_id))

    steps: list[StepLine] = []
    by_step: dict[str, EmulationStep] = {}
    for n, st in enumerate(list_steps(session, op.id)):
        by_step[st.id] = st
        start = box * n
        when = f"{_offset(start)}" + (f" ({(h_hour + start):%d %b %H:%M:%S})" if h_hour else "")
        how = " / ".join(x for x in (st.connector, st.executor, st.platform) if x)
        steps.append(StepLine(st.order, st.tactic, f"{st.technique_id} {st.technique_name}", st.procedure_name, how,
                              when, ", ".join(d.split("-")[-1] for d in st.depends_on) or "—", st.status.value))

    hyps = sorted(list_hypotheses(session, op.id),
                  key=lambda h: (min((catalog.tactic_rank(t) for t in h.tactics), default=99), h.technique_id))
    hypotheses = [
        HypothesisLine(i + 1, f"{h.technique_id} {h.technique_name}", h.statement,
                       ", ".join(h.data_components) or "—", ", ".join(h.telemetry) or "—", len(h.sigma_rules),
                       "; ".join(str(r.get("title", r.get("rule_id", ""))) for r in h.sigma_rules[:3])
                       + (f"; … {len(h.sigma_rules) - 3} more" if len(h.sigma_rules) > 3 else ""))
        for i, h in enumerate(hyps)
    ]

    done: dict[tuple[str, str], Deconfliction] = {(d.step_id, d.notified): d
                                                  for d in deconfliction_notices(session, op.id)}
    contacts = spec.rules_of_engagement.deconfliction_contacts
    deconfliction: list[tuple[str, str, str, str]] = []
    for st_line, st in zip(steps, by_step.values(), strict=True):
        for contact in contacts:
            d = done.get((st.id, contact))
            state = f"{d.channel}: {d.status}" if d else "to notify before the step"
            deconfliction.append((f"{st_line.order}. {st.technique_id}", contact, state,
                                  _when(d.notified_at) if d else f"before {st_line.starts}"))

    changes: list[Change] = []
    version = 0
    for ev in audit_trail(session, op.id):
        if ev.action == "plan":
            version += 1
            s = ev.details.get("summary", {})
            what = (f"plan v{version}: {s.get('techniques', '?')} techniques, {s.get('emulation_steps', '?')} "
                    f"emulation steps, {s.get('hypotheses', '?')} hunt hypotheses")
        elif ev.to_state:
            what = f"{ev.from_state or 'new'} → {ev.to_state}" + (f": {ev.reason}" if ev.reason else "")
        else:
            continue
        changes.append(Change(max(version, 1), as_utc(ev.at), ev.actor, what))
    content = {"ATT&CK": f"{record.attack_domain} v{record.attack_version} (bundle {record.attack_hash[:12]})"
               if record else "not planned yet"}
    if record is not None:
        content.update({k: str(v) for k, v in dict(record.summary.get("content") or {}).items()})
        content.setdefault("sigma", "not recorded at plan time")
        content.setdefault("atomics", "not recorded at plan time")
    return PlanOrder(
        dco_id=op.id, spec=spec, state=op.state.value, marking=MarkingFacts.of(spec.marking),
        generated_at=as_utc(now or datetime.now(UTC)), version=max(version, 1), record=record,
        threat_actors=actors, threat=threat, steps=steps, hypotheses=hypotheses, deconfliction=deconfliction,
        changes=changes, approved_by=op.approved_by, approved_at=as_utc(op.approved_at) if op.approved_at else None,
        time_box=box, content=content,
    )


# -- the document ----------------------------------------------------------------------------------------------


def _list(items: Sequence[str], empty: str = "none named") -> str:
    return ", ".join(items) or empty


def plan_document(order: PlanOrder) -> Document:
    """The order and its annexes as blocks (see the module docstring)."""
    spec, roe = order.spec, order.spec.rules_of_engagement
    window = (f"{_when(spec.window.start)} to {_when(spec.window.end)}" if spec.window
              else "no window set (H-hour when the coordinator orders execution)")
    approval = (f"Approved by {order.approved_by} on {_when(order.approved_at)}." if order.approved_by
                else f"NOT YET APPROVED — the DCO is {order.state}; approval is recorded with dco ops approve.")
    doc = Document(
        title=f"DCO plan — {spec.name}", marking=order.marking, created=order.generated_at,
        subtitle=f"Operation order · DCO {order.dco_id} · {spec.type.value} · version {order.version} · "
                 f"generated {_when(order.generated_at)} · state {order.state}",
    )
    doc.add(Para(approval, lead="Approval.", style="box"))
    leads = [o for o, r, _ in order.organisations if r == Role.LEAD]
    conduct = [o for o, r, _ in order.organisations if r == Role.CONDUCT]
    support = [o for o, r, _ in order.organisations if r == Role.SUPPORT]
    informed = [o for o, r, _ in order.organisations if r == Role.INFORMED]
    n_steps, n_hyps = len(order.steps), len(order.hypotheses)

    # 1 Situation
    doc.add(Heading("1. Situation"))
    threat_text = "; ".join(f"{label} — {why}" for label, why in order.threat_actors) or \
        "techniques named by the cell (no group, campaign or software)"
    doc.add(Para(f"{threat_text}. The plan covers {len(order.threat)} techniques; "
                 f"the full list with the reason for each is below and in Annex A/B.",
                 lead="a. Threat."))
    if order.threat:
        shown = order.threat[:BODY_ITEMS]
        doc.add(Table(("technique", "tactics", "why it is in the plan"),
                      tuple((f"{t.technique_id} {t.name}", t.tactics, t.why) for t in shown), widths=(3, 2, 5),
                      caption=f"Threat techniques ({len(shown)} of {len(order.threat)} shown; all in Annex F)"))
    friends = "; ".join(f"{o} ({r.value}) {ROLE_DUTIES[r]}" for o, r, _ in order.organisations) or \
        "no participants named"
    doc.add(Para(friends + ".", lead="b. Friendly forces."))
    scope = spec.scope
    groups = [f"{g.name} ({g.criticality.value})" for g in scope.asset_groups]
    doc.add(Para(f"enclaves {_list(scope.enclaves)}; asset groups {_list(groups)}; platforms "
                 f"{_list([p.value for p in scope.platforms])}; named hosts {_list(scope.hosts)}.",
                 lead="c. Environment in scope:"))

    # 2 Mission
    doc.add(Heading("2. Mission"))
    doc.add(Para(
        f"{_list(conduct or leads, 'The cell')} {'conduct' if len(conduct) != 1 else 'conducts'} a "
        f"{spec.type.value.replace('-', ' ')} ({n_hyps} hunt hypotheses, {n_steps} emulation steps) against "
        f"{_list([a for a, _ in order.threat_actors], 'the named techniques')} in {_list(scope.enclaves, 'the scope')} "
        f"from {window}, led by {_list(leads, 'the coordinator')}, in order to: {spec.objective.strip()}"))

    # 3 Execution
    doc.add(Heading("3. Execution"))
    doc.add(Para("", lead="a. Concept of operations."))
    phases = [
        f"Plan and approve: the plan (version {order.version}) is reviewed by the participants and approved by "
        f"{_list(leads, 'the lead')}; nothing is executed before approval.",
        f"Conduct — hunt (from H): {n_hyps} hypotheses, one per technique, run as Sigma rules over the "
        "telemetry in scope; every hit is triaged; true positives on real activity are escalated at once.",
        f"Conduct — emulation (from H): {n_steps} steps in kill-chain order, one after another, each deconflicted "
        f"before it runs and time-boxed to {int(order.time_box.total_seconds())} s; activity is marked "
        f"{dco_marker(order.dco_id)} so hunts tell it from real activity; outcomes are recorded per defensive tool.",
        "Assess: visibility (0–4) and detection (−1..5) per technique from all evidence; gaps ranked.",
        "Follow up: risks to the risk owners, remediation and detection-engineering actions with owners and due "
        "dates, a scheduled re-test, incidents for confirmed findings; briefs to the coordination cell.",
    ]
    doc.add(Bullets(tuple(phases), numbered=True))
    if order.steps:
        doc.add(Table(("#", "starts", "tactic", "technique", "procedure"),
                      tuple((str(s.order), s.starts, s.tactic, s.technique, s.procedure)
                            for s in order.steps[:BODY_ITEMS]), widths=(0.6, 2.2, 1.8, 3.2, 3.2),
                      caption=f"Emulation steps in order ({min(n_steps, BODY_ITEMS)} of {n_steps}; all in Annex A)"))
    if order.hypotheses:
        doc.add(Table(("#", "technique", "data needed", "Sigma rules"),
                      tuple((str(h.order), h.technique, h.data_components, str(h.rules))
                            for h in order.hypotheses[:BODY_ITEMS]), widths=(0.6, 3.5, 4.5, 1.2),
                      caption=f"Hunt hypotheses ({min(n_hyps, BODY_ITEMS)} of {n_hyps}; all in Annex B)"))
    doc.add(Para("", lead="b. Tasks to participating organisations."))
    doc.add(Bullets(tuple(f"{o} ({r.value}): {ROLE_DUTIES[r]}." for o, r, _ in order.organisations)
                    or ("No participating organisation named.",)))
    doc.add(Para("See the tasking matrix in Annex E.", style="meta"))
    doc.add(Para("", lead="c. Coordinating instructions."))
    contacts = _list(roe.deconfliction_contacts, "no contact named (steps are recorded only)")
    doc.add(Bullets((
        f"Rules of engagement: Annex C. Hosts {_list(roe.allowed_hosts, 'none')}; executors "
        f"{_list(roe.allowed_executors)}; forbidden techniques {_list(roe.forbidden_techniques, 'none')}.",
        f"Deconfliction: before every emulation step, {contacts} is told what runs where and when (Annex D).",
        f"Abort criteria: a step exceeding {int(order.time_box.total_seconds())} s is stopped and cleaned up; "
        "anything outside the allowed hosts, platforms or executors is refused; "
        + ("destructive procedures are refused; " if not roe.destructive_allowed else "")
        + ("procedures needing elevation are refused; " if not roe.requires_elevation_allowed else "")
        + "the lead halts emulation when a hunt confirms real hostile activity on a host in scope.",
        "Reporting triggers: a true-positive hunt hit → incident to the incident manager at once; a step no "
        "defensive tool noticed → recorded as a gap for the assessment; every phase change → recorded in the "
        "audit log and announced as an event; after the assessment → technical and executive briefs.",
    )))

    # 4 Sustainment
    doc.add(Heading("4. Sustainment"))
    components = sorted({c.strip() for h in order.hypotheses for c in h.data_components.split(",")
                         if c.strip() and c.strip() != "—"})
    doc.add(Para(f"{len(components)} ATT&CK data components across the hunt plan: "
                 f"{_list(components[:20])}{' …' if len(components) > 20 else ''}. Each hypothesis's own list is "
                 "in Annex B.", lead="a. Data sources and telemetry."))
    connectors = sorted({s.how.split(" / ")[0] for s in order.steps})
    doc.add(Para(f"emulation connectors {_list(connectors, 'none')}; hunts with the dcoflow Sigma engine over "
                 "recorded telemetry or the SIEM back ends; Navigator layers, STIX 2.1 and VECTR CSV for the results.",
                 lead="b. Tooling:"))
    doc.add(Para("; ".join(f"{k}: {v}" for k, v in order.content.items()) + ".", lead="c. Content versions:"))

    # 5 Command and signal
    doc.add(Heading("5. Command and signal"))
    doc.add(Para(f"{_list(leads, 'the coordinator')}. {approval}", lead="a. Authority and approval:"))
    verb = "reports" if len(conduct) == 1 else "report"
    doc.add(Para(f"{_list(conduct, 'conducting organisations')} {verb} to {_list(leads, 'the lead')}; incidents go "
                 f"to {_list(informed, 'the incident manager')}; risks go to the risk bodies that hold the authority "
                 f"(decision policy); {_list(support, 'supporting organisations')} report remediation progress.",
                 lead="b. Reporting lines:"))
    doc.add(Table(("organisation", "role", "contact"),
                  tuple((o, r.value, c) for o, r, c in order.organisations) or (("—", "—", "—"),),
                  widths=(3, 2, 5), caption="c. Contacts and channels"))
    doc.add(Para(f"deconfliction through {contacts}; incident notices by signed webhook or TheHive where "
                 "configured; every record marked " + order.marking.banner + ".", lead="Channels:"))

    # Version and change log
    doc.add(Heading("Version and change log", level=2))
    doc.add(Table(("version", "when", "who", "change"),
                  tuple((str(c.version), _when(c.at), c.actor, c.what) for c in order.changes)
                  or (("1", _when(order.generated_at), "—", "not planned yet"),), widths=(1, 2.4, 2.4, 5)))

    # Annexes
    doc.add(Heading("Annex A — Emulation plan", page_break=True, wide=True))
    if order.steps:
        doc.add(Table(("#", "starts", "tactic", "technique", "procedure", "how", "after", "status"),
                      tuple((str(s.order), s.starts, s.tactic, s.technique, s.procedure, s.how, s.depends_on, s.status)
                            for s in order.steps), widths=(0.5, 1.9, 1.5, 2.6, 2.8, 1.6, 0.8, 1), small=True))
    else:
        doc.add(Para("No emulation in this DCO (its type does not emulate, or it is not planned yet)."))
    doc.add(Heading("Annex B — Hunt plan", page_break=True, wide=True))
    if order.hypotheses:
        doc.add(Table(("#", "technique", "hypothesis", "data components", "Sigma rules"),
                      tuple((str(h.order), h.technique, h.statement, h.data_components,
                             f"{h.rules}: {h.rule_titles}" if h.rules else "none — hunt content needed")
                            for h in order.hypotheses), widths=(0.5, 2.2, 3.6, 2.4, 3), small=True))
    else:
        doc.add(Para("No hunting in this DCO (its type does not hunt, or it is not planned yet)."))
    doc.add(Heading("Annex C — Rules of engagement", page_break=True))
    doc.add(Table(("rule", "value"), (
        ("hosts emulation may run on", _list(roe.allowed_hosts, "none")),
        ("platforms", _list([p.value for p in roe.allowed_platforms], "the scope's platforms")),
        ("executors", _list(roe.allowed_executors)),
        ("forbidden techniques", _list(roe.forbidden_techniques, "none")),
        ("destructive procedures", "allowed" if roe.destructive_allowed else "refused"),
        ("procedures needing elevation", "allowed" if roe.requires_elevation_allowed else "refused"),
        ("time box per step", f"{roe.max_step_seconds} s"),
        ("deconfliction contacts", contacts),
        ("exercise marker", dco_marker(order.dco_id)),
        ("notes", roe.notes or "—"),
    ), widths=(3, 7)))
    doc.add(Heading("Annex D — Deconfliction schedule", page_break=True, wide=True))
    if order.deconfliction:
        doc.add(Table(("step", "contact", "channel / status", "when"), tuple(order.deconfliction),
                      widths=(2, 3, 2.5, 3), small=True))
    else:
        doc.add(Para("No deconfliction needed: no emulation steps, or no deconfliction contact named in the rules "
                     "of engagement."))
    doc.add(Heading("Annex E — Tasking matrix", page_break=True, wide=True))
    doc.add(Para("L lead · C conduct · S support · I informed · A approve", style="meta"))
    doc.add(Table(("organisation", *TASKS),
                  tuple((o, *(ROLE_TASKS[r].get(t, "") for t in TASKS)) for o, r, _ in order.organisations)
                  or (("—", *("" for _ in TASKS)),), widths=(2, *(1 for _ in TASKS)), small=True))
    doc.add(Heading("Annex F — Threat techniques", page_break=True))
    doc.add(Table(("technique", "tactics", "why it is in the plan"),
                  tuple((f"{t.technique_id} {t.name}", t.tactics, t.why) for t in order.threat)
                  or (("—", "—", "not planned yet"),), widths=(3, 2, 5), small=True))
    return doc


def write_plan_documents(order: PlanOrder, out_dir: Path) -> dict[str, Path]:
    """``<dco>-plan-order.docx`` and ``.pdf`` (the PDF through WeasyPrint; see pdf.py)."""
    from dcoflow.tasks.reporting.documents.blocks import to_docx, to_html
    from dcoflow.tasks.reporting.documents.pdf import write_pdf

    doc = plan_document(order)
    base = out_dir / f"{order.dco_id}-plan-order"
    return {"plan-docx": to_docx(doc, base.with_suffix(".docx")),
            "plan-pdf": write_pdf(to_html(doc), base.with_suffix(".pdf"))}


def output_folder(dco_id: str, output_dir: str | Path | None, output_root: Path | None) -> Path:
    """Where a DCO's documents go: ``output_dir`` when given, else ``output_root/<dco id>``."""
    if output_dir is not None:
        return Path(output_dir)
    if output_root is None:
        raise ConfigError("no folder for the documents", object=dco_id, hint="give --out or set DCO_OUTPUT_DIR")
    return output_root / dco_id


def write_plan_order(dco: str, output_dir: str | Path | None = None, attack_source: str | None = None, *,
                     output_root: Path | None = None) -> dict[str, Any]:
    """The user action (`dco doc plan`): read the DCO once, write its plan order (DOCX and PDF) into
    ``output_dir``, or ``output_root/<dco id>`` when none is given."""
    from dcoflow.connectors.attack import load_catalog
    from dcoflow.core.db import session_scope

    catalog = load_catalog(attack_source)
    with session_scope() as session:
        order = gather_plan_order(session, get_operation(session, dco), catalog)
    files = write_plan_documents(order, output_folder(order.dco_id, output_dir, output_root))
    return {"dco": order.dco_id, "version": order.version, "files": {k: str(v) for k, v in files.items()}}
