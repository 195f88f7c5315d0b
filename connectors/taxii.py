"""A TAXII 2.1 client (OASIS TAXII 2.1 CS01) over the shared ``dcoflow.connectors.http.HttpConnector``.

``TaxiiClient(api_root_url)`` talks to one API root (``https://server/api1/``):

- ``discovery()`` (§4.1, ``GET {server}/taxii2/``), ``api_root()`` (§4.2), ``collections()`` (§5.1),
  ``collection(id)`` (§5.2);
- ``get_objects(collection_id, …)`` (§5.4) and ``manifest(collection_id, …)`` (§5.3): iterators that follow
  the envelope's ``more``/``next`` paging; ``match[id]``, ``match[type]``, ``match[version]`` and
  ``added_after`` filters;
- ``add_objects(collection_id, objects)`` (§5.5): POSTs one envelope, then polls ``GET status/{id}/`` (§4.3)
  until the status is ``complete`` and returns a :class:`TaxiiStatus` whose ``failures`` name each object
  the server did not take, with its message.

Every request sends ``Accept: application/taxii+json;version=2.1`` (POSTs also as ``Content-Type``).
Errors name the server (the API root URL), the collection and the status: 401/403 raise ``AuthError``
at once (a 403 on a collection says it is not readable / writable for this user), other 4xx a final
``ConnectorError``, 5xx/429/timeouts are retried by the base class. Knows nothing of Prefect or SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from dcoflow.connectors.http import HttpConnector
from dcoflow.core.errors import AuthError, ConnectorError
from dcoflow.models.timestamps import utc_iso

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
DEFAULT_PAGE_SIZE = 1000
_MAX_PAGES = 100_000


@dataclass(frozen=True, slots=True)
class StatusDetail:
    """One object in a status resource (TAXII 2.1 §4.3.1 status-details)."""

    id: str
    version: str
    message: str | None = None


@dataclass(slots=True)
class TaxiiStatus:
    """The outcome of one Add Objects request (TAXII 2.1 §4.3.1 status resource)."""

    id: str
    status: str
    total_count: int = 0
    success_count: int = 0
    failure_count: int = 0
    pending_count: int = 0
    successes: list[StatusDetail] = field(default_factory=list)
    failures: list[StatusDetail] = field(default_factory=list)
    pendings: list[StatusDetail] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @classmethod
    def from_resource(cls, data: Any, where: str) -> TaxiiStatus:
        if not isinstance(data, dict) or not data.get("id") or not data.get("status"):
            raise ConnectorError(f"the server sent no status resource: {str(data)[:300]}", system=TaxiiClient.system,
                                 object=where)

        def count(key: str) -> int:
            value = data.get(key) or 0
            if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
                raise ConnectorError(f"the status resource's {key} is not a count: {str(value)[:60]!r}",
                                     system=TaxiiClient.system, object=where)
            return int(value)

        def details(key: str) -> list[StatusDetail]:
            return [StatusDetail(str(d.get("id", "")), str(d.get("version", "")), d.get("message"))
                    for d in data.get(key) or () if isinstance(d, dict)]

        return cls(
            id=str(data["id"]), status=str(data["status"]),
            total_count=count("total_count"), success_count=count("success_count"),
            failure_count=count("failure_count"), pending_count=count("pending_count"),
            successes=details("successes"), failures=details("failures"), pendings=details("pendings"),
        )


def taxii_timestamp(moment: datetime | str) -> str:
    """A TAXII/STIX timestamp for ``added_after`` (UTC, microseconds)."""
    return moment if isinstance(moment, str) else utc_iso(moment)


class TaxiiClient(HttpConnector):
    """A client of one TAXII 2.1 API root."""

    system = "taxii"

    def __init__(
        self,
        api_root_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        verify: bool | str = True,
        poll_interval_s: float = 1.0,
        poll_timeout_s: float = 300.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_root_url:
            raise ConnectorError("no TAXII API root URL configured", system=self.system,
                                 hint="give the API root, e.g. https://taxii.example.org/api1/")
        if username is not None and password is None:
            raise AuthError("a TAXII user was given without a password", system=self.system, object=api_root_url,
                            hint="pass the password (e.g. --password-env VAR or a Prefect Secret block)")
        auth = (username, password) if username is not None and password is not None else None
        super().__init__(api_root_url.rstrip("/") + "/",
                         headers={"Accept": TAXII_MEDIA_TYPE, "User-Agent": "dcoflow-taxii"}, auth=auth,
                         transport=transport, timeout=timeout, retries=retries, backoff_s=backoff_s, verify=verify,
                         sleep=sleep)
        self.api_root_url = self.base_url + "/"
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self.page_size = page_size

    # -- server and API root -------------------------------------------------------------------
    @property
    def discovery_url(self) -> str:
        parts = urlsplit(self.api_root_url)
        return urlunsplit((parts.scheme, parts.netloc, "/taxii2/", "", ""))

    def discovery(self) -> dict[str, Any]:
        """TAXII 2.1 §4.1 Server Discovery (``GET {server}/taxii2/``)."""
        return self._resource(self.discovery_url, "server discovery")

    def api_root(self) -> dict[str, Any]:
        """TAXII 2.1 §4.2 API root information (title, versions, ``max_content_length``)."""
        return self._resource(self.api_root_url, "API root")

    def collections(self) -> list[dict[str, Any]]:
        """TAXII 2.1 §5.1: the collections this user can see."""
        data = self._resource(self.api_root_url + "collections/", "collections")
        return [c for c in data.get("collections") or () if isinstance(c, dict)]

    def collection(self, collection_id: str) -> dict[str, Any]:
        """TAXII 2.1 §5.2: one collection (``id``, ``title``, ``can_read``, ``can_write``, ``media_types``)."""
        return self._resource(self._collection_url(collection_id), "collection", collection_id)

    # -- objects ---------------------------------------------------------------------------------
    def get_objects(
        self,
        collection_id: str,
        *,
        added_after: datetime | str | None = None,
        types: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        versions: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """TAXII 2.1 §5.4 Get Objects: every matching object, page by page (``limit`` per page)."""
        return self._paged(collection_id, "objects/", _filters(added_after, types, ids, versions), limit)

    def manifest(
        self,
        collection_id: str,
        *,
        added_after: datetime | str | None = None,
        types: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        versions: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """TAXII 2.1 §5.3 Get Object Manifests: ``{id, date_added, version, media_type}`` per object version."""
        return self._paged(collection_id, "manifest/", _filters(added_after, types, ids, versions), limit)

    def add_objects(self, collection_id: str, objects: Iterable[dict[str, Any]]) -> TaxiiStatus:
        """TAXII 2.1 §5.5 Add Objects: POST one envelope, poll its status until complete.

        The returned status lists what the server took (``successes``) and what it did not (``failures``,
        each with the object id, version and the server's message). A status still pending after
        ``poll_timeout_s`` raises a retryable ``ConnectorError`` naming the status id.
        """
        envelope = {"objects": list(objects)}
        url = self._collection_url(collection_id) + "objects/"
        body = orjson.dumps(envelope)
        try:
            resp = self.request("POST", url, content=body,
                                headers={"Content-Type": TAXII_MEDIA_TYPE, "Accept": TAXII_MEDIA_TYPE})
        except AuthError as exc:
            raise self._refused(exc, collection_id, "write to") from exc
        except ConnectorError as exc:
            raise self._named(exc, collection_id) from exc
        status = TaxiiStatus.from_resource(self._decode(resp), f"{self.api_root_url} collection {collection_id}")
        deadline = time.monotonic() + self.poll_timeout_s
        while not status.complete:
            if time.monotonic() >= deadline:
                raise ConnectorError(
                    f"status {status.id} of adding {len(envelope['objects'])} objects to collection {collection_id} "
                    f"is still {status.status!r} after {self.poll_timeout_s:.0f} s "
                    f"({status.success_count} succeeded, {status.failure_count} failed, "
                    f"{status.pending_count} pending)",
                    system=self.system, object=f"{self.api_root_url}status/{status.id}/", retryable=True,
                )
            self._sleep(self.poll_interval_s)
            status = self.status(status.id)
        return status

    def status(self, status_id: str) -> TaxiiStatus:
        """TAXII 2.1 §4.3 Get Status."""
        url = f"{self.api_root_url}status/{status_id}/"
        return TaxiiStatus.from_resource(self._resource(url, "status", status_id), url)

    # -- internals -------------------------------------------------------------------------------
    def _collection_url(self, collection_id: str) -> str:
        if not collection_id or "/" in collection_id:
            raise ConnectorError(f"invalid collection id {collection_id!r}", system=self.system,
                                 object=self.api_root_url, hint="a collection id is the UUID in its URL")
        return f"{self.api_root_url}collections/{collection_id}/"

    def _resource(self, url: str, what: str, collection_id: str | None = None) -> dict[str, Any]:
        try:
            data = self._decode(self.request("GET", url))
        except AuthError as exc:
            raise (self._refused(exc, collection_id, "read") if collection_id and what == "collection"
                   else exc) from exc
        except ConnectorError as exc:
            if exc.status != 404:
                raise
            name = f"{what} {collection_id}" if collection_id else what
            raise ConnectorError(f"{name} not found on {self.api_root_url} (HTTP 404)", system=self.system,
                                 object=url, status=404, details=exc.details) from exc
        if not isinstance(data, dict):
            raise ConnectorError(f"{what} is not a JSON object", system=self.system, object=url)
        return data

    def _paged(self, collection_id: str, endpoint: str, params: dict[str, str],
               limit: int | None) -> Iterator[dict[str, Any]]:
        """The items of a paged collection endpoint (objects/, manifest/): both envelopes list them under
        ``objects`` and page with ``more``/``next`` (TAXII 2.1 §3.4, §5.3, §5.4)."""
        url = self._collection_url(collection_id) + endpoint
        page = {**params, "limit": str(limit or self.page_size)}
        for _ in range(_MAX_PAGES):
            try:
                resp = self.request("GET", url, params=page)
            except AuthError as exc:
                raise self._refused(exc, collection_id, "read") from exc
            except ConnectorError as exc:
                raise self._named(exc, collection_id) from exc
            envelope = self._decode(resp) if resp.content else {}
            if not isinstance(envelope, dict):
                raise ConnectorError("the server sent no envelope", system=self.system, object=url)
            for obj in envelope.get("objects") or ():
                if isinstance(obj, dict):
                    yield obj
            nxt = envelope.get("next")
            if not envelope.get("more") or not nxt:
                return
            page = {**params, "limit": page["limit"], "next": str(nxt)}
        raise ConnectorError("TAXII paging did not end", system=self.system, object=url)

    def _refused(self, exc: AuthError, collection_id: str | None, action: str) -> AuthError:
        if exc.status == 403 and collection_id:
            reason = (f"collection {collection_id} on {self.api_root_url} is not "
                      f"{'writable' if action == 'write to' else 'readable'} for this user (HTTP 403)")
            hint = (f"ask the TAXII server's operator for {'can_write' if action == 'write to' else 'can_read'} "
                    "on the collection, or choose another collection")
        else:
            reason = f"{self.api_root_url} refused to let this user {action} collection {collection_id} " \
                     f"(HTTP {exc.status}: credentials rejected)"
            hint = "check the TAXII user and password"
        return AuthError(reason, system=self.system, object=f"{self.api_root_url}collections/{collection_id}/",
                         status=exc.status, hint=hint, details=exc.details)

    def _named(self, exc: ConnectorError, collection_id: str) -> ConnectorError:
        """The base class's error, re-worded to name the server and the collection."""
        where = f"collection {collection_id} on {self.api_root_url}"
        hint: str | None
        if exc.status == 404:
            reason, hint = f"{where} not found (HTTP 404)", "list the API root's collections (dco publish needs its id)"
        elif exc.status == 413:
            reason = f"{where} refused the envelope as too large (HTTP 413)"
            hint = "send smaller chunks: the envelope exceeds the API root's max_content_length"
        else:
            reason, hint = f"{where}: {exc.reason}", exc.hint
        return ConnectorError(reason, system=self.system, object=exc.object, status=exc.status,
                              retryable=exc.retryable, hint=hint, details=exc.details)


def _filters(added_after: datetime | str | None, types: Sequence[str] | None, ids: Sequence[str] | None,
             versions: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if added_after is not None:
        params["added_after"] = taxii_timestamp(added_after)
    if types:
        params["match[type]"] = ",".join(types)
    if ids:
        params["match[id]"] = ",".join(ids)
    if versions:
        params["match[version]"] = versions
    return params
