"""The connector registry builds every client from one Settings value and one transport."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from dcoflow.connectors.registry import ConnectorRegistry
from dcoflow.core.errors import ConnectorError, DcoError
from dcoflow.core.settings import Settings


def _seen() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"count": 3})

    return seen, httpx.MockTransport(handler)


def test_unconfigured_systems_name_the_setting_to_fill() -> None:
    reg = ConnectorRegistry.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    for build, setting in [(reg.caldera, "DCO_CALDERA_URL"), (reg.thehive, "DCO_THEHIVE_URL"),
                           (reg.webhook, "DCO_WEBHOOK_URL"), (reg.taxii, "DCO_TAXII_URL"),
                           (reg.elastic, "DCO_ELASTIC_URL"), (reg.splunk, "DCO_SPLUNK_URL")]:
        with pytest.raises(DcoError) as err:
            build()
        assert setting in str(err.value)
    assert not (reg.caldera_configured or reg.thehive_configured or reg.webhook_configured)


def test_clients_share_the_transport_and_the_http_policy() -> None:
    seen, transport = _seen()
    settings = Settings(_env_file=None, caldera_url="http://caldera.test:8888",  # type: ignore[call-arg]
                        caldera_api_key=SecretStr("from-settings"), http_timeout_s=7.0, http_retries=0)
    reg = ConnectorRegistry.from_settings(settings, transport=transport)
    with reg.caldera() as caldera:
        assert caldera.retries == 0
        caldera.get_json("/api/v2/health")
    assert seen[-1].headers["KEY"] == "from-settings"
    assert seen[-1].url.host == "caldera.test"
    # A per-call secret (a Prefect Secret block's value) wins over the configured key.
    with reg.with_secrets(caldera_api_key="from-block").caldera() as caldera:
        caldera.get_json("/api/v2/health")
    assert seen[-1].headers["KEY"] == "from-block"


def test_taxii_uses_configured_credentials_only_for_the_configured_root() -> None:
    seen, transport = _seen()
    settings = Settings(_env_file=None, taxii_url="https://taxii.test/api1/", taxii_user="u",  # type: ignore[call-arg]
                        taxii_password=SecretStr("p"))
    reg = ConnectorRegistry.from_settings(settings, transport=transport)
    with reg.taxii() as client:
        client.get_json("/")
    assert seen[-1].headers["Authorization"].startswith("Basic ")
    with reg.taxii("https://other.test/api1/") as client:  # never send our password to another server
        client.get_json("/")
    assert "Authorization" not in seen[-1].headers


def test_siem_by_kind_and_default_index() -> None:
    settings = Settings(_env_file=None, elastic_url="http://es.test:9200",  # type: ignore[call-arg]
                        splunk_url="https://splunk.test:8089", splunk_token=SecretStr("t"))
    reg = ConnectorRegistry.from_settings(settings)
    assert type(reg.siem("elastic")).__name__ == "ElasticClient"
    assert type(reg.siem("splunk")).__name__ == "SplunkClient"
    assert reg.siem_index("elastic") == settings.elastic_index
    assert reg.siem_index("splunk", "idx") == "idx"
    with pytest.raises(ConnectorError):
        ConnectorRegistry.from_settings(Settings(_env_file=None)).elastic()  # type: ignore[call-arg]
