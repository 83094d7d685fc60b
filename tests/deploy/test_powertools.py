"""The handlers' use of aws-lambda-powertools, without AWS: the worker's SQS batch goes through
`BatchProcessor` (a failed record, and only it, is a batch item failure), and every log line of an
invocation, the core's included, carries the request id `inject_lambda_context` adds."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.scenario import config_yaml
from log_exporter.aws_lambda.messages import LaneMessage
from log_exporter.aws_lambda.worker import Advance, Worker, lambda_handler
from log_exporter.core.config import Config
from log_exporter.engine import Engine
from log_exporter.errors import ConfigError

from .conftest import make_app, stdout_json

A = "111111111111"
BUCKET = "lambda-archive"


@dataclass
class LambdaContext:
    """What Lambda hands a handler, as far as powertools and the worker read it."""

    aws_request_id: str = "req-0001"
    function_name: str = "log-exporter-worker"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:log-exporter-worker"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def record(message_id: str, body: str) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body}


def lane(account: str) -> str:
    return LaneMessage(account, "us-east-1").body()


class ScriptedWorker(Worker):
    """A worker whose lanes do what their account is named: `done`, `requeued`, `dropped`,
    `failed` (say, a role it cannot assume), or `bug` (an unexpected exception)."""

    def advance(self, message: LaneMessage, deadline: float) -> Advance:
        if message.account == "bug":
            raise KeyError("a bug")
        assert message.account in ("done", "requeued", "dropped", "failed")
        return Advance(message, message.account, reason=message.account)


def scripted_worker() -> ScriptedWorker:
    return ScriptedWorker(make_app("config.yml", "q", BUCKET))


@pytest.mark.parametrize(
    ("records", "failures"),
    [
        (
            [
                record("m1", lane("done")),
                record("m2", lane("failed")),
                record("m3", lane("requeued")),
                record("m4", lane("dropped")),
            ],
            ["m2"],
        ),
        ([record("m1", lane("done")), record("m2", "not json")], ["m2"]),  # not a lane message
        ([record("m1", lane("bug")), record("m2", lane("done"))], ["m1"]),
        # the deployed batch size is 1: a failed record is reported, not raised as a failed batch
        ([record("only", lane("failed"))], ["only"]),
        ([record("m1", lane("failed")), record("m2", "{}")], ["m1", "m2"]),
        ([record("only", lane("done"))], []),
    ],
)
def test_a_failed_record_and_only_it_is_a_batch_item_failure(
    records: list[dict[str, Any]], failures: list[str]
) -> None:
    response = scripted_worker().work({"Records": records}, LambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in failures]}


def test_every_record_of_a_batch_is_advanced_with_the_invocations_deadline() -> None:
    seen: list[tuple[str, float]] = []

    class Recording(Worker):
        def advance(self, message: LaneMessage, deadline: float) -> Advance:
            seen.append((message.account, deadline))
            return Advance(message, "done")

    app = make_app("config.yml", "q", BUCKET, clock=lambda: 1000.0, stop_before_seconds=60)
    event = {"Records": [record("m1", lane("a")), record("m2", lane("b"))]}

    assert Recording(app).work(event, LambdaContext(remaining_ms=300_000)) == {
        "batchItemFailures": []
    }
    assert seen == [("a", 1000.0 + 300 - 60), ("b", 1000.0 + 300 - 60)]


def test_the_workers_log_lines_carry_the_request_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both the worker's own lines and the core's (the `log_exporter` logger) name the
    invocation."""
    cfg = tmp_path / "config.yml"
    cfg.write_text(config_yaml(BUCKET, [A]))

    def engine(config: Config) -> Engine:
        logging.getLogger("log_exporter.engine").warning("building the engine of %s", A)
        raise ConfigError("no engine in this test")

    app = make_app(cfg, "q", BUCKET, engine_factory=engine)
    handler = lambda_handler(app)
    event = {"Records": [record("m1", lane(f"acct-{A}"))]}

    response = handler(event, LambdaContext(aws_request_id="req-42"))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    logs, _ = stdout_json(capsys.readouterr().out)
    core = [r for r in logs if r["message"] == f"building the engine of {A}"]
    error = [r for r in logs if r["message"] == f"acct-{A}/us-east-1: no engine in this test"]
    assert len(core) == 1 and len(error) == 1, logs
    for line in (core[0], error[0]):
        assert line["function_request_id"] == "req-42"
        assert line["function_name"] == "log-exporter-worker"
        assert "cold_start" in line


ENTRY_POINTS = """
import json, sys
from dataclasses import dataclass

@dataclass
class Context:
    aws_request_id: str
    function_name: str = "log-exporter"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:log-exporter"
    def get_remaining_time_in_millis(self) -> int:
        return 900_000

from log_exporter.aws_lambda import dispatcher, worker
batch = {"Records": [{"messageId": "m1", "receiptHandle": "r", "body": "not a lane"}]}
print(json.dumps({"response": worker.handler(batch, Context("req-1"))}))
print(json.dumps({"response": worker.handler(batch, Context("req-2"))}))
try:
    dispatcher.handler(None, Context("req-3"))
except Exception as exc:
    print(json.dumps({"raised": type(exc).__name__}))
"""


def test_the_entry_points_in_the_template_inject_the_lambda_context(tmp_path: Path) -> None:
    """`worker.handler` and `dispatcher.handler` as Lambda runs them, in a process of their own
    (the app comes from the environment, and powertools' logger is configured once a process)."""
    env = {
        "PATH": "",
        "LOG_EXPORTER_CONFIG": str(tmp_path / "missing.yml"),
        "LOG_EXPORTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/lanes",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY_POINTS],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    outcomes = [line for line in lines if "response" in line or "raised" in line]
    failure = {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert outcomes == [{"response": failure}, {"response": failure}, {"raised": "ConfigError"}]
    logs = [line for line in lines if "level" in line]
    by_request = {line["function_request_id"]: line for line in logs}
    assert sorted(by_request) == ["req-1", "req-2", "req-3"], logs
    assert "not a lane message" in by_request["req-1"]["message"]
    assert by_request["req-1"]["cold_start"] is True
    assert by_request["req-2"]["cold_start"] is False
    assert "dispatch failed" in by_request["req-3"]["message"]
