"""TheHive 5 over its REST API v1 (https://docs.strangebee.com/thehive/api-docs/).

- ``POST /api/v1/alert`` creates an alert (type, source, sourceRef, title, description, severity
  1–4, tlp 0–4, pap 0–3, tags, observables [{dataType, data}]); TheHive keeps (type, source,
  sourceRef) unique and answers a duplicate with HTTP 400.
- ``POST /api/v1/query`` with ``[{"_name": "listAlert"}, {"_name": "filter", …}]`` finds alerts.
- ``GET /api/v1/alert/{id}`` reads one; ``POST /api/v1/alert/{id}/case`` promotes it to a case.
- ``Authorization: Bearer <api key>``; ``X-Organisation`` picks the organisation for users in several.

:meth:`TheHiveClient.create_alert` is idempotent by sourceRef: it looks the alert up first and
treats a duplicate refusal as "already created", returning the existing alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from dcoflow.connectors.http import HttpConnector
from dcoflow.core.errors import ConnectorError

# TheHive 5 scales.
SEVERITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}
TLP = {"clear": 0, "white": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
PAP = {"clear": 0, "white": 0, "green": 1, "amber": 2, "red": 3}


class TheHiveClient(HttpConnector):
    system = "thehive"

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        organisation: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        if organisation:
            headers["X-Organisation"] = organisation
        super().__init__(url, headers=headers, transport=transport, timeout=timeout, retries=retries,
                         backoff_s=backoff_s, sleep=sleep)

    def find_alert(
        self, source_ref: str, *, source: str | None = None, alert_type: str | None = None
    ) -> dict[str, Any] | None:
        """The alert with this sourceRef (and source/type when given), or None."""
        # Equality filters as {"_field", "_value"} combined with "_and" (TheHive query syntax,
        # https://docs.strangebee.com/thehive/user-guides/query-syntax/).
        conditions: list[dict[str, Any]] = [{"_field": "sourceRef", "_value": source_ref}]
        if source:
            conditions.append({"_field": "source", "_value": source})
        if alert_type:
            conditions.append({"_field": "type", "_value": alert_type})
        query = [
            {"_name": "listAlert"},
            {"_name": "filter", "_and": conditions},
            {"_name": "page", "from": 0, "to": 1},
        ]
        found = self.post_json("/api/v1/query", params={"name": "dcoflow-find-alert"}, json={"query": query},
                               idempotent=True)  # a read sent as POST
        if not isinstance(found, list):
            raise ConnectorError(
                f"query for alert {source_ref} returned {type(found).__name__}, expected a list",
                system=self.system, object=source_ref,
            )
        return found[0] if found else None

    def create_alert(
        self,
        *,
        source_ref: str,
        title: str,
        description: str,
        alert_type: str = "dco-finding",
        source: str = "dcoflow",
        severity: str = "high",
        tlp: str = "amber",
        pap: str = "amber",
        tags: Sequence[str] = (),
        observables: Sequence[dict[str, Any]] = (),
        procedures: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """Create the alert unless it exists; either way return TheHive's alert (``_id`` …). ``procedures``
        (``patternId``, ``occurDate`` ms, optional ``tactic``/``description``) fill its TTP view and go with it
        into the case it is promoted to."""
        existing = self.find_alert(source_ref, source=source, alert_type=alert_type)
        if existing is not None:
            return existing
        body: dict[str, Any] = {
            "type": alert_type,
            "source": source,
            "sourceRef": source_ref,
            "title": title,
            "description": description,
            "severity": SEVERITY[severity],
            "tlp": TLP[tlp],
            "pap": PAP[pap],
            "tags": list(tags),
            "observables": list(observables),
        }
        if procedures:
            body["procedures"] = list(procedures)
        try:
            # Safe to re-send: TheHive refuses a second alert with the same type, source and sourceRef (400),
            # and the 400 below finds the first one.
            created = self.post_json("/api/v1/alert", json=body, idempotent=True)
        except ConnectorError as exc:
            # A concurrent or earlier attempt created it between our lookup and this call.
            if exc.status == 400:
                again = self.find_alert(source_ref, source=source, alert_type=alert_type)
                if again is not None:
                    return again
            raise
        if not isinstance(created, dict) or "_id" not in created:
            raise ConnectorError(
                f"alert creation for {source_ref} returned no _id", system=self.system, object=source_ref
            )
        return created

    def get_alert(self, alert_id: str) -> dict[str, Any]:
        found = self.get_json(f"/api/v1/alert/{alert_id}")
        if not isinstance(found, dict):
            raise ConnectorError(f"alert {alert_id} is not an object", system=self.system, object=alert_id)
        return found

    def promote_to_case(self, alert_id: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        case = self.post_json(f"/api/v1/alert/{alert_id}/case", json=fields or {})
        if not isinstance(case, dict):
            raise ConnectorError(f"promoting alert {alert_id} returned no case", system=self.system, object=alert_id)
        return case

    # -- cases (incident-response support: read a case; write its techniques as procedures) -------------
    def get_case(self, case_id: str) -> dict[str, Any]:
        """``GET /api/v1/case/{id}`` (``_id``, ``number``, ``title``, ``startDate`` ms, ``tlp``, ``tags`` …)."""
        found = self.get_json(f"/api/v1/case/{case_id}")
        if not isinstance(found, dict):
            raise ConnectorError(f"case {case_id} is not an object", system=self.system, object=case_id)
        return found

    def _case_query(self, case_id: str, what: str) -> list[dict[str, Any]]:
        query = [{"_name": "getCase", "idOrName": case_id}, {"_name": what}]
        found = self.post_json("/api/v1/query", params={"name": f"dcoflow-case-{what}"}, json={"query": query},
                               idempotent=True)  # a read sent as POST
        if not isinstance(found, list):
            raise ConnectorError(f"{what} of case {case_id}: expected a list, got {type(found).__name__}",
                                 system=self.system, object=case_id)
        return [f for f in found if isinstance(f, dict)]

    def case_observables(self, case_id: str) -> list[dict[str, Any]]:
        """The case's observables (``dataType``, ``data``, ``ioc``, ``sighted``, ``tags``)."""
        return self._case_query(case_id, "observables")

    def case_procedures(self, case_id: str) -> list[dict[str, Any]]:
        """The case's TTPs (``patternId`` T…, ``tactic``, ``occurDate`` ms, ``description``)."""
        return self._case_query(case_id, "procedures")

    def add_procedure(self, case_id: str, pattern_id: str, *, tactic: str, occur_date_ms: int,
                      description: str = "") -> dict[str, Any]:
        """``POST /api/v1/case/{id}/procedure``: one ATT&CK technique on the case's TTP view; a technique the
        case already has (same patternId and tactic) is returned, not added twice."""
        for existing in self.case_procedures(case_id):
            if existing.get("patternId") == pattern_id and existing.get("tactic") == tactic:
                return existing
        body = {"patternId": pattern_id, "tactic": tactic, "occurDate": occur_date_ms, "description": description}
        created = self.post_json(f"/api/v1/case/{case_id}/procedure", json=body, idempotent=False)
        if not isinstance(created, dict):
            raise ConnectorError(f"procedure {pattern_id} on case {case_id}: no object returned",
                                 system=self.system, object=case_id)
        return created
