"""The benchmark's worlds: how many accounts, groups and days, how long a task takes, and how
each is seeded into the emulator (events, and for the rerun an archive state that covers it all)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from emulator import seed
from emulator.scenario import ARCHIVE_ACCOUNT, REGION, day_ms, role_arn
from log_exporter.core.state import LaneState, state_key
from log_exporter.core.windows import Intervals

BUCKET = "bench-archive"
PREFIX = "logs"
FIRST_ACCOUNT = 300_000_000_000
# the regions of a scenario with more than one, each with its own bucket (see bucket_of)
REGIONS = (REGION, "us-east-2", "us-west-2", "eu-west-1")
ORG_OUS = ("prod", "prod/eu", "prod/us", "staging")  # nested OUs the accounts are spread over


@dataclass(frozen=True)
class Scenario:
    """One row of the table: a world, the task duration the emulator gives it, and its target."""

    name: str
    accounts: int
    groups: int
    days: int
    task_seconds: float  # PENDING + RUNNING, as the emulator's record measures it
    target: str
    archived: bool = False  # the archive already holds every day: a rerun with nothing to do
    pending_seconds: float = 0.05
    runs: int = 1  # a short scenario is run several times; its row is the median run
    execution_info: bool = True  # False: DescribeExportTasks answers lack `executionInfo`
    regions: int = 1  # lanes per account, each region with its archive bucket (see REGIONS)
    organization: bool = False  # the accounts are discovered from an emulated AWS Organization
    strategy: str = "export"  # destination.strategy
    # FilterLogEvents a second per account-region the emulator allows, and the config's
    # destination.read_quota (GetLogEvents: 5 times as many, as AWS's 5 and 25); None: no quota
    read_quota: float | None = None
    verify_archive: bool = False  # compare the archive with the seeded events, one by one

    @property
    def export_bound(self) -> float:
        """Seconds the same windows take as export tasks, one at a time: the one-slot bound."""
        return self.windows * self.task_seconds

    @property
    def windows(self) -> int:
        return self.accounts * self.regions * self.groups * self.days

    @property
    def region_names(self) -> tuple[str, ...]:
        return REGIONS[: self.regions]

    @property
    def summary(self) -> str:
        world = " x ".join(
            f"{n:,} {word}{'' if n == 1 else 's'}"
            for n, word in ((self.accounts, "account"), (self.groups, "group"), (self.days, "day"))
        )
        if self.archived:
            return f"a rerun over {world}, all archived already"
        if self.organization:
            world = f"an organization of {world}, {self.regions} regions"
        without = "" if self.execution_info else ", answers without executionInfo"
        return f"{world}, tasks of {self.task_seconds:g} s{without}"

    @property
    def lanes(self) -> int:
        return self.accounts * self.regions

    def quick(self) -> Scenario:
        """A smaller variant for development (`--quick`): same shape, a fraction of the size."""
        return Scenario(
            name=self.name,
            accounts=max(1, self.accounts // 10),
            groups=self.groups,
            days=max(1, min(self.days, 30)) if self.archived else self.days,
            task_seconds=min(self.task_seconds, 1.0),
            target=self.target,
            archived=self.archived,
            pending_seconds=min(self.pending_seconds, self.task_seconds / 5),
            runs=1,
            execution_info=self.execution_info,
            regions=self.regions,
            organization=self.organization,
            strategy=self.strategy,
            read_quota=self.read_quota,
            verify_archive=self.verify_archive,
        )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "6x4x5",
        accounts=6,
        groups=4,
        days=5,
        task_seconds=0.25,
        target="ratio <= 1.10",
        runs=5,  # 6 s each: one process start more or less slow is 5% of it
    ),
    Scenario(  # AWS documents executionInfo as optional: the lanes time tasks by their clock
        "6x4x5-no-info",
        accounts=6,
        groups=4,
        days=5,
        task_seconds=0.25,
        target="ratio within 5% of 6x4x5's",
        runs=5,
        execution_info=False,
    ),
    Scenario(
        "200x3x3",
        accounts=200,
        groups=3,
        days=3,
        task_seconds=5.0,
        target="ratio <= 1.10",
        pending_seconds=0.5,
    ),
    Scenario(
        "rerun",
        accounts=1,
        groups=100,
        days=365,
        task_seconds=0.25,
        target="0 tasks, wall < 2 s, <= 5 state requests",
        archived=True,
    ),
    Scenario(
        "1000x1x1",
        accounts=1000,
        groups=1,
        days=1,
        task_seconds=45.0,  # long enough for every lane to be set up while the first still runs
        target="RSS < 400 MB",
        pending_seconds=1.0,
    ),
    Scenario(
        "org-1000x4",
        accounts=1000,
        groups=2,
        days=1,
        task_seconds=20.0,  # every lane is set up while the first tasks still run
        target="first task < 5 s, last lane started < 30 s, RSS < 600 MB",
        pending_seconds=1.0,
        regions=4,
        organization=True,
    ),
    # Issue 15's account: 300 small groups x 7 days, tasks of 2 s each even when small. Time is
    # scaled down 5 times to run here: tasks of 0.4 s, read quotas 5 times AWS's (25
    # FilterLogEvents a second); `export` runs a tenth of the groups (its bound grows by one
    # task a window: 2,100 x 0.4 s = 840 s for all 300), `auto` all of them.
    Scenario(
        "direct-export",
        accounts=1,
        groups=30,
        days=7,
        task_seconds=0.4,
        target="ratio <= 1.10 (the one-task bound)",
        pending_seconds=0.04,
        read_quota=25.0,
        verify_archive=True,
    ),
    Scenario(
        "direct-auto",
        accounts=1,
        groups=300,
        days=7,
        task_seconds=0.4,
        target="wall <= 0.25 x the export-only bound, every event once",
        pending_seconds=0.04,
        strategy="auto",
        read_quota=25.0,
        verify_archive=True,
    ),
)


def account_ids(n: int) -> list[str]:
    return [str(FIRST_ACCOUNT + i) for i in range(n)]


def group_names(n: int) -> list[str]:
    return [f"/bench/app-{i:03d}" for i in range(n)]


def days_of(s: Scenario, today: date) -> list[date]:
    """The scenario's days: the `days` UTC days before today."""
    return [today - timedelta(days=s.days - i) for i in range(s.days)]


@dataclass(frozen=True)
class Seeded:
    """The ids of the accounts a scenario seeded, and of its organization's OUs (if any)."""

    accounts: list[str]
    ous: list[str]


def seed_world(s: Scenario, today: date) -> Seeded:
    """Accounts, groups created on the first day, and a few events on every day of every group
    (so no window is empty and every one needs a task), in each of the scenario's regions, each
    with its archive bucket. An organization's accounts are spread over nested OUs."""
    for region in s.region_names:
        seed.create_bucket(bucket_of(s, region), region, ARCHIVE_ACCOUNT)
    if s.organization:
        org = seed.create_organization(
            seed.SeedAccount(f"bench-{i:04d}", ORG_OUS[i % len(ORG_OUS)]) for i in range(s.accounts)
        )
        seeded = Seeded(list(org.accounts.values()), [org.ous["prod"], org.ous["staging"]])
    else:
        seeded = Seeded(account_ids(s.accounts), [])
    days = days_of(s, today)
    created = day_ms(days[0]) + 60_000
    for account in seeded.accounts:
        for region in s.region_names:
            for group in group_names(s.groups):
                seed.create_group(account, region, group, created)
                events = [
                    (day_ms(d) + h * 3_600_000 + 17, f"{group} {d} hour {h} request ok")
                    for d in days
                    for h in (0, 9, 23)
                ]
                seed.put_events(account, region, group, "i-0abc/app", events)
    if s.archived:
        for account in seeded.accounts:
            _write_full_state(account, s, days)
    return seeded


def expected_events(s: Scenario, seeded: Seeded, today: date) -> Counter[tuple[str, ...]]:
    """(account, group key, timestamp, message) of every event `seed_world` put."""
    return Counter(
        (
            account,
            group.lstrip("/"),
            str(day_ms(d) + h * 3_600_000 + 17),
            f"{group} {d} hour {h} request ok",
        )
        for account in seeded.accounts
        for group in group_names(s.groups)
        for d in days_of(s, today)
        for h in (0, 9, 23)
    )


def _write_full_state(account: str, s: Scenario, days: list[date]) -> None:
    """The state object a finished run leaves: every day of every group covered."""
    state = LaneState(account, REGION, period="day")
    span = (day_ms(days[0]), day_ms(days[-1]) + 86_400_000 - 1)
    for group in group_names(s.groups):
        state.covered[group] = Intervals([span])
    body = json.dumps(state.to_json(), separators=(",", ":")).encode()
    backend = s3_backends[ARCHIVE_ACCOUNT][get_partition(REGION)]
    backend.put_object(bucket_name=BUCKET, key_name=state_key(PREFIX, account, REGION), value=body)


def bucket_of(s: Scenario, region: str) -> str:
    """The archive bucket of a region: one bucket for a scenario of one region, else one per
    region (`destination.bucket: bench-archive-{region}`)."""
    return BUCKET if s.regions == 1 else f"{BUCKET}-{region}"


def state_paths(s: Scenario, account: str) -> list[str]:
    """The paths of an account's lane state objects in path-style S3 requests."""
    return [
        f"/{bucket_of(s, region)}/{state_key(PREFIX, account, region)}" for region in s.region_names
    ]


def write_config(s: Scenario, path: Path, seeded: Seeded | None = None) -> Path:
    lines = [
        "destination:",
        f"  bucket: {BUCKET if s.regions == 1 else BUCKET + '-{region}'}",
        f"  prefix: {PREFIX}",
        '  settle: "0"',
    ]
    if s.strategy != "export":
        lines.append(f"  strategy: {s.strategy}")
    if s.read_quota is not None:
        lines.append(f"  read_quota: {s.read_quota:g}")
    if s.organization:
        lines += [
            "organization:",
            '  role: "arn:aws:iam::{account_id}:role/LogExporter"',
            f"  regions: [{', '.join(s.region_names)}]",
            '  groups: ["/bench/*"]',
            f"  ous: [{', '.join(seeded.ous if seeded else [])}]",
        ]
        path.write_text("\n".join(lines) + "\n")
        return path
    lines.append("accounts:")
    for account in account_ids(s.accounts):
        lines += [
            f"  - name: acct-{account}",
            f'    role: "{role_arn(account)}"',
            f"    regions: [{REGION}]",
            "    groups:",
            '      - "/bench/*"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_args(s: Scenario, config: Path, today: date) -> list[str]:
    first = days_of(s, today)[0]
    return ["run", "--config", str(config), "--start", f"{first}", "--end", f"{today}"]


def today_utc() -> date:
    return datetime.now(UTC).date()
