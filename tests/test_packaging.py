"""The built wheel installs as one package, `dcoflow`, that a top-level `models` or `core` cannot touch.

Issue 10 found a stand-in distribution shipping `models/operation.py` overwriting dcoflow's file (and its
uninstall deleting dcoflow's `models/`). Here the wheel is built from a copy of the tree with `pip wheel
--no-deps`, installed into a fresh venv beside such a stand-in, and `dco` is run from that venv; then the
stand-in is uninstalled and `dco` must still run with every file of dcoflow's RECORD in place.

The fresh venv has no packages of its own besides the two wheels: a `.pth` line appends this test venv's
site-packages (dependencies only: a `.pth` line adds a path but does not process the `.pth` files in it, so
this venv's editable dcoflow stays invisible), and the test checks `dcoflow` is imported from the fresh venv.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
                                    ".ruff_cache", ".pytest_cache", "dco-demo", ".dcoflow", "*.db")

# A distribution like PyPI's `models` or `core`: generic top-level names, one the same file path as dcoflow's.
STANDIN_FILES = {
    "models/__init__.py": "OWNER = 'stand-in'\n",
    "models/operation.py": "OWNER = 'stand-in'\nraise ImportError('the stand-in models.operation was imported')\n",
    "core/__init__.py": "OWNER = 'stand-in'\n",
    "core/settings.py": "raise ImportError('the stand-in core.settings was imported')\n",
}


def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _standin_wheel(dest: Path) -> Path:
    """A valid wheel for the stand-in, written by hand (no build backend needed)."""
    wheel = dest / "models-0.0.1-py3-none-any.whl"
    info = "models-0.0.1.dist-info"
    files = {
        **STANDIN_FILES,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: models\nVersion: 0.0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: dcoflow-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": "core\nmodels\n",
    }
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            z.writestr(name, text)
    return wheel


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(venv, site-packages) with dcoflow's wheel installed, then the stand-in on top of it."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)])
    (ours,) = dist.glob("dcoflow-*.whl")
    with zipfile.ZipFile(ours) as z:
        assert {n.split("/")[0] for n in z.namelist()} == {"dcoflow", ours.name.split("-py3")[0] + ".dist-info"}

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    ours_deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz-dcoflow-test-deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours_deps)))
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    _run([*pip, str(ours)])
    _run([*pip, str(_standin_wheel(dist))])
    return venv, site


def _env(settings: Any, shared_dir: Path) -> dict[str, str]:
    return {**os.environ, "DCO_ATTACK_SOURCE": str(shared_dir / "attack" / "enterprise-attack-18.1.json.gz"),
            "DCO_CACHE_DIR": str(settings.cache_dir), "COLUMNS": "120"}


def _dco_works(venv: Path, env: dict[str, str], cwd: Path | None = None) -> None:
    assert "attack" in _run([str(venv / "bin" / "dco"), "--help"], env=env, cwd=cwd)
    out = _run([str(venv / "bin" / "dco"), "attack", "technique", "T1059.001"], env=env, cwd=cwd)
    assert "T1059.001 PowerShell" in out


def _record(site: Path) -> list[Path]:
    (record,) = site.glob("dcoflow-*.dist-info/RECORD")
    return [site / row[0] for row in csv.reader(record.read_text().splitlines()) if row]


def test_dco_runs_beside_a_top_level_models_package(fresh_venv: tuple[Path, Path], settings: Any,
                                                    shared_dir: Path) -> None:
    venv, site = fresh_venv
    python = str(venv / "bin" / "python")
    # Both are installed in the same site-packages, each with its own files (cwd: not this repository's root,
    # whose own models/ folder `python -c` would find first).
    assert _run([python, "-c", "import models; print(models.OWNER)"], cwd=venv).strip() == "stand-in"
    where = _run([python, "-c", "import dcoflow.models.operation as m; print(m.__file__)"], cwd=venv).strip()
    assert Path(where).is_relative_to(site / "dcoflow"), where
    assert all(p.is_file() for p in _record(site))
    _dco_works(venv, _env(settings, shared_dir))


def test_a_project_folder_first_on_sys_path_does_not_shadow(fresh_venv: tuple[Path, Path], settings: Any,
                                                            shared_dir: Path, tmp_path: Path) -> None:
    """Prefect's set_working_directory puts the project folder first on sys.path; `core/` there is common."""
    venv, _ = fresh_venv
    for name, text in STANDIN_FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    _dco_works(venv, {**_env(settings, shared_dir), "PYTHONPATH": str(tmp_path)}, cwd=tmp_path)


def test_uninstalling_the_stand_in_leaves_dcoflow_whole(fresh_venv: tuple[Path, Path], settings: Any,
                                                        shared_dir: Path) -> None:
    venv, site = fresh_venv
    _run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "models"])
    assert not (site / "models").exists()
    missing = [str(p) for p in _record(site) if not p.is_file()]
    assert not missing, missing
    _dco_works(venv, _env(settings, shared_dir))
