"""Stages the Lambda package for `sam build` and derives the stack's parameters from the config.

`make deploy` runs it: it copies the `log_exporter` package and the config into OUT (the
template's CodeUri), writes the requirements `sam build` installs there, and writes the
`sam deploy --parameter-overrides` that match the config (bucket, prefix, the roles to assume).

    python deploy/stage.py --config config.yml --out .build/lambda --parameters .build/parameters.txt
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tomllib
from pathlib import Path

from log_exporter.core.config import ACCOUNT_ID_FIELD, ALL_REGIONS, Config, load_config
from log_exporter.core.policy import bucket_pattern
from log_exporter.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PACKAGED_CONFIG = "config.yml"  # what the function reads unless ConfigObject is set


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The function's dependencies: the project's own plus the `lambda` extra (powertools)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["lambda"]]


def parameters(config: Config, config_object: str = "") -> dict[str, str]:
    """Template parameters that match `config`: the worker may assume the first role of each
    account's chain (the next hops are assumed with that role's credentials)."""
    dest = config.destination
    first_roles = sorted({a.role_chain[0] for a in config.accounts if a.role_chain})
    params = {
        "ArchiveBucket": bucket_pattern(config),  # a bucket per region: a pattern of them
        "ArchivePrefix": dest.prefix,
        "ExportOwnAccount": "true" if any(not a.role_chain for a in config.accounts) else "false",
    }
    org = config.organization
    if org is not None:
        # any discovered account: {account_id} becomes a `*` in the first hop's ARN
        first = org.role if isinstance(org.role, str) else org.role[0]
        first_roles = sorted({*first_roles, first.replace(ACCOUNT_ID_FIELD, "*")})
        if org.discovery_role:
            params["OrganizationDiscoveryRole"] = org.discovery_role
        else:
            params["ReadOrganization"] = "true"
    if any(a.regions == ALL_REGIONS for a in config.accounts) or (
        org is not None and org.regions == ALL_REGIONS
    ):
        params["AllRegions"] = "true"
    if first_roles:
        params["MemberRoleArns"] = ",".join(first_roles)
    if config_object:
        params["ConfigObject"] = config_object.removeprefix("s3://")
    return params


def stage(out: Path, config_path: Path) -> None:
    """OUT holds the package, the config and requirements.txt, nothing else."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(
        ROOT / "log_exporter",
        out / "log_exporter",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    shutil.copyfile(config_path, out / PACKAGED_CONFIG)
    (out / "requirements.txt").write_text("\n".join(requirements()) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="the config to deploy")
    parser.add_argument("--out", required=True, type=Path, help="the template's CodeUri")
    parser.add_argument("--parameters", type=Path, help="write the parameter overrides here")
    parser.add_argument(
        "--config-object", default="", help="BUCKET/KEY the function reads the config from"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"make deploy: error: {exc}", file=sys.stderr)
        return 2
    stage(args.out, args.config)
    overrides = " ".join(f"{k}={v}" for k, v in parameters(config, args.config_object).items())
    if args.parameters:
        args.parameters.parent.mkdir(parents=True, exist_ok=True)
        args.parameters.write_text(overrides + "\n", encoding="utf-8")
    print(f"staged {args.out} with {args.config}; parameters: {overrides}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
