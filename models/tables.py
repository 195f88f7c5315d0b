"""Importing this module registers every SQLModel table; ``metadata()`` is what the package root hands core
(``dcoflow.core.schema``) for migrations and for adopting a database."""

from sqlalchemy import MetaData
from sqlmodel import SQLModel

from dcoflow.models.assessment_rows import AssessmentRun, ImportedEvidence, TechniqueScore  # noqa: F401  (assessment)
from dcoflow.models.audit import AuditEvent
from dcoflow.models.emulation import Deconfliction, EmulationExecution, EmulationOutcome  # noqa: F401  (emulation)
from dcoflow.models.followup import Action, Incident, Retest, Risk, RiskDecision  # noqa: F401  (follow-up)
from dcoflow.models.hunt_run import HuntRun, TriageVerdict  # noqa: F401  (hunt runs and triage)
from dcoflow.models.meeting import Meeting, MeetingItem  # noqa: F401  (meetings and their items)
from dcoflow.models.operation import Operation
from dcoflow.models.plan import EmulationStep, HuntHypothesis, PlanRecord
from dcoflow.models.stix.rows import RandomScoIdRow, StixObjectRow


def metadata() -> MetaData:
    """SQLModel's metadata, which holds every table once this module's imports ran."""
    return SQLModel.metadata


__all__ = ["AuditEvent", "EmulationStep", "HuntHypothesis", "Operation", "PlanRecord", "RandomScoIdRow",
           "StixObjectRow"]
