"""A lane state object that cannot be read (not JSON, not the shape of a state) or that a newer
log-exporter wrote: that lane fails alone with one line naming the object, which nothing writes
over; the other lanes archive; `sync --account` rebuilds a corrupt one (keeping its bytes aside)
but never a newer one."""

from __future__ import annotations

import json

from moto.s3.models import s3_backends

from emulator import Emulator
from emulator.scenario import config_yaml

from .conftest import (
    GROUPS,
    LEASE,
    Exporter,
    account_ids,
    assert_complete,
    covered_days,
    read_state,
    seed_world,
    tasks_per_window,
)

GARBAGE = b"\x1f\x8b not a state {"


def _backend(bucket: str) -> object:
    partition, owner = s3_backends.bucket_accounts[bucket]
    return s3_backends[owner][partition]


def _key(prefix: str, account: str) -> str:
    return f"{prefix}/.log-exporter/{account}/us-east-1.json"


def _put(bucket: str, key: str, body: bytes) -> None:
    _backend(bucket).put_object(bucket, key, body)  # type: ignore[attr-defined]


def _get(bucket: str, key: str) -> bytes | None:
    obj = _backend(bucket).get_bucket(bucket).keys.get(key)  # type: ignore[attr-defined]
    return None if obj is None else bytes(obj.value)


def test_a_garbage_state_fails_its_own_lane_only(emu: Emulator, exporter: Exporter) -> None:
    bucket, prefix = "corrupt-archive", "cs"
    bad, good = account_ids(990_000_000_000, 2)
    world = seed_world(bucket, [bad, good], days=3)
    _put(bucket, _key(prefix, bad), GARBAGE)
    cfg = exporter.config(config_yaml(bucket, [bad, good], prefix=prefix))

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert result.code == 1, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    where = f"s3://{bucket}/{_key(prefix, bad)}"
    flat = " ".join(result.stdout.split())
    assert f"{where}: not a lane state (not JSON" in flat, result.output
    assert f"`log-exporter sync --config FILE --account acct-{bad}` rebuilds it" in flat
    assert _get(bucket, _key(prefix, bad)) == GARBAGE  # nothing written over it
    assert not [t for t in emu.tasks if t.account_id == bad]
    assert_complete(world, prefix, [good], emu=emu)


def test_a_state_of_a_newer_version_is_refused_and_left_alone(
    emu: Emulator, exporter: Exporter
) -> None:
    bucket, prefix = "newer-archive", "nv"
    newer, good = account_ids(991_000_000_000, 2)
    world = seed_world(bucket, [newer, good], days=3)
    body = json.dumps(
        {"version": 2, "account_id": newer, "region": "us-east-1", "coverage": {"new": "shape"}}
    ).encode()
    _put(bucket, _key(prefix, newer), body)
    cfg = exporter.config(config_yaml(bucket, [newer, good], prefix=prefix))

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert result.code == 1, result.output
    flat = " ".join(result.stdout.split())
    assert f"s3://{bucket}/{_key(prefix, newer)}: version 2 was written by a newer" in flat
    assert "upgrade log-exporter" in flat
    assert _get(bucket, _key(prefix, newer)) == body
    assert not [t for t in emu.tasks if t.account_id == newer]
    assert_complete(world, prefix, [good], emu=emu)

    sync = exporter("sync", "--config", str(cfg), "--account", f"acct-{newer}")
    assert sync.code == 1, sync.output  # never rebuilt in the older shape
    assert "newer log-exporter" in " ".join(sync.stdout.split())
    assert _get(bucket, _key(prefix, newer)) == body


def test_sync_account_rebuilds_a_corrupt_state_keeping_its_bytes(
    emu: Emulator, exporter: Exporter
) -> None:
    bucket, prefix = "rebuild-archive", "rb"
    bad, good = account_ids(992_000_000_000, 2)
    world = seed_world(bucket, [bad, good], days=3)
    cfg = exporter.config(config_yaml(bucket, [bad, good], prefix=prefix))
    first = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    assert first.code == 0, first.output
    before = len(emu.tasks)
    _put(bucket, _key(prefix, bad), GARBAGE)

    plain = exporter("sync", "--config", str(cfg))  # without --account: refused for that lane

    assert plain.code == 1, plain.output
    assert f"sync --config FILE --account acct-{bad}`" in " ".join(plain.stdout.split())
    assert _get(bucket, _key(prefix, bad)) == GARBAGE

    sync = exporter("sync", "--config", str(cfg), "--account", f"acct-{bad}")

    assert sync.code == 0, sync.output
    asides = [
        k
        for k in _backend(bucket).get_bucket(bucket).keys  # type: ignore[attr-defined]
        if k.startswith(_key(prefix, bad) + ".corrupt-")
    ]
    assert len(asides) == 1 and _get(bucket, asides[0]) == GARBAGE
    assert asides[0] in " ".join(sync.stdout.split())
    state = read_state(bucket, prefix, bad)
    assert all(covered_days(state, g) == 3 for g in GROUPS)

    again = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert again.code == 0, again.output
    assert len(emu.tasks) == before  # archived exactly once
    assert_complete(world, prefix, [bad, good], emu=emu)
    assert set(tasks_per_window(emu, [bad, good]).values()) == {1}
