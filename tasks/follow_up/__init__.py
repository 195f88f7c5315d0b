"""Follow-up phase: risks and decisions, actions with SLAs, re-tests that verify closure, and
escalation of confirmed findings as incidents (STIX + webhook/TheHive), never lost, never twice."""
