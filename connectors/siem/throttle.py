"""Slow down, don't fail: a rate limiter shared by the threads that run a hunt's rules against one SIEM.

A SIEM that answers 429 (Elasticsearch ``es_rejected_execution_exception``, OpenSearch) or 503
(Splunk's "maximum number of concurrent searches" quota) after the connector's own retries is asking
for less load, not reporting an error in the hunt. The throttle then halves how many rules may be in
flight, makes every thread wait out a growing pause, and lets the concurrency grow back by one per
success (additive increase, multiplicative decrease, as TCP does). Only when the SIEM keeps refusing
for longer than ``budget_s`` in total does the hunt fail, with a retryable error that says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from dcoflow.core.errors import ConnectorError

T = TypeVar("T")
RATE_LIMIT_STATUSES = frozenset({429, 503})


class Throttle:
    def __init__(
        self,
        limit: int,
        *,
        budget_s: float = 900.0,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_limit = max(1, limit)
        self.limit = self.max_limit
        self.budget_s = budget_s
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.waited_s = 0.0
        self.rate_limited = 0  # how many answers asked us to slow down (reported with the hunt)
        self._delay = 0.0
        self._pause_until = 0.0
        self._in_flight = 0
        self._sleep = sleep
        self._clock = clock
        self._cond = threading.Condition()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` within the concurrency limit, waiting out rate limits; other errors pass through."""
        while True:
            self._enter()
            try:
                result = fn()
            except ConnectorError as exc:
                self._leave()
                if not (exc.retryable and exc.status in RATE_LIMIT_STATUSES):
                    raise
                self._slow_down(exc)
                continue
            self._leave(success=True)
            return result

    def _enter(self) -> None:
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait(timeout=1.0)
            self._in_flight += 1
            pause = self._pause_until - self._clock()
        if pause > 0:
            self._sleep(pause)

    def _leave(self, success: bool = False) -> None:
        with self._cond:
            self._in_flight -= 1
            if success:
                self._delay = 0.0
                self.limit = min(self.max_limit, self.limit + 1)
            self._cond.notify_all()

    def _slow_down(self, exc: ConnectorError) -> None:
        with self._cond:
            self.rate_limited += 1
            self.limit = max(1, self.limit // 2)
            self._delay = min(self.max_delay_s, self._delay * 2 or self.base_delay_s)
            if self.waited_s + self._delay > self.budget_s:
                raise ConnectorError(
                    f"still rate-limited after waiting {self.waited_s:.0f} s in total (budget {self.budget_s:.0f} s):"
                    f" {exc.reason}", system=exc.system, object=exc.object, status=exc.status, retryable=True,
                    hint="run the hunt later, lower DCO_SIEM_CONCURRENCY, or raise DCO_SIEM_RATE_LIMIT_BUDGET_S",
                ) from exc
            self.waited_s += self._delay
            self._pause_until = max(self._pause_until, self._clock() + self._delay)
            delay = self._delay
        self._sleep(delay)
