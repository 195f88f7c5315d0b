"""MITRE Caldera REST API v2 client (abilities, adversaries, operations, links, reports).

Shapes follow the API's swagger captured from a Caldera 5.3 server (../shared/caldera/
caldera_api_v2_swagger.json) and its sample responses. Authentication is the ``KEY`` header
(Caldera's ``api_key_red``/``api_key_blue``). Retries, backoff and 401/403 → AuthError come from
the shared ``dcoflow.connectors.http.HttpConnector``.

Link status codes are Caldera's own (mitre/caldera ``app/objects/secondclass/c_link.py``,
``Link.states``): HIGH_VIZ −5, UNTRUSTED −4, EXECUTE −3 (queued to run), DISCARD −2, PAUSE −1
(waiting for approval in a manual operation), SUCCESS 0, ERROR 1, TIMEOUT 124. Operation states
come from ``app/objects/c_operation.py`` (``Operation.States``); finished ones are finished,
out_of_time and cleanup.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import quote

import httpx

from dcoflow.connectors.http import HttpConnector
from dcoflow.core.errors import ConnectorError, NotFoundError
from dcoflow.models.emulation import ExecutionStatus

API = "/api/v2"
# Ids of the stock "atomic" planner and "basic" fact source (../shared/caldera sample_GET_api_v2_planners.json,
# sample_GET_api_v2_sources.json); both ship with every Caldera server.
ATOMIC_PLANNER_ID = "aaa7c857-37a0-4c4a-85f7-4e9f7f30e31a"
BASIC_SOURCE_ID = "ed32b9c3-9593-4c33-b0db-e2007315096b"
FINISHED_STATES = frozenset({"finished", "out_of_time", "cleanup"})
_ADVERSARY_NS = uuid.UUID("4c8f0a53-9d7e-4d43-8b0e-6a1b2f3c4d5e")


class LinkStatus(IntEnum):
    HIGH_VIZ = -5
    UNTRUSTED = -4
    EXECUTE = -3
    DISCARD = -2
    PAUSE = -1
    SUCCESS = 0
    ERROR = 1
    TIMEOUT = 124

    @property
    def finished(self) -> bool:
        return self not in (LinkStatus.EXECUTE, LinkStatus.PAUSE)

    @property
    def execution_status(self) -> ExecutionStatus | None:
        """What the link means for the step's execution (None: still queued or waiting)."""
        return _EXECUTION.get(self)


_EXECUTION: dict[LinkStatus, ExecutionStatus] = {
    LinkStatus.SUCCESS: ExecutionStatus.SUCCEEDED,
    LinkStatus.ERROR: ExecutionStatus.FAILED,
    LinkStatus.TIMEOUT: ExecutionStatus.TIMED_OUT,
    LinkStatus.UNTRUSTED: ExecutionStatus.FAILED,  # the agent stopped beaconing before the result came back
    LinkStatus.DISCARD: ExecutionStatus.REFUSED,  # an operator discarded it: it never ran
    LinkStatus.HIGH_VIZ: ExecutionStatus.REFUSED,  # above the operation's visibility limit: never ran
}


def link_status(value: Any) -> LinkStatus:
    try:
        return LinkStatus(int(value))
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"unknown Caldera link status {value!r}", system="caldera") from exc


@dataclass(frozen=True, slots=True)
class LinkResult:
    """One link of an operation, reduced to what the emulation record needs."""

    link_id: str
    ability_id: str
    technique_id: str | None
    paw: str
    host: str | None
    status: LinkStatus
    command: str
    decided: str | None
    finished: str | None
    output: str | None = None

    @property
    def execution_status(self) -> ExecutionStatus | None:
        return self.status.execution_status


class CalderaClient(HttpConnector):
    system = "caldera"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ConnectorError("no Caldera API key configured", system=self.system, hint="set DCO_CALDERA_API_KEY")
        super().__init__(
            base_url,
            headers={"KEY": api_key, "Accept": "application/json"},
            transport=transport,
            timeout=timeout,
            retries=retries,
            backoff_s=backoff_s,
            sleep=sleep,
        )

    # -- content ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._dict(self.get_json(f"{API}/health"), "health")

    def abilities(self) -> list[dict[str, Any]]:
        return self._list(self.get_json(f"{API}/abilities"), "abilities")

    def abilities_for(self, technique_id: str, platform: str | None = None) -> list[dict[str, Any]]:
        """Abilities implementing a technique (optionally with an executor for ``platform``)."""
        tid = technique_id.strip().upper()
        plat = {"macos": "darwin"}.get((platform or "").lower(), (platform or "").lower())
        return [
            a for a in self.abilities()
            if str(a.get("technique_id") or "").upper() == tid
            and (not plat or any(e.get("platform") == plat for e in a.get("executors") or []))
        ]

    def adversaries(self) -> list[dict[str, Any]]:
        return self._list(self.get_json(f"{API}/adversaries"), "adversaries")

    def adversary(self, adversary_id: str) -> dict[str, Any]:
        """One adversary profile (``GET /api/v2/adversaries/{adversary_id}``, swagger Partial-Adversary).

        Caldera answers an unknown id with HTTP 404 (``JsonHttpNotFound("Adversary not found: <id>")`` in
        mitre/caldera ``app/api/v2/handlers/base_object_api.py``); that becomes a NotFoundError naming it."""
        try:
            data = self.get_json(f"{API}/adversaries/{quote(adversary_id, safe='')}")
        except ConnectorError as exc:
            if exc.status == 404:
                raise NotFoundError(
                    f"no adversary {adversary_id!r} on the Caldera server", system=self.system,
                    object=f"adversary {adversary_id}",
                    hint="list the server's adversaries with GET /api/v2/adversaries",
                ) from exc
            raise
        return self._dict(data, "adversary")

    def ensure_adversary(self, name: str, ability_ids: list[str], description: str = "") -> dict[str, Any]:
        """Create or update (PUT) an adversary with a deterministic id, so re-runs reuse it."""
        adversary_id = str(uuid.uuid5(_ADVERSARY_NS, name))
        body = {"name": name, "description": description or name, "atomic_ordering": list(ability_ids)}
        response = self.request("PUT", f"{API}/adversaries/{adversary_id}", json=body)
        return self._dict(self._decode(response), "adversary")

    # -- operations ---------------------------------------------------------------------------
    def create_operation(
        self,
        name: str,
        adversary_id: str,
        *,
        group: str = "",
        planner_id: str = ATOMIC_PLANNER_ID,
        source_id: str = BASIC_SOURCE_ID,
        autonomous: int = 1,
        state: str = "running",
        auto_close: bool = True,
    ) -> dict[str, Any]:
        # Required: name, adversary.adversary_id, planner.id, source.id (swagger POST /api/v2/operations).
        body = {
            "name": name,
            "adversary": {"adversary_id": adversary_id},
            "planner": {"id": planner_id},
            "source": {"id": source_id},
            "group": group,
            "autonomous": autonomous,
            "state": state,
            "auto_close": auto_close,
        }
        # Caldera creates a second operation for a second POST: never re-sent (connectors/http.py).
        return self._dict(self.post_json(f"{API}/operations", json=body), "operation")

    def operation(self, operation_id: str) -> dict[str, Any]:
        return self._dict(self.get_json(f"{API}/operations/{operation_id}"), "operation")

    def operation_links(self, operation_id: str) -> list[LinkResult]:
        raw = self._list(self.get_json(f"{API}/operations/{operation_id}/links"), "links")
        return [parse_link(item) for item in raw]

    def operation_report(self, operation_id: str, *, agent_output: bool = True) -> dict[str, Any]:
        return self._dict(
            self.post_json(f"{API}/operations/{operation_id}/report", json={"enable_agent_output": agent_output},
                           idempotent=True),  # a read sent as POST
            "report",
        )

    def wait(
        self, operation_id: str, poll_s: float = 5.0, timeout_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, Any]:
        """Poll until the operation reaches a finished state; ConnectorError(retryable) on timeout."""
        deadline = clock() + timeout_s
        while True:
            op = self.operation(operation_id)
            if str(op.get("state")) in FINISHED_STATES:
                return op
            if clock() >= deadline:
                raise ConnectorError(
                    f"operation still {op.get('state')!r} after {timeout_s:.0f} s",
                    system=self.system, object=f"operation {operation_id}", retryable=True,
                    hint="raise the wait timeout or check the agents of the operation's group",
                )
            self._sleep(poll_s)

    def _unexpected(self, data: Any, kind: str, what: str) -> ConnectorError:
        return ConnectorError(
            f"unexpected {what} response: expected a JSON {kind}, got {type(data).__name__}",
            system=self.system, object=self.base_url,
        )

    def _dict(self, data: Any, what: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self._unexpected(data, "object", what)
        return data

    def _list(self, data: Any, what: str) -> list[dict[str, Any]]:
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise self._unexpected(data, "list of objects", what)
        return data


def parse_link(item: dict[str, Any]) -> LinkResult:
    ability = item.get("ability") or {}
    return LinkResult(
        link_id=str(item.get("id") or ""),
        ability_id=str(ability.get("ability_id") or ""),
        technique_id=(str(ability["technique_id"]).upper() if ability.get("technique_id") else None),
        paw=str(item.get("paw") or ""),
        host=item.get("host"),
        status=link_status(item.get("status", LinkStatus.EXECUTE)),
        command=str(item.get("plaintext_command") or item.get("command") or ""),
        decided=item.get("decide"),
        finished=item.get("finish") or None,
        output=item.get("output") if isinstance(item.get("output"), str) else None,
    )
