"""What a user installs: the wheel's contents and metadata, and ``trialbook --version``."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import trialbook

ROOT = Path(__file__).resolve().parents[1]


def _build_wheel(tmp_path: Path) -> Path:
    """Build a wheel from a copy of the source with compiled files planted in it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "trialbook", src / "trialbook",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for pkg in (src / "trialbook", src / "trialbook" / "examples"):
        (pkg / "__pycache__").mkdir()
        (pkg / "__pycache__" / "planted.cpython-311.pyc").write_bytes(b"\x00")
    (src / "trialbook" / "stray.pyc").write_bytes(b"\x00")
    dist = tmp_path / "dist"
    code = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    res = subprocess.run([sys.executable, "-c", code, str(dist)], cwd=src, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return dist / res.stdout.strip().splitlines()[-1]


def test_wheel_ships_no_compiled_files_and_declares_license(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert "trialbook/py.typed" in names
    assert "trialbook/block/templates/config.eval.yaml" in names  # data files still ship
    assert not [n for n in names if n.startswith("tests/")]
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = email.message_from_bytes(zipfile.ZipFile(wheel).read(meta_name))
    assert meta["License-Expression"] == "MIT"
    assert meta["Version"] == trialbook.__version__
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Typing :: Typed" in meta.get_all("Classifier")


def test_version_flag_prints_the_package_version() -> None:
    res = subprocess.run([sys.executable, "-m", "trialbook.cli.main", "--version"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"trialbook {trialbook.__version__}"
