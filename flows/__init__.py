"""Prefect flows and the CLI. Importing them (a worker running a deployment, `dco`) turns on log
redaction: no URL credential, token or auth header reaches a terminal or Prefect's stored logs."""

from dcoflow.core.errors import install_log_redaction

install_log_redaction()
