"""Fixtures for the emulator's own tests: one loopback server, a clean emulator per test, and
boto3 sessions acting as other accounts through moto's STS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from emulator import Emulator, EmulatorServer

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class Aws:
    """boto3 sessions and clients against the server, as a given account."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def assume(self, role_arn: str, region: str = "us-east-1") -> boto3.Session:
        sts = boto3.client("sts", endpoint_url=self.endpoint_url, config=NO_RETRIES)
        c = sts.assume_role(RoleArn=role_arn, RoleSessionName="emulator-test")["Credentials"]
        return boto3.Session(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
            region_name=region,
        )

    def session(self, account_id: str, region: str = "us-east-1") -> boto3.Session:
        return self.assume(f"arn:aws:iam::{account_id}:role/exporter", region)

    def client(self, service: str, account_id: str, region: str = "us-east-1") -> Any:
        session: Any = self.session(account_id, region)
        return session.client(service, endpoint_url=self.endpoint_url, config=NO_RETRIES)


@pytest.fixture(scope="session")
def server() -> Iterator[EmulatorServer]:
    saved = {k: os.environ.get(k) for k in [*_ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    with EmulatorServer(Emulator()) as srv:
        yield srv
    srv.emulator.uninstall()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def emu(server: EmulatorServer) -> Iterator[Emulator]:
    e = server.emulator
    e.install()
    e.reset()
    e.task_timing(pending=0.05, base=0.05, bytes_per_second=None, cancel=0.05)
    e.max_object_bytes = 1 << 20
    yield e
    e.reset(aws=False)
    e.uninstall()  # another suite's emulator in this process takes over again


@pytest.fixture
def aws(server: EmulatorServer) -> Aws:
    return Aws(server.endpoint_url)
