"""Importing this module registers every SQLModel table (core.db.init_db relies on it)."""

from models.assessment_rows import AssessmentRun, ImportedEvidence, TechniqueScore  # noqa: F401  (assessment)
from models.audit import AuditEvent
from models.emulation import Deconfliction, EmulationExecution, EmulationOutcome  # noqa: F401  (emulation)
from models.followup import Action, Incident, Retest, Risk, RiskDecision  # noqa: F401  (follow-up)
from models.hunt_run import HuntRun, TriageVerdict  # noqa: F401  (hunt runs and triage)
from models.meeting import Meeting, MeetingItem  # noqa: F401  (meetings and their items)
from models.operation import Operation
from models.plan import EmulationStep, HuntHypothesis, PlanRecord
from models.stix.store import StixObjectRow

__all__ = ["AuditEvent", "EmulationStep", "HuntHypothesis", "Operation", "PlanRecord", "StixObjectRow"]
