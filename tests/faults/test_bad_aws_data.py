"""Bad data from AWS: a task that stays PENDING forever is cancelled after the configured timeout
and tried again; DescribeExportTasks answers missing a field do not crash or mislead the lane."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from emulator import Emulator
from emulator.scenario import config_yaml
from emulator.tasks import ExportJob

from .conftest import Exporter, account_ids, assert_complete, seed_world, tasks_per_window

BUCKET = "bad-data-archive"


@pytest.mark.parametrize("where", ["option", "config"])
def test_a_task_stuck_in_pending_is_cancelled_and_retried(
    emu: Emulator, exporter: Exporter, where: str
) -> None:
    accounts = account_ids(980_000_000_000 + (0 if where == "option" else 10), 1)
    world = seed_world(BUCKET, accounts, days=2)
    text = config_yaml(BUCKET, accounts, prefix=f"stuck-{where}")
    args = ["--pending-timeout", "2s"]
    if where == "config":
        text = text.replace("  settle:", "  pending_timeout: 2s\n  settle:", 1)
        args = []
    cfg = exporter.config(text)
    emu.stuck_tasks(1, account_id=accounts[0])

    result = exporter("run", "--config", str(cfg), *args)

    assert result.code == 0, result.output
    stuck = emu.tasks[0]
    assert stuck.status == "CANCELLED" and stuck.started_at is None
    assert f"task {stuck.task_id} stuck in PENDING; cancelling it" in result.output
    assert "retrying" in result.output
    per_window = tasks_per_window(emu, accounts)
    assert per_window[(stuck.account_id, stuck.group, stuck.from_ms, stuck.to_ms)] == 2
    assert sum(per_window.values()) == len(per_window) + 1
    assert_complete(world, f"stuck-{where}", accounts, emu=emu)


def test_a_zero_pending_timeout_is_refused(exporter: Exporter) -> None:
    cfg = exporter.config(config_yaml(BUCKET, account_ids(980_000_000_100, 1)))
    result = exporter("run", "--config", str(cfg), "--pending-timeout", "0")
    assert result.code == 2
    assert "--pending-timeout" in result.stderr and "Traceback" not in result.output


DROPPED = ("status", "executionInfo", "taskName", "taskId", "from", "to", "destinationPrefix")


def test_describe_answers_missing_a_field(
    emu: Emulator, exporter: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers about a task lack one field each, in turn (status, taskId, ...: the k-th task
    starts at the k-th field), until each field was missing once; then they are whole. The lane
    keeps asking instead of acting on half an answer."""
    accounts = account_ids(990_000_000_000, 2)
    world = seed_world(BUCKET, accounts, days=2)
    cfg = exporter.config(config_yaml(BUCKET, accounts, prefix="fields"))
    emu.task_timing(base=0.3)
    original = ExportJob.to_json
    answers: Counter[str] = Counter()
    order: dict[str, int] = {}
    dropped: Counter[str] = Counter()
    first: dict[str, str] = {}  # task id -> the field its first answer lacked
    lock = threading.Lock()

    def lacking(self: ExportJob) -> dict[str, Any]:
        out: dict[str, Any] = original(self)
        with lock:
            k = order.setdefault(self.task_id, len(order))
            n = answers[self.task_id]
            answers[self.task_id] += 1
            if n < len(DROPPED):
                field = DROPPED[(n + k) % len(DROPPED)]
                out.pop(field, None)
                dropped[field] += 1
                first.setdefault(self.task_id, field)
        return out

    monkeypatch.setattr(ExportJob, "to_json", lacking)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output
    assert set(dropped) == set(DROPPED)  # each field was missing from some answer
    # a first answer without a status was not taken for the end of the task (one without its
    # id is still about the task asked for by id, and may be acted on)
    asked_again = [answers[t] >= 2 for t, f in first.items() if f == "status"]
    assert asked_again and all(asked_again), sorted((first[t], answers[t]) for t in first)
    assert_complete(world, "fields", accounts, emu=emu)
    assert set(tasks_per_window(emu, accounts).values()) == {1}  # nothing exported twice
    assert all(t.status == "COMPLETED" for t in emu.tasks)
