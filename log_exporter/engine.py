"""Drives many lanes: one per account and region, all in parallel, until done or a deadline.

A failing account (say its role cannot be assumed) fails its own lanes only; the others go on.
The concurrency is injectable (`executor_cls`), so `--debug` and tests can run lanes serially.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from log_exporter.aws.archive import ArchiveBucket, head_bucket_region
from log_exporter.aws.clock import ClockCheck
from log_exporter.aws.organization import (
    DESCRIBE_REGIONS_ONLY,
    Discovery,
    discover_with,
    enabled_regions,
)
from log_exporter.aws.state_store import StateStore
from log_exporter.core.config import ALL_REGIONS, Account, Config, select_accounts, shared_lane
from log_exporter.core.plan import PlanRange
from log_exporter.core.polling import RunDurations
from log_exporter.core.state import period_switch_message
from log_exporter.core.windows import to_ms, utc_day
from log_exporter.errors import ConfigError, LogExporterError, UsageError
from log_exporter.lane.build import build_lane
from log_exporter.lane.lane import Lane
from log_exporter.lane.pacer import RunControl
from log_exporter.lane.result import LaneResult
from log_exporter.lane.runner import runner_id as _runner_id
from log_exporter.lane.settings import LaneSettings
from log_exporter.lane.view import LaneView
from log_exporter.progress import Reporter
from log_exporter.settings import number_between, resolve

if TYPE_CHECKING:
    import botocore.session
    from botocore.credentials import Credentials
    from mypy_boto3_s3 import S3Client

    from log_exporter.aws.sessions import AccountClients, SessionFactory

DEFAULT_MAX_PARALLEL = 1000
START_PLACES = 16  # lanes setting up at once (see StartGate)
LEASE_ENV = "LOG_EXPORTER_LEASE_SECONDS"


def lease_seconds(explicit: float | None = None) -> float | None:
    """The lane lease length: `explicit`, else LOG_EXPORTER_LEASE_SECONDS, else None (the
    default of LaneSettings).

    The lease (default 120 s, renewed every third of it) is how long a killed runner keeps the
    next one waiting (unless it was of this machine: see runner.py); tests and impatient
    operators shorten it here, the only place it is read.
    """
    return resolve(explicit, LEASE_ENV, number_between(0.3, 86_400, "a number of seconds"), None)


class StartGate:
    """Lets a few lanes set up at a time.

    Setting a lane up (assuming its role, building its client, reading its state, listing its
    groups, creating its first task) is CPU work here and requests to AWS. With hundreds of
    lanes doing it at once, their threads only take turns, and every first task starts when all
    lanes are set up; in turn, the first lanes start their tasks early and the last ones no
    later. A lane holds a place from its start until it first has to wait (its first task runs,
    or it waits for a lease or a busy slot).
    """

    def __init__(self, places: int) -> None:
        self._places = threading.Semaphore(max(1, places))

    @contextlib.contextmanager
    def place(self) -> Iterator[Callable[[], None]]:
        """Hold a place; the function yielded gives it back early (once; later calls do nothing)."""
        self._places.acquire()
        held = True
        lock = threading.Lock()

        def give_back() -> None:
            nonlocal held
            with lock:
                if held:
                    held = False
                    self._places.release()

        try:
            yield give_back
        finally:
            give_back()


@dataclass(frozen=True)
class RunOptions:
    """What a run covers; None means "the config's value, else the default"."""

    start: date | None = None
    end: date | None = None  # first day not exported; default today, tomorrow if partial/hourly
    accounts: Sequence[str] = ()
    regions: Sequence[str] = ()
    settle_seconds: int | None = None
    # also export the settled part of unfinished periods (`--through now`); None: the config's
    partial: bool | None = None
    deadline: float | None = None  # clock() time after which no task is created
    wait_for_lease: bool = True
    pending_timeout_seconds: int | None = None  # None: destination.pending_timeout
    stuck_after_seconds: int | None = None  # None: destination.stuck_after


@dataclass(frozen=True)
class LaneSpec:
    account: Account
    region: str
    # why this account has no lanes to run (its enabled regions could not be asked): it fails
    # on its own, the others go on
    error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.account.name}/{self.region}"


@dataclass
class RunReport:
    lanes: list[LaneResult] = field(default_factory=list)
    seconds: float = 0.0
    bucket_retries: int = 0  # botocore's retries on the archive bucket (and STS) calls

    @property
    def retries(self) -> int:
        """Every retry the run made: botocore's and the lanes' own backoffs."""
        return self.bucket_retries + sum(r.retries for r in self.lanes)

    @property
    def ok(self) -> bool:
        return all(r.ok and r.remaining == 0 for r in self.lanes)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def wrong_region(spec: LaneSpec, bucket_region: str | None, settings: LaneSettings) -> str | None:
    """Why the lane cannot export to its archive bucket (None: it can)."""
    if bucket_region and spec.region != bucket_region:
        return (
            f"archive bucket {settings.bucket} is in {bucket_region}, but CloudWatch Logs "
            f"exports only to a bucket in the log group's region ({spec.region})"
        )
    return None


def runner_id() -> str:
    """Who holds a lane's lease: host, process, a random part, and what tells whether the
    process still lives (see runner.py)."""
    return _runner_id()


def plan_range(config: Config, options: RunOptions, now: float) -> PlanRange:
    """Turn dates and the clock into the range a run plans over; bad dates are UsageErrors."""
    today = utc_day(int(now * 1000))
    dest = config.destination
    partial = (dest.through == "now") if options.partial is None else options.partial
    # Whole days end before today; parts of today (and its settled hours) need today in range.
    end = options.end or (today + timedelta(days=1) if partial or dest.period == "hour" else today)
    start = options.start or config.destination.start
    if start is not None and start >= end:
        raise UsageError(
            f"--start {start} must be before --end {end} (--end is the first day not exported)"
        )
    if start is not None and start > today:
        raise UsageError(f"--start {start} is in the future (today is {today} UTC)")
    if end > today + timedelta(days=1):
        raise UsageError(
            f"--end {end} is in the future (today is {today} UTC; at most {today + timedelta(days=1)})"
        )
    settle = config.destination.settle if options.settle_seconds is None else options.settle_seconds
    return PlanRange(
        start_ms=to_ms(start) if start else None,
        end_ms=to_ms(end),
        now_ms=int(now * 1000),
        settle_ms=settle * 1000,
        period=config.destination.period,
        partial=partial,
    )


class Engine:
    def __init__(
        self,
        config: Config,
        factory: SessionFactory,
        *,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        owner: str | None = None,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        executor_cls: Callable[[int], Executor] = ThreadPoolExecutor,
        lease_seconds: float | None = None,
        stuck_pending_seconds: float | None = None,
    ) -> None:
        self.config = config
        self.factory = factory
        self.reporter = reporter or Reporter()
        self.clock = clock
        self.sleep = sleep
        self.owner = owner or runner_id()
        self.max_parallel = max(1, max_parallel)
        self.executor_cls = executor_cls
        self._lease_seconds = lease_seconds
        self._stuck = stuck_pending_seconds
        self._credentials: dict[str, Credentials | None] = {}  # by account name; None: ambient
        self.run_durations = RunDurations()  # task durations seen by every lane, for new lanes
        self.start_places = START_PLACES
        self._session_errors: dict[str, LogExporterError] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._s3: dict[str | None, S3Client] = {}  # the archive's clients, by bucket region
        self._s3_lock = threading.Lock()
        self._stop = threading.Event()  # set on Ctrl-C: lanes stop at their next wait
        self.clock_check = ClockCheck()  # AWS's clock, from the Date of the archive's answers
        self._discovery: Discovery | None = None
        self._discovery_lock = threading.Lock()
        self.discovery_budget: float | None = None  # seconds; the Lambda dispatcher sets one
        self._enabled: dict[str, list[str]] = {}  # `regions: all`, by account name
        self._bucket_regions: dict[str, str | None] = {}  # each archive bucket, checked once
        self._ids: dict[str, str] = {}  # ids of accounts with a profile and no role, by name

    # --- what to run ---------------------------------------------------------------------------
    def discovery(self) -> Discovery:
        """The config's accounts and its organization's, read from Organizations once per
        engine (so once per run)."""
        with self._discovery_lock:
            if self._discovery is None:
                self._discovery = discover_with(self.config, self.factory, self.discovery_budget)
            return self._discovery

    def accounts(self) -> list[Account]:
        """Every account of the config, discovered ones included."""
        return self.discovery().accounts

    def select(self, names: Sequence[str]) -> list[Account]:
        """The accounts named (all when `names` is empty), discovered ones included."""
        return select_accounts(self.accounts(), names)

    def enabled_regions(self, account: Account) -> list[str]:
        """The account's enabled regions, asked from AWS once per engine (`regions: all`),
        in a session of the account's role limited to ec2:DescribeRegions: the dispatcher,
        which only asks this, gets nothing more of the member role."""
        if account.name not in self._enabled:
            credentials = self.factory.account_credentials(
                account.role_chain, account.external_id, policy=DESCRIBE_REGIONS_ONLY
            )
            self._enabled[account.name] = enabled_regions(self.factory.ec2(credentials))
        return self._enabled[account.name]

    def _ask_enabled_regions(self, accounts: Sequence[Account]) -> None:
        """Ask the accounts with `regions: all` for their regions, a few at a time."""
        asking = [a for a in accounts if a.regions == ALL_REGIONS and a.name not in self._enabled]
        if len(asking) > 1:
            with ThreadPoolExecutor(min(START_PLACES, len(asking))) as pool:
                for _ in pool.map(self._try_enabled_regions, asking):
                    pass

    def _try_enabled_regions(self, account: Account) -> None:
        with contextlib.suppress(LogExporterError):  # asked again, and raised, by lane_specs
            self.enabled_regions(account)

    def lane_specs(self, options: RunOptions) -> list[LaneSpec]:
        self.check_one_lane_each(options)
        specs: list[LaneSpec] = []
        selected = self.select(options.accounts)
        for account in selected:  # an unknown profile is a config error, before any lane
            if account.profile:
                self.factory.profile_session(account.profile, f"accounts[{account.name}].profile")
        self._ask_enabled_regions(selected)
        for account in selected:
            if account.regions == ALL_REGIONS:
                try:
                    regions = list(self.enabled_regions(account))
                except LogExporterError as exc:
                    specs.append(LaneSpec(account, ALL_REGIONS, error=str(exc)))
                    continue
            else:
                regions = list(dict.fromkeys(account.regions or options.regions or []))
            if not regions:
                if not self.factory.default_region:
                    raise ConfigError(
                        f"accounts[{account.name}]: no region: set `regions` in the config, "
                        "--region, or AWS_DEFAULT_REGION"
                    )
                regions = [self.factory.default_region]
            if options.regions:
                regions = [r for r in regions if r in options.regions]
            specs.extend(LaneSpec(account, r) for r in regions)
        return specs

    def check_one_lane_each(self, options: RunOptions) -> None:
        """Refuse a config of which two entries are one lane (the same account and region), in
        the regions they run in here; an entry without a role is the ambient account, asked of
        STS when a role entry could be the same (if STS cannot tell, that lane fails alone).
        Discovered accounts (an `organization:` block) are checked with the explicit ones."""
        discovery = self.discovery()
        accounts = discovery.accounts
        ambient_id = discovery.ambient_id
        if (
            ambient_id is None
            and any(a.account_id is None for a in accounts)
            and any(a.account_id for a in accounts)
        ):
            with contextlib.suppress(LogExporterError):
                ambient_id = self.factory.account_id(self.factory.ambient, [])

        def regions(account: Account) -> Sequence[str]:
            default = self.factory.default_region
            return account.regions or options.regions or ([default] if default else [])

        clash = shared_lane(accounts, regions, ambient_id)
        if clash:
            raise ConfigError(f"{self.config.source}: accounts: {clash}")  # as `validate` says

    def bucket_for(self, spec: LaneSpec) -> str | None:
        """The archive bucket of the lane's region; None: the config names none for it."""
        return self.config.destination.bucket_for(spec.region)

    def buckets(self, specs: Sequence[LaneSpec]) -> list[str]:
        """The archive buckets the lanes export to, each once."""
        return self.config.destination.buckets(s.region for s in specs if s.error is None)

    def settings(self, options: RunOptions, bucket: str | None = None) -> LaneSettings:
        """The lanes' settings, for lanes exporting to `bucket` (default: the config's one
        bucket)."""
        dest = self.config.destination
        kwargs: dict[str, float] = {}
        lease = lease_seconds(self._lease_seconds)
        if lease is not None:
            kwargs["lease_seconds"] = lease
        stuck = self._stuck if self._stuck is not None else options.pending_timeout_seconds
        kwargs["stuck_pending_seconds"] = stuck if stuck is not None else dest.pending_timeout
        kwargs["stuck_seconds"] = options.stuck_after_seconds or dest.stuck_after
        return LaneSettings(
            bucket=bucket or self._one_bucket(),
            prefix=dest.prefix,
            period=dest.period,
            wait_for_lease=options.wait_for_lease,
            strategy=dest.strategy,
            read_rate=dest.read_quota * dest.read_share,
            read_max_bytes=dest.read_max_bytes,
            read_window_max_bytes=dest.read_window_max_bytes,
            **kwargs,  # type: ignore[arg-type]
        )

    # --- the archive bucket ----------------------------------------------------------------------
    def _one_bucket(self) -> str:
        bucket = self.config.destination.single_bucket
        if bucket is None:  # a caller that did not say which of the buckets
            raise UsageError("destination.bucket names a bucket per region: say which one")
        return bucket

    def bucket_region(self, bucket: str | None = None) -> str | None:
        """Check the archive bucket (default: the config's one bucket) exists and is reachable,
        once per engine; return its region."""
        bucket = bucket or self._one_bucket()
        if bucket not in self._bucket_regions:
            self._bucket_regions[bucket] = self._head_bucket(bucket)
        return self._bucket_regions[bucket]

    def _head_bucket(self, bucket: str) -> str | None:
        def watched() -> S3Client:  # its answer's Date tells AWS's clock
            s3 = self.factory.s3()
            self.clock_check.watch(s3)
            return s3

        return head_bucket_region(watched, bucket)

    def _check_archive(self, settings: LaneSettings) -> tuple[str | None, LaneSettings]:
        """The region of the lanes' archive bucket (`settings.bucket`), once it is known that
        no lane would switch its layout; and the lanes' settings, for an archive that holds
        nothing yet if so."""
        bucket_region = self.bucket_region(settings.bucket)
        # leases compare clocks: refuse one that is far off AWS's
        self.clock_check.check(settings.lease_seconds)
        self.check_layout(settings.bucket)
        dest = self.config.destination
        archive = self._archive(settings.bucket)
        if not archive.has_objects(f"{dest.prefix}/" if dest.prefix else ""):
            # An empty archive holds no state, lost or not: spare every new lane the check's
            # LISTs and its first read (its first write would still fail if one appeared).
            settings = dataclasses.replace(settings, guard_lost_state=False, fresh_archive=True)
        return bucket_region, settings

    def check_layout(self, bucket: str | None = None) -> None:
        """Refuse, before any lane starts, to switch an existing archive (in `bucket`, default
        the config's one bucket) between day and hour."""
        dest = self.config.destination
        bucket = bucket or self._one_bucket()
        archived = self.store(bucket).archived_period()
        if archived is not None and archived != dest.period:
            where = "/".join(p for p in (f"s3://{bucket}", dest.prefix) if p)
            raise ConfigError(period_switch_message(where, archived, dest.period))

    def store(self, bucket: str | None = None) -> StateStore:
        """The lanes' states in `bucket` (default: the config's one bucket)."""
        bucket = bucket or self._one_bucket()
        return StateStore(self._archive_s3(bucket), bucket, self.config.destination.prefix)

    def _archive_s3(self, bucket: str | None = None) -> S3Client:
        """The archive's S3 client: in the bucket's region once its check found it (a bucket
        per region), else in the default region (S3 redirects)."""
        region = self._bucket_regions.get(bucket) if bucket else None
        region = None if region == self.factory.default_region else region
        with self._s3_lock:
            client = self._s3.get(region)
            if client is None:
                client = self._s3[region] = self.factory.s3(region)
                self.clock_check.watch(client)
            return client

    # --- sessions ---------------------------------------------------------------------------------
    def account_session(self, account: Account) -> botocore.session.Session:
        """A session in the member account; its role is assumed once and shared by its lanes."""
        return self.factory.session_with(self._account_credentials(account))

    def _account_credentials(self, account: Account) -> Credentials | None:
        """The account's credentials (None: the ambient ones), assumed once per run: lanes get
        clients signing with them, not a session each (a session is ~140 KiB)."""
        with self._locks_lock:
            lock = self._locks.setdefault(account.name, threading.Lock())
        with lock:
            if account.name in self._session_errors:
                raise self._session_errors[account.name]
            if account.name not in self._credentials:
                try:
                    self._credentials[account.name] = self.factory.account_credentials(
                        account.role_chain,
                        account.external_id,
                        profile=account.profile,
                        where=f"accounts[{account.name}].profile",
                    )
                except LogExporterError as exc:
                    self._session_errors[account.name] = exc
                    raise
            return self._credentials[account.name]

    def account_id(self, account: Account) -> str:
        """The account's id: its last role's; without a role, whose credentials the lanes work
        with (its profile's, else the ambient ones), asked of STS once."""
        if account.role_chain or not account.profile:
            return self.factory.account_id(self.factory.ambient, account.role_chain)
        with self._locks_lock:
            known = self._ids.get(account.name)
        if known is None:
            known = self.factory.account_id(self.account_session(account), [])
            with self._locks_lock:
                self._ids[account.name] = known
        return known

    def build_lane(
        self,
        spec: LaneSpec,
        rng: PlanRange,
        settings: LaneSettings,
        *,
        sleep: Callable[[float], None] | None = None,
        nap: Callable[[float], None] | None = None,
    ) -> Lane:
        return build_lane(
            account=spec.account.name,
            clients=self._lane_clients(spec),
            store=self.store(settings.bucket),
            archive=self._archive(settings.bucket),
            selector=spec.account.selector,
            rng=rng,
            settings=settings,
            owner=f"{self.owner}/{spec.account.name}/{spec.region}",  # one per lane, not per run
            reporter=self.reporter,
            control=RunControl(
                clock=self.clock,
                sleep=sleep or self.sleep,
                nap=nap,
                stopped=self._stop.is_set,  # a stop raises LaneStopped after any of its sleeps
                clock_check=lambda: self.clock_check.check(settings.lease_seconds),
            ),
            run_durations=self.run_durations,
        )

    def build_view(self, spec: LaneSpec, rng: PlanRange, settings: LaneSettings) -> LaneView:
        """What the read-only commands see of a lane: no lease, no slot, no threads."""
        clients = self._lane_clients(spec)
        return LaneView(
            account=spec.account.name,
            account_id=clients.account_id,
            region=spec.region,
            logs=clients.logs,
            store=self.store(settings.bucket),
            archive=self._archive(settings.bucket),
            selector=spec.account.selector,
            rng=rng,
            settings=settings,
            reporter=self.reporter,
            clock=self.clock,
            sleep=self.sleep,
        )

    def _lane_clients(self, spec: LaneSpec) -> AccountClients:
        """The clients of `spec`'s lane: its account's credentials (the role chain assumed once
        per account), on the region's shared logs client."""
        credentials = self._account_credentials(spec.account)
        account_id = self.account_id(spec.account)
        return self.factory.lane_clients(credentials, account_id, spec.region)

    def _archive(self, bucket: str) -> ArchiveBucket:
        return ArchiveBucket(self._archive_s3(bucket), bucket)

    # --- running --------------------------------------------------------------------------------
    def run(self, options: RunOptions) -> RunReport:
        started = self.clock()
        retries_before = self.factory.retries.count
        rng = plan_range(self.config, options, started)
        specs = self.lane_specs(options)
        parallel = self.max_parallel > 1 and len(specs) > 1
        # Each archive bucket is checked (once) while the lanes assume their roles; no lane goes
        # further before its bucket passed (a lane's first write is after it).
        checks: dict[str, Future[tuple[str | None, LaneSettings]]] = {
            bucket: Future() for bucket in self.buckets(specs)
        }

        def check() -> None:
            for bucket, checked in checks.items():
                try:
                    checked.set_result(self._check_archive(self.settings(options, bucket)))
                except BaseException as exc:  # raised by run() below, in this thread
                    checked.set_exception(exc)

        if parallel:
            threading.Thread(target=check, name="log-exporter-archive-check", daemon=True).start()
        else:
            check()
            for checked in checks.values():
                checked.result()
        report = RunReport()
        gate = StartGate(self.start_places)

        def cannot_run(spec: LaneSpec, error: str) -> LaneResult:
            result = LaneResult(spec.account.name, "", spec.region, error=error)
            self.reporter.lane_finished(result)
            return result

        def one(spec: LaneSpec) -> LaneResult:
            if spec.error is not None:
                return cannot_run(spec, spec.error)
            bucket = self.bucket_for(spec)
            if bucket is None:  # the map names no bucket for its region: reported, not dropped
                return cannot_run(spec, self.config.destination.no_bucket(spec.region))
            checked = checks[bucket]
            if checked.done() and checked.exception() is None:
                # once the archive is checked, a lane that cannot export takes no place
                wrong = wrong_region(spec, *checked.result())
                if wrong is not None:
                    return cannot_run(spec, wrong)
            with gate.place() as set_up:
                with contextlib.suppress(LogExporterError):  # build_lane reports it
                    self._account_credentials(spec.account)
                try:
                    bucket_region, settings = checked.result()
                except BaseException:
                    return LaneResult(spec.account.name, "", spec.region, error="not started")
                # `through: now` cuts no later than AWS's own now minus the settle delay
                lane_rng = dataclasses.replace(
                    rng, now_ms=min(rng.now_ms, int(self.clock_check.aws_now(started) * 1000))
                )
                wrong = wrong_region(spec, bucket_region, settings)
                if wrong is not None:
                    return cannot_run(spec, wrong)

                def sleep(seconds: float, *, until_known: bool = False) -> None:
                    set_up()  # the lane waits: its place goes to the next lane
                    if self.sleep is not time.sleep:
                        self.sleep(seconds)
                    elif until_known:
                        self.run_durations.wait_for_first(seconds)  # woken by an interrupt too
                    else:
                        self._stop.wait(seconds)  # woken at once by an interrupt

                def nap(seconds: float) -> None:
                    sleep(seconds, until_known=True)

                try:
                    lane = self.build_lane(spec, lane_rng, settings, sleep=sleep, nap=nap)
                except LogExporterError as exc:
                    result = LaneResult(spec.account.name, "", spec.region, error=str(exc))
                    self.reporter.lane_finished(result)
                    return result
                return lane.run(options.deadline)

        if not parallel:
            try:
                report.lanes = [one(s) for s in specs]
            except KeyboardInterrupt:
                self._stop.set()  # the lane has stopped its reads; nothing else may go on
                raise
        else:
            with self.executor_cls(min(self.max_parallel, len(specs))) as pool:
                futures = [pool.submit(one, s) for s in specs]
                try:
                    report.lanes = [f.result() for f in futures]
                except KeyboardInterrupt:
                    # Ctrl-C: every lane stops at its next wait, records what it has in flight
                    # and releases its lease; a later run adopts those tasks.
                    self._stop.set()
                    self.run_durations.wake()
                    for f in futures:
                        f.cancel()
                    raise
            for checked in checks.values():
                checked.result()  # an archive's check failed: that is the run's one error
        report.seconds = self.clock() - started
        report.bucket_retries = self.factory.retries.count - retries_before
        return report
