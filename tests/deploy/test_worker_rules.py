"""The worker's pure rules, without AWS: what happens to a lane message after an advance, the
settings from the environment, the lag, and that the CLI never needs powertools."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from log_exporter.aws_lambda.app import LambdaApp
from log_exporter.aws_lambda.messages import LaneMessage, LaneQueue
from log_exporter.aws_lambda.reporting import lag_seconds
from log_exporter.aws_lambda.settings import MAX_DELAY_SECONDS, LambdaSettings
from log_exporter.aws_lambda.worker import Action, Worker
from log_exporter.core.plan import ExportItem
from log_exporter.core.windows import Intervals, Window
from log_exporter.errors import ConfigError, LogExporterError
from log_exporter.lane.result import LaneResult


class RecordingQueue(LaneQueue):
    def __init__(self) -> None:
        self.sent: list[tuple[LaneMessage, int]] = []

    def send(self, message: LaneMessage, delay_seconds: int = 0) -> None:
        self.sent.append((message, delay_seconds))


class OfflineApp(LambdaApp):
    """The worker's rules with a queue that only records."""

    def __init__(self, settings: LambdaSettings) -> None:
        super().__init__(settings)
        self.recording = RecordingQueue()

    def queue(self) -> LaneQueue:
        return self.recording


SETTINGS = LambdaSettings(
    queue_url="q", requeue_delay_seconds=10, busy_delay_seconds=300, max_busy_requeues=2
)


FAILED_DAY = ExportItem(Window(0, 86_400_000 - 1), "/aws/lambda/api")


def result(**kwargs: Any) -> LaneResult:
    return LaneResult("prod", "111111111111", "us-east-1", **kwargs)


@pytest.mark.parametrize(
    ("busy_before", "lane", "action", "sent"),
    [
        (0, result(), "done", []),
        (0, result(remaining=5), "requeued", [(0, 10)]),
        (2, result(remaining=5), "requeued", [(0, 10)]),  # progress resets the busy count
        (0, result(busy=True, error="held"), "requeued", [(1, 300)]),
        (1, result(busy=True, error="held"), "requeued", [(2, 300)]),
        (2, result(busy=True, error="held"), "dropped", []),  # the holder finishes the lane
        (0, result(error="cannot assume role"), "failed", []),  # SQS retries, then the DLQ
        (0, result(failed=[(FAILED_DAY, "task FAILED")]), "done", []),  # retried next schedule
    ],
)
def test_what_happens_to_a_lane_after_an_advance(
    busy_before: int, lane: LaneResult, action: Action, sent: list[tuple[int, int]]
) -> None:
    app = OfflineApp(SETTINGS)
    message = LaneMessage("prod", "us-east-1", busy=busy_before)

    advance = Worker(app).next_step(message, lane)

    assert advance.action == action
    assert [(m.busy, delay) for m, delay in app.recording.sent] == sent
    assert all((m.account, m.region) == ("prod", "us-east-1") for m, _ in app.recording.sent)


def test_settings_explicit_beats_environment_beats_default() -> None:
    env = {
        "LOG_EXPORTER_CONFIG": "s3://conf/config.yml",
        "LOG_EXPORTER_BUSY_DELAY_SECONDS": "120",
        "LOG_EXPORTER_STOP_BEFORE_SECONDS": "45.5",
        "LOG_EXPORTER_PREFIX": "",
        "UNRELATED": "x",
    }
    s = LambdaSettings.from_env(env, busy_delay_seconds=60)
    assert s.config == "s3://conf/config.yml"
    assert s.busy_delay_seconds == 60  # explicit
    assert s.stop_before_seconds == 45.5  # environment
    assert s.prefix == ""  # an empty prefix is a prefix, and is checked
    assert s.requeue_delay_seconds == 10  # default
    assert LambdaSettings.from_env({}).prefix is None  # not set: not checked


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_EXPORTER_REQUEUE_DELAY_SECONDS": "soon"}, "'soon' is not a int"),
        ({"LOG_EXPORTER_BUSY_DELAY_SECONDS": "901"}, f"between 0 and {MAX_DELAY_SECONDS}"),
        ({"LOG_EXPORTER_STOP_BEFORE_SECONDS": "-1"}, "cannot be negative"),
    ],
)
def test_bad_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LambdaSettings.from_env(env)


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        ('{"account": "prod", "region": "eu-west-1"}', LaneMessage("prod", "eu-west-1")),
        (
            '{"account": "prod", "region": "eu-west-1", "busy": 3}',
            LaneMessage("prod", "eu-west-1", 3),
        ),
    ],
)
def test_lane_messages_round_trip(body: str, parsed: LaneMessage) -> None:
    assert LaneMessage.parse(body) == parsed
    assert LaneMessage.parse(parsed.body()) == parsed


@pytest.mark.parametrize(
    "body", ["", "[]", '{"account": "prod"}', '{"account": "p", "region": "r", "busy": "x"}']
)
def test_a_malformed_message_is_an_error(body: str) -> None:
    with pytest.raises(LogExporterError, match="not a lane message"):
        LaneMessage.parse(body)


def test_a_worker_without_a_queue_says_so() -> None:
    with pytest.raises(ConfigError, match="LOG_EXPORTER_QUEUE_URL is not set"):
        LaneQueue(None, "")  # type: ignore[arg-type]


DAY = 86_400_000


@pytest.mark.parametrize(
    ("covered", "now_ms", "lag"),
    [
        ({}, 10 * DAY, None),
        ({"a": Intervals()}, 10 * DAY, None),
        ({"a": Intervals([(0, DAY - 1)])}, 2 * DAY, 86_400.0),  # day 0 done, now is day 2 00:00
        ({"a": Intervals([(0, DAY - 1)]), "b": Intervals([(0, 3 * DAY - 1)])}, 3 * DAY + 1000, 1.0),
    ],
)
def test_lag_is_the_age_of_the_newest_archived_window(
    covered: dict[str, Intervals], now_ms: int, lag: float | None
) -> None:
    assert lag_seconds(covered, now_ms / 1000) == lag


def test_the_cli_imports_and_runs_without_powertools() -> None:
    """aws-lambda-powertools is the `lambda` extra: the CLI must not need it."""
    code = """
import sys
class NoPowertools:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "aws_lambda_powertools":
            raise ImportError("no powertools here")
sys.meta_path.insert(0, NoPowertools())
import log_exporter, log_exporter.cli.main, log_exporter.engine, log_exporter.cli.render.console
from log_exporter.cli.main import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
assert "aws_lambda_powertools" not in sys.modules
try:
    import log_exporter.aws_lambda.worker
except ImportError as exc:
    print("lambda module needs powertools:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: log-exporter" in proc.stdout
    assert "lambda module needs powertools: no powertools here" in proc.stdout
