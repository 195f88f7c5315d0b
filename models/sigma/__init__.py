"""Sigma rules compiled to fast Python evaluators (pure: no I/O)."""
