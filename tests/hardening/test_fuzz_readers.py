"""Bounded fuzzing: telemetry readers count junk as bad records, operation files are a DcoSpec or a
DcoError naming the file — never another exception (issue 14)."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcoflow.connectors.content.operation_file import load_operation_file
from dcoflow.connectors.telemetry.readers import iter_file_records
from dcoflow.core.errors import BatchReport, DcoError
from dcoflow.flows.cli.output import one_line

FUZZ = settings(max_examples=120, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = [".json", ".jsonl", ".csv", ".evtx", ".zip", ".log"]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(
    max_size=20)
json_values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20)


def _read_all(path: Path) -> BatchReport:
    report = BatchReport(str(path))
    for record in iter_file_records(path, report, max_member_bytes=1 << 20):
        assert isinstance(record, dict)
    assert report.kept <= report.read or report.read == 0
    return report


@FUZZ
@given(data=st.binary(max_size=4000), suffix=st.sampled_from(SUFFIXES))
def test_telemetry_readers_never_raise_on_bytes(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"events{suffix}"
        path.write_bytes(data)
        _read_all(path)


@FUZZ
@given(records=st.lists(json_values, max_size=20), junk=st.lists(st.binary(max_size=40), max_size=5))
def test_json_lines_with_junk_are_counted(records: list[object], junk: list[bytes]) -> None:
    lines = [json.dumps(r).encode() for r in records] + [j.replace(b"\n", b" ") for j in junk]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "events.jsonl"
        path.write_bytes(b"\n".join(lines))
        report = _read_all(path)
        assert report.kept == sum(isinstance(r, dict) for r in records) or junk


@FUZZ
@given(members=st.lists(st.tuples(st.sampled_from(SUFFIXES), st.binary(max_size=500)), max_size=4))
def test_zipped_junk_is_counted(members: list[tuple[str, bytes]]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, (suffix, data) in enumerate(members):
            z.writestr(f"m{n}{suffix}", data)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "events.zip"
        path.write_bytes(buf.getvalue())
        _read_all(path)


def test_truncated_evtx_is_reported(shared_dir: Path, tmp_path: Path) -> None:
    source = max((shared_dir / "evtx-samples").rglob("*.evtx"), key=lambda p: p.stat().st_size)
    data = source.read_bytes()
    for cut in (70_000, len(data) - 1, 5_000):
        path = tmp_path / f"cut-{cut}.evtx"
        path.write_bytes(data[:cut])
        report = _read_all(path)
        assert any("truncated EVTX" in b.reason for b in report.bad), report.summary()
    assert not any("truncated" in b.reason for b in _read_all(source).bad)


operation_docs = st.dictionaries(
    st.sampled_from(["name", "objective", "type", "threat_profile", "scope", "marking", "rules_of_engagement",
                     "window", "participants", "emulation", "extra"]),
    json_values, max_size=8)


@FUZZ
@given(doc=operation_docs, as_yaml=st.booleans())
def test_operation_files_are_a_spec_or_a_named_error(doc: dict[str, object], as_yaml: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("op.yaml" if as_yaml else "op.json")
        try:
            path.write_text(yaml.safe_dump(doc) if as_yaml else json.dumps(doc), encoding="utf-8")
        except (ValueError, UnicodeEncodeError):
            return  # a value neither format can hold (lone surrogate, NaN in YAML)
        try:
            load_operation_file(path)
        except DcoError as exc:
            assert str(path) in exc.message and "\n" not in one_line(exc.message)


@FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".yaml", ".json"]))
def test_operation_file_bytes_are_a_spec_or_a_named_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"op{suffix}"
        path.write_bytes(data)
        with pytest.raises(DcoError) as info:
            load_operation_file(path)
        assert str(path) in info.value.message
