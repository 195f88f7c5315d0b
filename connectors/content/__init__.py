"""Readers for content files: operation files, Sigma rules, atomics, CTID plans, DeTT&CT, VECTR."""
