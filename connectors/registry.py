"""One place that turns settings into connector clients.

Use-case functions in ``dcoflow.tasks`` ask the registry for a client instead of building one, so a new
SIEM or ticketing system is added here and in its own module, not in every flow and CLI command. The
registry holds plain values taken from :class:`~dcoflow.core.settings.Settings` at the edge (CLI, flow
entry) plus per-call overrides such as a Prefect Secret's key; it never reads settings itself after
construction. It is also the one module in ``dcoflow.connectors`` that reads settings (:func:`configured`):
a connector takes its values as arguments, and only when a caller passed none does it fall back to these.

Tests pass ``transport=`` (an ``httpx.MockTransport``) and every client built shares it.

Each ``*_client`` method returns a new client the caller closes (``with registry.caldera() as c:``);
asking for a system that is not configured raises :class:`~dcoflow.core.errors.ConnectorError` naming the
setting to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from dcoflow.core.errors import ConnectorError

if TYPE_CHECKING:  # the clients import httpx and their own parsers; loaded only when asked for
    import httpx

    from dcoflow.connectors.caldera import CalderaClient
    from dcoflow.connectors.executor.local import LocalExecutor
    from dcoflow.connectors.siem import SiemClient
    from dcoflow.connectors.siem.elastic import ElasticClient
    from dcoflow.connectors.siem.splunk import SplunkClient
    from dcoflow.connectors.taxii import TaxiiClient
    from dcoflow.connectors.thehive import TheHiveClient
    from dcoflow.connectors.webhook import WebhookClient
    from dcoflow.core.settings import Settings
    from dcoflow.models.operation import RulesOfEngagement, Scope

SiemKind = Literal["elastic", "splunk"]


def configured() -> Settings:
    """The process's settings, for a connector whose caller passed no values (tests/test_layers.py checks no
    other connector module calls get_settings)."""
    from dcoflow.core.settings import get_settings

    return get_settings()


@dataclass(frozen=True)
class ConnectorRegistry:
    """The configured external systems, as values; build with :meth:`from_settings`."""

    settings: Settings
    # Per-call secrets (e.g. read from a Prefect Secret block by a flow) that win over the settings.
    elastic_api_key: str | None = None
    splunk_token: str | None = None
    caldera_api_key: str | None = None
    taxii_password: str | None = None
    transport: httpx.BaseTransport | None = field(default=None, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *,
                      transport: httpx.BaseTransport | None = None) -> ConnectorRegistry:
        return cls(settings=settings or configured(), transport=transport)

    def with_secrets(self, *, elastic_api_key: str | None = None, splunk_token: str | None = None,
                     caldera_api_key: str | None = None, taxii_password: str | None = None) -> ConnectorRegistry:
        """A copy whose given secrets replace the configured ones (``None`` keeps the configured)."""
        return replace(
            self,
            elastic_api_key=elastic_api_key or self.elastic_api_key,
            splunk_token=splunk_token or self.splunk_token,
            caldera_api_key=caldera_api_key or self.caldera_api_key,
            taxii_password=taxii_password or self.taxii_password,
        )

    def _http(self) -> dict[str, Any]:
        """Transport and the one timeout/retry policy (DCO_HTTP_*) every client shares."""
        s = self.settings
        return {"transport": self.transport, "timeout": s.http_timeout_s, "retries": s.http_retries,
                "backoff_s": s.http_backoff_s}

    # -- SIEMs ----------------------------------------------------------------------------------
    def elastic(self) -> ElasticClient:
        from dcoflow.connectors.siem.elastic import ElasticClient

        return ElasticClient.from_settings(self.settings, api_key=self.elastic_api_key, **self._http())

    def splunk(self) -> SplunkClient:
        from dcoflow.connectors.siem.splunk import SplunkClient

        return SplunkClient.from_settings(self.settings, token=self.splunk_token, **self._http())

    def siem(self, kind: SiemKind) -> SiemClient:
        return self.elastic() if kind == "elastic" else self.splunk()

    def siem_index(self, kind: SiemKind, index: str | None = None) -> str:
        """``index`` or the configured default index of that SIEM."""
        return index or (self.settings.elastic_index if kind == "elastic" else self.settings.splunk_index)

    # -- emulation ------------------------------------------------------------------------------
    def caldera(self) -> CalderaClient:
        from dcoflow.connectors.caldera import CalderaClient

        s = self.settings
        key = self.caldera_api_key or (s.caldera_api_key.get_secret_value() if s.caldera_api_key else None)
        if not s.caldera_url or not key:
            raise ConnectorError("Caldera is not configured", system="caldera",
                                 hint="set DCO_CALDERA_URL and DCO_CALDERA_API_KEY")
        return CalderaClient(str(s.caldera_url), key, **self._http())

    @property
    def caldera_configured(self) -> bool:
        return bool(self.settings.caldera_url and (self.caldera_api_key or self.settings.caldera_api_key))

    def local_executor(self, dco_id: str, roe: RulesOfEngagement, scope: Scope) -> LocalExecutor:
        """The lab-host executor for one DCO, sandboxed under DCO_SANDBOX_DIR, dropping to DCO_EXECUTOR_USER."""
        from dcoflow.connectors.executor.local import LocalExecutor

        s = self.settings
        return LocalExecutor(dco_id, roe, scope, sandbox=s.sandbox_dir, run_as=s.executor_user)

    # -- incident management and notices --------------------------------------------------------
    def thehive(self) -> TheHiveClient:
        from dcoflow.connectors.thehive import TheHiveClient

        s = self.settings
        if not s.thehive_url or not s.thehive_api_key:
            raise ConnectorError("TheHive is not configured", system="thehive",
                                 hint="set DCO_THEHIVE_URL and DCO_THEHIVE_API_KEY")
        return TheHiveClient(s.thehive_url, s.thehive_api_key.get_secret_value(),
                             organisation=s.thehive_organisation, **self._http())

    @property
    def thehive_configured(self) -> bool:
        return bool(self.settings.thehive_url and self.settings.thehive_api_key)

    def webhook(self) -> WebhookClient:
        from dcoflow.connectors.webhook import WebhookClient

        s = self.settings
        if not s.webhook_url:
            raise ConnectorError("no webhook configured", system="webhook", hint="set DCO_WEBHOOK_URL")
        secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
        return WebhookClient(s.webhook_url, secret=secret, allow_unsigned=s.webhook_allow_unsigned,
                             **self._http())

    @property
    def webhook_configured(self) -> bool:
        return bool(self.settings.webhook_url)

    # -- exchange -------------------------------------------------------------------------------
    def taxii(self, api_root: str | None = None, *, username: str | None = None,
              password: str | None = None) -> TaxiiClient:
        """A client for ``api_root`` (default ``DCO_TAXII_URL``) with the given or configured credentials.

        The configured user and password (DCO_TAXII_USER / _PASSWORD) go only to the configured root; a
        password the caller named (``with_secrets(taxii_password=…)``: a Secret block, ``--password-env``)
        goes to the root it was named for."""
        from dcoflow.connectors.taxii import TaxiiClient

        s = self.settings
        root = api_root or s.taxii_url
        if not root:
            raise ConnectorError("no TAXII API root configured", system="taxii", hint="set DCO_TAXII_URL")
        own_root = root == s.taxii_url
        if username is None and own_root:
            username = s.taxii_user
        if password is None:
            password = self.taxii_password
        if password is None and own_root and s.taxii_password:
            password = s.taxii_password.get_secret_value()
        return TaxiiClient(root, username=username, password=password, **self._http())
