"""Procedure content: Atomic Red Team index and CTID emulation plans, read from ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcoflow.connectors.content.atomics import load_atomics, read_atomics
from dcoflow.connectors.content.ctid import load_ctid_plan
from dcoflow.core.errors import ContentError, NotFoundError, ValidationError
from dcoflow.models.procedures import normalise_platform

LIST_OS_INFO = "cccb070c-df86-4216-a5bc-9fb60c74e27c"  # T1082 "List OS Information", sh, output_file arg


@pytest.fixture(scope="module")
def atomics(shared_dir: Path):  # type: ignore[no-untyped-def]
    return load_atomics(shared_dir / "atomics")


def test_whole_corpus_is_indexed(atomics) -> None:  # type: ignore[no-untyped-def]
    assert len(atomics.tests) == 1819
    assert atomics.report.kept == 1819 and atomics.report.skipped == 0
    assert len(atomics.technique_ids()) == 341
    assert "T1082" in atomics.technique_ids()


def test_index_is_memoised_per_path(shared_dir: Path, atomics) -> None:  # type: ignore[no-untyped-def]
    assert load_atomics(shared_dir / "atomics") is atomics
    # the inner technique folder is the same checkout
    assert load_atomics(shared_dir / "atomics" / "atomics").tests[0].guid == atomics.tests[0].guid


def test_for_technique_filters_platforms_case_insensitively(atomics) -> None:  # type: ignore[no-untyped-def]
    everything = atomics.for_technique("t1082")
    linux = atomics.for_technique("T1082", ["Linux"])
    windows = atomics.for_technique("T1082", ["WINDOWS"])
    assert linux and windows
    assert all("linux" in t.platforms for t in linux)
    assert all("windows" in t.platforms for t in windows)
    assert {t.guid for t in linux} | {t.guid for t in windows} <= {t.guid for t in everything}
    assert LIST_OS_INFO in {t.guid for t in linux}
    assert atomics.for_technique("T1082", ["macos", "linux"]) != linux  # macOS adds the system_profiler test
    assert atomics.for_technique("T9999") == []
    subs = atomics.for_technique("T1003", include_subtechniques=True)
    assert any(t.technique_id.startswith("T1003.") for t in subs)


def test_get_by_guid_and_not_found(atomics) -> None:  # type: ignore[no-untyped-def]
    test = atomics.get(LIST_OS_INFO.upper())
    assert test.technique_id == "T1082" and test.executor == "sh"
    assert test.input_arguments["output_file"].default == "/tmp/T1082.txt"
    with pytest.raises(NotFoundError) as err:
        atomics.get("00000000-0000-0000-0000-000000000000")
    assert "00000000" in str(err.value)


def test_render_uses_given_arguments_then_defaults(atomics) -> None:  # type: ignore[no-untyped-def]
    test = atomics.get(LIST_OS_INFO)
    default = test.render()
    assert "uname -a >> /tmp/T1082.txt" in (default.command or "")
    assert default.cleanup_command is not None and "rm /tmp/T1082.txt" in default.cleanup_command
    given = test.render({"output_file": "/sandbox/out.txt"})
    assert "#{" not in (given.command or "")
    assert "uname -a >> /sandbox/out.txt" in (given.command or "")
    assert given.arguments == {"output_file": "/sandbox/out.txt"}


def test_render_reports_missing_arguments_by_name(atomics) -> None:  # type: ignore[no-untyped-def]
    # T1016 "Adfind - Enumerate Active Directory Subnet Objects": optional_args has no default
    test = atomics.get("9bb45dd7-c466-4f93-83a1-be30e56033ee")
    assert test.missing_arguments() == ["optional_args"]
    with pytest.raises(ValidationError) as err:
        test.render()
    assert err.value.field == "optional_args"
    assert "9bb45dd7-c466-4f93-83a1-be30e56033ee" in str(err.value)
    assert "optional_args" in str(err.value)
    assert "#{" not in (test.render({"optional_args": ""}).command or "")


def test_manual_atomics_have_steps_not_commands(atomics) -> None:  # type: ignore[no-untyped-def]
    manual = [t for t in atomics.tests if t.executor == "manual"]
    assert len(manual) == 16
    assert all(t.command is None and t.manual_steps for t in manual)
    with pytest.raises(ValidationError) as err:
        manual[0].render()
    assert manual[0].guid in str(err.value)


def test_bad_atomic_files_are_reported_not_fatal(tmp_path: Path, shared_dir: Path) -> None:
    good = tmp_path / "atomics" / "T1082"
    good.mkdir(parents=True)
    good.joinpath("T1082.yaml").write_bytes((shared_dir / "atomics/atomics/T1082/T1082.yaml").read_bytes())
    broken = tmp_path / "atomics" / "T1033"
    broken.mkdir()
    broken.joinpath("T1033.yaml").write_text("attack_technique: T1033\natomic_tests: [\n")
    partial = tmp_path / "atomics" / "T1016"
    partial.mkdir()
    partial.joinpath("T1016.yaml").write_text(
        "attack_technique: T1016\natomic_tests:\n"
        "- name: no guid\n  supported_platforms: [linux]\n  executor: {name: sh, command: id}\n"
        "- name: ok\n  auto_generated_guid: 11111111-2222-3333-4444-555555555555\n"
        "  supported_platforms: [linux]\n  executor: {name: sh, command: ip a}\n"
    )
    index = read_atomics(tmp_path)
    assert index.report.skipped == 2
    locations = {b.location: b.reason for b in index.report.bad}
    assert "unreadable YAML" in locations["T1033/T1033.yaml"]
    assert "auto_generated_guid" in locations["T1016/T1016.yaml#1"]
    assert index.get("11111111-2222-3333-4444-555555555555").technique_id == "T1016"
    assert len(index.for_technique("T1082")) > 5
    with pytest.raises(ContentError):
        read_atomics(tmp_path / "nowhere")


def test_all_ctid_plans_load(shared_dir: Path) -> None:
    plans = sorted(shared_dir.glob("emulation-library/*/Emulation_Plan/yaml/*.yaml"))
    assert len(plans) == 7
    loaded = {p.name: load_ctid_plan(p) for p in plans}
    apt29 = loaded["APT29.yaml"]
    assert apt29.adversary_name == "APT29"
    assert apt29.attack_version == "8.1" and apt29.format_version == "1.0"
    assert len(apt29.steps) == 79
    first = apt29.steps[0]
    assert first.procedure_step == "1.A" and first.technique_id == "T1036.002"
    assert set(first.platforms["windows"]) == {"psh", "pwsh"}  # "psh,pwsh" split
    assert first.input_arguments["server"].default == "192.0.2.10"
    assert "cod.3aka3.scr" in first.payloads
    rendered = first.render("Windows", "psh", {"server": "10.0.0.5"})
    assert '-server "10.0.0.5"' in (rendered.command or "")
    assert loaded["turla_snake.yaml"].attack_version == "13"
    carbanak_linux = [s for s in loaded["Carbanak.yaml"].steps if "linux" in s.platforms]
    assert carbanak_linux and all("sh" in s.platforms["linux"] for s in carbanak_linux)


def test_ctid_steps_with_unknown_techniques_are_kept_and_reported(shared_dir: Path) -> None:
    plan = load_ctid_plan(shared_dir / "emulation-library/turla/Emulation_Plan/yaml/turla_carbon.yaml")
    assert len(plan.steps) == 45
    odd = [s for s in plan.steps if not s.is_technique]
    assert len(odd) == len(plan.warnings) == 15
    assert any("'x'" in w for w in plan.warnings)
    assert all(t.startswith("T") for t in plan.technique_ids())


def test_ctid_fin6_dependencies(shared_dir: Path) -> None:
    plan = load_ctid_plan(shared_dir / "emulation-library/fin6/Emulation_Plan/yaml/FIN6.yaml")
    step = next(s for s in plan.steps if s.id == "e44a39ce-0651-3ddd-8f05-f83aa2ffd657")
    assert step.dependency_executor_name == "powershell"
    assert step.dependencies and "Test-Path" in step.dependencies[0].prereq_command
    assert step.input_arguments["adfind_zip_hash"].default is None
    assert step.executors[0].name == "command_prompt"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("- emulation_plan_details: [\n", "not valid YAML"),
        ("a: 1\n", "non-empty YAML list"),
        ("- name: x\n", "emulation_plan_details"),
        ("- emulation_plan_details: {adversary_name: X, format_version: 2.0}\n", "format_version 2.0"),
        (
            "- emulation_plan_details: {adversary_name: X, format_version: 1.0}\n"
            "- {id: a, name: Step A, technique: {attack_id: T1082}, platforms: [windows]}\n",
            "'platforms' is not a mapping",
        ),
        (
            "- emulation_plan_details: {adversary_name: X, format_version: 1.0}\n"
            "- {id: a, name: Step A, procedure_step: 1.A, platforms: {linux: {sh: {command: id}}}}\n",
            "no 'technique'",
        ),
    ],
)
def test_bad_ctid_plans_name_file_and_entry(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(ContentError) as err:
        load_ctid_plan(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)
    assert "entry" in str(err.value)


def test_bad_ctid_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "- emulation_plan_details: {adversary_name: X, format_version: 1.0}\n"
        "- {id: a, name: Fine, procedure_step: '1', technique: {attack_id: T1082}, "
        "platforms: {linux: {sh: {command: uname}}}}\n"
        "- {id: b, name: Broken, procedure_step: '2', technique: {attack_id: T1033}, "
        "platforms: {linux: {sh: {payloads: [x]}}}}\n"
    )
    with pytest.raises(ContentError) as err:
        load_ctid_plan(path)
    assert "#2 (2 Broken)" in str(err.value) and "no 'command'" in str(err.value)


def test_platform_spellings() -> None:
    assert normalise_platform("Darwin") == "macos"
    assert normalise_platform("iaas:aws") == "iaas"
    assert normalise_platform("Windows") == "windows"
