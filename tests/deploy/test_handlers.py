"""The Lambda handlers in-process against the emulator: dispatcher, then workers drained from the
queue, give the CLI's exactly-once archive; deadlines, busy lanes and failures are handled."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from moto.s3.models import s3_backends

from emulator import Emulator
from emulator.scenario import REGION, config_yaml, role_arn, sample_world
from log_exporter.aws.sessions import SessionFactory
from log_exporter.aws_lambda.messages import LaneMessage
from log_exporter.aws_lambda.reporting import LambdaReporter
from log_exporter.core.config import Config
from log_exporter.core.plan import ExportItem
from log_exporter.core.state import state_key
from log_exporter.engine import Engine
from log_exporter.errors import ConfigError
from log_exporter.lane.result import LaneResult

from .conftest import (
    SELECTED,
    Context,
    Exporter,
    archive_of,
    drain,
    make_app,
    metric,
    metric_sum,
    queued,
    sqs_event,
    stdout_json,
    tasks_per_window,
)

A, B = "111111111111", "222222222222"


def write(tmp_path: Path, text: str, name: str = "config.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_dispatch_then_workers_archive_exactly_once_like_the_cli(
    queue_url: str,
    emu: Emulator,
    exporter: Exporter,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = sample_world(accounts=(A, B), days=3)
    app = make_app(write(tmp_path, config_yaml(world.bucket, [A, B])), queue_url, world.bucket)

    dispatched = app.dispatch({}, None)

    assert dispatched == {
        "dispatched": [f"acct-{A}/{REGION}", f"acct-{B}/{REGION}"],
        "skipped": [],
    }
    assert sorted(m["account"] for m in queued(queue_url)) == [f"acct-{A}", f"acct-{B}"]
    drained = drain(app, queue_url)

    assert drained.invocations == 2 and drained.failures == []
    expected = world.expected(groups=SELECTED)
    assert archive_of(world.bucket, "logs") == expected  # nothing lost, nothing twice
    windows = tasks_per_window(emu)
    assert len(windows) == 2 * 3 * 3 and set(windows.values()) == {1}
    assert all(t.status == "COMPLETED" for t in emu.tasks)

    # The CLI over the same world, into another prefix, archives the very same events.
    cli = exporter(
        "run",
        "--config",
        str(write(tmp_path, config_yaml(world.bucket, [A, B], prefix="cli"), "cli.yml")),
    )
    assert cli.code == 0, cli.output
    assert archive_of(world.bucket, "cli") == archive_of(world.bucket, "logs")

    logs, metrics = stdout_json(capsys.readouterr().out)
    assert metric_sum(metrics, "LanesDispatched") == 2
    assert metric_sum(metrics, "TasksCreated") == 18
    assert metric_sum(metrics, "DaysArchived") == 18
    assert metric_sum(metrics, "DaysFailed") == 0
    lanes = [m for m in metrics if "TasksCreated" in m]
    assert sorted(m["lane"] for m in lanes) == [f"acct-{A}/{REGION}", f"acct-{B}/{REGION}"]
    assert all(metric(m, "Backlog") == 0 and metric(m, "LagSeconds") < 86_400 for m in lanes)
    assert all(m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LogExporter" for m in lanes)
    # structured logs: the core's task events come out as JSON lines with their fields
    started = [r for r in logs if r.get("status") == "STARTED"]
    assert len(started) == 18
    assert {r["lane"] for r in started} == {f"acct-{A}/{REGION}", f"acct-{B}/{REGION}"}
    assert all(r["level"] == "INFO" and r["service"].startswith("log-exporter") for r in started)


def days_in_state(bucket: str, key: str) -> int:
    """Days the lane state object in the emulator's S3 records as archived."""
    partition, owner = s3_backends.bucket_accounts[bucket]
    obj = s3_backends[owner][partition].get_bucket(bucket).keys.get(key)
    if obj is None or not hasattr(obj, "value"):
        return 0
    covered = json.loads(obj.value)["covered"]
    return sum((b - a + 1) // 86_400_000 for spans in covered.values() for a, b in spans)


class Tripwire(LambdaReporter):
    """The worker's reporter, and its clock: the clock runs 10 minutes ahead from the lane's
    `count`-th `event` on, so the deadline passes at a chosen point of the lane's work."""

    def __init__(self, event: str, count: int) -> None:
        self.event = event
        self.count = count
        self.seen = 0

    def clock(self) -> float:
        return time.time() + (600.0 if self.seen >= self.count else 0.0)

    def task_created(self, lane: str, item: ExportItem, task_id: str) -> None:
        super().task_created(lane, item, task_id)
        self.seen += self.event == "created"

    def task_finished(
        self, lane: str, item: ExportItem, task_id: str, status: str, seconds: float
    ) -> None:
        super().task_finished(lane, item, task_id, status, seconds)
        self.seen += self.event == "finished"


@pytest.mark.parametrize(
    ("where", "event", "count"),
    [("task in flight", "created", 1), ("between tasks", "finished", 2)],
)
def test_worker_stops_at_its_deadline_and_the_next_invocation_finishes_the_lane(
    queue_url: str, emu: Emulator, tmp_path: Path, where: str, event: str, count: int
) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = write(tmp_path, config_yaml(world.bucket, [A]))
    emu.task_timing(base=1.0 if where == "task in flight" else 0.05)
    trip = Tripwire(event, count)
    sessions = SessionFactory()

    def engine(config: Config) -> Engine:
        # the jump would make polls wait their 30 s maximum: keep real waits short
        short = lambda seconds: time.sleep(min(seconds, 0.05))  # noqa: E731
        return Engine(config, sessions, reporter=trip, clock=trip.clock, sleep=short)

    app = make_app(
        cfg, queue_url, world.bucket, sessions=sessions, engine_factory=engine, clock=trip.clock
    )
    app.dispatch({}, None)
    sqs = boto3.client("sqs")
    first = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)["Messages"]

    # 120 s left and stop 60 s before: the deadline passes when the clock jumps 10 minutes.
    response = app.work(sqs_event(first), Context(remaining_ms=120_000))
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=first[0]["ReceiptHandle"])

    assert response == {"batchItemFailures": []}
    assert queued(queue_url) == [{"account": f"acct-{A}", "region": REGION, "busy": 0}]
    state = app.engine_factory(app.config()).store().load(A, REGION)
    assert state.lease_owner is None  # released for the next invocation
    key = state_key("logs", A, REGION)
    created = [t.task_id for t in emu.tasks]
    recorded = {i.task_id for i in state.intents if i.task_id}
    if where == "task in flight":
        assert len(created) == 1 and days_in_state(world.bucket, key) == 0
        assert recorded == set(created)  # the task in flight, with its id
    else:
        assert len(created) == 2 and days_in_state(world.bucket, key) == 2
        assert recorded == set()  # nothing in flight, no task created after the deadline
    emu.task_timing(base=0.05)

    drained = drain(make_app(cfg, queue_url, world.bucket), queue_url)

    assert drained.invocations == 1 and drained.failures == []
    assert archive_of(world.bucket, "logs") == world.expected(groups=SELECTED)
    windows = tasks_per_window(emu)
    assert len(windows) == 3 * 3 and set(windows.values()) == {1}  # nothing twice
    assert all(t.status == "COMPLETED" for t in emu.tasks)  # the one in flight was adopted
    assert [t.task_id for t in emu.tasks][: len(created)] == created


def test_a_worker_finding_its_lane_busy_sends_it_back_and_creates_nothing(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    world = sample_world(accounts=(A,), days=3)
    emu.task_timing(base=0.3)  # the lane takes seconds: the second worker comes while it runs
    app = make_app(write(tmp_path, config_yaml(world.bucket, [A])), queue_url, world.bucket)
    message = LaneMessage(f"acct-{A}", REGION)
    deadline = time.time() + 600
    results: list[LaneResult | None] = []
    runner = threading.Thread(target=lambda: results.append(app.advance(message, deadline).result))
    runner.start()
    wait_for(lambda: len(emu.tasks) >= 1)

    second = app.advance(message, deadline)

    assert second.action == "requeued" and second.reason == "busy"
    assert second.result is not None and second.result.busy and second.result.tasks_created == 0
    assert queued(queue_url) == [{"account": f"acct-{A}", "region": REGION, "busy": 1}]
    runner.join(timeout=60)
    assert results and results[0] is not None and results[0].tasks_created == 9
    drained = drain(app, queue_url)  # the busy message comes back: nothing left to do
    assert drained.invocations == 1 and drained.failures == []
    windows = tasks_per_window(emu)
    assert len(windows) == 9 and set(windows.values()) == {1}
    assert archive_of(world.bucket, "logs") == world.expected(groups=SELECTED)


def test_two_workers_started_together_on_one_lane_create_no_duplicate(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    world = sample_world(accounts=(A,), days=2)
    app = make_app(write(tmp_path, config_yaml(world.bucket, [A])), queue_url, world.bucket)
    message = LaneMessage(f"acct-{A}", REGION)
    start = threading.Barrier(2)
    results: list[LaneResult] = []

    def worker() -> None:
        start.wait()
        advance = app.advance(message, time.time() + 600)
        assert advance.result is not None
        results.append(advance.result)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert len(results) == 2
    assert sorted(r.tasks_created for r in results) == [0, 6]  # one did it all, once
    drain(app, queue_url)
    windows = tasks_per_window(emu)
    assert len(windows) == 3 * 2 and set(windows.values()) == {1}
    assert archive_of(world.bucket, "logs") == world.expected(groups=SELECTED)


def test_a_failing_lane_goes_back_to_sqs_and_the_others_are_archived(
    queue_url: str, emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = sample_world(accounts=(A, B), days=1)
    emu.deny_role(role_arn(A))
    app = make_app(write(tmp_path, config_yaml(world.bucket, [A, B])), queue_url, world.bucket)
    app.dispatch({}, None)

    drained = drain(app, queue_url)

    assert len(drained.failures) == 1  # A's message: SQS retries it, then the DLQ keeps it
    assert archive_of(world.bucket, "logs") == world.expected(groups=SELECTED, accounts=[B])
    logs, metrics = stdout_json(capsys.readouterr().out)
    assert metric_sum(metrics, "LaneErrors") == 1
    errors = [r for r in logs if r["level"] == "ERROR"]
    assert errors and all(role_arn(A) in r["message"] for r in errors)


def test_dispatch_reads_the_config_from_s3_and_takes_a_subset_from_the_event(
    queue_url: str, emu: Emulator
) -> None:
    world = sample_world(accounts=(A, B), days=1)
    boto3.client("s3").put_object(
        Bucket=world.bucket, Key="conf/config.yml", Body=config_yaml(world.bucket, [A, B])
    )
    app = make_app(f"s3://{world.bucket}/conf/config.yml", queue_url, world.bucket)

    out = app.dispatch({"accounts": [f"acct-{B}"]}, None)

    assert out["dispatched"] == [f"acct-{B}/{REGION}"]
    assert queued(queue_url) == [{"account": f"acct-{B}", "region": REGION, "busy": 0}]


def test_dispatch_skips_a_lane_whose_region_cannot_export_to_the_bucket(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    world = sample_world(accounts=(A,), days=1)
    text = config_yaml(world.bucket, [A]) + "\n".join(
        [
            f"  - name: acct-{B}",
            f'    role: "{role_arn(B)}"',
            "    regions: [eu-west-1]",
            '    groups: ["*"]',
        ]
    )
    app = make_app(write(tmp_path, text), queue_url, world.bucket)

    out = app.dispatch({}, None)

    assert out == {"dispatched": [f"acct-{A}/{REGION}"], "skipped": [f"acct-{B}/eu-west-1"]}


@pytest.mark.parametrize(
    ("deployed", "message"),
    [
        (
            {"bucket": "other-bucket"},
            "destination.bucket is 'custodian-log-archive', but this stack was deployed for 'other-bucket'",
        ),
        (
            {"prefix": "archive"},
            "destination.prefix is 'logs', but this stack was deployed for 'archive'",
        ),
    ],
)
def test_a_config_that_the_stack_was_not_deployed_for_is_refused(
    queue_url: str, emu: Emulator, tmp_path: Path, deployed: dict[str, str], message: str
) -> None:
    world = sample_world(accounts=(A,), days=1)
    cfg = write(tmp_path, config_yaml(world.bucket, [A]))
    app = make_app(
        cfg, queue_url, deployed.get("bucket", world.bucket), prefix=deployed.get("prefix", "logs")
    )

    with pytest.raises(ConfigError, match=message):
        app.dispatch({}, None)
    assert queued(queue_url) == []


def test_a_message_for_an_account_no_longer_in_the_config_is_dropped(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    world = sample_world(accounts=(A,), days=1)
    app = make_app(write(tmp_path, config_yaml(world.bucket, [A])), queue_url, world.bucket)
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody=LaneMessage("gone", REGION).body())
    sqs.send_message(QueueUrl=queue_url, MessageBody="not json")

    drained = drain(app, queue_url)

    assert drained.invocations == 2
    assert len(drained.failures) == 1  # the malformed one: it ends in the dead-letter queue
    assert emu.tasks == []


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def org_yaml(bucket: str, extra: str = "") -> str:
    return f"""
destination:
  bucket: {bucket}
  prefix: logs
  settle: "0"
organization:
  role: "arn:aws:iam::{{account_id}}:role/LogExporterMember"
  regions: [{REGION}]
  groups: ["/aws/lambda/*", "re:vpc-flow-.*"]
  exclude: ["*-test"]
  exclude_accounts: ["master"]
{extra}"""


def test_the_dispatcher_discovers_the_organization_at_each_schedule(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    from emulator.seed import SeedAccount, create_organization

    first = create_organization([SeedAccount("app-1", "prod")]).accounts["app-1"]
    world = sample_world(accounts=(first,), days=2)
    app = make_app(write(tmp_path, org_yaml(world.bucket)), queue_url, world.bucket)

    assert app.dispatch({}, None)["dispatched"] == [f"app-1/{REGION}"]
    assert queued(queue_url) == [
        {"account": "app-1", "region": REGION, "busy": 0, "account_id": first}
    ]
    before = emu.calls
    drained = drain(app, queue_url)
    assert drained.failures == []
    # the workers made the account from the message: no Organizations call of theirs
    assert sum(n for (svc, _), n in emu.calls.items() if svc == "organizations") == sum(
        n for (svc, _), n in before.items() if svc == "organizations"
    )
    assert archive_of(world.bucket, "logs") == world.expected(groups=SELECTED)

    # An account joins the organization: the next schedule archives it, no config change.
    second = create_organization([SeedAccount("app-2", "prod")]).accounts["app-2"]
    world2 = sample_world(accounts=(second,), days=2)
    assert app.dispatch({}, None)["dispatched"] == [f"app-1/{REGION}", f"app-2/{REGION}"]
    assert drain(app, queue_url).failures == []
    assert archive_of(world.bucket, "logs") == world.expected(groups=SELECTED) + world2.expected(
        groups=SELECTED
    )
    assert set(tasks_per_window(emu).values()) == {1}


def test_a_discovered_lane_the_config_now_leaves_out_is_dropped(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    world = sample_world(accounts=(A,), days=1)
    excluded = org_yaml(world.bucket, f'  exclude_accounts: ["{A}"]').replace(
        '  exclude_accounts: ["master"]\n', ""
    )
    app = make_app(write(tmp_path, excluded), queue_url, world.bucket)
    sqs = boto3.client("sqs")
    for message in (
        LaneMessage("app", REGION, account_id=A),  # excluded since it was sent
        LaneMessage("other", REGION, account_id="not-an-id"),
    ):
        sqs.send_message(QueueUrl=queue_url, MessageBody=message.body())

    drained = drain(app, queue_url)

    assert drained.invocations == 2 and drained.failures == []
    assert emu.tasks == []


def test_two_organization_accounts_of_one_name_are_both_archived_by_the_workers(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    from emulator.seed import SeedAccount, create_organization

    # Organizations allows one name twice: the run names them `prod-<id>`; the workers must
    # still find them selected by `accounts: ["prod"]` (the name in Organizations)
    first = create_organization([SeedAccount("prod", "apps")]).accounts["prod"]
    second = create_organization([SeedAccount("prod", "apps")]).accounts["prod"]
    world = sample_world(accounts=(first, second), days=1)
    config = org_yaml(world.bucket, '  accounts: ["prod"]')
    app = make_app(write(tmp_path, config), queue_url, world.bucket)

    names = [f"prod-{first}/{REGION}", f"prod-{second}/{REGION}"]
    assert sorted(app.dispatch({}, None)["dispatched"]) == sorted(names)
    drained = drain(app, queue_url)

    assert drained.failures == []
    assert archive_of(world.bucket, "logs") == world.expected(groups=SELECTED)
    assert set(tasks_per_window(emu).values()) == {1}


def test_the_dispatchers_discovery_has_a_time_budget(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    from emulator.seed import SeedAccount, create_organization
    from log_exporter.errors import AWSError

    account = create_organization([SeedAccount("app-1", "prod")]).accounts["app-1"]
    world = sample_world(accounts=(account,), days=1)
    app = make_app(write(tmp_path, org_yaml(world.bucket)), queue_url, world.bucket)
    emu.throttle(1.0, services=["organizations"], error="TooManyRequestsException", seed=1)

    # 61 s left: 1 s for discovery, the rest kept to send the lanes
    with pytest.raises(AWSError, match="organization discovery: over its time budget of 1 s"):
        app.dispatch({}, Context(remaining_ms=61_000))
    assert queued(queue_url) == []


def test_dispatcher_and_workers_archive_each_region_into_its_own_bucket(
    queue_url: str, emu: Emulator, tmp_path: Path
) -> None:
    buckets = {REGION: "lambda-archive-use1", "eu-west-1": "lambda-archive-euw1"}
    worlds = {
        region: sample_world(bucket, accounts=(A,), days=1, region=region)
        for region, bucket in buckets.items()
    }
    text = config_yaml("lambda-archive-use1", [A]).replace(
        "  bucket: lambda-archive-use1",
        f"  bucket: {{{REGION}: lambda-archive-use1, eu-west-1: lambda-archive-euw1}}",
    )
    text = text.replace(f"regions: [{REGION}]", f"regions: [{REGION}, eu-west-1, eu-central-1]")
    # the stack's IAM names both buckets by one pattern (deploy/stage.py derives it)
    app = make_app(write(tmp_path, text), queue_url, "lambda-archive-*")

    out = app.dispatch({}, None)
    drained = drain(app, queue_url)

    # eu-central-1 has no bucket: not dispatched, and said so
    assert out == {
        "dispatched": [f"acct-{A}/{REGION}", f"acct-{A}/eu-west-1"],
        "skipped": [f"acct-{A}/eu-central-1"],
    }
    assert drained.invocations == 2 and drained.failures == []
    for region, world in worlds.items():
        assert archive_of(buckets[region], "logs") == world.expected(groups=SELECTED)
    assert {(t.region, t.destination) for t in emu.tasks} == set(buckets.items())
