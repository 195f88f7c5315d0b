"""The root CLI's own commands: sync-content's errors name what to set or what failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from dcoflow.flows.cli import app


def test_sync_content_without_a_folder_says_which_setting(settings: Any, monkeypatch: Any) -> None:
    from dcoflow.core.settings import get_settings

    monkeypatch.delenv("DCO_CONTENT_DIR")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["sync-content"])
    assert result.exit_code == 2
    assert "DCO_CONTENT_DIR" in result.output


def test_sync_content_fetches_into_the_folder(settings: Any, tmp_path: Path, monkeypatch: Any,
                                             shared_dir: Path) -> None:
    """The CLI goes through the content-sync connector; served here by a MockTransport with the ICS bundle."""
    import gzip

    import dcoflow.connectors.content_sync as sync

    bundle = gzip.decompress((shared_dir / "attack" / "ics-attack-18.1.json.gz").read_bytes())
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=bundle)

    real = sync.ContentSync.__init__

    def with_mock(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["transport"] = httpx.MockTransport(handler)
        real(self, *args, **kwargs)

    monkeypatch.setattr(sync.ContentSync, "__init__", with_mock)
    result = CliRunner().invoke(app, ["sync-content", "--dir", str(tmp_path), "--part", "attack",
                                      "--domain", "ics", "--json"])
    assert result.exit_code == 0, result.output
    assert seen and seen[0].endswith("ics-attack.json")
    assert list((tmp_path / "attack").glob("ics-attack-*.json*"))
