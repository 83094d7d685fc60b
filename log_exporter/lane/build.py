"""Where a lane's parts are built and handed in: one place, so `Lane` only ties them."""

from __future__ import annotations

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.groups import LogGroups
from log_exporter.aws.reads import DirectReader, ReadRate
from log_exporter.aws.sessions import AccountClients
from log_exporter.aws.state_store import StateStore
from log_exporter.aws.tasks import ExportTasks
from log_exporter.core.config import GroupSelector
from log_exporter.core.plan import PlanRange
from log_exporter.core.polling import RunDurations, TaskDurations
from log_exporter.lane.backlog import Backlog
from log_exporter.lane.direct_reads import DirectReads, ReadWorkers
from log_exporter.lane.lane import Attempt, Lane, RequestCounts
from log_exporter.lane.lease import LeaseKeeper
from log_exporter.lane.pacer import Pacer, RunControl
from log_exporter.lane.record import Record
from log_exporter.lane.result import LaneResult
from log_exporter.lane.settings import LaneSettings
from log_exporter.lane.slot import Slot
from log_exporter.progress import Reporter


def build_lane(
    *,
    account: str,
    clients: AccountClients,
    store: StateStore,
    archive: ArchiveBucket,
    selector: GroupSelector,
    rng: PlanRange,
    settings: LaneSettings,
    owner: str,
    reporter: Reporter | None = None,
    control: RunControl | None = None,  # the run's clock, sleeps and stop (see pacer.py)
    run_durations: RunDurations | None = None,  # what the run's other lanes have seen
) -> Lane:
    """A lane of `account` in `clients`' region, its parts built and wired together."""
    account_id, region = clients.account_id, clients.region
    name = f"{account}/{region}"
    reporter = reporter or Reporter()
    durations = TaskDurations(run_durations)
    tasks = ExportTasks(clients.logs, clients.logs_create)
    groups = LogGroups(clients.logs)
    pacer = Pacer(
        name=name,
        reporter=reporter,
        lease_seconds=settings.lease_seconds,
        stuck_seconds=settings.stuck_seconds,
        deadline_margin_seconds=settings.deadline_margin_seconds,
        control=control or RunControl(),
    )
    lease = LeaseKeeper(
        name=name,
        account=account,
        account_id=account_id,
        region=region,
        owner=owner,
        settings=settings,
        store=store,
        archive=archive,
        pacer=pacer,
        reporter=reporter,
        durations=durations,
    )
    pacer.renew_with(lambda: lease.heartbeat())  # every wait of the lane renews its lease
    rate = ReadRate(settings.read_rate, clock=pacer.clock, sleep=pacer.worker_sleep)
    reader = DirectReader(clients.logs, rate, lambda fn: pacer.call_in_worker(fn, name))
    workers = ReadWorkers(name)

    def new_attempt() -> Attempt:
        result = LaneResult(account, account_id, region)
        record = Record(
            name=name,
            settings=settings,
            account_id=account_id,
            region=region,
            lease=lease,
            pacer=pacer,
            archive=archive,
            reporter=reporter,
            result=result,
        )
        backlog = Backlog(
            name=name,
            settings=settings,
            groups=groups,
            selector=selector,
            rng=rng,
            lease=lease,
            pacer=pacer,
            record=record,
            reporter=reporter,
        )
        reads = DirectReads(
            name=name,
            settings=settings,
            reader=reader,
            workers=workers,
            archive=archive,
            lease=lease,
            pacer=pacer,
            record=record,
            backlog=backlog,
            reporter=reporter,
        )
        slot = Slot(
            name=name,
            settings=settings,
            tasks=tasks,
            archive=archive,
            lease=lease,
            pacer=pacer,
            record=record,
            backlog=backlog,
            durations=durations,
            reporter=reporter,
            read_during=reads.read_during,
        )
        return Attempt(record, backlog, slot, reads)

    return Lane(
        name=name,
        settings=settings,
        pacer=pacer,
        lease=lease,
        workers=workers,
        durations=durations,
        reporter=reporter,
        new_attempt=new_attempt,
        request_counts=lambda: RequestCounts(
            reader.requests, reader.throttled, clients.retries.count
        ),
    )
