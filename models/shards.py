"""Cutting a hunt's telemetry into shards that workers on several hosts can take.

A shard is a set of whole files (the local engine's unit of work), so a shard's result never depends
on which worker ran it. Files are dealt largest first onto the lightest shard (LPT scheduling), which
keeps the slowest shard within 4/3 of the best possible. A shard's key is a hash of its files: the
same data always cuts into the same shards, so a re-run or a retried shard records under the same
name and replaces, never adds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Shard:
    key: str
    files: list[str] = field(default_factory=list)
    size: int = 0  # bytes

    def done_in(self, inputs: Mapping[str, int]) -> bool:
        """True when every file of the shard is among a hunt run's recorded inputs."""
        return bool(self.files) and all(f in inputs for f in self.files)


def plan_shards(files: Sequence[tuple[str, int]], shards: int) -> list[Shard]:
    """``files`` (path, size in bytes) dealt into at most ``shards`` shards of similar total size."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    unique = dict(files)  # a file named twice is hunted once
    bins = [Shard(key="") for _ in range(min(shards, len(unique)))]
    for path, size in sorted(unique.items(), key=lambda kv: (-kv[1], kv[0])):
        target = min(bins, key=lambda b: (b.size, len(b.files)))
        target.files.append(path)
        target.size += size
    for b in bins:
        b.files.sort()
        b.key = "shard-" + hashlib.sha256("\n".join(b.files).encode()).hexdigest()[:12]
    return sorted(bins, key=lambda b: b.files[0])
