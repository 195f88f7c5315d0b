"""Adversary emulation by seam: ``steps`` (deconflict, preview and execute a step under the rules of
engagement), ``outcomes`` (record what each defensive tool did), ``plan_import`` (procedures into a
DCO's plan: atomics, CTID plans, Caldera adversaries and abilities) and ``exchange`` (VECTR CSV and
Caldera reports)."""
