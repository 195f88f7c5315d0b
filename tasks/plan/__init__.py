"""Plan phase: threat profile + scope → emulation plan, hunt plan, summary, exports."""
