"""`make deploy`'s staging step: the package `sam build` gets, and parameters that match the
config (the stack's IAM allows exactly the configured bucket, prefix and roles)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from log_exporter.core.config import parse_config
from log_exporter.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def load_stage() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "log_exporter_stage", ROOT / "deploy" / "stage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stage = load_stage()

CONFIG = """\
destination:
  bucket: central-archive
  prefix: cw/logs
accounts:
  - name: prod
    role: arn:aws:iam::111111111111:role/LogExporterMember
    groups: ["/aws/lambda/*"]
  - name: chained
    role:
      - arn:aws:iam::333333333333:role/Hub
      - arn:aws:iam::222222222222:role/LogExporterMember
    groups: ["*"]
"""


@pytest.mark.parametrize(
    ("extra", "config_object", "expected"),
    [
        (
            "",
            "",
            {
                "ArchiveBucket": "central-archive",
                "ArchivePrefix": "cw/logs",
                "ExportOwnAccount": "false",
                # the first hop of each chain: the next ones are assumed with its credentials
                "MemberRoleArns": "arn:aws:iam::111111111111:role/LogExporterMember,"
                "arn:aws:iam::333333333333:role/Hub",
            },
        ),
        (
            '  - name: own\n    groups: ["*"]\n',
            "s3://conf-bucket/log-exporter/config.yml",
            {
                "ArchiveBucket": "central-archive",
                "ArchivePrefix": "cw/logs",
                "ExportOwnAccount": "true",  # an account without a role is the stack's own
                "MemberRoleArns": "arn:aws:iam::111111111111:role/LogExporterMember,"
                "arn:aws:iam::333333333333:role/Hub",
                "ConfigObject": "conf-bucket/log-exporter/config.yml",
            },
        ),
    ],
)
def test_parameters_follow_the_config(
    extra: str, config_object: str, expected: dict[str, str]
) -> None:
    config = parse_config(yaml.safe_load(CONFIG + extra))
    assert stage.parameters(config, config_object) == expected


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "  regions: all\n",
            {"ReadOrganization": "true", "AllRegions": "true"},
        ),
        (
            "  discovery_role: arn:aws:iam::999999999999:role/OrgReader\n",
            {"OrganizationDiscoveryRole": "arn:aws:iam::999999999999:role/OrgReader"},
        ),
    ],
)
def test_parameters_for_an_organization(block: str, expected: dict[str, str]) -> None:
    org = (
        "organization:\n"
        '  role: ["arn:aws:iam::333333333333:role/Hub", '
        '"arn:aws:iam::{account_id}:role/LogExporterMember"]\n'
        '  groups: ["*"]\n'
    )
    config = parse_config(yaml.safe_load(CONFIG + org + block))
    params = stage.parameters(config)
    # the hub: every discovered account's chain starts there
    assert params["MemberRoleArns"] == (
        "arn:aws:iam::111111111111:role/LogExporterMember,arn:aws:iam::333333333333:role/Hub"
    )
    assert {
        k: v
        for k, v in params.items()
        if k in expected or k in ("ReadOrganization", "OrganizationDiscoveryRole", "AllRegions")
    } == expected
    single = parse_config(
        yaml.safe_load(
            CONFIG + "organization:\n  role: arn:aws:iam::{account_id}:role/M\n  groups: [x]\n"
        )
    )
    assert "arn:aws:iam::*:role/M" in stage.parameters(single)["MemberRoleArns"].split(",")


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        ("archive-{region}", "archive-*"),
        (
            "{us-east-1: archive-use1, eu-west-1: archive-euw1}",
            "archive-*1",
        ),  # as tight as one pattern goes
        ("{us-east-1: use1-archive, eu-west-1: euw1-archive}", "*1-archive"),
        ("{us-east-1: central-archive}", "central-archive"),
    ],
)
def test_a_bucket_per_region_is_one_pattern_of_the_buckets(bucket: str, expected: str) -> None:
    config = parse_config(yaml.safe_load(CONFIG.replace("central-archive", bucket)))
    assert stage.parameters(config)["ArchiveBucket"] == expected


def test_buckets_with_nothing_in_common_cannot_be_one_pattern() -> None:
    config = parse_config(
        yaml.safe_load(CONFIG.replace("central-archive", "{us-east-1: abc, eu-west-1: xyz}"))
    )
    with pytest.raises(ConfigError, match="share no start or end"):
        stage.parameters(config)


def test_stage_writes_the_package_the_config_and_the_requirements(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(CONFIG)
    out = tmp_path / "lambda"
    (out / "stale").mkdir(parents=True)

    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "stage.py"),
            "--config",
            str(cfg),
            "--out",
            str(out),
            "--parameters",
            str(tmp_path / "parameters.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yml",
        "log_exporter",
        "requirements.txt",
    ]
    assert (out / "config.yml").read_text() == CONFIG
    assert (out / "log_exporter" / "aws_lambda" / "worker.py").is_file()
    assert not list(out.rglob("__pycache__"))
    requirements = (out / "requirements.txt").read_text().splitlines()
    names = {r.split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requirements}
    assert {"boto3", "pydantic", "pyyaml", "aws-lambda-powertools"} <= names
    assert not names & {"moto", "pytest", "cfn-lint"}  # no dev tools in the function
    params = (tmp_path / "parameters.txt").read_text().split()
    assert "ArchiveBucket=central-archive" in params and "ArchivePrefix=cw/logs" in params


def test_stage_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text("destination:\n  bucket: Not_A_Bucket\naccounts: []\n")

    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "stage.py"),
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 2
    assert proc.stderr.startswith("make deploy: error: ") and "destination.bucket" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
