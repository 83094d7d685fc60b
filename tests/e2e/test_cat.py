"""`log-exporter cat` end to end: archives written by real runs (the CLI process, or the engine
in-process with a chosen clock for inner-day pieces and hourly archives), then the real `cat`
process against the emulator, its output compared with the seeded events."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.scenario import ARCHIVE_ACCOUNT, REGION, World, role_arn
from emulator.tasks import format_line
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, iso_ms, to_ms

from .conftest import Exporter
from .test_inner_day import Clock, make_config, run_at

A = "111111111111"
BUCKET = "custodian-log-archive"  # the same as test_inner_day's, whose helpers run the engine
API = "/aws/lambda/api"
H, M = MS_PER_HOUR, 60_000
STREAMS = ("2026/11/01/[$LATEST]aaa", "2026/11/01/[$LATEST]bbb", "2026/11/01/[$LATEST]ccc")


def config_text(period: str = "day") -> str:
    return (
        f"destination:\n  bucket: {BUCKET}\n  prefix: logs\n  period: {period}\n"
        '  settle: "0"\n'
        "accounts:\n"
        f"  - name: prod\n    role: {role_arn(A)}\n    regions: [{REGION}]\n"
        '    groups: ["/aws/lambda/*"]\n'
    )


def seed_days(world: World, d0: int, days: int, per_stream: int, *, skip_day: int = -1) -> None:
    """`per_stream` events a day in each stream, at distinct random instants, both edges of each
    day included; no event on day `skip_day` (a day the run finds empty)."""
    rng = random.Random(7)
    for n, stream in enumerate(STREAMS):
        items: list[tuple[int, str]] = []
        for day in range(days):
            if day == skip_day:
                continue
            start = d0 + day * MS_PER_DAY
            stamps = {start + n, start + MS_PER_DAY - 1 - n}
            while len(stamps) < per_stream:
                stamps.add(start + rng.randrange(MS_PER_DAY))
            kinds = ("ok", "ERROR timeout", "noon", "ok")
            items += [(ts, f"{kinds[ts % 4]} {stream[-3:]} {ts}") for ts in stamps]
        world.add(A, API, stream, items)


def expected_lines(world: World, start: int, end: int) -> list[str]:
    events = sorted(
        (e.timestamp_ms, e.stream, e.message)
        for e in world.events
        if e.group == API and start <= e.timestamp_ms < end
    )
    return [format_line(ts, msg) for ts, _, msg in events]


def shuffle_objects(prefix: str) -> int:
    """Rewrite each exported object with its lines in random order: AWS does not sort them."""
    partition, owner = s3_backends.bucket_accounts[BUCKET]
    backend = s3_backends[owner][partition]
    rng = random.Random(3)
    n = 0
    for key in [k for k in list(backend.get_bucket(BUCKET).keys) if k.startswith(prefix)]:
        if not key.endswith(".gz"):
            continue
        lines = gzip.decompress(backend.get_object(BUCKET, key).value).decode().splitlines()
        rng.shuffle(lines)
        backend.put_object(BUCKET, key, gzip.compress(("\n".join(lines) + "\n").encode()))
        n += 1
    return n


def cat(exporter: Exporter, cfg: str, start: str, end: str, *more: str) -> tuple[int, str, str]:
    result = exporter(
        "cat", "--config", cfg, "--account", "prod", "--group", API, "--start", start,
        "--end", end, *more,
    )  # fmt: skip
    return result.code, result.stdout, result.stderr


def test_cat_prints_exactly_the_range_in_timestamp_order_across_days_and_streams(
    exporter: Exporter, emu: Emulator
) -> None:
    today = datetime.now(UTC).date()
    d0 = to_ms(today - timedelta(days=4))
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0)
    seed_days(world, d0, days=4, per_stream=40, skip_day=2)
    cfg = str(exporter.config(config_text()))
    assert exporter("run", "--config", cfg).code == 0
    assert shuffle_objects(f"logs/{A}/aws/lambda/api/") == 3 * 3  # 3 days with events
    calls_before = emu.calls

    # from 06:00 of the first day to 12:00 of the last: an empty day (known) in between
    start, end = d0 + 6 * H, d0 + 3 * MS_PER_DAY + 12 * H
    code, out, err = cat(exporter, cfg, iso_ms(start), iso_ms(end))

    assert code == 0, err
    assert err == ""
    want = expected_lines(world, start, end)
    assert out.splitlines() == want  # exactly start <= ts < end, in order, none twice
    assert len(want) > 100
    # days as --start/--end: the whole first day, not the last one
    code, out, _ = cat(exporter, cfg, iso_ms(d0)[:10], iso_ms(d0 + MS_PER_DAY)[:10])
    assert code == 0
    assert out.splitlines() == expected_lines(world, d0, d0 + MS_PER_DAY)
    # only S3 was asked (and no CloudWatch Logs call at all)
    calls = emu.calls - calls_before
    assert calls and {service for service, _ in calls} == {"s3"}, calls


def test_cat_grep_and_json(exporter: Exporter, emu: Emulator) -> None:
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=2))
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0)
    seed_days(world, d0, days=2, per_stream=30)
    cfg = str(exporter.config(config_text()))
    assert exporter("run", "--config", cfg).code == 0
    start, end = d0, d0 + 2 * MS_PER_DAY

    code, out, err = cat(exporter, cfg, iso_ms(start), iso_ms(end), "--grep", "ERROR|noon")
    assert code == 0, err
    want = [ln for ln in expected_lines(world, start, end) if "ERROR" in ln or "noon" in ln]
    assert out.splitlines() == want and 0 < len(want) < len(expected_lines(world, start, end))

    code, out, err = cat(exporter, cfg, iso_ms(start), iso_ms(end), "--format", "json")
    assert code == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    seeded = sorted(
        (e.timestamp_ms, e.stream, e.message) for e in world.events if start <= e.timestamp_ms < end
    )
    assert [(d["timestamp_ms"], d["stream"], d["message"]) for d in docs] == seeded
    assert all(d["timestamp"] == iso_ms(d["timestamp_ms"]) for d in docs)
    assert {(d["account"], d["account_id"], d["group"]) for d in docs} == {("prod", A, API)}

    # usage errors: one line, exit 2
    code, _, err = cat(exporter, cfg, iso_ms(end), iso_ms(start))
    assert code == 2 and err.startswith("log-exporter: error: --end ") and err.count("\n") == 1
    code, _, err = cat(exporter, cfg, iso_ms(start), iso_ms(end), "--grep", "(")
    assert code == 2 and "--grep '(' is not a regular expression" in err
    code, _, err = cat(exporter, cfg, "yesterday", iso_ms(end))
    assert code == 2 and "neither a day YYYY-MM-DD nor an ISO-8601 time" in err


def test_cat_reports_gaps_and_prints_the_rest(exporter: Exporter, emu: Emulator) -> None:
    today = datetime.now(UTC).date()
    d0 = to_ms(today - timedelta(days=3))
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0)
    seed_days(world, d0, days=3, per_stream=10)
    cfg = str(exporter.config(config_text()))
    assert exporter("run", "--config", cfg).code == 0
    # the second day's objects are lost (deleted by hand); today is not archived yet
    partition, owner = s3_backends.bucket_accounts[BUCKET]
    backend = s3_backends[owner][partition]
    d1 = d0 + MS_PER_DAY
    day1 = iso_ms(d1)[:10]
    folder = f"logs/{A}/aws/lambda/api/{day1.replace('-', '/')}/"
    lost = [k for k in list(backend.get_bucket(BUCKET).keys.keys()) if k.startswith(folder)]
    assert lost
    for key in lost:
        backend.delete_object(BUCKET, key)

    code, out, err = cat(exporter, cfg, iso_ms(d0)[:10], today.isoformat(), "--format", "text")
    assert code == 1
    assert err.splitlines() == [
        f"gap: {day1} has no archive, but the state records it archived (s3://{BUCKET}/{folder})"
    ]
    assert out.splitlines() == expected_lines(world, d0, d1) + expected_lines(
        world, d1 + MS_PER_DAY, d1 + 2 * MS_PER_DAY
    )

    end = today + timedelta(days=1)
    code, out, err = cat(exporter, cfg, (today - timedelta(days=1)).isoformat(), end.isoformat())
    assert code == 1
    where = f"s3://{BUCKET}/logs/{A}/aws/lambda/api/{today:%Y/%m/%d}/"
    assert err.splitlines() == [f"gap: {today} has no archive ({where})"]
    assert out.splitlines() == expected_lines(world, d0 + 2 * MS_PER_DAY, to_ms(today))


def test_cat_merges_the_task_pieces_of_a_day(
    aws_env: None, exporter: Exporter, emu: Emulator
) -> None:
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=3))
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0)
    config = make_config(settle="1h")
    clock = Clock()
    cfg = str(exporter.config(config_text()))

    def arrive(*stamps: int) -> None:
        for n, stream in enumerate(STREAMS):
            world.add(
                A, API, stream, [(ts + n, f"{stream[-3:]} at {iso_ms(ts + n)}") for ts in stamps]
            )

    arrive(d0, d0 + 3 * H, d0 + 5 * H - 10)
    run_at(config, clock, d0 + 6 * H, partial=True)  # the day up to 05:00
    arrive(d0 + 5 * H, d0 + 8 * H, d0 + 11 * H - 10)
    run_at(config, clock, d0 + 12 * H, partial=True)  # 05:00 to 11:00

    # the day is archived only up to 11:00: what is there is printed, the rest is a gap
    code, out, err = cat(exporter, cfg, iso_ms(d0)[:10], iso_ms(d0 + MS_PER_DAY)[:10])
    assert code == 1
    day = iso_ms(d0)[:10]
    folder = f"s3://{BUCKET}/logs/{A}/aws/lambda/api/{day.replace('-', '/')}/"
    assert err.splitlines() == [
        f"gap: {day} is archived only in part: 11:00:00.000..23:59:59.999 UTC not yet ({folder})"
    ]
    assert out.splitlines() == expected_lines(world, d0, d0 + 11 * H)
    # up to 11:00 is no gap
    code, out, err = cat(exporter, cfg, iso_ms(d0 + 4 * H), iso_ms(d0 + 11 * H))
    assert (code, err) == (0, "")
    assert out.splitlines() == expected_lines(world, d0 + 4 * H, d0 + 11 * H)

    arrive(d0 + 11 * H, d0 + 23 * H, d0 + MS_PER_DAY - 10)
    run_at(config, clock, d0 + MS_PER_DAY + 2 * H)  # the rest, once settled
    got = seed.read_archive(BUCKET, "logs")
    assert len({e.task_id for e in got}) == 3  # three task folders in the day's folder
    code, out, err = cat(exporter, cfg, iso_ms(d0)[:10], iso_ms(d0 + MS_PER_DAY)[:10])
    assert (code, err) == (0, "")
    assert out.splitlines() == expected_lines(world, d0, d0 + MS_PER_DAY)
    assert Counter(out.splitlines()) == Counter(format_line(e.timestamp_ms, e.message) for e in got)


def test_cat_reads_an_hourly_archive(aws_env: None, exporter: Exporter, emu: Emulator) -> None:
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=3))
    d1 = d0 + MS_PER_DAY
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0 + 20 * H)
    for n, stream in enumerate(STREAMS):
        stamps = [d0 + 20 * H + n, d0 + 22 * H + 5 * M + n, d1 - 1 - n, d1 + n, d1 + H + 7 * M]
        world.add(A, API, stream, [(ts, f"{stream[-3:]} {iso_ms(ts)}") for ts in stamps])
    config = make_config(period="hour", settle="10m")
    run_at(config, Clock(), d1 + 2 * H + 10 * M)  # hours 20..01; 21 is empty
    cfg = str(exporter.config(config_text("hour")))
    keys = {e.key.split("/")[8] for e in seed.read_archive(BUCKET, "logs")}
    assert keys == {"20", "22", "23", "00", "01"}  # hour folders

    start, end = d0 + 20 * H + 1, d1 + 2 * H
    code, out, err = cat(exporter, cfg, iso_ms(start), iso_ms(end))
    assert (code, err) == (0, "")  # hour 21 is known empty: no gap
    assert out.splitlines() == expected_lines(world, start, end)
    # from the day's start: the hours before the group was created hold nothing, no gap
    code, out, err = cat(exporter, cfg, iso_ms(d0)[:10], iso_ms(end))
    assert (code, err) == (0, "")
    assert out.splitlines() == expected_lines(world, d0, end)

    # hour 02 is not archived: a gap named by its hour
    code, out, err = cat(exporter, cfg, iso_ms(d1 + H), iso_ms(d1 + 2 * H + 30 * M))
    assert code == 1
    label = iso_ms(d1 + 2 * H)[:13]
    folder = f"s3://{BUCKET}/logs/{A}/aws/lambda/api/{label[:10].replace('-', '/')}/02/"
    assert err.splitlines() == [f"gap: {label} has no archive ({folder})"]
    assert out.splitlines() == expected_lines(world, d1 + H, d1 + 2 * H)


def test_cat_prints_what_it_read_before_a_read_error(exporter: Exporter, emu: Emulator) -> None:
    today = datetime.now(UTC).date()
    d0 = to_ms(today - timedelta(days=3))
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0)
    seed_days(world, d0, days=3, per_stream=10)
    cfg = str(exporter.config(config_text()))
    assert exporter("run", "--config", cfg).code == 0
    # an object of the last day is damaged: the first two days are printed, then the error
    partition, owner = s3_backends.bucket_accounts[BUCKET]
    backend = s3_backends[owner][partition]
    folder = f"logs/{A}/aws/lambda/api/{iso_ms(d0 + 2 * MS_PER_DAY)[:10].replace('-', '/')}/"
    bad = next(k for k in backend.get_bucket(BUCKET).keys if k.startswith(folder) and ".gz" in k)
    backend.put_object(BUCKET, bad, b"not gzip")

    code, out, err = cat(exporter, cfg, iso_ms(d0)[:10], today.isoformat())

    assert code == 1
    assert f"s3://{BUCKET}/{bad} is not a gzip object" in err and err.count("\n") == 1
    assert out.splitlines() == expected_lines(world, d0, d0 + 2 * MS_PER_DAY)


def test_cat_reads_the_neighbour_folders_of_a_c7n_archive_made_outside_utc(
    exporter: Exporter, emu: Emulator
) -> None:
    # c7n-logexporter ran in New York: its folder of D-1 holds D 00:00-04:59 UTC (review14 §3)
    from .test_c7n_migration import C7N_CONFIG, GROUPS, c7n_export, clients
    from .test_c7n_migration import seed_world as seed_c7n_world

    today = datetime.now(UTC).date()
    first = today - timedelta(days=4)
    world = seed_c7n_world(first, 4)
    s3, logs = clients(exporter.endpoint_url)
    for g in GROUPS:
        c7n_export(s3, logs, g, [first + timedelta(days=i) for i in range(3)], -5 * H)
    cfg = exporter.config(C7N_CONFIG)
    assert exporter("sync", "--config", str(cfg)).code == 0
    assert exporter("run", "--config", str(cfg), "--settle", "0").code == 0

    for n in range(4):  # c7n's days, the day its last window reaches into, and after
        day = first + timedelta(days=n)
        s, e = to_ms(day), to_ms(day) + MS_PER_DAY
        result = exporter(
            "cat", "--config", str(cfg), "--account", "custodian-demo", "--group",
            "vpc-flow-logs", "--start", str(day), "--end", str(day + timedelta(days=1)),
        )  # fmt: skip
        want = sorted(
            (ev.timestamp_ms, ev.message)
            for ev in world.events
            if ev.group == "vpc-flow-logs" and s <= ev.timestamp_ms < e
        )
        assert (result.code, result.stderr) == (0, ""), (day, result.output)
        assert result.stdout.splitlines() == [format_line(t, m) for t, m in want], day
