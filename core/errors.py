"""One error root for dcoflow.

Every error says *which system*, *which object* and *what went wrong*, as fields a
caller can inspect (the CLI prints them, flows put them in run state messages) and
as a readable message. ``retryable`` tells retry policies whether trying again can
help (timeouts, 429, 5xx) or not (bad input, 4xx).
"""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass, field
from typing import Any

# -- secrets never reach a message or a log ------------------------------------------------------------
# user:password@ in any URL, secret-looking query/form values, and Authorization-style headers.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]*:[^/\s@'\"<>]*@")
_SECRET_PARAM = re.compile(
    r"(?P<name>(?:[?&;]|\b)(?:access_?token|api_?key|apikey|auth|client_secret|key|passw(?:or)?d|pwd|secret|"
    r"sig|signature|token)=)[^&\s#'\"<>]+",
    re.IGNORECASE,
)
_SECRET_HEADER = re.compile(
    r"(?P<name>\b(?:authorization|proxy-authorization|x-api-key|api-key|x-auth-token|cookie)[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(?:bearer|basic|apikey|token|splunk|digest)\s+)?[^\s\"',;}]+",
    re.IGNORECASE,
)
REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with URL credentials, secret query values and auth headers replaced by ``***``."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m['name']}{REDACTED}", text)
    return _SECRET_HEADER.sub(lambda m: f"{m['name']}{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """Log filter that redacts a record's message and traceback (attach to handlers or loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a malformed %-format: leave it for logging to report
        return record
    record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    return record


def install_log_redaction() -> None:
    """Redact every log record this process creates (Prefect's API log handler included).

    A record factory rather than a filter: filters on a logger do not see records of its
    children, and Prefect adds its handlers after we start.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


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
        # Messages end up on terminals, in Prefect's run states and logs: never with a secret.
        self.reason = redact(str(reason))
        if system is not None:
            self.system = system
        self.object = None if object is None else redact(str(object))
        self.retryable = retryable
        self.hint = None if hint is None else redact(hint)
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


class GateError(StateError):
    """Conduct refused by a safety gate: the DCO is not approved, or it is outside its time window."""

    system = "gate"


class ConflictError(StateError):
    """Someone else changed the object between this command reading it and writing it: nothing was written.

    ``details["current"]`` holds what is stored now, so the caller can show it and decide again.
    """

    system = "store"


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
