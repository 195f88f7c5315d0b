"""The HTTP connector of ATT&CK bundle URLs (TAXII collections are read by ``dcoflow.connectors.taxii``).

Kept apart from ``dcoflow.connectors.attack.source`` so that loading a catalog from the cache never imports httpx.
"""

from __future__ import annotations

import httpx

from dcoflow.connectors.attack.source import decompress_if_gzip
from dcoflow.connectors.http import HttpConnector


class AttackHttp(HttpConnector):
    """The shared retry and error policy (``dcoflow.connectors.http``), following redirects as GitHub raw URLs need."""

    system = "attack"

    def __init__(
        self,
        location: str,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        transport: httpx.BaseTransport | None = None,
        auth: tuple[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        super().__init__(location, headers={"User-Agent": "dcoflow-attack"}, auth=auth, transport=transport,
                         timeout=timeout_s, retries=retries, backoff_s=backoff_s, follow_redirects=True)
        self.location = location
        self.max_bytes = max_bytes  # decompressed; None: DCO_MAX_BUNDLE_BYTES

    def fetch(self, etag: str | None = None) -> tuple[bytes | None, str | None]:
        """(bundle bytes, ETag); bytes are ``None`` when the server says the cached ``etag`` is current."""
        headers = {"If-None-Match": etag} if etag else None
        resp = self.request("GET", self.location, headers=headers)
        if resp.status_code == 304:
            return None, etag
        return decompress_if_gzip(resp.content, self.location, self.max_bytes), resp.headers.get("ETag")
