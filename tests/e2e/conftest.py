"""End-to-end fixtures: the emulator served on loopback, and the real `log-exporter` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator import Emulator, EmulatorServer, seed
from emulator.scenario import ARCHIVE_ACCOUNT, REGION, client_env

EXPORTER = str(Path(sys.executable).parent / "log-exporter")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(scope="session")
def server() -> Iterator[EmulatorServer]:
    emu = Emulator(pending_seconds=0.02, base_seconds=0.05).install()
    srv = EmulatorServer(emu).start()
    yield srv
    srv.stop()
    emu.uninstall()


@pytest.fixture
def emu(server: EmulatorServer) -> Iterator[Emulator]:
    """A clean emulator (no moto resources, no faults, fast tasks) for each test."""
    server.emulator.reset()
    server.emulator.task_timing(pending=0.02, base=0.05, bytes_per_second=None)
    yield server.emulator
    server.emulator.reset_faults()
    server.emulator.wait_idle(timeout=10)


@pytest.fixture
def aws_env(
    server: EmulatorServer,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    """This process's boto3 talks to the emulator server, like the CLI process does, and the
    test module's archive bucket (its BUCKET) exists, for tests that run the engine in-process."""
    point_boto3_at(monkeypatch, server.endpoint_url)
    seed.create_bucket(request.module.BUCKET, REGION, ARCHIVE_ACCOUNT)
    yield


def point_boto3_at(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> None:
    """Make boto3 in this process talk to the emulator, like a `log-exporter` process does."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in client_env(endpoint_url).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)


class Exporter:
    """Runs the installed `log-exporter` console script against the emulator."""

    def __init__(self, endpoint_url: str, tmp_path: Path) -> None:
        self.endpoint_url = endpoint_url
        self.tmp_path = tmp_path

    def config(self, text: str, name: str = "config.yml") -> Path:
        path = self.tmp_path / name
        path.write_text(text)
        return path

    def __call__(self, *args: str, timeout: float = 120, **env: str) -> Result:
        proc = subprocess.run(
            [EXPORTER, *args],
            env=client_env(self.endpoint_url, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [EXPORTER, *args],
            env=client_env(self.endpoint_url, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def exporter(server: EmulatorServer, emu: Emulator, tmp_path: Path) -> Exporter:
    return Exporter(server.endpoint_url, tmp_path)
