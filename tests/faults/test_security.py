"""Security: no secret (keys, session tokens, ExternalId, the config's contents) in any log line
or error; every legal log group name maps to a safe archive key; unsafe prefixes are refused;
the IAM policies the project ships grant no `*` action."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.sts.models import sts_backends

from emulator import Emulator, seed
from emulator.scenario import REGION, config_yaml, day_ms, edge_events, role_arn
from log_exporter.core.config import parse_config
from log_exporter.core.policy import Target, bucket_policy, member_role_policy, runner_policy
from log_exporter.core.windows import day_window, destination_prefix, group_key

from .conftest import Exporter, account_ids, seed_world

ROOT = Path(__file__).resolve().parents[2]
AMBIENT = {
    "AWS_ACCESS_KEY_ID": "AKIAAMBIENT0EXAMPLE1",
    "AWS_SECRET_ACCESS_KEY": "ambient-secret-Zq8xW3pL",
    "AWS_SESSION_TOKEN": "ambient-session-token-Yt5pR2",
}
EXTERNAL_ID = "ext-id-s3cr3t-9Kd"
CONFIG_MARKER = "config-comment-marker-7Hq"
UNSAFE = re.compile(r"(^|/)(\.{1,2})?(/|$)")  # a leading '/', an empty, '.' or '..' segment


def _issued_secrets() -> set[str]:
    """Every secret key and session token moto's STS handed out in this process."""
    out: set[str] = set()
    for by_region in list(sts_backends.values()):
        for backend in list(by_region.values()):
            for role in backend.assumed_roles:
                out |= {role.secret_access_key, role.session_token}
    return out


def test_no_credentials_tokens_or_config_in_logs_or_errors(
    emu: Emulator, exporter: Exporter
) -> None:
    good, denied, hub = account_ids(990_100_000_000, 3)
    seed_world("secret-archive", [good, denied], days=2)
    chains = {
        good: [role_arn(hub, "Hub"), role_arn(good)],
        denied: [role_arn(hub, "Hub"), role_arn(denied)],
    }
    text = config_yaml(
        "secret-archive",
        [good, denied],
        roles=chains,
        extra_account_lines="external_id: " + EXTERNAL_ID,
    )
    cfg = exporter.config(f"# {CONFIG_MARKER}\n{text}")
    emu.deny_role(role_arn(denied))
    emu.fail_tasks(1, account_id=good, message="Export failed: injected")
    emu.throttle(0.1, services=("logs", "s3"), seed=3)
    emu.credential_lifetime(2)
    emu.task_timing(base=0.3)

    outputs: list[str] = []
    for args in (
        ["-v", "run", "--config", str(cfg)],
        ["--log-format", "json", "-v", "run", "--config", str(cfg)],
        ["--debug", "run", "--config", str(cfg), "--account", f"acct-{denied}"],
    ):
        result = exporter(*args, **AMBIENT)
        assert result.code == 1, result.output  # the denied account fails, loudly
        assert role_arn(denied) in result.output
        outputs.append(result.output)
    bad = exporter.config(f"# {CONFIG_MARKER}\n{text}    password: {EXTERNAL_ID}-pw\n", "bad.yml")
    result = exporter("run", "--config", str(bad), **AMBIENT)
    assert result.code == 2 and "unknown key" in result.stderr
    outputs.append(result.output)
    broken = exporter.config(f"# {CONFIG_MARKER}\n{text}\n  - {EXTERNAL_ID}: [\n", "broken.yml")
    result = exporter("--debug", "run", "--config", str(broken), **AMBIENT)
    assert result.code != 0 and "YAML syntax error" in result.stderr  # --debug: a traceback
    outputs.append(result.output)

    secrets = {*AMBIENT.values(), EXTERNAL_ID, CONFIG_MARKER, *_issued_secrets()}
    secrets.discard(AMBIENT["AWS_ACCESS_KEY_ID"])  # a key id is not a secret; checked anyway below
    assert len(_issued_secrets()) >= 4  # the chain's hops were assumed (and refreshed)
    for out in outputs:
        leaked = sorted(s for s in secrets if s and s in out)
        assert not leaked, f"secrets in the output: {leaked}"
        assert AMBIENT["AWS_ACCESS_KEY_ID"] not in out
        assert "accounts:" not in out and "destination:" not in out  # no config dump


LEGAL = ".-_/#ABCxyz0189"
LONG_NAME = "/" + ("Ab9.-_#/" * 64)[:511]  # 512 characters, every legal kind, ends with '/'
ODD_NAMES = [
    "/aws/lambda/api",
    "vpc-flow-logs",
    LONG_NAME,
    "/a.b-c_d/e#f",
    "/../up",
    "/./here",
    "/a//b/",
    "//lead",
    "#",
    "/#",
    "/",
    "..",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_every_legal_group_name_maps_to_a_safe_key(name: str) -> None:
    assert re.fullmatch(r"[.\-_/#A-Za-z0-9]{1,512}", name)
    prefix = destination_prefix("logs", "111111111111", name, day_window(datetime(2026, 11, 1)))
    assert not UNSAFE.search(prefix), prefix
    assert prefix.startswith("logs/111111111111/") and prefix.endswith("/2026/11/01")
    # room for what AWS appends: /<task id>/<stream of 100 characters>/000000.gz
    assert len((prefix + "/" + "x" * 36 + "/" + "s" * 100 + "/000000.gz").encode()) <= 1024


def test_distinct_group_names_get_distinct_folders() -> None:
    """Only `x` and `/x` share a folder (the layout drops the leading '/')."""
    names = [*ODD_NAMES, "/vpc-flow-logs/", "a/#/b", "/#.", "a/b", "a/./b", "a/#./b"]
    for a in names:
        for b in names:
            if a != b and a.removeprefix("/") != b.removeprefix("/"):
                assert group_key(a) != group_key(b), (a, b)


def test_odd_group_names_are_archived_under_safe_keys(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(990_200_000_000, 1)
    day = datetime.now(UTC).date() - timedelta(days=1)
    seed.create_bucket("odd-archive", REGION)
    names = ["/a.b-c_d/e#f", LONG_NAME, "/../up", "/a//b/", "//lead", "#"]
    expected: Counter[tuple[str, int, str]] = Counter()
    for i, name in enumerate(names):
        seed.create_group(account, REGION, name, day_ms(day))
        events = edge_events(day, f"g{i}")
        seed.put_events(account, REGION, name, "stream", events)
        expected.update((name, ts, msg) for ts, msg in events)
    text = config_yaml("odd-archive", [account], prefix="odd")
    text = text.replace('      - "/aws/lambda/*"\n      - "re:vpc-flow-.*"', '      - "*"')
    cfg = exporter.config(text)

    result = exporter("run", "--config", str(cfg), "--start", str(day))

    assert result.code == 0, result.output
    by_key = {group_key(n): n for n in names}
    got: Counter[tuple[str, int, str]] = Counter()
    for e in seed.read_archive("odd-archive", "odd/"):
        assert not UNSAFE.search(e.key), e.key
        assert len(e.key.encode()) <= 1024
        got[(by_key[e.group], e.timestamp_ms, e.message)] += 1
    assert got == expected


@pytest.mark.parametrize("prefix", ["a/../b", "/abs", "a//b", "a/", "./a"])
def test_unsafe_prefixes_are_refused(emu: Emulator, exporter: Exporter, prefix: str) -> None:
    (account,) = account_ids(990_300_000_000, 1)
    text = config_yaml("refuse-archive", [account], prefix="ok").replace(
        "  prefix: ok", f'  prefix: "{prefix}"'
    )
    from_config = exporter("run", "--config", str(exporter.config(text)))
    from_option = exporter(
        "export", "--group", "/g", "--bucket", "refuse-archive", "--prefix", prefix
    )

    for result in (from_config, from_option):
        assert result.code == 2, result.output
        assert f"prefix {prefix!r}" in result.stderr
        assert "Traceback" not in result.output
    assert "destination.prefix" in from_config.stderr and "--prefix" in from_option.stderr
    assert not emu.calls  # refused before any AWS call


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: `!Ref`, `!Sub` and friends become plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def _policies(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every policy document (a mapping with `Statement`) inside a parsed document."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "Statement" in node:
            found.append((where, node))
        for k, v in node.items():
            found += _policies(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _policies(v, f"{where}[{i}]")
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions(value: Any) -> list[Any]:
    """A statement's actions, with both branches of an `!If [condition, a, b]` among them taken
    (read as a plain list; `!Ref AWS::NoValue`, no action, dropped)."""
    out: list[Any] = []
    for item in _as_list(value):
        if isinstance(item, list):
            out += [a for a in _actions(item[1:]) if a != "AWS::NoValue"]
        else:
            out.append(item)
    return out


def _statements(value: Any) -> list[dict[str, Any]]:
    """Statements, with both branches of a CloudFormation `!If [condition, a, b]` taken."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [st for v in value for st in _statements(v)]
    return []  # a condition's name, AWS::NoValue


def test_shipped_iam_policies_grant_no_star_action() -> None:
    documents: list[tuple[str, Any]] = []
    for path in [ROOT / "template.yaml", *sorted((ROOT / "deploy").glob("*.y*ml"))]:
        if path.exists():
            documents.append((path.name, yaml.load(path.read_text(), _CloudFormationLoader)))
    config = parse_config(
        {
            "destination": {"bucket": "archive-bucket", "prefix": "logs"},
            "accounts": [
                {
                    "name": "a",
                    "role": [role_arn("111111111111", "Hub"), role_arn("222222222222")],
                    "groups": ["/aws/lambda/*", "re:vpc-.*"],
                    "regions": [REGION, "eu-west-1"],
                }
            ],
        }
    )
    account = config.accounts[0]
    documents += [
        (
            "policy.bucket_policy",
            bucket_policy("archive-bucket", "logs", [Target("2" * 12, REGION)]),
        ),
        (
            "policy.member_role_policy",
            member_role_policy(account, "2" * 12, [REGION, "eu-west-1"], "archive-bucket", "logs"),
        ),
        ("policy.runner_policy", runner_policy(config)),
    ]
    policies = [p for name, doc in documents for p in _policies(doc, name)]
    assert {name.split(".")[0] for name, _ in documents} >= {"policy"}
    assert len(policies) >= 3, [w for w, _ in policies]
    checked = 0
    for where, policy in policies:
        for st in _statements(policy["Statement"]):
            if st.get("Effect") != "Allow":
                continue
            assert "NotAction" not in st, f"{where}: Allow with NotAction grants nearly everything"
            for action in _actions(st["Action"]):
                assert isinstance(action, str) and "*" not in action, f"{where}: {action!r}"
                assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), f"{where}: {action!r}"
                checked += 1
    assert checked >= 10
