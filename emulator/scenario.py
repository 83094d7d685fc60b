"""Sample worlds for the emulator: accounts, log groups and events, with the archive they should
produce. Shared by the end-to-end tests, `make demo` and the benchmark."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from . import seed
from .seed import ArchivedEvent

DAY_MS = 86_400_000
ARCHIVE_ACCOUNT = seed.DEFAULT_ACCOUNT  # the ambient credentials' account owns the bucket
REGION = "us-east-1"


def day_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def role_arn(account_id: str, name: str = "LogExporter") -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


@dataclass(frozen=True)
class Event:
    account_id: str
    group: str
    stream: str
    timestamp_ms: int
    message: str


@dataclass
class World:
    """What was seeded, to compare an archive with, event by event."""

    bucket: str
    region: str = REGION
    events: list[Event] = field(default_factory=list)

    def add(
        self, account_id: str, group: str, stream: str, items: Iterable[tuple[int, str]]
    ) -> None:
        items = list(items)
        seed.put_events(account_id, self.region, group, stream, items)
        self.events.extend(Event(account_id, group, stream, ts, msg) for ts, msg in items)

    def expected(
        self, groups: Sequence[str] | None = None, accounts: Sequence[str] | None = None
    ) -> Counter[tuple[str, str, str, int, str]]:
        """(account, group key, stream, timestamp, message) of every seeded event in scope."""
        return Counter(
            (e.account_id, e.group.lstrip("/"), e.stream, e.timestamp_ms, e.message)
            for e in self.events
            if (groups is None or e.group in groups)
            and (accounts is None or e.account_id in accounts)
        )


def archived(
    bucket: str, prefix: str = ""
) -> tuple[Counter[tuple[str, str, str, int, str]], list[ArchivedEvent]]:
    """The archive as a multiset like World.expected, and the raw events with their keys."""
    events = seed.read_archive(bucket, prefix)
    return (
        Counter((e.account_id, e.group, e.stream, e.timestamp_ms, e.message) for e in events),
        events,
    )


def misplaced(events: Iterable[ArchivedEvent]) -> list[ArchivedEvent]:
    """Events whose key's day folder is not their own UTC day."""
    return [
        e
        for e in events
        if e.day != datetime.fromtimestamp(e.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d")
    ]


def edge_events(d: date, tag: str) -> list[tuple[int, str]]:
    """Events on both edges of UTC day `d` and in its middle."""
    start = day_ms(d)
    return [
        (start, f"{tag} first-ms {d}"),
        (start + 1, f"{tag} second-ms {d}"),
        (start + 12 * 3_600_000, f"{tag} noon {d}"),
        (start + DAY_MS - 60_000 + 30_000, f"{tag} last-minute {d}"),
        (start + DAY_MS - 1, f"{tag} last-ms {d}"),
    ]


def sample_world(
    bucket: str = "custodian-log-archive",
    *,
    accounts: Sequence[str] = ("111111111111", "222222222222"),
    days: int = 3,
    today: date | None = None,
    region: str = REGION,
) -> World:
    """Two accounts, a few groups (Lambda-style nested streams too), `days` days of events ending
    yesterday (UTC), events on both edges of every day, plus groups that must not be exported."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days)
    seed.create_bucket(bucket, region, ARCHIVE_ACCOUNT)
    world = World(bucket, region)
    for n, account in enumerate(accounts):
        created = day_ms(first) + 3_600_000  # created during the first day, 01:00
        for group in ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs"):
            seed.create_group(account, region, group, created)
            for i in range(days):
                d = first + timedelta(days=i)
                stream = f"{d:%Y/%m/%d}/[$LATEST]{n}{i}abc" if "lambda" in group else "eni-0abc-all"
                world.add(account, group, stream, edge_events(d, f"{account}{group}"))
        # an excluded group, a non-matching group and a group without streams
        for group in ("/aws/lambda/api-test", "/aws/ecs/other"):
            seed.create_group(account, region, group, created)
            seed.put_events(account, region, group, "s", edge_events(first, group))
        seed.create_group(account, region, "/aws/lambda/idle", created)
    return world


# the sample world's groups as a config selects them (the excluded and other groups left out)
SAMPLE_SELECTION = (
    "groups:",
    '  - "/aws/lambda/*"',
    '  - "re:vpc-flow-.*"',
    "exclude:",
    '  - "*-test"',
)


def config_yaml(
    bucket: str,
    accounts: Sequence[str],
    *,
    prefix: str = "logs",
    settle: str = "0",
    roles: dict[str, list[str]] | None = None,
    extra_account_lines: str = "",
) -> str:
    """A config for the sample world: Lambda groups by glob, VPC logs by regex, tests excluded."""
    lines = [
        "destination:",
        f"  bucket: {bucket}",
        f"  prefix: {prefix}",
        f'  settle: "{settle}"',
        "accounts:",
    ]
    for account in accounts:
        chain = (roles or {}).get(account, [role_arn(account)])
        lines += [f"  - name: acct-{account}", "    role:"]
        lines += [f'      - "{arn}"' for arn in chain]
        lines += [
            f"    regions: [{REGION}]",
            *(f"    {line}" for line in SAMPLE_SELECTION),
        ]
        if extra_account_lines:
            lines += [f"    {line}" for line in extra_account_lines.splitlines()]
    return "\n".join(lines) + "\n"


def organization_yaml(bucket: str, ous: Sequence[str], *, prefix: str = "logs") -> str:
    """A config whose accounts are discovered in these OUs: the sample world's groups, accounts
    tagged `log-archive: yes`, sandboxes left out."""
    return (
        "\n".join(
            [
                "destination:",
                f"  bucket: {bucket}",
                f"  prefix: {prefix}",
                '  settle: "0"',
                "organization:",
                '  role: "arn:aws:iam::{account_id}:role/LogExporterMember"',
                f"  regions: [{REGION}]",
                *(f"  {line}" for line in SAMPLE_SELECTION),
                f"  ous: [{', '.join(ous)}]",
                '  exclude_accounts: ["sandbox-*"]',
                '  tags: {log-archive: "yes"}',
            ]
        )
        + "\n"
    )


def client_env(endpoint_url: str, **extra: str) -> dict[str, str]:
    """Environment for a `log-exporter` process talking to the emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("TZ",)}
    env.update(
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env
