"""Streaming readers for telemetry files: JSON lines, Linux auditd logs (both also zipped), EVTX and CSV.

Every reader is a generator over one file that yields event dicts one at a time, so memory
stays bounded by one read chunk (1 MiB; one zip member is streamed in chunks, never
extracted, and a line longer than ``MAX_LINE_BYTES`` is reported and skipped).
``iter_file_records`` yields the records as read (flat for EVTX), for the hunt, which
normalises lazily (``fields.match_view``); ``iter_file_events`` and ``iter_events`` yield
normalised events. A ``.log``/``.json`` file or zip member is read line by line: a JSON
object per line, or (a line that is not JSON but carries an auditd header) an auditd record,
parsed by ``dcoflow.connectors.telemetry.auditd``. Bad records (truncated lines, binary junk, wrong
encoding, a corrupt EVTX chunk, a malformed auditd line) are counted in the caller's
``BatchReport`` with their location and skipped; an empty file and an oversized archive
member are reported the same way. Only a path that does not exist raises (``ContentError``),
because that is a caller mistake, not bad data.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import evtx
import orjson

from dcoflow.connectors.telemetry.auditd import AuditLineError, looks_like_audit, parse_audit_line
from dcoflow.connectors.telemetry.fields import normalise_event
from dcoflow.core.errors import BatchReport, ContentError

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".log")
TELEMETRY_SUFFIXES = (*JSON_SUFFIXES, ".zip", ".evtx", ".csv")
_MAX_REASON = 120
_CHUNK = 1 << 20
MAX_LINE_BYTES = 64 << 20
_OVERSIZED = object()  # stands for a line over MAX_LINE_BYTES in the line stream
# Content catalogues that sit beside telemetry in shared folders; never events.
_METADATA_NAMES = frozenset({"manifest.csv"})


def iter_data_files(paths: Path | Sequence[Path]) -> Iterator[Path]:
    """Telemetry files below ``paths`` (files as given, folders searched by suffix), sorted."""
    for p in [paths] if isinstance(paths, Path | str) else paths:
        path = Path(p)
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(f for f in path.rglob("*") if f.suffix.lower() in TELEMETRY_SUFFIXES
                              and f.name.lower() not in _METADATA_NAMES and f.is_file())
        else:
            raise ContentError("telemetry path does not exist", system="telemetry", object=str(path),
                               hint="pass a telemetry file (.json, .jsonl, .zip, .evtx, .csv) or a folder of them")


def iter_file_events(path: Path, report: BatchReport, *, max_member_bytes: int) -> Iterator[dict[str, Any]]:
    """Normalised events of one telemetry file, chosen by suffix; bad records go to ``report``."""
    for record in iter_file_records(path, report, max_member_bytes=max_member_bytes):
        yield normalise_event(record)


def iter_file_records(path: Path, report: BatchReport, *, max_member_bytes: int) -> Iterator[dict[str, Any]]:
    """Records of one telemetry file as read (not normalised), chosen by suffix; bad records go to ``report``."""
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as exc:
        report.skip(str(path), f"cannot read: {exc.strerror or exc}")
        return
    if size == 0:
        report.skip(str(path), "empty file")
        return
    try:
        if suffix == ".zip":
            yield from _iter_zip(path, report, max_member_bytes)
        elif suffix == ".evtx":
            yield from _iter_evtx(path, report)
        elif suffix == ".csv":
            with path.open("rb") as fh:
                yield from _iter_csv(fh, str(path), report)
        else:
            with path.open("rb") as fh:
                yield from _iter_json_lines(fh, str(path), report)
    except OSError as exc:
        report.skip(str(path), f"cannot read: {exc.strerror or exc}")


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:_MAX_REASON] if str(exc) else type(exc).__name__


def _lines(fh: IO[bytes]) -> Iterator[bytes | object]:
    """Lines of a byte stream without their ``\\n``, read in chunks and split in C (a zip member's
    ``readline`` is pure Python); a line over ``MAX_LINE_BYTES`` comes out as ``_OVERSIZED``."""
    rest = b""
    dropping = False  # inside an oversized line: discard up to its end
    while chunk := fh.read(_CHUNK):
        if dropping:
            cut = chunk.find(b"\n")
            if cut < 0:
                continue
            chunk, dropping = chunk[cut + 1:], False
        lines = (rest + chunk if rest else chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
        if len(rest) > MAX_LINE_BYTES:
            yield _OVERSIZED
            rest, dropping = b"", True
    if rest:
        yield rest


def _iter_json_lines(fh: IO[bytes], where: str, report: BatchReport) -> Iterator[dict[str, Any]]:
    """JSON lines, or Linux auditd record lines (``dcoflow.connectors.telemetry.auditd``), one record a line."""
    seen = False
    auditd = False  # once a line was an auditd record, a bad line is reported as a bad auditd record
    loads = orjson.loads
    for lineno, line in enumerate(_lines(fh), 1):
        if not isinstance(line, bytes):
            seen = True
            report.read += 1
            report.skip(f"{where}:{lineno}", f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        if not line or line.isspace():
            continue
        seen = True
        report.read += 1
        try:
            doc = loads(line)  # rejects invalid UTF-8, truncation and junk alike
        except orjson.JSONDecodeError as exc:
            if auditd or looks_like_audit(line):  # an auditd log: every other line is read as one too
                auditd = True
                try:
                    record = parse_audit_line(line)
                except AuditLineError as bad:
                    report.skip(f"{where}:{lineno}", f"not an auditd record: {bad}")
                    continue
                report.kept += 1
                yield record
                continue
            report.skip(f"{where}:{lineno}", f"not a JSON record: {_reason(exc)}")
            continue
        if doc.__class__ is not dict:
            report.skip(f"{where}:{lineno}", f"JSON {type(doc).__name__}, not an object")
            continue
        report.kept += 1
        yield doc
    if not seen:
        report.skip(where, "no records (empty)")


def _iter_csv(fh: IO[bytes], where: str, report: BatchReport) -> Iterator[dict[str, Any]]:
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="strict", newline="")
    try:
        reader = csv.DictReader(text)
        lineno = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except (UnicodeDecodeError, csv.Error) as exc:
                report.read += 1
                report.skip(f"{where}:{reader.line_num}", f"unreadable CSV row: {_reason(exc)}")
                if isinstance(exc, UnicodeDecodeError):
                    return  # the decoder cannot resynchronise after a bad byte
                continue
            lineno = reader.line_num
            report.read += 1
            if None in row:
                report.skip(f"{where}:{lineno}", "more values than header columns")
                continue
            report.kept += 1
            yield {k: v for k, v in row.items() if v not in (None, "")}
        if reader.line_num <= 1:
            report.skip(where, "no records (header only or empty)")
    finally:
        text.detach()


def _iter_zip(path: Path, report: BatchReport, max_member_bytes: int) -> Iterator[dict[str, Any]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.skip(str(path), f"not a readable zip archive: {_reason(exc)}")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            where = f"{path}!{info.filename}"
            if info.file_size > max_member_bytes:
                report.skip(where, f"archive member is {info.file_size} bytes, over the "
                                   f"{max_member_bytes}-byte limit (max_archive_member_bytes)")
                continue
            suffix = Path(info.filename).suffix.lower()
            try:
                with archive.open(info) as member:
                    if suffix == ".csv":
                        yield from _iter_csv(member, where, report)
                    elif suffix in JSON_SUFFIXES or suffix == "":
                        yield from _iter_json_lines(member, where, report)
                    else:
                        report.skip(where, f"unsupported archive member type {suffix!r}")
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                report.skip(where, f"corrupt archive member: {_reason(exc)}")


def _evtx_flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """EVTX JSON (``Event.System``/``EventData``/``UserData``) → one flat Windows event dict."""
    event = doc.get("Event", doc)
    flat: dict[str, Any] = {}
    system = event.get("System") or {}
    for key, value in system.items():
        if key == "Provider":
            attrs = (value or {}).get("#attributes", {})
            if "Name" in attrs:
                flat["Provider_Name"] = attrs["Name"]
        elif key == "TimeCreated":
            flat["TimeCreated"] = ((value or {}).get("#attributes") or {}).get("SystemTime")
        elif key == "Execution":
            for a, v in ((value or {}).get("#attributes") or {}).items():
                flat[f"Execution_{a}"] = v
        elif key == "Security":
            uid = ((value or {}).get("#attributes") or {}).get("UserID") if isinstance(value, dict) else None
            if uid:
                flat["Security_UserID"] = uid
        elif isinstance(value, dict):
            flat[key] = value.get("#text", value)
        elif value is not None:
            flat[key] = value
    for section in ("EventData", "UserData"):
        data = event.get(section)
        if not isinstance(data, dict):
            continue
        if section == "UserData" and len(data) == 1:
            data = next(iter(data.values()))
            if not isinstance(data, dict):
                continue
        for key, value in data.items():
            if key == "#attributes":
                continue
            if key == "Data" and isinstance(value, list):
                flat.update({f"Data_{i}": v for i, v in enumerate(value)})
            elif isinstance(value, dict):
                flat[key] = value.get("#text", orjson.dumps(value).decode())
            else:
                flat.setdefault(key, value)
    return flat


EVTX_HEADER_BYTES = 4096
EVTX_CHUNK_BYTES = 65536


def evtx_truncation(path: Path) -> str | None:
    """Why an EVTX file is cut short, or None: the parser silently stops at the end of what is there.

    The file header (4 KiB) declares its chunk count (offset 0x2A); each chunk is 64 KiB.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            header = fh.read(0x2C)
    except OSError:
        return None
    if len(header) < 0x2C or not header.startswith(b"ElfFile\x00"):
        return None  # not an EVTX header: the parser reports that itself
    chunks = int.from_bytes(header[0x2A:0x2C], "little")
    expected = EVTX_HEADER_BYTES + chunks * EVTX_CHUNK_BYTES
    partial = size > EVTX_HEADER_BYTES and (size - EVTX_HEADER_BYTES) % EVTX_CHUNK_BYTES
    if size < expected or partial:
        present = max(0, size - EVTX_HEADER_BYTES) // EVTX_CHUNK_BYTES
        return (f"truncated EVTX file: {size} bytes, its header declares {chunks} chunks ({expected} bytes); "
                f"records after chunk {present} are missing")
    return None


def _iter_evtx(path: Path, report: BatchReport) -> Iterator[dict[str, Any]]:
    truncated = evtx_truncation(path)
    if truncated is not None:
        report.skip(str(path), truncated)
    try:
        parser = evtx.PyEvtxParser(str(path))
        records: Iterable[Any] = parser.records_json()
        iterator = iter(records)
    except (OSError, RuntimeError, ValueError) as exc:
        report.skip(str(path), f"not a readable EVTX file: {_reason(exc)}")
        return
    index = 0
    while True:
        index += 1
        try:
            record = next(iterator)
        except StopIteration:
            break
        except (OSError, RuntimeError, ValueError) as exc:
            report.read += 1
            report.skip(f"{path}#{index}", f"corrupt EVTX record: {_reason(exc)}")
            continue
        report.read += 1
        try:
            doc = orjson.loads(record["data"])
        except orjson.JSONDecodeError as exc:
            report.skip(f"{path}#{record.get('event_record_id', index)}", f"corrupt EVTX record: {_reason(exc)}")
            continue
        report.kept += 1
        yield _evtx_flatten(doc)
    if report.read == 0 and (not report.bad or truncated is not None):
        report.skip(str(path), "no records in EVTX file")


def iter_events(
    paths: Path | Sequence[Path], *, max_member_bytes: int, reports: list[BatchReport] | None = None,
) -> Iterator[dict[str, Any]]:
    """Events of every telemetry file below ``paths``; one ``BatchReport`` per file is appended to ``reports``."""
    for file in iter_data_files(paths):
        report = BatchReport(source=str(file))
        if reports is not None:
            reports.append(report)
        yield from iter_file_events(file, report, max_member_bytes=max_member_bytes)


__all__ = ["MAX_LINE_BYTES", "TELEMETRY_SUFFIXES", "iter_data_files", "iter_events", "iter_file_events",
           "iter_file_records"]
