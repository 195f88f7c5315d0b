"""Which revision of a content folder (SigmaHQ, Atomic Red Team checkout) a plan was made from.

`dco sync-content` and the shared content write ``SOURCE.txt`` (``commit <sha> <date>`` or
``<repo> <tag> (…)``) into each folder; a git checkout answers through its HEAD file. A plan records
the answer so its document can say which content versions it relies on.
"""

from __future__ import annotations

from pathlib import Path

UNRECORDED = "unrecorded (no SOURCE.txt or git HEAD in the folder)"


def content_revision(folder: Path) -> str:
    source = folder / "SOURCE.txt"
    try:
        if source.is_file():
            first = source.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            if first:
                return first[0].strip()[:200]
        head = folder / ".git" / "HEAD"
        if head.is_file():
            ref = head.read_text(encoding="utf-8").strip()
            if ref.startswith("ref: "):
                target = folder / ".git" / ref[5:]
                return f"{ref[5:]} {target.read_text(encoding='utf-8').strip()[:40]}" if target.is_file() else ref
            return f"commit {ref[:40]}"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return UNRECORDED
