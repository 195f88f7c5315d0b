"""Credentials from Prefect Secret blocks (named in a flow's parameters) for the connectors."""

from __future__ import annotations

from dcoflow.core.errors import ConfigError


def load_secret(block_name: str) -> str:
    """The value of Prefect Secret block ``block_name``, or a ConfigError naming the block."""
    from prefect.blocks.system import Secret

    try:
        block = Secret.load(block_name)
    except ValueError as exc:  # Prefect's "Unable to find block document named …"
        raise ConfigError("no such Prefect Secret block", object=block_name,
                          hint="create it in the UI (Blocks → Secret) or with Secret(value=…).save(name)") from exc
    return str(block.get())  # type: ignore[union-attr]
