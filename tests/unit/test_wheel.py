"""The wheel `python -m build` makes (and `pipx install` takes) holds what `log-exporter` needs:
the package with py.typed, the console script, the license, the dependencies; no tests, emulator,
bench or deployment files."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("hatchling", reason="the build backend (a dev extra) builds offline")
    out = tmp_path_factory.mktemp("dist")
    # the backend `python -m build` uses, without its isolated environment (no download)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
            *("--wheel-dir", str(out), str(ROOT)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("log_exporter-*-py3-none-any.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_the_package_and_nothing_of_the_repository_besides(
    wheel: zipfile.ZipFile,
) -> None:
    names = set(wheel.namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "log_exporter").rglob("*.py")}
    assert modules <= names, modules - names
    assert "log_exporter/py.typed" in names
    top = {n.split("/")[0] for n in names}
    dist_info = next(t for t in top if t.endswith(".dist-info"))
    assert top == {"log_exporter", dist_info}  # no tests/, emulator/, bench/, deploy/
    assert f"{dist_info}/licenses/LICENSE" in names
    assert wheel.read(f"{dist_info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()


def test_the_wheel_declares_the_console_script_and_the_dependencies(
    wheel: zipfile.ZipFile,
) -> None:
    dist_info = next(n.split("/")[0] for n in wheel.namelist() if ".dist-info/" in n)
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "[console_scripts]\nlog-exporter = log_exporter.cli.main:main" in entry_points
    meta = Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["Name"] == "log-exporter" and meta["Version"] == project["version"]
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == project["requires-python"]
    required = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    base = {r.name.lower(): r.specifier for r in required if r.marker is None}
    assert base == {
        (d := Requirement(text)).name.lower(): d.specifier for text in project["dependencies"]
    }
