"""Reporting across phases: STIX bundles of a DCO (Navigator layers and briefs live with their phase)."""
