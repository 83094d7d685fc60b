"""Every region in one config: `destination.bucket` names a bucket per region (a map, or a name
holding `{region}`); each lane exports to, keeps its state in, and is read back from the bucket
of its own region; a region without a bucket is reported, never dropped."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from emulator import Emulator
from emulator.scenario import REGION, World, day_ms, role_arn, sample_world
from tests.faults.conftest import assert_complete, read_state

from .conftest import Exporter

A, B = "111111111111", "222222222222"
OTHER = "eu-west-1"
BUCKETS = {REGION: "regions-archive-us-east-1", OTHER: "regions-archive-eu-west-1"}
GROUPS = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
BUCKET = BUCKETS[REGION]


def config_text(bucket: Any, accounts: dict[str, list[str]]) -> str:
    data = {
        "destination": {"bucket": bucket, "prefix": "logs", "settle": "0"},
        "accounts": [
            {
                "name": f"acct-{account}",
                "role": role_arn(account),
                "regions": regions,
                "groups": ["/aws/lambda/*", "re:vpc-flow-.*"],
                "exclude": ["*-test"],
            }
            for account, regions in accounts.items()
        ],
    }
    return yaml.safe_dump(data, sort_keys=False)


YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)
EU_ONLY = "an event of eu-west-1 only"


def two_regions(accounts: tuple[str, ...] = (A,)) -> dict[str, World]:
    """The sample world in both regions, each with its archive bucket in that region, and an
    event only the second region has."""
    worlds = {
        region: sample_world(bucket, accounts=accounts, days=2, region=region)
        for region, bucket in BUCKETS.items()
    }
    stream = f"{YESTERDAY:%Y/%m/%d}/[$LATEST]eu"
    worlds[OTHER].add(accounts[0], "/aws/lambda/api", stream, [(day_ms(YESTERDAY) + 5, EU_ONLY)])
    return worlds


@pytest.mark.parametrize(
    "bucket",
    [BUCKETS, "regions-archive-{region}"],
    ids=["map", "template"],
)
def test_run_archives_each_region_into_its_own_bucket_exactly_once(
    exporter: Exporter, emu: Emulator, bucket: Any
) -> None:
    worlds = two_regions()
    cfg = exporter.config(config_text(bucket, {A: [REGION, OTHER]}))

    first = exporter("run", "--config", str(cfg))
    again = exporter("run", "--config", str(cfg))

    assert first.code == 0, first.output
    assert again.code == 0, again.output
    for region, world in worlds.items():
        # every event of the region in its own bucket, once; none of the other region's
        assert_complete(world, "logs", [A], groups=GROUPS)
        state = read_state(BUCKETS[region], "logs", A, region)
        assert set(state["covered"]) >= set(GROUPS)
    tasks = {(t.region, t.destination) for t in emu.tasks}
    assert tasks == {(REGION, BUCKETS[REGION]), (OTHER, BUCKETS[OTHER])}
    # one task per window and region (assert_complete's `emu` check counts across regions)
    windows = Counter((t.region, t.group, t.from_ms) for t in emu.tasks)
    assert len(windows) == 2 * 2 * len(GROUPS)  # 2 regions, 2 days
    assert set(windows.values()) == {1}  # the second run created none

    status = exporter("status", "--config", str(cfg), "--format", "json")
    assert status.code == 0, status.output
    lanes = {lane["region"]: lane for lane in json.loads(status.stdout)["lanes"]}
    assert set(lanes) == {REGION, OTHER}
    for lane in lanes.values():  # each lane's state read from its own bucket
        days = {g["group"]: g["archived_days"] for g in lane["groups"] if g["group"] in GROUPS}
        assert days == dict.fromkeys(GROUPS, 2), lane

    sync = exporter("sync", "--config", str(cfg), "--dry-run")
    assert sync.code == 0, sync.output
    for region in (REGION, OTHER):  # each lane's folders listed in its own bucket
        assert f"acct-{A}/{region} ({A}): 6 task folders in 3 groups" in sync.stdout, sync.output
    for command in ("stats", "plan"):  # each lane read with its own bucket
        result = exporter(command, "--config", str(cfg), "--format", "json")
        assert result.code == 0, result.output
        assert {lane["region"] for lane in json.loads(result.stdout)["lanes"]} == {REGION, OTHER}


def test_cat_reads_the_bucket_of_the_region_it_is_given(exporter: Exporter, emu: Emulator) -> None:
    two_regions()
    cfg = exporter.config(config_text(BUCKETS, {A: [REGION, OTHER]}))
    assert exporter("run", "--config", str(cfg)).code == 0

    def cat(*more: str) -> tuple[int, str]:
        result = exporter(
            "cat", "--config", str(cfg), "--account", f"acct-{A}", "--group", "/aws/lambda/api",
            "--start", f"{YESTERDAY}", "--end", f"{YESTERDAY + timedelta(days=1)}", *more,
        )  # fmt: skip
        return result.code, result.output

    eu_code, eu = cat("--region", OTHER)
    us_code, us = cat("--region", REGION)
    either_code, either = cat()

    assert eu_code == us_code == 0, eu + us
    assert EU_ONLY in eu and EU_ONLY not in us
    assert f"{A}/aws/lambda/api noon {YESTERDAY}" in us  # the us-east-1 bucket's own events
    assert either_code == 2, either
    assert "names a bucket per region (" in either and "give --region" in either


def test_a_region_without_a_bucket_is_reported_by_validate_check_and_run(
    exporter: Exporter, emu: Emulator
) -> None:
    worlds = two_regions()
    cfg = exporter.config(config_text({REGION: BUCKET}, {A: [REGION, OTHER]}))
    why = f"no archive bucket for {OTHER}: destination.bucket names buckets for {REGION} only"

    validate = exporter("validate", "--config", str(cfg))
    check = exporter("check", "--config", str(cfg))
    run = exporter("run", "--config", str(cfg))

    assert validate.code == 2, validate.output
    assert f"accounts[acct-{A}] runs in {OTHER}: {why}" in validate.stderr
    assert check.code == 1, check.output
    assert why in " ".join(check.stdout.split()), check.output
    assert run.code == 1, run.output
    assert why in " ".join(run.output.split()), run.output
    assert_complete(worlds[REGION], "logs", [A], groups=GROUPS, emu=emu)  # the others go on
    assert {t.region for t in emu.tasks} == {REGION}


def policies(text: str) -> dict[str, dict[str, Any]]:
    """`policy`'s documents by title."""
    out: dict[str, dict[str, Any]] = {}
    for block in ("\n" + text).split("\n# ")[1:]:
        title, _, body = block.partition("\n")
        out[title] = json.loads(body)
    return out


def test_policy_prints_a_bucket_policy_per_bucket_for_the_accounts_exporting_to_it(
    exporter: Exporter, emu: Emulator
) -> None:
    cfg = exporter.config(config_text(BUCKETS, {A: [REGION, OTHER], B: [REGION]}))

    result = exporter("policy", "--config", str(cfg))
    only = exporter("policy", "--config", str(cfg), "--only", "bucket")

    assert result.code == only.code == 0, result.output
    docs = policies(result.stdout)
    for region, bucket in BUCKETS.items():
        title = next(t for t in docs if t.startswith("Archive bucket policy: ") and bucket in t)
        text = json.dumps(docs[title])
        resources = {r for st in docs[title]["Statement"] for r in _list(st.get("Resource", []))}
        assert all(f":::{bucket}" in r for r in resources), resources
        assert A in text
        assert (B in text) == (region == REGION)  # B exports only in us-east-1
    assert len([t for t in docs if t.startswith("Archive bucket policy")]) == 2
    member = next(
        v for t, v in docs.items() if t.startswith(f"Member role policy of account acct-{A}")
    )
    writes = next(s for s in member["Statement"] if s["Sid"] == "WriteExportsToArchive")
    assert sorted(_list(writes["Resource"])) == sorted(
        f"arn:aws:s3:::{b}/logs/{A}/*" for b in BUCKETS.values()
    )
    assert len(policies(only.stdout)) == 2


def _list(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v)
