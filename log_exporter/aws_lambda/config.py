"""The config a Lambda function runs: read from S3 or from its package, and checked against the
bucket and prefix the stack was deployed for."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from log_exporter.aws.config_object import read_config_object
from log_exporter.aws_lambda.settings import LambdaSettings
from log_exporter.core.config import Config, load_config, parse_config_text
from log_exporter.core.policy import bucket_pattern, bucket_patterns
from log_exporter.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def load_lambda_config(location: str, s3: Callable[[], S3Client]) -> Config:
    """The config from `s3://bucket/key`, or from a file (relative: to the function's package)."""
    if not location.startswith("s3://"):
        return load_config(Path(location))
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ConfigError(f"{location}: expected s3://BUCKET/KEY")
    return parse_config_text(read_config_object(s3, bucket, key), location)


def check_destination(config: Config, settings: LambdaSettings) -> None:
    """The config must name the bucket and prefix the stack was deployed for: its IAM policies
    allow only those (a bucket per region: the buckets must fit the deployed pattern)."""
    dest = config.destination
    wanted = [
        ("bucket", bucket_pattern(config), settings.bucket or None),
        ("prefix", dest.prefix, settings.prefix),
    ]
    for name, got, deployed in wanted:
        if name == "bucket" and deployed and "*" in deployed:
            fits = all(fnmatch.fnmatchcase(b, deployed) for b in bucket_patterns(config))
            got = got if not fits else deployed
        if deployed is not None and got != deployed:
            raise ConfigError(
                f"{settings.config}: destination.{name} is {got!r}, but this stack was deployed "
                f"for {deployed!r} (its IAM allows only that): deploy again (`make deploy`)"
            )
