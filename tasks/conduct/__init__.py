"""Conduct phase: hunts (local engine, SIEM back ends), their recording and triage; emulation."""
