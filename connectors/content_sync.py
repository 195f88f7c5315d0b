"""Fetch upstream content into a content folder laid out like ``../shared`` (``DCO_CONTENT_DIR``).

- ATT&CK: the STIX 2.1 bundles of attack-stix-data (raw GitHub URLs), enterprise, mobile and ics,
  stored as ``attack/<domain>-attack-<version>.json.gz`` (the version read from the bundle's
  ``x-mitre-collection``), several versions side by side.
- SigmaHQ rules and Atomic Red Team: a GitHub repository archive (``GET /repos/{owner}/{repo}/zipball/{ref}``,
  https://docs.github.com/en/rest/repos/contents#download-a-repository-archive-zip; ``ref="latest"`` asks
  ``GET /repos/{owner}/{repo}/releases/latest`` for the tag), of which only the listed folders are
  extracted. Extraction refuses absolute paths, ``..``, links and oversized members, writes to a
  temporary folder and swaps it in, so a failed sync leaves the previous content untouched.
"""

from __future__ import annotations

import gzip
import os
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import orjson

from dcoflow.connectors.attack.cache import atomic_write
from dcoflow.connectors.attack.source import decompress_if_gzip
from dcoflow.connectors.http import HttpConnector
from dcoflow.core.errors import ConnectorError, ContentError, ValidationError

if TYPE_CHECKING:
    import httpx

ATTACK_RAW = "https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/{domain}-attack/{name}.json"
GITHUB_API = "https://api.github.com"
ArchivePart = Literal["sigma", "atomics"]


@dataclass(frozen=True, slots=True)
class ArchiveSpec:
    repo: str
    keep: tuple[str, ...]  # top-level paths of the repository to extract


ARCHIVES: dict[ArchivePart, ArchiveSpec] = {
    "sigma": ArchiveSpec("SigmaHQ/sigma", ("rules", "rules-threat-hunting", "rules-emerging-threats",
                                           "rules-placeholder", "LICENSE")),
    "atomics": ArchiveSpec("redcanaryco/atomic-red-team", ("atomics", "LICENSE.txt", "README.md")),
}


@dataclass(frozen=True, slots=True)
class SyncResult:
    part: str
    path: str
    detail: str


class ContentSync(HttpConnector):
    """Writes into ``dest`` (the content folder); one connector (shared retry/error policy) for all downloads."""

    system = "content-sync"

    def __init__(
        self,
        dest: Path,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        max_member_bytes: int = 2 * 1024**3,
        max_total_bytes: int = 8 * 1024**3,
        github_token: str | None = None,
    ) -> None:
        super().__init__(GITHUB_API, headers={"User-Agent": "dcoflow-content-sync"}, transport=transport,
                         timeout=timeout_s, retries=retries, backoff_s=backoff_s, follow_redirects=True)
        self.dest = dest
        self.max_member_bytes = max_member_bytes
        self.max_total_bytes = max_total_bytes
        self.github_headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if github_token:
            self.github_headers["Authorization"] = f"Bearer {github_token}"

    # -- ATT&CK -------------------------------------------------------------------------------------
    def sync_attack(self, domain: str, version: str | None = None) -> SyncResult:
        """Download one domain's bundle (the newest, or ``version`` such as ``"17.1"``)."""
        if domain not in ("enterprise", "mobile", "ics"):
            raise ValidationError(f"unknown ATT&CK domain {domain!r}", field="domain",
                                  suggestions=["enterprise", "mobile", "ics"])
        name = f"{domain}-attack" + (f"-{version}" if version else "")
        url = ATTACK_RAW.format(domain=domain, name=name)
        data = decompress_if_gzip(self.request("GET", url).content, url)
        try:
            bundle = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ContentError(f"not JSON: {exc}", object=url) from exc
        objects = bundle.get("objects") if isinstance(bundle, dict) else None
        collection = next((o for o in objects or () if isinstance(o, dict) and o.get("type") == "x-mitre-collection"),
                          None)
        if collection is None or not collection.get("x_mitre_version"):
            raise ContentError("not an ATT&CK bundle (no x-mitre-collection with a version)", object=url)
        got = str(collection["x_mitre_version"])
        if version and got != version:
            raise ContentError(f"asked for ATT&CK {version}, the bundle is {got}", object=url)
        path = self.dest / "attack" / f"{domain}-attack-{got}.json.gz"
        atomic_write(path, gzip.compress(data, compresslevel=6, mtime=0))
        return SyncResult("attack", str(path), f"{domain} {got} ({len(objects or ())} objects)")

    # -- repository archives -----------------------------------------------------------------------------
    def latest_release(self, repo: str) -> str:
        release = self.get_json(f"/repos/{repo}/releases/latest", headers=self.github_headers)
        tag = release.get("tag_name") if isinstance(release, dict) else None
        if not tag:
            raise ConnectorError(f"no release tag for {repo}", system=self.system, object=repo)
        return str(tag)

    def sync_archive(self, part: ArchivePart, ref: str = "latest") -> SyncResult:
        spec = ARCHIVES[part]
        tag = self.latest_release(spec.repo) if ref == "latest" else ref
        url = f"/repos/{spec.repo}/zipball/{tag}"
        self.dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.dest, prefix=f".{part}.sync-") as tmp:
            archive = Path(tmp) / "archive.zip"
            archive.write_bytes(self.request("GET", url, headers=self.github_headers).content)
            staged = Path(tmp) / part
            count = self.extract(archive, staged, spec.keep)
            stamp = time.strftime("%Y-%m-%d")
            (staged / "SOURCE.txt").write_text(f"{spec.repo} {tag} (dcoflow sync-content {stamp})\n")
            target = self.dest / part
            old = Path(tmp) / "previous"
            if target.exists():
                os.replace(target, old)
            os.replace(staged, target)
        return SyncResult(part, str(target), f"{spec.repo}@{tag}: {count} files")

    def extract(self, archive: Path, dest: Path, keep: tuple[str, ...]) -> int:
        """Extract the ``keep`` paths of a GitHub archive (one top folder) safely; the number of files."""
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile as exc:
            raise ContentError(f"not a zip archive: {exc}", object=str(archive)) from exc
        total = 0
        count = 0
        with zf:
            for info in zf.infolist():
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                if info.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                    raise ContentError(f"unsafe path {info.filename!r} in archive", object=str(archive))
                inner = parts[1:]  # drop GitHub's "<owner>-<repo>-<sha>/" folder
                if not inner or inner[0] not in keep or info.is_dir():
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise ContentError(f"link {info.filename!r} in archive refused", object=str(archive))
                if info.file_size > self.max_member_bytes:
                    raise ContentError(f"{info.filename} is {info.file_size} bytes, over the limit "
                                       f"{self.max_member_bytes}", object=str(archive),
                                       hint="raise DCO_MAX_ARCHIVE_MEMBER_BYTES if this is expected")
                out = dest.joinpath(*inner)
                out.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max(info.file_size, 0) or total + written > self.max_total_bytes:
                            raise ContentError(f"{info.filename} inflates beyond its declared size or the total "
                                               "limit (zip bomb?)", object=str(archive))
                        dst.write(chunk)
                total += written
                count += 1
        if count == 0:
            raise ContentError(f"none of {', '.join(keep)} found in the archive", object=str(archive))
        return count


def sync_content_dir(
    dest: Path,
    *,
    parts: tuple[str, ...] = ("attack", "sigma", "atomics"),
    domains: tuple[str, ...] = ("enterprise", "mobile", "ics"),
    attack_version: str | None = None,
    sigma_ref: str = "latest",
    atomics_ref: str = "master",
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> list[SyncResult]:
    """Fill ``dest`` with the requested parts; the plain function behind the ``sync_content`` flow."""
    unknown = [p for p in parts if p not in ("attack", "sigma", "atomics")]
    if unknown:
        raise ValidationError(f"unknown content parts {unknown}", field="parts",
                              suggestions=["attack", "sigma", "atomics"])
    results: list[SyncResult] = []
    with ContentSync(dest, transport=transport, **options) as sync:
        if "attack" in parts:
            results += [sync.sync_attack(d, attack_version) for d in domains]
        if "sigma" in parts:
            results.append(sync.sync_archive("sigma", sigma_ref))
        if "atomics" in parts:
            results.append(sync.sync_archive("atomics", atomics_ref))
    return results
