"""Importing this module registers every SQLModel table (core.db.init_db relies on it)."""

from models.audit import AuditEvent
from models.operation import Operation
from models.plan import EmulationStep, HuntHypothesis, PlanRecord
from models.stix.store import StixObjectRow

__all__ = ["AuditEvent", "EmulationStep", "HuntHypothesis", "Operation", "PlanRecord", "StixObjectRow"]
