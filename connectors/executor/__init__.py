"""Executors that run emulation procedures: the local lab-host executor (sh/bash)."""
