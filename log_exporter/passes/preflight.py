"""The checks behind `log-exporter check`: for each account and region, whether a run can work
(role, log groups, export slot, bucket region, bucket policy), as rows of a table. Read-only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.errors import AWS_ERRORS, SlotBusy, Throttled, aws_said, policy_unreadable
from log_exporter.aws.groups import LogGroups
from log_exporter.aws.tasks import ExportTasks
from log_exporter.core.config import Account, Config
from log_exporter.core.policy import Target, export_refusals, logs_principal
from log_exporter.errors import BucketError, LogExporterError

if TYPE_CHECKING:
    import botocore.session

    from log_exporter.aws.sessions import SessionFactory
    from log_exporter.engine import Engine, LaneSpec

Status = Literal["OK", "FAIL", "SKIP"]
ARCHIVE = "(archive)"
POLICY_HINT = "`log-exporter policy --config FILE` prints the policy it needs"
MAX_NAMES = 3  # log group names shown in a row
CHECK_ERRORS = (LogExporterError, SlotBusy, Throttled, *AWS_ERRORS)


@dataclass(frozen=True)
class CheckRow:
    account: str
    region: str
    check: str
    status: Status
    detail: str


@dataclass
class PreflightReport:
    rows: list[CheckRow] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckRow]:
        return [r for r in self.rows if r.status != "OK"]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


@dataclass(frozen=True)
class BucketFacts:
    """What the archive check found: the bucket's region and its policy (None: it has none)."""

    reachable: bool
    region: str | None = None
    policy: dict[str, Any] | None = None
    policy_error: str | None = None  # the policy could not be read
    name: str = ""  # the bucket


class Preflight:
    """Runs the checks with the engine's own way of finding lanes, the bucket and sessions."""

    def __init__(
        self,
        engine: Engine,
        *,
        executor_cls: Callable[[int], Executor] = ThreadPoolExecutor,
        max_parallel: int = 16,
    ) -> None:
        self.engine = engine
        self.config: Config = engine.config
        self.factory: SessionFactory = engine.factory
        self.executor_cls = executor_cls
        self.max_parallel = max(1, max_parallel)

    def run(self, specs: Sequence[LaneSpec]) -> PreflightReport:
        report = PreflightReport()
        # each bucket once, in the order of the lanes exporting to it
        buckets = {b: self.check_bucket(report, b) for b in self.engine.buckets(specs)}
        by_account: dict[str, list[LaneSpec]] = {}
        for spec in specs:
            if spec.error is not None:  # `regions: all`, and its regions could not be asked
                report.rows.append(CheckRow(spec.account.name, "-", "regions", "FAIL", spec.error))
                continue
            by_account.setdefault(spec.account.name, []).append(spec)
        accounts = [lanes[0].account for lanes in by_account.values()]

        def one(account: Account) -> list[CheckRow]:
            regions = [s.region for s in by_account[account.name]]
            return self.check_account(account, regions, buckets)

        if self.max_parallel == 1 or len(accounts) <= 1:
            results = [one(a) for a in accounts]
        else:
            with self.executor_cls(min(self.max_parallel, len(accounts))) as pool:
                results = list(pool.map(one, accounts))
        for rows in results:
            report.rows.extend(rows)
        return report

    # --- the archive bucket ------------------------------------------------------------------------
    def check_bucket(self, report: PreflightReport, name: str) -> BucketFacts:
        try:
            region = self.engine.bucket_region(name)
        except LogExporterError as exc:
            report.rows.append(CheckRow(ARCHIVE, "-", "bucket", "FAIL", str(exc)))
            return BucketFacts(reachable=False, name=name)
        where = f"in {region}" if region else "region unknown"
        report.rows.append(
            CheckRow(ARCHIVE, region or "-", "bucket", "OK", f"{name} exists, {where}")
        )
        try:
            policy = ArchiveBucket(self.factory.s3(region), name).policy()
        except BucketError as exc:
            return BucketFacts(True, region, None, str(exc), name=name)
        except AWS_ERRORS as exc:  # making the client itself failed (a bad region, say)
            return BucketFacts(True, region, None, str(policy_unreadable(exc)), name=name)
        return BucketFacts(True, region, policy, name=name)

    # --- one account -------------------------------------------------------------------------------
    def check_account(
        self, account: Account, regions: Sequence[str], buckets: Mapping[str, BucketFacts]
    ) -> list[CheckRow]:
        name = account.name
        rows: list[CheckRow] = []
        session: botocore.session.Session | None = None
        account_id = ""
        try:
            session = self.engine.account_session(account)
            account_id = self.factory.account_id(session, account.role_chain)
            start = f"profile {account.profile}" if account.profile else ""
            how = (
                f"assumed {' -> '.join(account.role_chain)}" + (f" from {start}" if start else "")
                if account.role_chain
                else start or "ambient credentials"
            )
            rows.append(CheckRow(name, "-", "role", "OK", f"{how} (account {account_id})"))
        except LogExporterError as exc:
            rows.append(CheckRow(name, "-", "role", "FAIL", str(exc)))
            if account.role_chain:
                account_id = account.role_chain[-1].split(":")[4]
        for region in regions:
            rows.extend(self.check_lane(account, region, session, account_id, buckets))
        return rows

    def check_lane(
        self,
        account: Account,
        region: str,
        session: botocore.session.Session | None,
        account_id: str,
        buckets: Mapping[str, BucketFacts],
    ) -> list[CheckRow]:
        name = account.name
        rows: list[CheckRow] = []
        if session is None:
            why = "the role could not be assumed"
            rows.append(CheckRow(name, region, "log groups", "SKIP", why))
            rows.append(CheckRow(name, region, "export tasks", "SKIP", why))
        else:
            clients = self.factory.account_clients(session, account_id, region)
            rows.append(self._groups(name, region, LogGroups(clients.logs), account))
            rows.append(self._tasks(name, region, ExportTasks(clients.logs, clients.logs_create)))
        dest = self.config.destination
        bucket = dest.bucket_for(region)
        if bucket is None:  # the map names no bucket for the lane's region
            rows.append(CheckRow(name, region, "bucket", "FAIL", dest.no_bucket(region)))
        else:
            rows.extend(self._bucket_rows(name, region, account_id, buckets[bucket]))
        return rows

    def _groups(self, name: str, region: str, groups: LogGroups, account: Account) -> CheckRow:
        try:
            found = [g for g, _ in groups.matching(account.selector)]
        except CHECK_ERRORS as exc:
            return CheckRow(name, region, "log groups", "FAIL", f"cannot list: {aws_said(exc)}")
        if not found:
            patterns = ", ".join(account.groups)
            return CheckRow(
                name, region, "log groups", "OK", f"listed; no group matches {patterns} yet"
            )
        shown = ", ".join(found[:MAX_NAMES]) + (", ..." if len(found) > MAX_NAMES else "")
        return CheckRow(name, region, "log groups", "OK", f"{len(found)} match: {shown}")

    def _tasks(self, name: str, region: str, tasks: ExportTasks) -> CheckRow:
        try:
            active = tasks.active()
        except CHECK_ERRORS as exc:
            return CheckRow(
                name, region, "export tasks", "FAIL", f"cannot describe: {aws_said(exc)}"
            )
        if not active:
            return CheckRow(name, region, "export tasks", "OK", "no active export task")
        t = active[0]
        whose = "log-exporter's" if t.name.startswith("log-exporter-") else "someone else's"
        return CheckRow(
            name,
            region,
            "export tasks",
            "OK",
            f"slot busy with {whose} task {t.name or t.task_id} ({t.group}); a run waits for it",
        )

    def _bucket_rows(
        self, name: str, region: str, account_id: str, bucket: BucketFacts
    ) -> list[CheckRow]:
        dest = self.config.destination
        if not bucket.reachable:
            why = "the archive bucket is not reachable"
            return [
                CheckRow(name, region, "bucket region", "SKIP", why),
                CheckRow(name, region, "bucket policy", "SKIP", why),
            ]
        rows: list[CheckRow] = []
        if bucket.region is None or bucket.region == region:
            rows.append(
                CheckRow(
                    name, region, "bucket region", "OK", f"bucket is in {bucket.region or region}"
                )
            )
        else:
            rows.append(
                CheckRow(
                    name,
                    region,
                    "bucket region",
                    "FAIL",
                    f"{bucket.name} is in {bucket.region}; CloudWatch Logs exports only to a "
                    f"bucket in the log group's region ({region})",
                )
            )
        principal = logs_principal(region)
        if bucket.policy_error:
            rows.append(CheckRow(name, region, "bucket policy", "FAIL", bucket.policy_error))
        elif not account_id:
            rows.append(
                CheckRow(name, region, "bucket policy", "SKIP", "the account id is unknown")
            )
        elif bucket.policy is None:
            rows.append(
                CheckRow(
                    name,
                    region,
                    "bucket policy",
                    "FAIL",
                    f"{bucket.name} has no bucket policy, so {principal} cannot write exports; "
                    + POLICY_HINT,
                )
            )
        else:
            refused = export_refusals(
                bucket.policy, bucket.name, dest.prefix, Target(account_id, region)
            )
            if refused:
                rows.append(
                    CheckRow(
                        name,
                        region,
                        "bucket policy",
                        "FAIL",
                        f"does not let {principal} ({account_id}) {' or '.join(refused)}; "
                        + POLICY_HINT,
                    )
                )
            else:
                rows.append(
                    CheckRow(
                        name,
                        region,
                        "bucket policy",
                        "OK",
                        f"lets {principal} write exports of {account_id}",
                    )
                )
        return rows
