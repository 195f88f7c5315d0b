"""One error root for dcoflow.

Every error says *which system*, *which object* and *what went wrong*, as fields a
caller can inspect (the CLI prints them, flows put them in run state messages) and
as a readable message. ``retryable`` tells retry policies whether trying again can
help (timeouts, 429, 5xx) or not (bad input, 4xx).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DcoError(Exception):
    """Root of every error dcoflow raises on purpose."""

    system: str = "dcoflow"

    def __init__(
        self,
        reason: str,
        *,
        system: str | None = None,
        object: str | None = None,
        retryable: bool = False,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.reason = reason
        if system is not None:
            self.system = system
        self.object = object
        self.retryable = retryable
        self.hint = hint
        self.details = details or {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f"{self.system}"
        if self.object:
            where += f" [{self.object}]"
        text = f"{where}: {self.reason}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "system": self.system,
            "object": self.object,
            "reason": self.reason,
            "retryable": self.retryable,
            "hint": self.hint,
            **({"details": self.details} if self.details else {}),
        }


class ConfigError(DcoError):
    """A setting is missing or points at something unusable."""

    system = "settings"


class ContentError(DcoError):
    """Content (bundle, rule, atomic, plan, telemetry) is unreadable or not what it claims."""

    system = "content"


class ValidationError(DcoError):
    """User input (an operation file, a flow parameter, a CLI option) is invalid.

    ``field`` names the offending field; ``suggestions`` what would be valid.
    """

    system = "input"

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        suggestions: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.field = field
        self.suggestions = suggestions or []
        hint = kwargs.pop("hint", None)
        if self.suggestions and hint is None:
            hint = "did you mean: " + ", ".join(self.suggestions)
        super().__init__(reason, hint=hint, **kwargs)

    @property
    def message(self) -> str:
        base = super().message
        return base if not self.field else base.replace(": ", f" field '{self.field}': ", 1)


class NotFoundError(DcoError):
    """A named object (DCO, technique, group, rule, step) does not exist."""

    system = "store"


class StateError(DcoError):
    """A transition or action is not allowed in the object's current state."""

    system = "lifecycle"


class ConnectorError(DcoError):
    """A remote system failed or refused. ``status`` is the HTTP status when there was one."""

    system = "connector"

    def __init__(self, reason: str, *, status: int | None = None, **kwargs: Any) -> None:
        self.status = status
        super().__init__(reason, **kwargs)


class AuthError(ConnectorError):
    """Credentials were rejected (401/403): never retried."""


class ExecutionError(DcoError):
    """An emulation step could not run or was refused by the rules of engagement."""

    system = "executor"


@dataclass(slots=True)
class BadRecord:
    """One record a batch parser skipped, with where it was and why."""

    location: str
    reason: str


@dataclass(slots=True)
class BatchReport:
    """What a batch parser did: how many records it read, kept and why it skipped the rest."""

    source: str
    read: int = 0
    kept: int = 0
    bad: list[BadRecord] = field(default_factory=list)

    def skip(self, location: str, reason: str) -> None:
        self.bad.append(BadRecord(location, reason))

    @property
    def skipped(self) -> int:
        return len(self.bad)

    def summary(self, limit: int = 5) -> str:
        head = f"{self.source}: {self.kept} kept of {self.read} read, {self.skipped} skipped"
        if not self.bad:
            return head
        shown = "; ".join(f"{b.location}: {b.reason}" for b in self.bad[:limit])
        more = f" (+{self.skipped - limit} more)" if self.skipped > limit else ""
        return f"{head} — {shown}{more}"
