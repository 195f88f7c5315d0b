"""Cross-cutting plumbing only: settings, database sessions, errors."""
