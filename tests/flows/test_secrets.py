"""Connector credentials can come from Prefect Secret blocks named in a flow's parameters."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret

from dcoflow.core.errors import ConfigError
from dcoflow.flows.hunt import DataSource, HuntSource, connector_registry
from dcoflow.flows.publish import taxii_password
from dcoflow.flows.secrets import load_secret


def test_secret_blocks_feed_the_connectors(prefect_harness: None) -> None:
    Secret(value="s3cr3t-token").save("dco-test-siem", overwrite=True)
    assert load_secret("dco-test-siem") == "s3cr3t-token"
    elastic = connector_registry(HuntSource(source=DataSource.ELASTIC, secret_block="dco-test-siem"))
    splunk = connector_registry(HuntSource(source=DataSource.SPLUNK, secret_block="dco-test-siem"))
    assert elastic.elastic_api_key == "s3cr3t-token" and splunk.splunk_token == "s3cr3t-token"
    assert connector_registry(HuntSource(source=DataSource.SPLUNK)).splunk_token is None
    password = taxii_password("dco-test-siem")
    assert password is not None and password.get_secret_value() == "s3cr3t-token"


def test_missing_secret_block_names_it(prefect_harness: None) -> None:
    with pytest.raises(ConfigError) as err:
        load_secret("dco-no-such-block")
    assert "dco-no-such-block" in err.value.message
