"""Credentials the way AWS users have them: the global `--profile` (and AWS_PROFILE) names the
ambient credentials, an account's `profile:` starts its session (and its role chain) from that
profile; an unknown profile is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto.iam.models import iam_backends

from emulator import Emulator, EmulatorServer
from emulator.scenario import REGION, role_arn, sample_world
from log_exporter.aws.sessions import SessionFactory
from log_exporter.errors import AWSError, ConfigError
from tests.faults.conftest import assert_complete

from .conftest import Exporter, point_boto3_at

A, B, C = "111111111111", "222222222222", "333333333333"
BUCKET = "profiles-archive"
GROUPS = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
SELECTION = """\
    regions: [us-east-1]
    groups: ["/aws/lambda/*", "re:vpc-flow-.*"]
    exclude: ["*-test"]
"""


def user_key(account_id: str) -> tuple[str, str]:
    """An access key of an IAM user of the account: the emulator takes its requests as that
    account's (as AWS would)."""
    backend = iam_backends[account_id]["aws"]
    backend.create_user(REGION, "exporter")
    key = backend.create_access_key("exporter")
    return key.access_key_id, key.secret_access_key


def aws_config(tmp_path: Path, endpoint_url: str, **profiles: tuple[str, str] | str) -> Path:
    """An AWS config file with these profiles: static keys, or a `credential_process`."""
    lines: list[str] = []
    for name, how in profiles.items():
        lines += [f"[profile {name}]", f"region = {REGION}", f"endpoint_url = {endpoint_url}"]
        if isinstance(how, str):
            lines.append(f"credential_process = {how}")
        else:
            lines += [f"aws_access_key_id = {how[0]}", f"aws_secret_access_key = {how[1]}"]
    path = tmp_path / "aws-config"
    path.write_text("\n".join(lines) + "\n")
    return path


def env_for(config_file: Path) -> dict[str, str]:
    return {"AWS_CONFIG_FILE": str(config_file)}


# --- the session factory --------------------------------------------------------------------------
def test_a_profile_gives_the_ambient_or_an_accounts_credentials(
    server: EmulatorServer, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_boto3_at(monkeypatch, server.endpoint_url)  # ambient: the `testing` keys
    key_a, key_b = user_key(A), user_key(B)
    monkeypatch.setenv(
        "AWS_CONFIG_FILE", str(aws_config(tmp_path, server.endpoint_url, pa=key_a, pb=key_b))
    )

    explicit = SessionFactory(profile="pa")  # beats the AWS_ACCESS_KEY_ID of the environment
    assert explicit.ambient.get_credentials().access_key == key_a[0]
    assert explicit.account_id(explicit.ambient, []) == A
    member = explicit.account_credentials([], profile="pb")
    assert member is not None and member.access_key == key_b[0]
    assert SessionFactory().account_credentials([]) is None  # no profile: the ambient ones
    # the variable keeps working (keys in the environment win over it, as in every AWS SDK)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_PROFILE", "pb")
    assert SessionFactory().ambient.get_credentials().access_key == key_b[0]


def test_an_accounts_role_chain_starts_from_its_profile(
    server: EmulatorServer, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_boto3_at(monkeypatch, server.endpoint_url)
    path = aws_config(tmp_path, server.endpoint_url, pa=user_key(A), broken="false")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    factory = SessionFactory()

    creds = factory.account_credentials([role_arn(C)], profile="pa")
    # the first hop signs with the profile's credentials: a profile that gives none fails it
    with pytest.raises(AWSError, match=f"cannot assume role {role_arn(C)}: .*process"):
        factory.account_credentials([role_arn(C)], profile="broken")

    assert creds is not None and creds.token  # assumed: temporary credentials
    assert factory.account_credentials([role_arn(C)]) is not None  # ambient: as before


def test_an_unknown_profile_is_a_config_error_naming_where_it_was_given(
    server: EmulatorServer, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_boto3_at(monkeypatch, server.endpoint_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config(tmp_path, server.endpoint_url)))

    with pytest.raises(ConfigError, match=r"^--profile: the AWS profile 'nope' is not in "):
        _ = SessionFactory(profile="nope").ambient
    with pytest.raises(ConfigError, match=r"^accounts\[b\]\.profile: the AWS profile 'nope'"):
        SessionFactory().account_credentials([], profile="nope", where="accounts[b].profile")
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(ConfigError, match=r"^AWS_PROFILE: the AWS profile 'nope' is not in "):
        _ = SessionFactory().ambient


# --- the command line -----------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["--profile", "AWS_PROFILE"])
def test_run_with_a_global_profile_works_as_that_profiles_account(
    exporter: Exporter, emu: Emulator, server: EmulatorServer, tmp_path: Path, how: str
) -> None:
    world = sample_world(BUCKET, accounts=(B,), days=1)
    env = env_for(aws_config(tmp_path, server.endpoint_url, member=user_key(B)))
    # an entry without a role exports the ambient account: the profile's
    cfg = exporter.config(
        f'destination: {{bucket: {BUCKET}, settle: "0"}}\naccounts:\n  - name: own\n' + SELECTION
    )
    args = ("--profile", "member") if how == "--profile" else ()
    if how == "AWS_PROFILE":  # keys in the environment would win over it, as in every SDK
        env.update(AWS_PROFILE="member", AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")

    result = exporter(*args, "run", "--config", str(cfg), **env)

    assert result.code == 0, result.output
    assert_complete(world, "logs", [B], groups=GROUPS)
    assert {t.account_id for t in emu.tasks} == {B}


def test_run_with_per_account_profiles_archives_each_account(
    exporter: Exporter, emu: Emulator, server: EmulatorServer, tmp_path: Path
) -> None:
    world = sample_world(BUCKET, accounts=(A, B, C), days=1)
    env = env_for(aws_config(tmp_path, server.endpoint_url, sso_b=user_key(B), sso_a=user_key(A)))
    cfg = exporter.config(
        f'destination: {{bucket: {BUCKET}, settle: "0"}}\n'
        "accounts:\n"
        # its own profile, no role to assume (SSO users)
        "  - name: b\n    profile: sso_b\n"
        + SELECTION
        +
        # a role assumed from a profile
        f"  - name: c\n    profile: sso_a\n    role: {role_arn(C)}\n"
        + SELECTION
        +
        # the ambient credentials assume the role, as before
        f"  - name: a\n    role: {role_arn(A)}\n"
        + SELECTION
    )

    validate = exporter("validate", "--config", str(cfg), **env)
    policy = exporter("policy", "--config", str(cfg), "--only", "member", "--account", "b", **env)
    check = exporter("check", "--config", str(cfg), **env)
    result = exporter("run", "--config", str(cfg), **env)

    checked = " ".join(check.stdout.split())
    assert f"profile sso_b (account {B})" in checked, check.output  # asked of STS as the profile
    assert f"assumed {role_arn(C)} from profile sso_a (account {C})" in checked, check.output
    assert validate.code == 0, validate.output
    assert "(profile sso_b)" in validate.stdout and "profile sso_b" in validate.stdout
    assert f"profile sso_a -> {role_arn(C)}" in validate.stdout
    assert policy.code == 0, policy.output
    assert f"arn:aws:s3:::{BUCKET}/logs/{B}/*" in policy.stdout  # the profile's account
    assert result.code == 0, result.output
    assert_complete(world, "logs", [A, B, C], groups=GROUPS)


@pytest.mark.parametrize("where", ["global", "account"])
def test_an_unknown_profile_is_one_line_and_exit_2(
    exporter: Exporter, emu: Emulator, server: EmulatorServer, tmp_path: Path, where: str
) -> None:
    sample_world(BUCKET, accounts=(A,), days=1)
    env = env_for(aws_config(tmp_path, server.endpoint_url, known=user_key(A)))
    profile = "    profile: nope\n" if where == "account" else ""
    cfg = exporter.config(
        f'destination: {{bucket: {BUCKET}, settle: "0"}}\naccounts:\n  - name: b\n'
        + profile
        + SELECTION
    )
    args = ("--profile", "nope") if where == "global" else ()

    for command in ("run", "check", "validate"):
        result = exporter(*args, command, "--config", str(cfg), **env)

        assert result.code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.output
        given = "--profile" if where == "global" else "accounts[b].profile"
        assert lines[0].startswith(f"log-exporter: error: {given}: the AWS profile 'nope' is not")
    assert emu.tasks == []
